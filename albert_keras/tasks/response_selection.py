"""Response selection (`--task response-selection`): rank candidate responses to a dialogue context.

Two architectures over the same files and metrics (`--architecture`):

- `cross` (default): a cross-encoder. Each (context, candidate) pair is packed as
  `[CLS] context [SEP] candidate [SEP]` and scored by the pair classifier head (`AlbertClassifier`,
  two classes: not the response / the response, trained pointwise with cross-entropy as the BERT
  response-selection baselines on Ubuntu are); a candidate's score is its log-odds of being the response.
- `bi`: a bi-encoder. Context and response go through the one shared encoder
  (`AlbertSentenceEncoder`, mean pooling) and are trained with in-batch negatives (each context
  must pick its own response out of the batch's); a candidate's score is the cosine of the two
  embeddings, so the trained directory's response index works with `albert-keras index` / `search`.

Files (`read_dialogues`):

- Ubuntu-style CSV (Lowe et al., 2015): training rows `Context,Utterance,Label` (label 1 or 0, also
  `1.0`/`0.0`), or the test files' layout `Context,Ground Truth Utterance,Distractor_0,...` (the true
  response first). A header row is recognised by its first cell `Context`; without one, three
  columns whose last is a 0/1 label are training rows, two columns are unlabelled pairs, anything
  else is the test layout. Consecutive rows with the same context are one context with several
  candidates.
- JSONL: `{"context": [turn, ...], "candidates": [str, ...], "label": index of the true one}`
  (`context` may also be one string with Ubuntu markers).

Contexts: a turn ends at `__eot__` (`__eou__` ends an utterance inside a turn; a context without
`__eot__` is split at `__eou__`); the markers are removed and the turns joined with the turn
separator (`--turn-separator`, default the corpus' own `__eot__` as text; `[SEP]` means the
vocabulary's separator token). When a pair does not fit `--max-seq-length`, the candidate is cut to
make room for the latest turn (down to a quarter of the window), the latest turn is kept whole
(only a turn longer than the whole window loses its oldest pieces), and earlier turns are dropped
oldest first, the oldest kept turn keeping its newest pieces.

Metrics (Lowe et al., 2015; Wu et al., 2017): `R{n}@k`, the fraction of contexts whose true response
ranks in the top k of the context's n candidates (k = 1, 2, 5 below n; `R2@1` too when n > 2: the true
response against the first other candidate, as Lowe et al. report it), and `mrr`, the mean of
1 / rank. Files whose contexts have different candidate counts report `R@k`. Ties count as a random
order (the expected value), so a model scoring every candidate alike gets chance, k / n, never a
perfect score from the true response standing first in the file.
"""

import csv
import dataclasses
import os

import numpy as np

from albert_keras.errors import AlbertInputError
from albert_keras.tasks.base import FinetuneTask
from albert_keras.tasks.base import inference_function
from albert_keras.tasks.base import TaskData
from albert_keras.text_files import allow_large_fields
from albert_keras.text_files import iter_lines
from albert_keras.text_files import read_json_lines
from albert_keras.text_files import text_format

END_OF_UTTERANCE = "__eou__"
END_OF_TURN = "__eot__"
DEFAULT_SEPARATOR = END_OF_TURN
SEP_TOKEN = "[SEP]"
CROSS = "cross"
BI = "bi"
ARCHITECTURES = (CROSS, BI)
DEFAULT_MAX_SEQ_LENGTH = 128
CLASSIFIER_LABELS = ["0", "1"]  # the Ubuntu training files' labels: index 1 is "the response"
RECALL_KS = (1, 2, 5)
_LABELS = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}


@dataclasses.dataclass
class Dialogue:
    """One context and its candidates.

    Args:
        turns: the context's turns, oldest first (markers removed).
        candidates: the candidate responses.
        labels: one 0/1 per candidate (1: a true response), or None when unlabelled.
        where: `file:line` of the context, for messages.

    Example:
    ```python
    Dialogue(["my wifi drops", "which driver?"], ["iwlwifi", "try rebooting"], [1, 0]).true_index  # 0
    ```
    """

    turns: list
    candidates: list
    labels: list = None
    where: str = ""

    @property
    def true_index(self):
        """The index of the one true response (None when unlabelled or not exactly one)."""
        if self.labels is None or sum(self.labels) != 1:
            return None
        return self.labels.index(1)


def split_turns(context):
    """The turns of an Ubuntu-style context string, oldest first, without the markers.

    Example:
    ```python
    split_turns("hi __eou__ anyone here? __eou__ __eot__ yes __eou__ __eot__")  # ["hi anyone here?", "yes"]
    ```
    """
    marker = END_OF_TURN if END_OF_TURN in context else END_OF_UTTERANCE
    turns = (" ".join(part.replace(END_OF_UTTERANCE, " ").split()) for part in context.split(marker))
    return [turn for turn in turns if turn]


def context_text(turns, separator=DEFAULT_SEPARATOR):
    """The context as one string, turns joined by the separator (what a bi-encoder's query looks like).

    Example:
    ```python
    context_text(["my wifi drops", "which driver?"])  # "my wifi drops __eot__ which driver?"
    ```
    """
    return f" {separator} ".join(turns)


def _label(value, where):
    label = _LABELS.get(str(value).strip().lower())
    if label is None:
        raise AlbertInputError(f"{where}: label {value!r} must be 1 (the response) or 0")
    return label


def _text(value, where, what):
    if not isinstance(value, str) or not value.strip():
        raise AlbertInputError(f"{where}: {what} must be a non-empty string")
    return value.strip()


def _csv_rows(path, fmt):
    allow_large_fields()
    options = {"delimiter": "\t", "quotechar": None} if fmt == "tsv" else {}
    reader = csv.reader((line for _, line in iter_lines(path)), **options)
    for row in reader:
        if row and any(cell.strip() for cell in row):
            yield reader.line_num, row


def _read_table(path, fmt, labelled):
    rows = list(_csv_rows(path, fmt))
    if not rows:
        raise AlbertInputError(f"{path}: no contexts (empty file)")
    first = [cell.strip().lower() for cell in rows[0][1]]
    header = first[0] == "context"
    if header:
        pairs = len(first) in (2, 3) and (len(first) == 2 or first[2] == "label")
        width = len(first)
        rows = rows[1:]
        if not rows:
            raise AlbertInputError(f"{path}: no contexts (only a header row)")
    else:
        width = len(rows[0][1])
        pairs = width == 2 or (width == 3 and rows[0][1][2].strip().lower() in _LABELS)
    if width < 2:
        raise AlbertInputError(f"{path}:{rows[0][0]}: candidates missing (a context needs at least one response)")
    dialogues = []
    for number, row in rows:
        where = f"{path}:{number}"
        if len(row) != width:
            raise AlbertInputError(f"{where}: {len(row)} columns, expected {width}"
                                   + (" (candidates missing)" if len(row) < width else ""))
        turns = split_turns(_text(row[0], where, "the context"))
        if pairs:
            candidate = _text(row[1], where, "the response")
            label = _label(row[2], where) if width == 3 and labelled else None
            last = dialogues[-1] if dialogues else None
            if last is not None and last.turns == turns and (last.labels is None) == (label is None):
                last.candidates.append(candidate)
                if label is not None:
                    last.labels.append(label)
                continue
            dialogues.append(Dialogue(turns, [candidate], None if label is None else [label], where))
        else:
            candidates = [_text(cell, where, f"candidate {i}") for i, cell in enumerate(row[1:])]
            labels = [1] + [0] * (len(candidates) - 1) if labelled else None
            dialogues.append(Dialogue(turns, candidates, labels, where))
    return dialogues


def _read_jsonl(path, labelled):
    dialogues = []
    for number, record in read_json_lines(path):
        where = f"{path}:{number}"
        context = record.get("context")
        if isinstance(context, str):
            turns = split_turns(_text(context, where, "'context'"))
        elif isinstance(context, list) and context:
            turns = [" ".join(_text(turn, where, f"'context' turn {i}").split()) for i, turn in enumerate(context)]
        else:
            raise AlbertInputError(f"{where}: 'context' must be a list of turns (or one string)")
        candidates = record.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            raise AlbertInputError(f"{where}: candidates missing ('candidates' must be a non-empty list of strings)")
        candidates = [_text(c, where, f"candidate {i}") for i, c in enumerate(candidates)]
        labels = None
        if labelled:
            label = record.get("label")
            if isinstance(label, bool) or not isinstance(label, int):
                raise AlbertInputError(f"{where}: 'label' must be the index of the true candidate, got {label!r}")
            if not 0 <= label < len(candidates):
                raise AlbertInputError(f"{where}: 'label' {label} is outside the {len(candidates)} candidates")
            labels = [int(i == label) for i in range(len(candidates))]
        dialogues.append(Dialogue(turns, candidates, labels, where))
    return dialogues


def read_dialogues(path, format=None, labelled=True):
    """Read Ubuntu-style CSV/TSV or JSONL into `Dialogue`s (the layouts in the module docstring).

    Args:
        path: the file.
        format: `csv`, `tsv` or `jsonl` (default: from the extension; `.txt` is read as CSV).
        labelled: read the labels (a file without them is then an error); False for `predict`.

    Raises:
        AlbertInputError: naming the file and line: a blank context or candidate, candidates
            missing, a label that is not 0/1 or not a candidate's index.

    Example:
    ```python
    dialogues = read_dialogues("ubuntu/valid.csv")
    dialogues[0].turns[-1], len(dialogues[0].candidates), dialogues[0].true_index  # (..., 10, 0)
    ```
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AlbertInputError(f"{path}: file not found")
    fmt = text_format(path, format)
    dialogues = _read_jsonl(path, labelled) if fmt == "jsonl" else _read_table(path, "tsv" if fmt == "tsv" else "csv",
                                                                               labelled)
    if not dialogues:
        raise AlbertInputError(f"{path}: no contexts (empty file)")
    if labelled and any(d.labels is None for d in dialogues):
        raise AlbertInputError(f"{dialogues[0].where}: no labels (a Label column, the test layout or 'label')")
    return dialogues


def require_one_true_response(dialogues):
    """Raise, naming the line, unless every context has exactly one true response (what R_n@k ranks).

    Example:
    ```python
    require_one_true_response(read_dialogues("valid.csv"))
    ```
    """
    for dialogue in dialogues:
        count = sum(dialogue.labels or [])
        if count != 1:
            raise AlbertInputError(f"{dialogue.where}: {count} true responses among its {len(dialogue.candidates)} "
                                   "candidates; ranking needs exactly one")


# ---------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------


def _pieces(vocabulary, text):
    return vocabulary.encode(text) or [vocabulary.unk_id]


def separator_ids(vocabulary, separator=DEFAULT_SEPARATOR):
    """The ids between two turns: the vocabulary's `[SEP]` for `"[SEP]"`, else the separator's pieces.

    Example:
    ```python
    separator_ids(load_vocabulary("pretrained_dir"), "[SEP]")  # [3]
    ```
    """
    return [vocabulary.sep_id] if separator == SEP_TOKEN else _pieces(vocabulary, separator)


def truncate_context(turns, separator, room):
    """The context's ids in at most `room` ids: the latest turn whole, earlier turns newest first.

    Args:
        turns: the turns' ids, oldest first.
        separator: the ids between two turns.
        room: how many ids the context may take.

    Returns:
        A list of ids: turns joined by the separator; the oldest kept turn may keep only its
        newest ids, and a latest turn longer than `room` keeps its newest `room` ids.

    Example:
    ```python
    truncate_context([[5, 6], [7, 8, 9], [10]], [3], 4)  # [8, 9, 3, 10]
    ```
    """
    if room <= 0:
        return []
    kept = list(turns[-1][-room:])
    for turn in reversed(turns[:-1]):
        left = room - len(kept) - len(separator)
        if left <= 0:
            break
        kept = list(turn[-left:]) + list(separator) + kept
    return kept


def pack_pair(vocabulary, turns, candidate, max_seq_length, separator):
    """`(token_ids, segment_ids)` of `[CLS] context [SEP] candidate [SEP]` within `max_seq_length`.

    The candidate gives way first, down to a quarter of the window, so the latest turn fits whole;
    then `truncate_context` fills the rest (see the module docstring).

    Example:
    ```python
    ids, segments = pack_pair(vocabulary, [[10, 11], [12]], [13, 14], 16, [3])
    ```
    """
    budget = max_seq_length - 3
    if budget < 2:
        raise AlbertInputError(f"max_seq_length: must be at least 5 for a pair, got {max_seq_length}")
    context_length = sum(len(t) for t in turns) + len(separator) * (len(turns) - 1)
    if context_length + len(candidate) > budget:
        floor = min(len(candidate), max(1, budget // 4))
        candidate = candidate[:max(floor, budget - len(turns[-1]))]
    context = truncate_context(turns, separator, budget - len(candidate))
    a = [vocabulary.cls_id] + context + [vocabulary.sep_id]
    b = list(candidate) + [vocabulary.sep_id]
    return a + b, [0] * len(a) + [1] * len(b)


def _pad(rows, max_seq_length):
    token_ids = np.zeros((len(rows), max_seq_length), np.int32)
    mask = np.zeros_like(token_ids)
    segments = np.zeros_like(token_ids)
    for i, (ids, segment) in enumerate(rows):
        token_ids[i, :len(ids)] = ids
        segments[i, :len(ids)] = segment
        mask[i, :len(ids)] = 1
    return {"token_ids": token_ids, "segment_ids": segments, "padding_mask": mask}


def pair_features(vocabulary, dialogues, max_seq_length=DEFAULT_MAX_SEQ_LENGTH, separator=DEFAULT_SEPARATOR):
    """Cross-encoder inputs: one packed pair per (context, candidate), contexts in order.

    Returns:
        `(inputs, labels, owners)`: dict of int32 `[P, T]`, int32 `[P]` labels (0 when unlabelled)
        and each pair's dialogue index.

    Example:
    ```python
    inputs, labels, owners = pair_features(load_vocabulary("dir"), read_dialogues("valid.csv"), 128)
    ```
    """
    sep = separator_ids(vocabulary, separator)
    rows, labels, owners, encoded = [], [], [], {}
    for i, dialogue in enumerate(dialogues):
        # Training files repeat each context once per candidate row: encode its turns once.
        for turn in dialogue.turns:
            if turn not in encoded:
                encoded[turn] = _pieces(vocabulary, turn)
        turns = [encoded[turn] for turn in dialogue.turns]
        for j, candidate in enumerate(dialogue.candidates):
            rows.append(pack_pair(vocabulary, turns, _pieces(vocabulary, candidate), max_seq_length, sep))
            labels.append(dialogue.labels[j] if dialogue.labels else 0)
            owners.append(i)
    return _pad(rows, max_seq_length), np.array(labels, np.int32), np.array(owners, np.int64)


def single_features(vocabulary, texts_or_turns, max_seq_length=DEFAULT_MAX_SEQ_LENGTH, separator=DEFAULT_SEPARATOR):
    """Bi-encoder inputs `[CLS] text [SEP]`: a string is cut at the end (a response), a list of
    turns from the oldest turn (a context, `truncate_context`).

    Example:
    ```python
    single_features(vocabulary, [["hello", "any news?"], "yes, the release is out"], 64)["token_ids"].shape  # (2, 64)
    ```
    """
    sep = separator_ids(vocabulary, separator)
    rows = []
    for item in texts_or_turns:
        if isinstance(item, str):
            ids = _pieces(vocabulary, item)[:max_seq_length - 2]
        else:
            ids = truncate_context([_pieces(vocabulary, turn) for turn in item], sep, max_seq_length - 2)
        rows.append(([vocabulary.cls_id] + ids + [vocabulary.sep_id], [0] * (len(ids) + 2)))
    return _pad(rows, max_seq_length)


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def _recall_and_reciprocal(scores, true, ks):
    """Expected `(recall at each k, 1 / rank)` of candidate `true` when ties fall in a random order."""
    scores = np.asarray(scores, np.float64)
    others = np.delete(scores, true)
    higher = int(np.sum(others > scores[true]))
    tied = int(np.sum(others == scores[true]))
    ranks = np.arange(higher + 1, higher + tied + 2)  # equally likely
    return [float(np.mean(ranks <= k)) for k in ks], float(np.mean(1.0 / ranks))


def ranking_metrics(scores, true_indices):
    """`R{n}@k` and MRR of one score list per context (see the module docstring).

    Args:
        scores: a list of per-candidate score sequences, one per context (higher is better).
        true_indices: the index of each context's true response.

    Returns:
        `{"R10@1": ..., "R10@2": ..., "R10@5": ..., "R2@1": ..., "mrr": ...}` for 10 candidates per
        context; `R{n}@k` for each k in (1, 2, 5) below n; `R@k` when n differs between contexts.

    Example:
    ```python
    ranking_metrics([[0.9, 0.1, 0.3], [0.2, 0.8, 0.1]], [0, 0])  # {"R3@1": 0.5, "R3@2": 1.0, "R2@1": 0.5, "mrr": 0.75}
    ```
    """
    if len(scores) != len(true_indices) or not scores:
        raise AlbertInputError(f"ranking: {len(scores)} score lists for {len(true_indices)} contexts")
    counts = {len(s) for s in scores}
    n = min(counts)
    if n < 2:
        raise AlbertInputError("ranking: every context needs at least two candidates (R_n@k ranks the true one)")
    prefix = f"R{n}" if len(counts) == 1 else "R"
    ks = [k for k in RECALL_KS if k < n]
    recalls, reciprocals, pairwise = np.zeros(len(ks)), [], []
    for row, true in zip(scores, true_indices):
        recall, reciprocal = _recall_and_reciprocal(row, true, ks)
        recalls += recall
        reciprocals.append(reciprocal)
        other = 1 if true == 0 else 0  # Lowe et al.'s 1-in-2: the true response against the first distractor
        pairwise.append(_recall_and_reciprocal([row[true], row[other]], 0, [1])[0][0])
    metrics = {f"{prefix}@{k}": float(v / len(scores)) for k, v in zip(ks, recalls)}
    if n > 2 and len(counts) == 1:
        metrics["R2@1"] = float(np.mean(pairwise))
    metrics["mrr"] = float(np.mean(reciprocals))
    return metrics


def chance_metrics(dialogues):
    """The metrics of a random ranking of the same contexts (the trivial baseline): k / n and mean(1 / rank).

    Example:
    ```python
    chance_metrics(read_dialogues("valid.csv"))["R10@1"]  # 0.1
    ```
    """
    return ranking_metrics([[0.0] * len(d.candidates) for d in dialogues], [0] * len(dialogues))


# ---------------------------------------------------------------------------------------------
# The fine-tuning task
# ---------------------------------------------------------------------------------------------


class ResponseSelectionTask(FinetuneTask):
    """Response selection (`--task response-selection`): a cross-encoder or a bi-encoder ranks candidates.

    Options: `architecture` (`cross`, the default, or `bi`), `turn_separator`, `max_seq_length`,
    `format`, `temperature` (bi-encoder, as `--task sentence-embedding`'s flag). Metrics:
    `R{n}@k`, `R2@1` and `mrr` (the primary metric: defined whatever the candidate count).
    `predict` writes `{"line", "context", "ranking": [{"index", "candidate", "score"}, ...]}`, best first.

    Example:
    ```python
    task = ResponseSelectionTask()
    data = task.read("ubuntu/train.csv", {})
    model = task.build_model("pretrained_dir", data.metadata, {"max_seq_length": 128})
    ```
    """

    name = "response-selection"
    primary_metric = "mrr"

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--architecture", choices=ARCHITECTURES, default=None,
                            help="response-selection: cross-encoder over pairs (default) or bi-encoder (index/search)")
        from albert_keras.tasks.translation import DEFAULT_TURN_SEPARATOR

        # One flag for two tasks (added once, here: the first by name), so its help speaks for both.
        parser.add_argument("--turn-separator", default=None,
                            help=f"text between dialogue turns: response-selection's contexts (default "
                                 f"{DEFAULT_SEPARATOR!r}; {SEP_TOKEN!r}: the separator token) and translation's "
                                 f"JSONL sources (default {DEFAULT_TURN_SEPARATOR!r})")

    def read(self, path, options, metadata=None):
        labelled = options.get("labelled", True)
        dialogues = read_dialogues(path, format=options.get("format"), labelled=labelled)
        if metadata is not None and labelled:
            require_one_true_response(dialogues)  # evaluation files are ranked
        if metadata is None:
            architecture = options.get("architecture") or CROSS
            if architecture not in ARCHITECTURES:
                raise AlbertInputError(f"--architecture: {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
            metadata = {"architecture": architecture, "metrics": [self.primary_metric],
                        "turn_separator": options.get("turn_separator") or DEFAULT_SEPARATOR}
            if architecture == CROSS:
                metadata["labels"] = list(CLASSIFIER_LABELS)
                # The cross-encoder trains on pairs: one example each, so an epoch is a pass over them.
                dialogues = [Dialogue(d.turns, [c], None if d.labels is None else [d.labels[j]], d.where)
                             for d in dialogues for j, c in enumerate(d.candidates)]
        return TaskData(path=os.fspath(path), examples=dialogues, metadata=dict(metadata))

    def build_model(self, init_dir, metadata, options, dtype=None):
        from albert_keras.tokenization.vocabulary import vocabulary_path

        if vocabulary_path(init_dir) is None:
            raise AlbertInputError(f"{init_dir}: no vocabulary; response selection needs one "
                                   "(spiece.model or vocab.txt)")
        length = options.get("max_seq_length")
        if metadata.get("architecture") == BI:
            from albert_keras.modeling.sentence_encoder import AlbertSentenceEncoder

            arguments = {} if options.get("temperature") is None else {"temperature": float(options["temperature"])}
            return AlbertSentenceEncoder.from_pretrained(init_dir, dtype=dtype, sequence_length=length, **arguments)
        from albert_keras.modeling.task_models import AlbertClassifier

        return AlbertClassifier.from_pretrained(init_dir, dtype=dtype, sequence_length=length,
                                                labels=list(CLASSIFIER_LABELS))

    def compile_kwargs(self, metadata):
        import keras

        if metadata.get("architecture") == BI:
            return {}  # the in-batch-negatives loss and its accuracy are the model's own
        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}

    def _settings(self, model, data, options):
        from albert_keras.tasks.base import model_vocabulary

        options = options or {}
        limit = getattr(model, "encoder", model).config.max_position_embeddings
        length = min(int(options.get("max_seq_length") or DEFAULT_MAX_SEQ_LENGTH), limit)
        separator = data.metadata.get("turn_separator") or DEFAULT_SEPARATOR
        return model_vocabulary(model, options, self.name), length, separator, options

    def dataset(self, model, data, batch_size, shuffle=False, seed=0, repeat=False, options=None):
        import tensorflow as tf

        vocabulary, length, separator, _ = self._settings(model, data, options)
        if data.metadata.get("architecture") == BI:
            pairs = [(d.turns, d.candidates[d.labels.index(1)]) for d in data.examples if d.labels and 1 in d.labels]
            if not pairs:
                raise AlbertInputError(f"{data.path}: no context with a true response to train the bi-encoder on")
            contexts = single_features(vocabulary, [turns for turns, _ in pairs], length, separator)
            responses = single_features(vocabulary, [response for _, response in pairs], length, separator)
            x = {key: np.stack([contexts[key], responses[key]], axis=1) for key in contexts}  # [N, 2, T]
            dataset = tf.data.Dataset.from_tensor_slices(x)
            count = len(pairs)
        else:
            inputs, labels, _ = pair_features(vocabulary, data.examples, length, separator)
            dataset = tf.data.Dataset.from_tensor_slices((inputs, labels))
            count = len(labels)
        if shuffle:
            dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        # Whole batches while training: the bi-encoder's negatives are the batch's other responses.
        return dataset.batch(batch_size, drop_remainder=repeat)

    def scores(self, model, data, options=None):
        """One score list per context (higher: more likely the response), candidates in file order.

        Example:
        ```python
        task.scores(model, task.read("valid.csv", {}, metadata))[0]  # [2.1, -0.4, ...]
        ```
        """
        vocabulary, length, separator, options = self._settings(model, data, options)
        batch = int(options.get("batch_size") or 32)
        forward = inference_function(model)  # one trace for all evaluations

        def run(inputs, pick):
            count = len(inputs["token_ids"])
            return np.concatenate([pick(forward({k: v[i:i + batch] for k, v in inputs.items()}))
                                   for i in range(0, count, batch)])

        dialogues = data.examples
        if data.metadata.get("architecture") == BI:
            embed = lambda out: np.asarray(out["sentence_embedding"], np.float32)  # noqa: E731
            contexts = run(single_features(vocabulary, [d.turns for d in dialogues], length, separator), embed)
            flat = [c for d in dialogues for c in d.candidates]
            responses = run(single_features(vocabulary, flat, length, separator), embed)
            owners = np.repeat(np.arange(len(dialogues)), [len(d.candidates) for d in dialogues])
            values = np.sum(contexts[owners] * responses, axis=1)
        else:
            inputs, _, owners = pair_features(vocabulary, dialogues, length, separator)
            logits = run(inputs, lambda out: np.asarray(out, np.float64))
            values = logits[:, 1] - logits[:, 0]  # log-odds of "the response"
        bounds = np.cumsum([0] + [len(d.candidates) for d in dialogues])
        return [values[bounds[i]:bounds[i + 1]].tolist() for i in range(len(dialogues))]

    def evaluation(self, model, data, options):
        if data.examples[0].labels is None:
            raise AlbertInputError(f"{data.path}: no true responses to evaluate against")
        require_one_true_response(data.examples)
        scores = self.scores(model, data, options)
        return ranking_metrics(scores, [d.true_index for d in data.examples]), None

    def evaluate(self, model, data, options):
        return self.evaluation(model, data, options)[0]

    def predict(self, model, data, options):
        for dialogue, row in zip(data.examples, self.scores(model, data, options)):
            order = sorted(range(len(row)), key=lambda i: (-row[i], i))
            yield {"line": int(dialogue.where.rsplit(":", 1)[1]), "context": dialogue.turns,
                   "ranking": [{"index": i, "candidate": dialogue.candidates[i], "score": round(float(row[i]), 6)}
                               for i in order]}
