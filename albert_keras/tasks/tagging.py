"""Named entities and other word tagging: CoNLL / JSONL reading, piece features, the task.

- `read_conll`: CoNLL-2003 style files (a word and its columns per line, the tag in
  `tag_column`, a blank line between sentences, `-DOCSTART-` lines skipped); `read_jsonl`: one
  `{"words": [...], "tags": [...]}` object per line. Errors name the file and line.
- `make_features`: each word's pieces (`encode_for_albert` of the word); the word's tag goes on
  its first piece and every other piece (and `[CLS]`/`[SEP]`/padding) has sample weight 0, so it
  is out of the loss and the metrics, as is usual for sub-word tagging. A sentence longer than
  the window is split between words into several windows, never cut.
- `TokenClassificationTask` (`--task token-classification`): predictions are one tag per word;
  scores are `entity_scores` (seqeval's default semantics, `albert_keras.tasks.entity_metrics`).
"""

import dataclasses
import os

import numpy as np

from albert_keras.errors import AlbertInputError
from albert_keras.tasks.base import FinetuneTask
from albert_keras.tasks.base import inference_function
from albert_keras.tasks.base import TaskData
from albert_keras.tasks.entity_metrics import TaggedSentence  # noqa: F401  (re-exported)
from albert_keras.tasks.entity_metrics import entities
from albert_keras.text_files import read_json_lines
from albert_keras.tasks.entity_metrics import entity_scores  # noqa: F401  (re-exported)

DOCSTART = "-DOCSTART-"
DEFAULT_SCHEME = "IOB2"
DEFAULT_MAX_SEQ_LENGTH = 128


def _open(path):
    try:
        return open(path, encoding="utf-8")
    except FileNotFoundError:
        raise AlbertInputError(f"{path}: file not found") from None


def read_conll(path, tag_column=-1, labelled=True):
    """Read a CoNLL-2003 style file.

    Args:
        path: the file: `word col ... col` per line (whitespace-separated), blank lines between
            sentences, `-DOCSTART-` lines ignored.
        tag_column: index of the tag column (default: the last; CoNLL-2003's NER tag).
        labelled: read tags (False: only the first column is used).

    Returns:
        A list of `TaggedSentence`.

    Raises:
        AlbertInputError: a line with a different column count than the file's first line, or
            a missing tag column (file:line).

    Example:
    ```python
    sentences = read_conll("eng.train")
    sentences[0].words, sentences[0].tags  # ["EU", "rejects", ...], ["B-ORG", "O", ...]
    ```
    """
    path = os.fspath(path)
    sentences, words, tags, start, columns = [], [], [], 0, None

    def flush():
        if words:
            sentences.append(TaggedSentence(list(words), list(tags) if labelled else None, f"{path}:{start}"))
        words.clear()
        tags.clear()

    with _open(path) as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                flush()
                continue
            if fields[0] == DOCSTART:
                flush()
                continue
            if columns is None:
                columns = len(fields)
                if labelled and not -columns <= tag_column < columns:
                    raise AlbertInputError(f"{path}:{number}: no tag column {tag_column} in {columns} columns")
                if labelled and columns < 2:
                    raise AlbertInputError(f"{path}:{number}: expected a word and a tag, got 1 column")
            elif len(fields) != columns:
                raise AlbertInputError(f"{path}:{number}: expected {columns} columns, got {len(fields)}")
            if not words:
                start = number
            words.append(fields[0])
            if labelled:
                tags.append(fields[tag_column])
    flush()
    return sentences


def read_jsonl(path, words_key="words", tags_key="tags", labelled=True):
    """Read `{"words": [...], "tags": [...]}` lines (keys choosable).

    Example:
    ```python
    read_jsonl("train.jsonl")[0].tags
    ```
    """
    path = os.fspath(path)
    sentences = []
    for number, record in read_json_lines(path):
        where = f"{path}:{number}"
        words = record.get(words_key)
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words) or not words:
            raise AlbertInputError(f"{where}: {words_key!r} must be a non-empty list of strings")
        tags = None
        if labelled:
            tags = record.get(tags_key)
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise AlbertInputError(f"{where}: {tags_key!r} must be a list of tag strings")
            if len(tags) != len(words):
                raise AlbertInputError(f"{where}: {len(words)} words but {len(tags)} tags")
        sentences.append(TaggedSentence(words, tags, where))
    return sentences


def read_tagged(path, tag_column=-1, format=None, labelled=True, scheme=DEFAULT_SCHEME, labels=None):
    """`read_conll` or `read_jsonl` (by `format` or the extension), tags checked against `scheme`
    and, when given, against the training file's `labels`.

    Returns:
        `(sentences, labels)`: labels sorted with "O" first (the given ones when given).

    Example:
    ```python
    train, labels = read_tagged("train.conll")
    dev, _ = read_tagged("dev.conll", labels=labels)
    ```
    """
    path = os.fspath(path)
    kind = format or ("jsonl" if path.endswith((".jsonl", ".json")) else "conll")
    if kind not in ("conll", "jsonl"):
        raise AlbertInputError(f"--format: expected conll or jsonl for tagging, got {kind!r}")
    if kind == "jsonl":
        sentences = read_jsonl(path, labelled=labelled)
    else:
        sentences = read_conll(path, tag_column=tag_column, labelled=labelled)
    if not sentences:
        raise AlbertInputError(f"{path}: no sentences")
    if not labelled:
        return sentences, labels
    known = set(labels) if labels is not None else None
    for sentence in sentences:
        entities(sentence.tags, scheme, where=sentence.where)  # raises on a tag the scheme lacks
        if known is not None:
            for tag in sentence.tags:
                if tag not in known:
                    raise AlbertInputError(f"{sentence.where}: unknown tag {tag!r} (not in the training file's tags)")
    if labels is None:
        found = {tag for s in sentences for tag in s.tags}
        labels = ["O"] + sorted(found - {"O"})
    return sentences, list(labels)


# ---------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TaggingFeature:
    """One window of a sentence: inputs, targets, and where its words' first pieces are."""

    sentence_index: int
    first_word: int
    token_ids: np.ndarray
    segment_ids: np.ndarray
    padding_mask: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    word_positions: list


def word_pieces(vocabulary, words):
    """Each word's ids; a word with no pieces (only control characters, say) gets the unknown id."""
    return [vocabulary.encode(word) or [vocabulary.unk_id] for word in words]


def make_features(vocabulary, sentences, labels=None, max_seq_length=DEFAULT_MAX_SEQ_LENGTH, lowercase=None):
    """Windows of `[CLS] pieces [SEP]`, split between words when a sentence is too long.

    A word longer than a whole window keeps its first `max_seq_length - 2` pieces (its tag is on
    the first one, so nothing is lost).

    Returns:
        A list of `TaggingFeature` (one or more per sentence, in order).

    Example:
    ```python
    features = make_features(load_vocabulary("pretrained_dir"), sentences, labels=["O", "B-PER", "I-PER"],
                             max_seq_length=64)
    ```
    """
    from albert_keras.tokenization.vocabulary import load_vocabulary

    vocabulary = load_vocabulary(vocabulary, lowercase=lowercase)

    budget = max_seq_length - 2
    if budget < 1:
        raise AlbertInputError(f"max_seq_length: must be at least 3, got {max_seq_length}")
    index = {label: i for i, label in enumerate(labels or [])}
    features = []
    for s, sentence in enumerate(sentences):
        pieces = word_pieces(vocabulary, sentence.words)
        chunks, current, used = [], [], 0
        for w, word in enumerate(pieces):
            word = word[:budget]
            if current and used + len(word) > budget:
                chunks.append(current)
                current, used = [], 0
            current.append((w, word))
            used += len(word)
        chunks.append(current)
        for chunk in chunks:
            token_ids = np.zeros(max_seq_length, np.int32)
            targets = np.zeros(max_seq_length, np.int32)
            weights = np.zeros(max_seq_length, np.float32)
            sequence, positions = [vocabulary.cls_id], []
            for w, word in chunk:
                positions.append(len(sequence))
                if sentence.tags is not None and labels is not None:
                    targets[len(sequence)] = index[sentence.tags[w]]
                    weights[len(sequence)] = 1.0
                sequence.extend(word)
            sequence.append(vocabulary.sep_id)
            token_ids[: len(sequence)] = sequence
            mask = np.zeros(max_seq_length, np.int32)
            mask[: len(sequence)] = 1
            features.append(TaggingFeature(s, chunk[0][0], token_ids, np.zeros(max_seq_length, np.int32), mask,
                                           targets, weights, positions))
    return features


def feature_arrays(features):
    """`(x, y, sample_weight)` numpy arrays for Keras.

    Example:
    ```python
    x, y, w = feature_arrays(features)
    model.fit(x, y, sample_weight=w)
    ```
    """
    x = {name: np.stack([getattr(f, name) for f in features]) for name in ("token_ids", "segment_ids", "padding_mask")}
    return x, np.stack([f.labels for f in features]), np.stack([f.weights for f in features])


def word_tags(features, logits, labels, num_sentences):
    """One predicted tag per word (the argmax at its first piece), windows joined back.

    Example:
    ```python
    tags = word_tags(features, model.predict(x), labels, len(sentences))
    ```
    """
    tags = [[] for _ in range(num_sentences)]
    for feature, row in zip(features, logits):
        ids = np.argmax(row[feature.word_positions], axis=-1)
        tags[feature.sentence_index].extend(labels[int(i)] for i in ids)
    return tags


# ---------------------------------------------------------------------------------------------
# The fine-tuning task
# ---------------------------------------------------------------------------------------------


class TokenClassificationTask(FinetuneTask):
    """Word tagging / named entities on CoNLL or JSONL files (`--task token-classification`).

    Metrics: entity precision, recall and F1 (seqeval's default mode, micro over types) with
    per-type F1 as `f1_TYPE`, and word accuracy. Options: `tag_column`, `scheme` (IOB2, IOB1,
    BIOES), `format` (conll or jsonl), `max_seq_length`.

    Example:
    ```python
    task = TokenClassificationTask()
    data = task.read("eng.train", {"tag_column": 3})
    model = task.build_model("pretrained_dir", data.metadata, {"max_seq_length": 128})
    ```
    """

    name = "token-classification"
    primary_metric = "f1"

    @classmethod
    def add_arguments(cls, parser):
        group = parser.add_argument_group("token classification")
        group.add_argument("--tag-column", type=int, default=None,
                           help="CoNLL files: the tag column index (default -1, the last)")
        group.add_argument("--scheme", default=None, choices=["IOB2", "BIO", "IOB1", "BIOES", "IOBES", "BIOS"],
                           help=f"tagging scheme (default {DEFAULT_SCHEME})")

    def read(self, path, options, metadata=None):
        scheme = (metadata or {}).get("scheme") or options.get("scheme") or DEFAULT_SCHEME
        from albert_keras.tasks.clue import benchmark

        clue = benchmark(options, metadata)
        if clue is not None:  # CLUENER2020: character tags from its JSON lines, its official scorer
            from albert_keras.tasks import cluener

            clue.check_kind(self.name)
            labelled = options.get("labelled", True)
            if os.path.isdir(path):
                path = os.path.join(path, "train.json" if metadata is None else "dev.json" if labelled else "test.json")
            scheme = "BIOS" if scheme.upper() in ("BIOS", "BIOES", "IOBES") else "IOB2"
            sentences, skipped = cluener.read_cluener(path, labelled=labelled, scheme=scheme)
            metadata = dict(metadata or {"labels": cluener.labels_for(scheme), "scheme": scheme,
                                         "metrics": list(clue.metrics), "glue_task": clue.name})
            return TaskData(path=os.fspath(path), examples=sentences, metadata=metadata, skipped=skipped)
        tag_column = options.get("tag_column")
        sentences, labels = read_tagged(
            path, tag_column=-1 if tag_column is None else int(tag_column), format=options.get("format"),
            labelled=options.get("labelled", True), scheme=scheme,
            labels=(metadata or {}).get("labels"),
        )
        metadata = dict(metadata or {"labels": labels, "scheme": scheme, "metrics": ["f1"]})
        return TaskData(path=os.fspath(path), examples=sentences, metadata=metadata)

    def build_model(self, init_dir, metadata, options, dtype=None):
        from albert_keras.modeling.task_models import AlbertTokenClassifier
        from albert_keras.tokenization.vocabulary import vocabulary_path

        if vocabulary_path(init_dir) is None:
            raise AlbertInputError(f"{init_dir}: no vocabulary; tagging needs one (spiece.model or vocab.txt)")
        return AlbertTokenClassifier.from_pretrained(init_dir, dtype=dtype, labels=list(metadata["labels"]))

    def compile_kwargs(self, metadata):
        import keras

        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "weighted_metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}

    def _features(self, model, data, options):
        from albert_keras.tasks.base import model_vocabulary

        vocabulary = model_vocabulary(model, options, "token-classification")
        spm = vocabulary.sha256()
        limit = model.encoder.config.max_position_embeddings
        length = min(int(options.get("max_seq_length") or DEFAULT_MAX_SEQ_LENGTH), limit)
        cache = data.cache.setdefault("tagging_features", {})
        if (spm, length) not in cache:
            labelled = bool(data.examples and data.examples[0].tags is not None)
            cache[(spm, length)] = make_features(
                vocabulary, data.examples, labels=data.metadata["labels"] if labelled else None,
                max_seq_length=length,
            )
        return cache[(spm, length)]

    def dataset(self, model, data, batch_size, shuffle=False, seed=0, repeat=False, options=None):
        import tensorflow as tf

        x, y, w = feature_arrays(self._features(model, data, options or {}))
        dataset = tf.data.Dataset.from_tensor_slices((x, y, w))
        if shuffle:
            dataset = dataset.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        return dataset.batch(batch_size, drop_remainder=repeat)

    def tags(self, model, data, options):
        """Predicted tags, one list per sentence, one tag per word."""
        features = self._features(model, data, options)
        x, _, _ = feature_arrays(features)
        batch = int(options.get("batch_size") or 32)

        forward = inference_function(model)  # one trace across the evaluations of a run

        logits = np.concatenate([forward({k: v[i:i + batch] for k, v in x.items()}).numpy()
                                 for i in range(0, len(features), batch)])
        labels = list(getattr(model, "labels", None) or data.metadata["labels"])
        return word_tags(features, logits, labels, len(data.examples))

    def evaluate(self, model, data, options):
        if not data.examples or data.examples[0].tags is None:
            raise AlbertInputError(f"{data.path}: no tags to evaluate against")
        predicted = self.tags(model, data, options)
        if data.metadata.get("glue_task"):
            from albert_keras.tasks import cluener

            scheme = data.metadata.get("scheme")
            found = [cluener.predicted_labels(s.text, tags, scheme) for s, tags in zip(data.examples, predicted)]
            return cluener.score([s.label for s in data.examples], found)
        gold = [s.tags for s in data.examples]
        scores = entity_scores(gold, predicted, scheme=data.metadata.get("scheme", DEFAULT_SCHEME))
        words = sum(len(g) for g in gold)
        result = {name: float(scores["overall"][name]) for name in ("precision", "recall", "f1")}
        result["accuracy"] = sum(a == b for g, p in zip(gold, predicted) for a, b in zip(g, p)) / words
        for type_, values in scores["per_type"].items():
            result[f"f1_{type_}"] = float(values["f1"])
        return result

    def predict(self, model, data, options):
        if data.metadata.get("glue_task"):  # CLUENER2020's submission lines
            from albert_keras.tasks.cluener import predicted_labels

            for sentence, tags in zip(data.examples, self.tags(model, data, options)):
                yield {"id": sentence.id, "label": predicted_labels(sentence.text, tags, data.metadata.get("scheme"))}
            return
        for sentence, tags in zip(data.examples, self.tags(model, data, options)):
            yield {"where": sentence.where, "words": sentence.words, "tags": tags}
