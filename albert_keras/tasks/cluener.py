"""CLUENER2020: fine-grained Chinese named entities, read as character tags and scored officially.

Files are JSON lines `{"id"?, "text": str, "label": {type: {surface: [[start, end], ...]}}}` with
0-based character offsets and INCLUSIVE ends (`text[start:end + 1] == surface`, checked; a
mismatch names the file and line). Test files have no `label`.

- `read_cluener`: each character is one "word" for `albert_keras.tasks.tagging`'s
  token-classification task, tagged IOB2 (`B-`, `I-`) or BIOS (`S-` for one-character entities,
  as CLUENER2020's PyTorch baseline tags them). Where two entities overlap (nested mentions), the
  earlier-starting (then longer) one keeps the characters and the other is left out of the tags
  (counted and reported); the gold entity sets used for scoring keep every entity.
- `score`: the official score.py: per sentence and type, the *set of entity strings* predicted
  against the gold set (TP, FP, FN summed over sentences), F1 per type, macro-averaged over the
  10 types. Where score.py divides by zero (a type never predicted, or never right), the ratio
  is 0 here.
- `predicted_labels`: predicted tags back to `{type: {surface: [[start, end]]}}`, the submission
  format (`{"id", "label"}` lines).
"""

import dataclasses
import os
import sys

from albert_keras.errors import AlbertInputError
from albert_keras.tasks.entity_metrics import entities
from albert_keras.text_files import read_json_lines
from albert_keras.tasks.entity_metrics import TaggedSentence

TYPES = ("address", "book", "company", "game", "government", "movie", "name", "organization", "position", "scene")
SCHEMES = ("IOB2", "BIOS")
OVERLAP = "overlapping entity left out of the tags"


@dataclasses.dataclass
class CluenerSentence(TaggedSentence):
    """A `TaggedSentence` of characters with its text, id and gold `label` dict (None for test files)."""

    text: str = ""
    id: object = None
    label: dict = None


def labels_for(scheme="IOB2"):
    """Every tag of the 10 types under `scheme` (`IOB2` or `BIOS`), "O" first.

    Example:
    ```python
    len(labels_for("IOB2")), len(labels_for("BIOS"))  # 21, 31
    ```
    """
    prefixes = ("B", "I", "S") if _scheme(scheme) == "BIOS" else ("B", "I")
    return ["O"] + [f"{prefix}-{type_}" for prefix in prefixes for type_ in TYPES]


def _scheme(scheme):
    key = str(scheme or "IOB2").upper()
    key = {"BIO": "IOB2", "BIOES": "BIOS", "IOBES": "BIOS"}.get(key, key)
    if key not in SCHEMES:
        raise AlbertInputError(f"cluener: tagging scheme {scheme!r}: use IOB2 or BIOS")
    return key


def _spans(label, text, where):
    """`(start, end_exclusive, type)` of every entity in a `label` dict, checked against `text`."""
    if not isinstance(label, dict):
        raise AlbertInputError(f"{where}: 'label' must be an object {{type: {{surface: [[start, end], ...]}}}}")
    spans = []
    for type_, surfaces in label.items():
        if type_ not in TYPES:
            raise AlbertInputError(f"{where}: unknown entity type {type_!r} (CLUENER has {', '.join(TYPES)})")
        if not isinstance(surfaces, dict):
            raise AlbertInputError(f"{where}: label[{type_!r}] must map each surface to its [[start, end]] list")
        for surface, positions in surfaces.items():
            if not isinstance(positions, list):
                raise AlbertInputError(f"{where}: label[{type_!r}][{surface!r}] must be a list of [start, end]")
            for position in positions:
                if (not isinstance(position, list) or len(position) != 2
                        or not all(isinstance(p, int) and not isinstance(p, bool) for p in position)):
                    raise AlbertInputError(f"{where}: label[{type_!r}][{surface!r}]: {position!r} is not [start, end]")
                start, end = position
                if not 0 <= start <= end < len(text) or text[start:end + 1] != surface:
                    raise AlbertInputError(
                        f"{where}: {type_} {surface!r} is not at [{start}, {end}] (inclusive end; text there: "
                        f"{text[start:end + 1]!r})"
                    )
                spans.append((start, end + 1, type_))
    return spans


def tags_for(text, spans, scheme="IOB2"):
    """Character tags for entity `spans` (`(start, end_exclusive, type)`), and how many overlapping
    spans were left out.

    Example:
    ```python
    tags_for("去北京", [(1, 3, "address")])  # (["O", "B-address", "I-address"], 0)
    ```
    """
    bios = _scheme(scheme) == "BIOS"
    tags = ["O"] * len(text)
    dropped = 0
    for start, end, type_ in sorted(spans, key=lambda s: (s[0], -s[1], s[2])):
        if any(tag != "O" for tag in tags[start:end]):
            dropped += 1
            continue
        if bios and end - start == 1:
            tags[start] = f"S-{type_}"
            continue
        tags[start] = f"B-{type_}"
        for i in range(start + 1, end):
            tags[i] = f"I-{type_}"
    return tags, dropped


def read_cluener(path, labelled=True, scheme="IOB2"):
    """Read a CLUENER2020 JSON-lines file as character-tagged sentences.

    Args:
        path: `train.json`, `dev.json` or `test.json` (or their directory's file is chosen by the
            caller).
        labelled: read and check `label` (False: test files; a `label` present is ignored).
        scheme: `IOB2` or `BIOS`.

    Returns:
        `(sentences, skipped)`: `CluenerSentence`s (`words` are the characters) and
        `{reason: count}` of entities left out of the tags.

    Example:
    ```python
    sentences, _ = read_cluener("cluener/dev.json")
    sentences[0].label  # {"name": {"叶老桂": [[9, 11]]}, ...}
    ```
    """
    path = os.fspath(path)
    sentences, dropped = [], 0
    for number, record in read_json_lines(path):
        where = f"{path}:{number}"
        text = record.get("text")
        if not isinstance(text, str) or not text:
            raise AlbertInputError(f"{where}: expected an object with a non-empty 'text'")
        identifier = record.get("id", len(sentences))
        if not labelled:
            sentences.append(CluenerSentence(list(text), None, where, text, identifier, None))
            continue
        if "label" not in record:
            raise AlbertInputError(f"{where}: no field 'label' (a test file? use predict)")
        tags, count = tags_for(text, _spans(record["label"], text, where), scheme)
        dropped += count
        sentences.append(CluenerSentence(list(text), tags, where, text, identifier, record["label"]))
    if not sentences:
        raise AlbertInputError(f"{path}: no sentences")
    skipped = {OVERLAP: dropped} if dropped else {}
    for reason, count in skipped.items():
        print(f"cluener: {path}: {count} entities ({reason})", file=sys.stderr)
    return sentences, skipped


def predicted_labels(text, tags, scheme="IOB2"):
    """Predicted character tags as CLUENER's `{type: {surface: [[start, end], ...]}}` (inclusive ends).

    Chunks are read as `albert_keras.tasks.entity_metrics.entities` reads them (seqeval's lenient
    default: an `I-` after `O` starts an entity).

    Example:
    ```python
    predicted_labels("去北京", ["O", "B-address", "I-address"])  # {"address": {"北京": [[1, 2]]}}
    ```
    """
    checked = "BIOES" if _scheme(scheme) == "BIOS" else "IOB2"
    label = {}
    for type_, start, end in entities(tags, checked, where="predicted tags"):
        label.setdefault(type_, {}).setdefault(text[start:end], []).append([start, end - 1])
    return label


def score(gold, predicted):
    """The official CLUENER2020 scores: F1 per type over per-sentence entity-string sets, and
    their macro average over the 10 types.

    Args:
        gold: one `label` dict per sentence (`{type: {surface: spans}}`; spans are not used).
        predicted: the same for the predictions, as many sentences.

    Returns:
        `{"macro_f1": float, "f1_<type>": float, ...}` (0 to 1; the 10 types always), plus
        `precision_<type>` and `recall_<type>`.

    Example:
    ```python
    from albert_keras.tasks.cluener import score
    score([{"name": {"张三": [[0, 1]]}}], [{"name": {"张三": [[0, 1]]}}])["f1_name"]  # 1.0
    ```
    """
    if len(gold) != len(predicted):
        raise AlbertInputError(f"cluener scores: {len(gold)} gold sentences but {len(predicted)} predicted")
    result = {}
    total = 0.0
    for type_ in TYPES:
        tp = fp = fn = 0
        for gold_label, predicted_label in zip(gold, predicted):
            gold_set = set((gold_label or {}).get(type_, {}))
            predicted_set = set((predicted_label or {}).get(type_, {}))
            tp += len(predicted_set & gold_set)
            fp += len(predicted_set - gold_set)
            fn += len(gold_set - predicted_set)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result.update({f"f1_{type_}": f1, f"precision_{type_}": precision, f"recall_{type_}": recall})
        total += f1
    return {"macro_f1": total / len(TYPES), **result}
