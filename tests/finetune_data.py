"""Rule-made fine-tuning data the tests write themselves: the label follows from a word list, so a
tiny model trained from scratch can learn it and chance is known. The words are single pieces of
the shared SentencePiece model (trained on the embedded Python-docs corpus): a random tiny model
learns a word in a few dozen steps, a word spelled letter by letter takes it far longer."""

import csv
import json
import random

POSITIVE = ("normal", "simple", "common", "free", "special")
NEGATIVE = ("fail", "empty", "exception", "raise", "error")
NOUNS = ("class", "object", "function", "method", "value", "module")


def sentence(positive, rng):
    return f"a {rng.choice(POSITIVE if positive else NEGATIVE)} {rng.choice(NOUNS)}"


def sentiment_rows(n, seed=0):
    """`(sentence, "positive"|"negative")`, balanced."""
    rng = random.Random(seed)
    return [(sentence(i % 2 == 1, rng), "positive" if i % 2 else "negative") for i in range(n)]


def pair_rows(n, seed=0):
    """`(a, b, label)`: a question about a noun, and an answer whose polarity is the label (the
    model must read the second segment)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        b_positive = i % 2 == 1
        answer = rng.choice(POSITIVE if b_positive else NEGATIVE)
        rows.append((f"what is the {rng.choice(NOUNS)} ?", f"it is {answer} .", "1" if b_positive else "0"))
    return rows


def regression_rows(n, seed=0):
    """`(sentence, target)`: the target is 1 for a positive sentence, 0 for a negative one, plus noise."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        positive = i % 2 == 1
        rows.append((sentence(positive, rng), round((1.0 if positive else 0.0) + rng.uniform(-0.2, 0.2), 3)))
    return rows


def choice_records(n, num_choices=3, seed=0):
    """Plain multiple-choice records: the answer is the one positive choice."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        answer = i % num_choices
        choices = [sentence(k == answer, rng) for k in range(num_choices)]
        records.append({"context": "which one is normal ?", "choices": choices, "label": answer})
    return records


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def write_jsonl(path, records):
    with open(path, "w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    return str(path)
