"""Extractive question answering on SQuAD 1.1 / 2.0: windows, decoding, the task.

- `read_squad` (`albert_keras.tasks.squad_data`, re-exported here): a SQuAD JSON file to
  `SquadExample`s, with every error naming the file and the JSON location, or counted skips.
- `make_features`: `[CLS] question [SEP] window [SEP]` features, as the official
  `run_squad_v1/v2.py` build them: the question cut to `max_query_length` pieces, the context in
  windows of `max_seq_length - len(question) - 3` pieces advancing by `doc_stride`; each piece
  keeps its character span in the ORIGINAL context (`albert_keras.tokenization.offsets`), so the
  answer is found and returned as characters of the context, never rebuilt from pieces. An answer
  not wholly inside a window (or no answer, 2.0) points at `[CLS]` (position 0).
- `decode`: the official answer selection over all windows of a question: the `n_best_size` best
  starts and ends of each window, spans of at most `max_answer_length` pieces whose start is in
  the window where it has the most context, and for 2.0 the no-answer score (the lowest `[CLS]`
  score over the windows) against `null_score_diff_threshold`.
- `QuestionAnsweringTask` (`--task question-answering`), scored by `evaluate` (the official
  SQuAD evaluation, `albert_keras.tasks.squad_metrics.evaluate`).
"""

import dataclasses
import json
import os
import sys

import numpy as np

from albert_keras.errors import AlbertInputError
from albert_keras.tasks.base import FinetuneTask
from albert_keras.tasks.base import inference_function
from albert_keras.tasks.base import TaskData
from albert_keras.tasks.squad_data import BAD_ANSWER  # noqa: F401  (re-exported)
from albert_keras.tasks.squad_data import SquadExample  # noqa: F401  (re-exported)
from albert_keras.tasks.squad_data import load_json  # noqa: F401  (re-exported)
from albert_keras.tasks.squad_data import read_squad
from albert_keras.tasks.squad_data import squad_dataset
from albert_keras.tasks.squad_metrics import evaluate  # noqa: F401  (re-exported: the SQuAD scores)

# The official run_squad defaults.
DEFAULTS = {
    "max_seq_length": 384,
    "doc_stride": 128,
    "max_query_length": 64,
    "n_best_size": 20,
    "max_answer_length": 30,
    "null_score_diff_threshold": 0.0,
}
PREDICTIONS_FILE = "predictions.json"
NULL_ODDS_FILE = "null_odds.json"
# ---------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class SquadFeature:
    """One window of one question: model inputs and what decoding needs.

    `starts`/`ends` give each position's character span in the context (-1 outside the context);
    `max_context[i]` says position `i` has its most context in this window.
    """

    example_index: int
    token_ids: np.ndarray
    segment_ids: np.ndarray
    padding_mask: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    max_context: np.ndarray
    start_position: int = 0
    end_position: int = 0


def _windows(num_pieces, window, stride):
    """The official `doc_spans`: `(start, length)` windows covering `num_pieces`."""
    spans, start = [], 0
    while start < num_pieces or not spans:
        length = min(num_pieces - start, window)
        spans.append((start, length))
        if start + length >= num_pieces:
            break
        start += min(length, stride)
    return spans


def _is_max_context(spans, span_index, position):
    """The official `_check_is_max_context`: the window where `position` has the most context."""
    best_score, best_index = None, None
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best_index = score, index
    return best_index == span_index


def _answer_pieces(starts, ends, answer):
    """First and last piece overlapping the answer's characters (empty pieces never count)."""
    begin = answer["answer_start"]
    finish = begin + len(answer["text"])
    inside = [i for i, (s, e) in enumerate(zip(starts, ends)) if s < e and e > begin and s < finish]
    return (inside[0], inside[-1]) if inside else (None, None)


def make_features(vocabulary, examples, max_seq_length=384, doc_stride=128, max_query_length=64, lowercase=None,
                  training=False):
    """Windowed features for `examples` (see the module docstring).

    Args:
        vocabulary: the model's `Vocabulary` (or anything `load_vocabulary` takes).
        examples: `SquadExample`s.
        max_seq_length: packed length, special tokens included.
        doc_stride: pieces between the starts of consecutive windows.
        max_query_length: the question's piece budget.
        lowercase: override the vocabulary's casing (None keeps it).
        training: compute `start_position`/`end_position` from the first answer.

    Returns:
        A list of `SquadFeature` (every example has at least one).

    Example:
    ```python
    features = make_features(load_vocabulary("pretrained_dir"), examples, max_seq_length=128, doc_stride=32,
                             training=True)
    ```
    """
    from albert_keras.tokenization.vocabulary import load_vocabulary

    vocabulary = load_vocabulary(vocabulary, lowercase=lowercase)
    cls_id, sep_id = vocabulary.cls_id, vocabulary.sep_id
    features = []
    cache = {}
    for index, example in enumerate(examples):
        query = vocabulary.encode(example.question)[:max_query_length]
        if example.context not in cache:  # SQuAD has ~5 questions per paragraph
            cache = {example.context: vocabulary.encode_with_offsets(example.context)}
        ids, starts, ends = cache[example.context]
        window = max_seq_length - len(query) - 3
        if window < 1:
            raise AlbertInputError(
                f"max_seq_length {max_seq_length} leaves no room for a context after a {len(query)}-piece question "
                f"(lower --max-query-length)"
            )
        answer = (None, None)
        if training and example.answers and not example.is_impossible:
            answer = _answer_pieces(starts, ends, example.answers[0])
        spans = _windows(len(ids), window, doc_stride)
        for span_index, (start, length) in enumerate(spans):
            offset = len(query) + 2
            token_ids = np.zeros(max_seq_length, np.int32)
            segment_ids = np.zeros(max_seq_length, np.int32)
            padding_mask = np.zeros(max_seq_length, np.int32)
            char_starts = np.full(max_seq_length, -1, np.int64)
            char_ends = np.full(max_seq_length, -1, np.int64)
            max_context = np.zeros(max_seq_length, bool)
            sequence = [cls_id] + query + [sep_id] + ids[start:start + length] + [sep_id]
            token_ids[: len(sequence)] = sequence
            segment_ids[offset: len(sequence)] = 1
            padding_mask[: len(sequence)] = 1
            char_starts[offset: offset + length] = starts[start:start + length]
            char_ends[offset: offset + length] = ends[start:start + length]
            for k in range(length):
                max_context[offset + k] = _is_max_context(spans, span_index, start + k)
            first, last = 0, 0
            if answer[0] is not None and start <= answer[0] and answer[1] < start + length:
                first, last = answer[0] - start + offset, answer[1] - start + offset
            features.append(SquadFeature(index, token_ids, segment_ids, padding_mask, char_starts, char_ends,
                                         max_context, first, last))
    return features


def feature_arrays(features):
    """`(x, y)` numpy dicts for Keras from `SquadFeature`s.

    Example:
    ```python
    x, y = feature_arrays(features)
    model.fit(x, y)
    ```
    """
    x = {name: np.stack([getattr(f, name) for f in features]) for name in ("token_ids", "segment_ids", "padding_mask")}
    y = {"start_logits": np.array([f.start_position for f in features], np.int32),
         "end_logits": np.array([f.end_position for f in features], np.int32)}
    return x, y


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def decode(examples, features, start_logits, end_logits, n_best_size=20, max_answer_length=30,
           null_score_diff_threshold=0.0, version_2=False):
    """Answers from start/end logits over all windows of each question (official selection).

    Args:
        examples: the `SquadExample`s.
        features: their `SquadFeature`s (from `make_features`), in order.
        start_logits, end_logits: `[num_features, seq]` arrays.
        n_best_size: best starts and ends tried per window, and answers kept per question.
        max_answer_length: longest answer, in pieces.
        null_score_diff_threshold: (2.0) answer "" when the no-answer score minus the best span
            score exceeds it.
        version_2: allow no answer.

    Returns:
        `{qid: record}` with `text` (a slice of the context; "" for no answer), `start`/`end`
        (characters; -1 for no answer), `score` (best span's start + end logit), `null_score`
        (lowest `[CLS]` score over the windows), `null_odds` (`null_score - score`), `nbest`.

    Example:
    ```python
    outputs = model.predict(x)
    answers = decode(examples, features, outputs["start_logits"], outputs["end_logits"])
    ```
    """
    by_example = {}
    for k, feature in enumerate(features):
        by_example.setdefault(feature.example_index, []).append(k)
    results = {}
    for index, example in enumerate(examples):
        candidates, null_score = [], None
        for k in by_example.get(index, []):
            feature = features[k]
            start, end = np.asarray(start_logits[k], np.float64), np.asarray(end_logits[k], np.float64)
            valid = (feature.starts >= 0) & (feature.ends > feature.starts)
            null = start[0] + end[0]
            null_score = null if null_score is None else min(null_score, null)
            order_start = [i for i in np.argsort(-start, kind="stable") if valid[i]][:n_best_size]
            order_end = [j for j in np.argsort(-end, kind="stable") if valid[j]][:n_best_size]
            for i in order_start:
                if not feature.max_context[i]:
                    continue
                for j in order_end:
                    if j < i or j - i + 1 > max_answer_length:
                        continue
                    candidates.append((start[i] + end[j], int(feature.starts[i]), int(feature.ends[j])))
        candidates.sort(key=lambda c: -c[0])
        nbest, seen = [], set()
        for score, s, e in candidates:
            if (s, e) in seen:
                continue
            seen.add((s, e))
            nbest.append({"text": example.context[s:e], "start": s, "end": e, "score": float(score)})
            if len(nbest) >= n_best_size:
                break
        null_score = float(null_score if null_score is not None else 0.0)
        best = nbest[0] if nbest else {"text": "", "start": -1, "end": -1, "score": float("-inf")}
        null_odds = null_score - best["score"] if nbest else float("inf")
        record = dict(best, null_score=null_score, null_odds=float(null_odds), nbest=nbest)
        if version_2 and (not nbest or null_odds > null_score_diff_threshold):
            record.update(text="", start=-1, end=-1)
        elif not nbest:
            record.update(text="")
        results[example.qid] = record
    return results


# ---------------------------------------------------------------------------------------------
# The fine-tuning task
# ---------------------------------------------------------------------------------------------


WINDOW_SETTINGS = ("max_seq_length", "doc_stride", "max_query_length")


def _option(options, name, metadata=None):
    """A flag's value: given > the training file's (stored in the metadata) > the official default."""
    value = options.get(name)
    if value is None and metadata:
        value = metadata.get(name)
    return DEFAULTS[name] if value is None else value


class QuestionAnsweringTask(FinetuneTask):
    """Extractive question answering on SQuAD 1.1 / 2.0 JSON (`--task question-answering`).

    Metrics: the official SQuAD evaluation (`exact`, `f1`, `HasAns_*`, `NoAns_*`, and for 2.0 the
    `best_*` threshold search over the no-answer odds). `predict` gives one record per question;
    `write_predictions` writes the official `predictions.json` (and `null_odds.json` for 2.0).
    Options: `max_seq_length`, `doc_stride`, `max_query_length`, `n_best_size`,
    `max_answer_length`, `null_score_diff_threshold`, `skip_bad_answers` (the flags below).

    Example:
    ```python
    task = QuestionAnsweringTask()
    data = task.read("train-v2.0.json", {})
    model = task.build_model("pretrained_dir", data.metadata, {"max_seq_length": 384})
    ```
    """

    name = "question-answering"
    primary_metric = "f1"

    @classmethod
    def add_arguments(cls, parser):
        group = parser.add_argument_group("question answering")
        group.add_argument("--doc-stride", type=int, default=None,
                           help=f"pieces between context windows (default {DEFAULTS['doc_stride']})")
        group.add_argument("--max-query-length", type=int, default=None,
                           help=f"question pieces kept (default {DEFAULTS['max_query_length']})")
        group.add_argument("--n-best-size", type=int, default=None,
                           help=f"candidate starts/ends per window (default {DEFAULTS['n_best_size']})")
        group.add_argument("--max-answer-length", type=int, default=None,
                           help=f"longest answer in pieces (default {DEFAULTS['max_answer_length']})")
        group.add_argument("--null-score-diff-threshold", type=float, default=None,
                           help="SQuAD 2.0: answer nothing when the no-answer score minus the best span "
                                "score exceeds this (default 0)")
        group.add_argument("--skip-bad-answers", action="store_true", default=None,
                           help="count and skip questions whose answer is not at its answer_start instead of failing")

    def read(self, path, options, metadata=None):
        from albert_keras.tasks.clue import benchmark

        clue = benchmark(options, metadata)  # CMRC 2018: answer starts repaired, its own scorer
        if clue is not None:
            from albert_keras.tasks.cmrc import read_cmrc

            clue.check_kind(self.name)
            examples, skipped, repairs = read_cmrc(path, bool(options.get("skip_bad_answers")), metadata is None)
            version_2 = False
            if repairs:
                print(f"question-answering: {path}: moved {repairs} answer_start values to their text", file=sys.stderr)
        else:
            examples, version_2, skipped = read_squad(path, skip_bad_answers=bool(options.get("skip_bad_answers")))
        for reason, count in skipped.items():  # the counted skips, reported once the file is read
            print(f"question-answering: {path}: skipped {count} questions ({reason})", file=sys.stderr)
        if metadata is None:  # the window settings travel with the model (finetune.json)
            metadata = {"version_2_with_negative": version_2, "metrics": ["f1", "exact"],
                        **{name: _option(options, name) for name in WINDOW_SETTINGS[1:]}}
            if clue is not None:
                metadata.update(metrics=list(clue.metrics), glue_task=clue.name)
        return TaskData(path=os.fspath(path), examples=examples, metadata=dict(metadata), skipped=skipped)

    def build_model(self, init_dir, metadata, options, dtype=None):
        from albert_keras.modeling.task_models import AlbertQuestionAnswerer
        from albert_keras.tokenization.vocabulary import vocabulary_path

        if vocabulary_path(init_dir) is None:
            raise AlbertInputError(f"{init_dir}: no vocabulary; question answering needs one (spiece.model or vocab.txt)")
        return AlbertQuestionAnswerer.from_pretrained(init_dir, dtype=dtype)

    def compile_kwargs(self, metadata):
        import keras

        return {"loss": {"start_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                         "end_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}}

    def _features(self, model, data, options, training):
        """Features of `data` for `model`'s vocabulary, made once per (data, settings)."""
        from albert_keras.tasks.base import model_vocabulary

        vocabulary = model_vocabulary(model, options, "question-answering")
        spm = vocabulary.sha256()
        limit = model.encoder.config.max_position_embeddings
        length = min(int(_option(options, "max_seq_length", data.metadata)), limit)
        settings = (spm, length, int(_option(options, "doc_stride", data.metadata)),
                    int(_option(options, "max_query_length", data.metadata)), training)
        cache = data.cache.setdefault("squad_features", {})
        if settings not in cache:
            cache[settings] = make_features(
                vocabulary, data.examples, max_seq_length=length, doc_stride=settings[2],
                max_query_length=settings[3], training=training,
            )
        return cache[settings]

    def dataset(self, model, data, batch_size, shuffle=False, seed=0, repeat=False, options=None):
        import tensorflow as tf

        x, y = feature_arrays(self._features(model, data, options or {}, training=True))
        dataset = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            dataset = dataset.shuffle(len(y["start_logits"]), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        return dataset.batch(batch_size, drop_remainder=repeat)

    def answers(self, model, data, options):
        """`decode`'s `{qid: record}` for `data` (runs the model over every window)."""
        features = self._features(model, data, options, training=False)
        x, _ = feature_arrays(features)
        batch = int(options.get("batch_size") or 32)

        forward = inference_function(model)  # one trace across the evaluations of a run

        starts, ends = [], []
        for begin in range(0, len(features), batch):
            out = forward({k: v[begin:begin + batch] for k, v in x.items()})
            starts.append(out["start_logits"].numpy())
            ends.append(out["end_logits"].numpy())
        return decode(
            data.examples, features, np.concatenate(starts), np.concatenate(ends),
            n_best_size=int(_option(options, "n_best_size")),
            max_answer_length=int(_option(options, "max_answer_length")),
            null_score_diff_threshold=float(_option(options, "null_score_diff_threshold")),
            version_2=bool(data.metadata.get("version_2_with_negative")),
        )

    def evaluate(self, model, data, options):
        results = self.answers(model, data, options)
        predictions = {qid: r["text"] for qid, r in results.items()}
        if data.metadata.get("glue_task"):
            from albert_keras.tasks import cmrc

            return cmrc.evaluate(squad_dataset(data.examples), predictions)
        na_probs = None
        if data.metadata.get("version_2_with_negative"):
            na_probs = {qid: r["null_odds"] for qid, r in results.items()}
        return evaluate(squad_dataset(data.examples), predictions, na_probs=na_probs)

    def predict(self, model, data, options):
        results = self.answers(model, data, options)
        for example in data.examples:
            record = results[example.qid]
            yield {"id": example.qid, "answer": record["text"], "start": record["start"], "end": record["end"],
                   "score": round(record["score"], 6) if record["nbest"] else None,
                   # Unrounded: the best-threshold search of `evaluate` uses these values.
                   "null_odds": record["null_odds"] if record["nbest"] else None}

    def write_predictions(self, records, output_path, metadata=None):
        """Write the official `predictions.json` (`{id: answer}`) at `output_path` and, for 2.0,
        `null_odds.json` (`{id: no-answer score minus best span score}`) next to it.

        `output_path` may be a directory (then `predictions.json` goes inside it). Both files are
        written atomically. `albert-keras predict` calls this for question answering.

        Returns:
            The number of questions.

        Example:
        ```python
        task.write_predictions(task.predict(model, data, {}), "out/predictions.json", data.metadata)
        ```
        """
        from albert_keras.io_utils import atomic_write

        records = list(records)
        output_path = os.fspath(output_path)
        if os.path.isdir(output_path) or output_path.endswith(os.sep):
            output_path = os.path.join(output_path, PREDICTIONS_FILE)
        directory = os.path.dirname(output_path) or "."
        os.makedirs(directory, exist_ok=True)
        with atomic_write(output_path, "w") as f:
            json.dump({r["id"]: r["answer"] for r in records}, f, indent=2, ensure_ascii=False)
        if (metadata or {}).get("version_2_with_negative"):
            with atomic_write(os.path.join(directory, NULL_ODDS_FILE), "w") as f:
                json.dump({r["id"]: (r["null_odds"] if r["null_odds"] is not None else 1e9) for r in records}, f,
                          indent=2)
        return len(records)
