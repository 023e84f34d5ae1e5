"""Entity-level precision, recall and F1 for tagged sentences, with seqeval's default semantics.

seqeval's default mode (no `mode="strict"`) is the CoNLL `conlleval` evaluation: an entity is a
maximal chunk read leniently from the tags, so `I-X` after `O` or after another type starts a new
entity, and `B-X`/`S-X` always start one; the same chunking reads IOB1, IOB2 (BIO) and BIOES.
A predicted entity is correct when its type, first and last word all equal a gold entity's.
Precision = correct / predicted, recall = correct / gold, F1 their harmonic mean (0 when a ratio
is 0/0, as seqeval's default zero division gives), micro-averaged over types for "overall".

The scheme is used to validate tags (an unknown tag is an error here; seqeval would silently
read it as some chunk), not to change the chunking, exactly as in seqeval's default mode.

Written here rather than depending on seqeval at run time: it is a small, unmaintained package
pulling scikit-learn; the tests compare with it on random tag sequences.

`TaggedSentence`, the record every tagging reader returns, lives here with the scores so that the
readers of tagged dialects (`albert_keras.tasks.cluener`) need not import the tagging task.
"""

import dataclasses
import re

from albert_keras.errors import AlbertInputError

@dataclasses.dataclass
class TaggedSentence:
    """Words with one tag each (`tags` is None for unlabelled input); `where` is `file:line`."""

    words: list
    tags: list = None
    where: str = ""


SCHEMES = {
    "IOB2": ("B", "I"),
    "BIO": ("B", "I"),
    "IOB1": ("B", "I"),
    "BIOES": ("B", "I", "E", "S"),
    "IOBES": ("B", "I", "E", "S"),
}

_TAG = re.compile(r"^([A-Z])-(.+)$")


def _parse(tag, prefixes, where):
    if tag == "O":
        return "O", ""
    match = _TAG.match(tag) if isinstance(tag, str) else None
    if match is None or match.group(1) not in prefixes:
        allowed = ", ".join(f"{p}-TYPE" for p in prefixes)
        raise AlbertInputError(f"{where}: unknown tag {tag!r} (expected O, {allowed})")
    return match.group(1), match.group(2)


def _prefixes(scheme):
    key = str(scheme).upper()
    if key not in SCHEMES:
        raise AlbertInputError(f"unknown tagging scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    return SCHEMES[key]


def _ends_before(previous, tag, previous_type, type_):
    # seqeval's end_of_chunk: does the chunk that includes the previous tag end there?
    if previous in ("E", "S"):
        return True
    if previous in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return previous != "O" and previous_type != type_


def _starts_at(previous, tag, previous_type, type_):
    # seqeval's start_of_chunk: does a chunk start at this tag?
    if tag in ("B", "S"):
        return True
    if previous in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag != "O" and previous_type != type_


def entities(tags, scheme="IOB2", where="tags"):
    """The entities in one sentence's tags, as `(type, start, end)` with `end` exclusive.

    Args:
        tags: a list of tag strings, e.g. `["B-PER", "I-PER", "O"]`.
        scheme: `"IOB2"` (alias `"BIO"`), `"IOB1"` or `"BIOES"` (alias `"IOBES"`): which tags
            are valid. The chunking is seqeval's default (lenient) one for all three.
        where: names the sentence in error messages.

    Returns:
        A list of `(type, start, end)` tuples in order; `tags[start:end]` is the entity.

    Raises:
        AlbertInputError: a tag that is not `O` or `PREFIX-TYPE` with a prefix of the scheme,
            naming `where` and the tag's index (0-based).

    Example:
    ```python
    from albert_keras.tasks.entity_metrics import entities
    entities(["B-PER", "I-PER", "O", "I-LOC"])  # [("PER", 0, 2), ("LOC", 3, 4)]
    ```
    """
    prefixes = _prefixes(scheme)
    found = []
    previous, previous_type, begin = "O", "", 0
    parsed = [_parse(tag, prefixes, f"{where}, tag {i}") for i, tag in enumerate(tags)]
    for i, (tag, type_) in enumerate(parsed + [("O", "")]):
        if _ends_before(previous, tag, previous_type, type_):
            found.append((previous_type, begin, i))
        if _starts_at(previous, tag, previous_type, type_):
            begin = i
        previous, previous_type = tag, type_
    return found


def _ratios(correct, predicted, gold):
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1,
            "support": gold, "predicted": predicted, "correct": correct}


def entity_scores(gold, predicted, scheme="IOB2"):
    """Overall and per-type entity precision, recall and F1 (seqeval's default mode).

    Args:
        gold: gold tags, a list of sentences, each a list of tag strings.
        predicted: predicted tags, the same number of sentences of the same lengths.
        scheme: `"IOB2"`/`"BIO"`, `"IOB1"` or `"BIOES"`/`"IOBES"` (see `entities`).

    Returns:
        `{"overall": scores, "per_type": {type: scores}}`, where `scores` is
        `{"precision", "recall", "f1"}` (floats in [0, 1]) and `{"support", "predicted",
        "correct"}` (entity counts: gold, predicted, both). "overall" is the micro average
        (seqeval's `precision_score`/`recall_score`/`f1_score`); "per_type" has every type seen
        in gold or predictions, sorted by name (seqeval's `classification_report` rows).

    Raises:
        AlbertInputError: different numbers of sentences, a sentence whose lengths differ, or an
            unknown tag (naming the sentence and the tag index).

    Example:
    ```python
    from albert_keras.tasks.entity_metrics import entity_scores
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"]]
    entity_scores(gold, predicted)["overall"]["f1"]  # 0.5
    ```
    """
    if len(gold) != len(predicted):
        raise AlbertInputError(f"entity scores: {len(gold)} gold sentences but {len(predicted)} predicted")
    gold_entities, predicted_entities = set(), set()
    for s, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted)):
        if len(gold_tags) != len(predicted_tags):
            raise AlbertInputError(
                f"entity scores: sentence {s} has {len(gold_tags)} gold tags but {len(predicted_tags)} predicted"
            )
        gold_entities.update((s,) + e for e in entities(gold_tags, scheme, f"gold sentence {s}"))
        predicted_entities.update((s,) + e for e in entities(predicted_tags, scheme, f"predicted sentence {s}"))
    correct = gold_entities & predicted_entities
    types = sorted({e[1] for e in gold_entities | predicted_entities})
    per_type = {}
    for type_ in types:
        per_type[type_] = _ratios(
            sum(1 for e in correct if e[1] == type_),
            sum(1 for e in predicted_entities if e[1] == type_),
            sum(1 for e in gold_entities if e[1] == type_),
        )
    return {
        "overall": _ratios(len(correct), len(predicted_entities), len(gold_entities)),
        "per_type": per_type,
    }
