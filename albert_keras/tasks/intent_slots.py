"""Joint intent classification and slot filling (`--task intent-slots`): readers, features, metrics.

- Readers: the folder layout of Goo et al. (2018) used for ATIS and SNIPS (`seq.in`: one
  utterance a line, words separated by spaces; `seq.out`: one slot tag per word, IOB2;
  `label`: one intent a line), JSONL (`{"text", "intent", "slots": [{"start", "end", "type"}]}`
  with character offsets, `end` exclusive; the records `predict` writes read back), and, for
  `predict`, a `.txt` file of one utterance a line. Every mismatch names its file and line.
- Words are the whitespace-separated words of the text (`str.split()`'s, with their character
  spans); a slot span tags every word it overlaps, so predicted slots are whole words, always
  slices of the text sent. The serving graph (`albert_keras.export.intent_slots`) splits the same way.
- Features: one window `[CLS] pieces [SEP]` per utterance (utterances are short); each word's
  slot tag sits on its first piece, other pieces are out of the loss. Words past the window are
  left out of training and predicted `O`.
- Metrics (Goo et al.): intent accuracy, slot precision / recall / F1 (`entity_scores`, seqeval's
  default chunking) and frame (sentence) accuracy: the intent and the set of slots both right.
"""

import dataclasses
import json
import os
import re

import numpy as np

from albert_keras.errors import AlbertInputError
from albert_keras.tasks.base import FinetuneTask
from albert_keras.tasks.base import inference_function
from albert_keras.tasks.base import TaskData
from albert_keras.tasks.entity_metrics import entities
from albert_keras.tasks.entity_metrics import entity_scores

DEFAULT_SCHEME = "IOB2"
DEFAULT_MAX_SEQ_LENGTH = 128
GOO_FILES = ("seq.in", "seq.out", "label")
# Python's `str.split()` splits at `str.isspace` characters; `\s` in a str pattern is the same set.
_WORD = re.compile(r"\S+")


@dataclasses.dataclass
class Utterance:
    """One utterance: its text, words with character spans, and (when labelled) intent and tags.

    `tags` holds one IOB2 tag per word; `where` is `file:line` for messages.
    """

    text: str
    intent: str = None
    tags: list = None
    where: str = ""
    words: list = dataclasses.field(default_factory=list)
    spans: list = dataclasses.field(default_factory=list)

    def __post_init__(self):
        if not self.words:
            self.spans = word_spans(self.text)
            self.words = [self.text[a:b] for a, b in self.spans]


def word_spans(text):
    """`(start, end)` character spans of the whitespace-separated words of `text` (`text.split()`).

    Example:
    ```python
    word_spans("play  jazz")  # [(0, 4), (6, 10)]
    ```
    """
    return [match.span() for match in _WORD.finditer(text)]


def spans_to_tags(text, slots, spans, where, scheme=DEFAULT_SCHEME):
    """IOB2 tags of the words (`spans`) from character-offset slots.

    Args:
        text: the utterance.
        slots: a list of `{"start", "end", "type"}` (an optional `"text"` must equal the slice).
        spans: the words' character spans (`word_spans(text)`).
        where: `file:line` for errors.
        scheme: only IOB2 (BIO) is written.

    Raises:
        AlbertInputError: a malformed slot, one outside the text or covering no word, a `text`
            that is not the slice, or two slots on one word.

    Example:
    ```python
    spans_to_tags("play jazz now", [{"start": 5, "end": 9, "type": "genre"}], word_spans("play jazz now"), "x:1")
    # ["O", "B-genre", "O"]
    ```
    """
    if str(scheme).upper() not in ("IOB2", "BIO"):
        raise AlbertInputError(f"{where}: character-span slots are written as IOB2 tags; scheme {scheme!r} is not")
    if not isinstance(slots, list):
        raise AlbertInputError(f"{where}: 'slots' must be a list of {{start, end, type}} objects")
    tags = ["O"] * len(spans)
    for number, slot in enumerate(slots):
        here = f"{where}: slot {number}"
        if not isinstance(slot, dict):
            raise AlbertInputError(f"{here}: expected an object with start, end, type")
        start, end, type_ = slot.get("start"), slot.get("end"), slot.get("type")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
            raise AlbertInputError(f"{here}: 'start' and 'end' must be integers (character offsets)")
        if not isinstance(type_, str) or not type_ or type_ != type_.strip():
            raise AlbertInputError(f"{here}: 'type' must be a non-empty string without surrounding spaces")
        if not 0 <= start < end <= len(text):
            raise AlbertInputError(f"{here}: span {start}:{end} is not inside the text ({len(text)} characters)")
        if "text" in slot and slot["text"] != text[start:end]:
            raise AlbertInputError(f"{here}: 'text' {slot['text']!r} is not the text at {start}:{end} "
                                   f"({text[start:end]!r})")
        covered = [w for w, (a, b) in enumerate(spans) if a < end and b > start]
        if not covered:
            raise AlbertInputError(f"{here}: span {start}:{end} covers no word")
        for k, w in enumerate(covered):
            if tags[w] != "O":
                raise AlbertInputError(f"{here}: word {spans[w][0]}:{spans[w][1]} is already in another slot")
            tags[w] = ("B-" if k == 0 else "I-") + type_
    return tags


def tags_to_slots(utterance, tags, scheme=DEFAULT_SCHEME):
    """The slots of `tags` (one per word of `utterance`) as `{"text", "start", "end", "type"}`
    character spans of the utterance's text (seqeval's chunking).

    Example:
    ```python
    tags_to_slots(Utterance("play jazz"), ["O", "B-genre"])
    # [{"text": "jazz", "start": 5, "end": 9, "type": "genre"}]
    ```
    """
    slots = []
    for type_, a, b in entities(tags, scheme, where=utterance.where or "prediction"):
        start, end = utterance.spans[a][0], utterance.spans[b - 1][1]
        slots.append({"text": utterance.text[start:end], "start": start, "end": end, "type": type_})
    return slots


def _lines(path):
    """The lines of a UTF-8 file without their line ends (a final newline ends the last line).

    Lines end at "\n" only (and a "\r" before it): `str.splitlines` would also split at U+2028,
    form feeds and the like inside an utterance, and so misalign `seq.in` with `seq.out`.
    """
    try:
        with open(path, encoding="utf-8", newline="") as f:
            lines = f.read().split("\n")
        if lines[-1] == "":
            lines.pop()
        return [line[:-1] if line.endswith("\r") else line for line in lines]
    except FileNotFoundError:
        raise AlbertInputError(f"{path}: file not found") from None
    except UnicodeDecodeError as error:
        raise AlbertInputError(f"{path}: not UTF-8 text (byte {error.start})") from None


def read_goo(directory, labelled=True):
    """Read a Goo et al. folder: `seq.in`, and when `labelled` also `seq.out` and `label`.

    Returns:
        A list of `Utterance` (`where` names the `seq.in` line).

    Raises:
        AlbertInputError: a missing file, files of different lengths, a blank utterance, or a
            line whose tag count differs from its word count (file and line named).

    Example:
    ```python
    utterances = read_goo("data/snips/train")
    utterances[0].intent, utterances[0].tags
    ```
    """
    directory = os.fspath(directory)
    names = GOO_FILES if labelled else GOO_FILES[:1]
    files = {name: os.path.join(directory, name) for name in names}
    for name, path in files.items():
        if not os.path.isfile(path):
            raise AlbertInputError(f"{directory}: no {name} (a Goo et al. folder holds {', '.join(names)})")
    lines = {name: _lines(path) for name, path in files.items()}
    count = len(lines["seq.in"])
    for name in names[1:]:
        if len(lines[name]) != count:
            shorter = min(len(lines[name]), count) + 1
            short_file = files[name] if len(lines[name]) < count else files["seq.in"]
            raise AlbertInputError(f"{short_file}:{shorter}: missing line ({files['seq.in']} has {count} lines, "
                                   f"{files[name]} has {len(lines[name])})")
    utterances = []
    for i, text in enumerate(lines["seq.in"]):
        where = f"{files['seq.in']}:{i + 1}"
        utterance = Utterance(text, where=where)
        if not utterance.words:
            raise AlbertInputError(f"{where}: blank utterance")
        if labelled:
            tags = lines["seq.out"][i].split()
            if len(tags) != len(utterance.words):
                raise AlbertInputError(f"{files['seq.out']}:{i + 1}: {len(tags)} slot tags for the "
                                       f"{len(utterance.words)} words of {where}")
            intent = lines["label"][i].strip()
            if not intent:
                raise AlbertInputError(f"{files['label']}:{i + 1}: blank intent")
            utterance.tags, utterance.intent = tags, intent
        utterances.append(utterance)
    return utterances


def read_utterances_jsonl(path, labelled=True, scheme=DEFAULT_SCHEME):
    """Read `{"text", "intent", "slots"}` lines (`slots`: character spans; only `text` when not labelled).

    Example:
    ```python
    read_utterances_jsonl("train.jsonl")[0].tags  # ["O", "B-genre"]
    ```
    """
    path = os.fspath(path)
    utterances = []
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise AlbertInputError(f"{where}: malformed JSON ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise AlbertInputError(f"{where}: expected an object with a 'text' string")
        utterance = Utterance(record["text"], where=where)
        if not utterance.words:
            raise AlbertInputError(f"{where}: blank utterance")
        if labelled:
            intent = record.get("intent")
            if not isinstance(intent, str) or not intent.strip():
                raise AlbertInputError(f"{where}: 'intent' must be a non-empty string")
            if "slots" not in record:
                raise AlbertInputError(f"{where}: no 'slots' (give [] for an utterance without slots)")
            utterance.intent = intent.strip()
            utterance.tags = spans_to_tags(utterance.text, record["slots"], utterance.spans, where, scheme)
        utterances.append(utterance)
    return utterances


def read_utterances(path, format=None, labelled=True, scheme=DEFAULT_SCHEME, intents=None, slot_labels=None):
    """Read a Goo folder (a directory), JSONL, or (unlabelled only) a `.txt` file of one utterance a line.

    Tags are checked against `scheme`; with `intents` / `slot_labels` (the training file's) an
    unknown intent or tag is an error naming its line.

    Returns:
        `(utterances, intents, slot_labels)`: intents sorted, tags with "O" first then sorted (the
        given ones when given).

    Example:
    ```python
    train, intents, slot_labels = read_utterances("snips/train")
    dev, _, _ = read_utterances("snips/valid", intents=intents, slot_labels=slot_labels)
    ```
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        utterances = read_goo(path, labelled=labelled)
    else:
        kind = format or ("txt" if path.endswith(".txt") else "jsonl")
        if kind == "txt" and not labelled:
            from albert_keras.text_files import read_lines

            # The project's one rule for text files: one utterance a line, a blank line is an error.
            utterances = [Utterance(text, where=f"{path}:{i}") for i, text in enumerate(read_lines(path), 1)]
        elif kind == "jsonl":
            utterances = read_utterances_jsonl(path, labelled=labelled, scheme=scheme)
        else:
            raise AlbertInputError(f"{path}: intent-slots reads a Goo et al. folder (seq.in, seq.out, label) or JSONL"
                                   + ("" if labelled else ", or a .txt file of one utterance a line"))
    if not utterances:
        raise AlbertInputError(f"{path}: no utterances")
    if not labelled:
        return utterances, intents, slot_labels
    known_intents = set(intents) if intents is not None else None
    known_tags = set(slot_labels) if slot_labels is not None else None
    for utterance in utterances:
        entities(utterance.tags, scheme, where=utterance.where)  # raises on a tag the scheme lacks
        if known_intents is not None and utterance.intent not in known_intents:
            raise AlbertInputError(f"{utterance.where}: unknown intent {utterance.intent!r} (not in the training "
                                   "file's intents)")
        if known_tags is not None:
            for tag in utterance.tags:
                if tag not in known_tags:
                    raise AlbertInputError(f"{utterance.where}: unknown slot tag {tag!r} (not in the training "
                                           "file's tags)")
    if intents is None:
        intents = sorted({u.intent for u in utterances})
    if slot_labels is None:
        slot_labels = ["O"] + sorted({t for u in utterances for t in u.tags} - {"O"})
    return utterances, list(intents), list(slot_labels)


# ---------------------------------------------------------------------------------------------
# Features and metrics
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class IntentSlotFeatures:
    """Model inputs and targets of a list of utterances, one window each.

    `positions[i][w]` is the first-piece position of word `w` of utterance `i` (-1: past the window).
    """

    inputs: dict
    intents: np.ndarray
    tags: np.ndarray
    weights: np.ndarray
    positions: list


def make_features(vocabulary, utterances, intents=None, slot_labels=None, max_seq_length=DEFAULT_MAX_SEQ_LENGTH):
    """One `[CLS] pieces [SEP]` window per utterance, each word's tag on its first piece.

    A word whose first piece does not fit is left out (its target weight is 0); a word cut by
    the window's end keeps the pieces that fit.

    Example:
    ```python
    features = make_features(load_vocabulary("pretrained_dir"), utterances, ["play", "weather"],
                             ["O", "B-city"], max_seq_length=32)
    ```
    """
    from albert_keras.tasks.tagging import word_pieces
    from albert_keras.tokenization.vocabulary import load_vocabulary

    vocabulary = load_vocabulary(vocabulary)
    budget = max_seq_length - 2
    if budget < 1:
        raise AlbertInputError(f"max_seq_length: must be at least 3, got {max_seq_length}")
    intent_index = {name: i for i, name in enumerate(intents or [])}
    tag_index = {tag: i for i, tag in enumerate(slot_labels or [])}
    n = len(utterances)
    token_ids = np.zeros((n, max_seq_length), np.int32)
    mask = np.zeros((n, max_seq_length), np.int32)
    intent_ids = np.zeros(n, np.int32)
    targets = np.zeros((n, max_seq_length), np.int32)
    weights = np.zeros((n, max_seq_length), np.float32)
    positions = []
    for i, utterance in enumerate(utterances):
        labelled = utterance.tags is not None and slot_labels is not None
        sequence, where = [vocabulary.cls_id], []
        for w, pieces in enumerate(word_pieces(vocabulary, utterance.words)):
            room = budget - (len(sequence) - 1)
            if room <= 0:
                where.append(-1)
                continue
            where.append(len(sequence))
            if labelled:
                targets[i, len(sequence)] = tag_index[utterance.tags[w]]
                weights[i, len(sequence)] = 1.0
            sequence.extend(pieces[:room])
        sequence.append(vocabulary.sep_id)
        token_ids[i, : len(sequence)] = sequence
        mask[i, : len(sequence)] = 1
        if utterance.intent is not None and intents is not None:
            intent_ids[i] = intent_index[utterance.intent]
        positions.append(where)
    inputs = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": mask}
    return IntentSlotFeatures(inputs, intent_ids, targets, weights, positions)


def intent_slot_scores(gold, predicted, scheme=DEFAULT_SCHEME):
    """Intent accuracy, slot precision / recall / F1 and frame accuracy.

    Args:
        gold: a list of `(intent, tags)`, one per utterance.
        predicted: the same for the predictions (tags of the same lengths).
        scheme: the tagging scheme (see `entity_scores`).

    Returns:
        `{"intent_accuracy", "slot_precision", "slot_recall", "slot_f1", "frame_accuracy"}`;
        a frame is right when the intent and the set of slots (type, first and last word) both are.

    Example:
    ```python
    intent_slot_scores([("play", ["O", "B-genre"])], [("play", ["O", "B-genre"])])["frame_accuracy"]  # 1.0
    ```
    """
    if len(gold) != len(predicted) or not gold:
        raise AlbertInputError(f"intent-slot scores: {len(gold)} gold utterances but {len(predicted)} predicted")
    slots = entity_scores([tags for _, tags in gold], [tags for _, tags in predicted], scheme=scheme)["overall"]
    intents_right = frames_right = 0
    for (gold_intent, gold_tags), (intent, tags) in zip(gold, predicted):
        right = gold_intent == intent
        intents_right += right
        frames_right += right and set(entities(gold_tags, scheme)) == set(entities(tags, scheme))
    return {
        "intent_accuracy": intents_right / len(gold),
        "slot_precision": float(slots["precision"]),
        "slot_recall": float(slots["recall"]),
        "slot_f1": float(slots["f1"]),
        "frame_accuracy": frames_right / len(gold),
    }


def _row_softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# The fine-tuning task
# ---------------------------------------------------------------------------------------------


class IntentSlotTask(FinetuneTask):
    """Joint intent classification and slot filling (`--task intent-slots`).

    Data: a Goo et al. folder (`seq.in`, `seq.out`, `label`) or JSONL with character-span slots
    (module docstring). Metrics: `intent_accuracy`, `slot_precision`, `slot_recall`, `slot_f1`,
    `frame_accuracy` (the primary one). `predict` writes `{"text", "intent", "probability",
    "slots": [{"text", "start", "end", "type"}]}` per utterance. Options: `format`,
    `max_seq_length`, `scheme` (IOB2, the default, or IOB1/BIOES for Goo folders).

    Example:
    ```python
    task = IntentSlotTask()
    data = task.read("snips/train", {})
    model = task.build_model("pretrained_dir", data.metadata, {})
    ```
    """

    name = "intent-slots"
    primary_metric = "frame_accuracy"

    def read(self, path, options, metadata=None):
        scheme = (metadata or {}).get("scheme") or options.get("scheme") or DEFAULT_SCHEME
        utterances, intents, slot_labels = read_utterances(
            path, format=options.get("format"), labelled=options.get("labelled", True), scheme=scheme,
            intents=(metadata or {}).get("labels"), slot_labels=(metadata or {}).get("slot_labels"),
        )
        # "labels" are the intents: what `finetune`'s one-class warning names.
        metadata = dict(metadata or {"labels": intents, "slot_labels": slot_labels, "scheme": scheme,
                                     "metrics": [self.primary_metric]})
        return TaskData(path=os.fspath(path), examples=utterances, metadata=metadata)

    def build_model(self, init_dir, metadata, options, dtype=None):
        from albert_keras.modeling.intent_slots import AlbertIntentSlotTagger
        from albert_keras.tokenization.vocabulary import vocabulary_path

        if vocabulary_path(init_dir) is None:
            raise AlbertInputError(f"{init_dir}: no vocabulary; intent-slots needs one (spiece.model or vocab.txt)")
        return AlbertIntentSlotTagger.from_pretrained(
            init_dir, dtype=dtype, intents=list(metadata["labels"]), slot_labels=list(metadata["slot_labels"]))

    def compile_kwargs(self, metadata):
        import keras

        from albert_keras.modeling.intent_slots import INTENT_OUTPUT
        from albert_keras.modeling.intent_slots import SLOT_OUTPUT

        return {
            # The slot loss is the mean over words (not over every padded position), so both heads
            # weigh alike whatever the window length.
            "loss": {INTENT_OUTPUT: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                     SLOT_OUTPUT: keras.losses.SparseCategoricalCrossentropy(
                         from_logits=True, reduction="mean_with_sample_weight")},
            "weighted_metrics": {INTENT_OUTPUT: [keras.metrics.SparseCategoricalAccuracy(name="intent_accuracy")],
                                 SLOT_OUTPUT: [keras.metrics.SparseCategoricalAccuracy(name="slot_accuracy")]},
        }

    def _features(self, model, data, options):
        from albert_keras.tasks.base import model_vocabulary

        vocabulary = model_vocabulary(model, options, self.name)
        limit = model.encoder.config.max_position_embeddings
        length = min(int(options.get("max_seq_length") or DEFAULT_MAX_SEQ_LENGTH), limit)
        cache = data.cache.setdefault("intent_slot_features", {})
        key = (vocabulary.sha256(), length)
        if key not in cache:
            labelled = data.examples[0].tags is not None
            cache[key] = make_features(
                vocabulary, data.examples, intents=data.metadata["labels"] if labelled else None,
                slot_labels=data.metadata["slot_labels"] if labelled else None, max_seq_length=length,
            )
        return cache[key]

    def dataset(self, model, data, batch_size, shuffle=False, seed=0, repeat=False, options=None):
        import tensorflow as tf

        from albert_keras.modeling.intent_slots import INTENT_OUTPUT
        from albert_keras.modeling.intent_slots import SLOT_OUTPUT

        f = self._features(model, data, options or {})
        y = {INTENT_OUTPUT: f.intents, SLOT_OUTPUT: f.tags}
        w = {INTENT_OUTPUT: np.ones(len(f.intents), np.float32), SLOT_OUTPUT: f.weights}
        dataset = tf.data.Dataset.from_tensor_slices((f.inputs, y, w))
        if shuffle:
            dataset = dataset.shuffle(len(f.intents), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        return dataset.batch(batch_size, drop_remainder=repeat)

    def outputs(self, model, data, options):
        """`(intent probabilities [N, I], tags per utterance)` of the model on `data`'s utterances."""
        from albert_keras.modeling.intent_slots import INTENT_OUTPUT
        from albert_keras.modeling.intent_slots import SLOT_OUTPUT

        features = self._features(model, data, options)
        batch = int(options.get("batch_size") or 32)
        forward = inference_function(model)  # one trace across the evaluations of a run
        intent_logits, tags = [], []
        slot_labels = list(getattr(model, "slot_labels", None) or data.metadata["slot_labels"])
        for start in range(0, len(data.examples), batch):
            out = forward({k: v[start:start + batch] for k, v in features.inputs.items()})
            intent_logits.append(out[INTENT_OUTPUT].numpy())
            slot_ids = np.argmax(out[SLOT_OUTPUT].numpy(), axis=-1)
            for row, where in zip(slot_ids, features.positions[start:start + batch]):
                tags.append([slot_labels[int(row[p])] if p >= 0 else "O" for p in where])
        return _row_softmax(np.concatenate(intent_logits).astype(np.float64)), tags

    def evaluation(self, model, data, options):
        if data.examples[0].tags is None:
            raise AlbertInputError(f"{data.path}: no intents and slots to evaluate against")
        probabilities, tags = self.outputs(model, data, options)
        intents = list(getattr(model, "intents", None) or data.metadata["labels"])
        ids = np.argmax(probabilities, axis=-1)
        gold = [(u.intent, u.tags) for u in data.examples]
        predicted = [(intents[int(i)], t) for i, t in zip(ids, tags)]
        return intent_slot_scores(gold, predicted, scheme=data.metadata.get("scheme", DEFAULT_SCHEME)), ids

    def evaluate(self, model, data, options):
        return self.evaluation(model, data, options)[0]

    def predict(self, model, data, options):
        probabilities, tags = self.outputs(model, data, options)
        intents = list(getattr(model, "intents", None) or data.metadata["labels"])
        scheme = data.metadata.get("scheme", DEFAULT_SCHEME)
        for utterance, row, word_tags in zip(data.examples, probabilities, tags):
            best = int(np.argmax(row))
            yield {"text": utterance.text, "intent": intents[best], "probability": round(float(row[best]), 6),
                   "slots": tags_to_slots(utterance, word_tags, scheme)}
