"""A made-up SNIPS-like assistant grammar the intent-slot tests write themselves.

Four intents, each from a few templates; slot values from small lists, some two words long and
some words in two slot types (`table` is an object after "show", a place after "in"), so the
slots depend on context. Most words are single pieces of the shared test SentencePiece model
(trained on the embedded Python docs), which a tiny random model learns in a few dozen steps.
"""

import json
import os
import random

OBJECTS = ["module", "class", "function", "object", "string", "tuple", "table", "key"]
ADJECTIVES = ["new", "old"]
PLACES = ["line", "code", "table", "this test", "that module"]
VALUES = ["one", "first", "any", "none", "all"]
TEMPLATES = {
    "show_item": ["show the {object}", "show {object} in {place}", "in {place} show the {object}"],
    "set_value": ["set the {object} to {value}", "set {object} to {value} in {place}"],
    "list_items": ["list all {object} in {place}", "list the {object}", "list {object} with {value}"],
    "test_item": ["test the {object} on {place}", "test {object}", "on {place} test {object} with {value}"],
}


def _value(kind, rng):
    if kind == "object":
        word = rng.choice(OBJECTS)
        return f"{rng.choice(ADJECTIVES)} {word}" if rng.random() < 0.3 else word
    return rng.choice(PLACES if kind == "place" else VALUES)


def utterances(n, seed=0, intents=None):
    """`(text, intent, slots)` with slots as `{"start", "end", "type"}` character spans; intents
    cycle so that the majority baseline is known (about 1/4)."""
    rng = random.Random(seed)
    names = intents or sorted(TEMPLATES)
    records = []
    for i in range(n):
        intent = names[i % len(names)]
        template = rng.choice(TEMPLATES[intent])
        text, slots = "", []
        for piece in template.replace("}", "{").split("{"):
            if piece in ("object", "place", "value"):
                value = _value(piece, rng)
                slots.append({"start": len(text), "end": len(text) + len(value), "type": piece})
                text += value
            else:
                text += piece
        records.append((text, intent, slots))
    return records


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for text, intent, slots in records:
            f.write(json.dumps({"text": text, "intent": intent, "slots": slots}) + "\n")
    return str(path)


def iob2(text, slots):
    """The IOB2 tags of the words of `text` (slots here are whole words)."""
    tags, position = [], 0
    for word in text.split():
        start = text.index(word, position)
        position = start + len(word)
        tag = "O"
        for slot in slots:
            if slot["start"] <= start < slot["end"]:
                tag = ("B-" if start == slot["start"] else "I-") + slot["type"]
        tags.append(tag)
    return tags


def write_goo(directory, records):
    """A Goo et al. folder: seq.in, seq.out, label."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "seq.in"), "w") as a, open(os.path.join(directory, "seq.out"), "w") as b, \
            open(os.path.join(directory, "label"), "w") as c:
        for text, intent, slots in records:
            a.write(text + "\n")
            b.write(" ".join(iob2(text, slots)) + "\n")
            c.write(intent + "\n")
    return str(directory)
