"""`--task sentence-embedding`: SimCSE training of sentence embeddings, Spearman on STS files.

File formats `read` accepts (chosen by content, not by name):

| file | what it holds | used as |
|---|---|---|
| plain text, one sentence per line (blank lines skipped) | sentences | unsupervised SimCSE |
| TSV without header: `anchor<TAB>positive[<TAB>negative]` | pairs or triplets | supervised SimCSE |
| JSONL: `{"anchor": ..., "positive": ...[, "negative": ...]}` | pairs or triplets | supervised SimCSE |
| TSV with a header naming `sentence1`, `sentence2`, `score` (GLUE STS-B) | scored pairs | evaluation |
| JSONL: `{"sentence1": ..., "sentence2": ..., "score": ...}` | scored pairs | evaluation |

Evaluation is the SimCSE paper's: Spearman correlation between the cosine similarity of the two
sentences' embeddings and the gold score (Pearson reported too).
"""

import dataclasses
import os

from albert_keras.errors import AlbertInputError
from albert_keras.text_files import iter_lines
from albert_keras.text_files import read_json_lines
from albert_keras.tasks.base import FinetuneTask
from albert_keras.tasks.base import TaskData

UNSUPERVISED = "unsupervised"
PAIRS = "pairs"
TRIPLETS = "triplets"
SCORED = "scored"
JSON_KEYS = ("anchor", "positive", "negative")
STS_COLUMNS = ("sentence1", "sentence2", "score")


@dataclasses.dataclass(frozen=True)
class EmbeddingExample:
    """One example: 1 text (unsupervised), 2 (pair), 3 (triplet), or a scored pair.

    Args:
        texts: the texts, anchor first.
        score: the gold similarity of a scored (STS) pair, else None.
        line: 1-based line of the file, for messages.
    """

    texts: tuple
    score: float = None
    line: int = 0


def _float(value, path, line, field="score"):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AlbertInputError(f"{path} line {line}: {field} {value!r} is not a number") from None


def _read_jsonl(path):
    examples = []
    for number, record in read_json_lines(path):
        if "sentence1" in record or "sentence2" in record:
            texts = tuple(_text(record, key, path, number) for key in STS_COLUMNS[:2])
            examples.append(EmbeddingExample(texts, _float(record.get("score"), path, number), number))
        else:
            keys = [key for key in JSON_KEYS if key in record]
            if keys[:2] != ["anchor", "positive"]:
                raise AlbertInputError(
                    f"{path} line {number}: needs 'anchor' and 'positive' (and optionally 'negative'), "
                    "or 'sentence1', 'sentence2' and 'score'"
                )
            examples.append(EmbeddingExample(tuple(_text(record, key, path, number) for key in keys), None, number))
    return examples


def _text(record, key, path, line):
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise AlbertInputError(f"{path} line {line}: {key!r} must be a non-empty string")
    return value


def _read_tsv(path, lines):
    header = [name.strip().lower() for name in lines[0].split("\t")]
    if all(name in header for name in STS_COLUMNS):
        columns = [header.index(name) for name in STS_COLUMNS]
        examples = []
        for number, text in enumerate(lines[1:], 2):
            if not text.strip():
                continue
            cells = text.split("\t")
            if len(cells) <= max(columns):
                raise AlbertInputError(f"{path} line {number}: {len(cells)} columns, the header names {len(header)}")
            first, second, score = (cells[i] for i in columns)
            examples.append(EmbeddingExample((first, second), _float(score, path, number), number))
        return examples
    examples = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        cells = text.split("\t")
        if len(cells) not in (2, 3) or not all(cell.strip() for cell in cells):
            raise AlbertInputError(
                f"{path} line {number}: expected 2 or 3 non-empty tab-separated texts "
                f"(anchor, positive[, negative]), got {len(cells)} cells"
            )
        examples.append(EmbeddingExample(tuple(cells), None, number))
    return examples


def read_embedding_file(path):
    """Read sentences, pairs, triplets or scored pairs (the table in the module docstring).

    Returns:
        `(examples, kind)` with `kind` one of `"unsupervised"`, `"pairs"`, `"triplets"`, `"scored"`.

    Raises:
        AlbertInputError: empty file, malformed line, or examples of different kinds (naming the
        file and line).

    Example:
    ```python
    examples, kind = read_embedding_file("sentences.txt")  # kind == "unsupervised"
    ```
    """
    path = os.fspath(path)
    lines = [line.rstrip("\r\n") for _, line in iter_lines(path)]
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise AlbertInputError(f"{path}: empty file (no sentences or pairs)")
    if first.lstrip().startswith("{"):
        examples = _read_jsonl(path)
    elif "\t" in first:
        examples = _read_tsv(path, lines[lines.index(first):])
    else:
        examples = [EmbeddingExample((line,), None, n) for n, line in enumerate(lines, 1) if line.strip()]
    if not examples:
        raise AlbertInputError(f"{path}: no examples (only a header?)")
    kinds = {_kind(example) for example in examples}
    if len(kinds) > 1:
        kind = _kind(examples[0])
        odd = next(example for example in examples if _kind(example) != kind)
        raise AlbertInputError(f"{path} line {odd.line}: a {_kind(odd)} example in a file of {kind} examples")
    return examples, kinds.pop()


def _kind(example):
    if example.score is not None:
        return SCORED
    return {1: UNSUPERVISED, 2: PAIRS, 3: TRIPLETS}[len(example.texts)]


def training_texts(examples):
    """`[N, G]` texts for the contrastive loss: a sentence twice (unsupervised), else as given.

    Scored pairs train as pairs (each sentence is the other's positive), whatever their score.

    Example:
    ```python
    training_texts([EmbeddingExample(("a dog.",))])  # [["a dog.", "a dog."]]
    ```
    """
    return [list(example.texts) * 2 if len(example.texts) == 1 else list(example.texts) for example in examples]


def similarity_scores(model, examples, batch_size=64):
    """Cosine similarity of each scored pair's two sentence embeddings (numpy `[N]`).

    Example:
    ```python
    similarity_scores(model, examples)[:3]
    ```
    """
    import numpy as np

    first = model.encode([example.texts[0] for example in examples], batch_size=batch_size)
    second = model.encode([example.texts[1] for example in examples], batch_size=batch_size)
    return np.sum(first * second, axis=1)


def evaluate_similarity(model, examples, batch_size=64):
    """Spearman and Pearson correlation between embedding cosines and the gold scores.

    Example:
    ```python
    evaluate_similarity(model, read_embedding_file("sts-dev.tsv")[0])  # {"spearman": 0.71, ...}
    ```
    """
    from albert_keras.tasks.metrics import pearson
    from albert_keras.tasks.metrics import spearman

    if not examples or any(example.score is None for example in examples):
        raise AlbertInputError("evaluation data: needs scored pairs (STS-B TSV or JSONL with 'score')")
    cosines = similarity_scores(model, examples, batch_size=batch_size)
    gold = [example.score for example in examples]
    return {"spearman": float(spearman(gold, cosines)), "pearson": float(pearson(gold, cosines))}


class SentenceEmbeddingTask(FinetuneTask):
    """SimCSE: unsupervised on sentences, supervised on pairs or triplets; Spearman on STS pairs.

    Options: `temperature` (default 0.05; `--temperature`), `max_seq_length` or
    `sequence_length` (default: the init directory's tokenizer.json, else 128), `batch_size`
    (evaluation).

    Example:
    ```python
    from albert_keras.tasks.registry import get_task
    task = get_task("sentence-embedding")
    data = task.read("sentences.txt", options={})
    model = task.build_model("pretrained_dir", data.metadata, options={})
    model.compile(optimizer="adam", **task.compile_kwargs(data.metadata))
    model.fit(task.dataset(model, data, batch_size=64, shuffle=True))
    ```
    """

    name = "sentence-embedding"
    primary_metric = "spearman"

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--temperature", type=float, default=None,
                            help="sentence-embedding: InfoNCE temperature (default 0.05, as SimCSE)")

    def read(self, path, options, metadata=None):
        examples, kind = read_embedding_file(path)
        return TaskData(path=os.fspath(path), examples=examples, metadata=metadata or {"format": kind})

    def build_model(self, init_dir, metadata, options, dtype=None):
        from albert_keras.modeling.sentence_encoder import AlbertSentenceEncoder

        options = options or {}
        # Without a temperature, a directory of this class keeps its own (the default otherwise).
        arguments = {} if options.get("temperature") is None else {"temperature": float(options["temperature"])}
        model = AlbertSentenceEncoder.from_pretrained(
            init_dir, dtype=dtype, sequence_length=options.get("sequence_length") or options.get("max_seq_length"),
            **arguments,
        )
        model._require_tokenizer()
        return model

    def compile_kwargs(self, metadata):
        return {}  # the contrastive loss and its accuracy are the model's own

    def dataset(self, model, data, batch_size, shuffle=False, seed=0, repeat=False, options=None):
        import numpy as np
        import tensorflow as tf

        # `read` checked that every example has the same number of texts.
        texts = training_texts(data.examples)
        dataset = tf.data.Dataset.from_tensor_slices(np.array(texts, dtype=object))
        if shuffle:
            dataset = dataset.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        # Full batches only when training: the in-batch negatives are the other examples.
        dataset = dataset.batch(batch_size, drop_remainder=shuffle and len(texts) >= batch_size)
        return dataset.map(model.tokenize_groups, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def evaluate(self, model, data, options):
        return evaluate_similarity(model, data.examples, batch_size=(options or {}).get("batch_size") or 64)

    def predict(self, model, data, options):
        if all(example.score is not None or len(example.texts) == 2 for example in data.examples):
            for example, cosine in zip(data.examples, similarity_scores(model, data.examples)):
                yield {"texts": list(example.texts), "similarity": float(cosine)}
            return
        embeddings = model.encode([example.texts[0] for example in data.examples])
        for example, embedding in zip(data.examples, embeddings):
            yield {"text": example.texts[0], "embedding": [float(v) for v in embedding]}


def train_sentence_embeddings(
    init_dir,
    train,
    output_dir,
    validation=None,
    epochs=1,
    batch_size=64,
    learning_rate=3e-5,
    temperature=0.05,
    sequence_length=None,
    seed=0,
    verbose=0,
):
    """SimCSE in one call: train a pretrained directory's encoder, write an `AlbertSentenceEncoder`.

    A plain Keras `fit` with AdamW (constant learning rate), for scripts and tests; `albert-keras
    finetune --task sentence-embedding` runs the same task under the shared training loop
    (schedules, checkpoints, strategies).

    Args:
        init_dir: a pretrained directory with `spiece.model`.
        train: a training file (sentences, pairs or triplets; see the module docstring).
        output_dir: where the trained pretrained directory is written (atomically).
        validation: optional STS-format file, evaluated before and after training.
        epochs, batch_size, learning_rate, temperature, sequence_length, seed: training settings
            (SimCSE's are batch 64, learning rate 3e-5, temperature 0.05).
        verbose: Keras `fit` verbosity.

    Returns:
        dict with `output_dir`, `loss` (last epoch), and `spearman_before` / `spearman_after` when
        `validation` is given.

    Example:
    ```python
    train_sentence_embeddings("runs/quickstart/pretrain/pretrained", "sentences.txt", "runs/simcse",
                              validation="sts-dev.tsv")
    ```
    """
    import keras

    keras.utils.set_random_seed(seed)
    task = SentenceEmbeddingTask()
    options = {"temperature": temperature, "sequence_length": sequence_length}
    data = task.read(train, options)
    model = task.build_model(init_dir, data.metadata, options)
    report = {"output_dir": os.fspath(output_dir)}
    eval_data = task.read(validation, options) if validation is not None else None
    if eval_data is not None:
        report["spearman_before"] = task.evaluate(model, eval_data, options)["spearman"]
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=0.0), **task.compile_kwargs(data.metadata))
    history = model.fit(task.dataset(model, data, batch_size, shuffle=True, seed=seed), epochs=epochs, shuffle=False, verbose=verbose)
    report["loss"] = float(history.history["loss"][-1])
    if eval_data is not None:
        report["spearman_after"] = task.evaluate(model, eval_data, options)["spearman"]
    model.save_pretrained(output_dir)
    return report
