"""The `translation` fine-tuning task: source-target pairs, an `AlbertSeq2Seq`, BLEU and chrF.

It fits any text-to-text task: translation, summarization, dialogue responses. Pairs come from
CSV/TSV/JSONL files (`tasks.readers`): the source in `--text-column` (default `source`), the
target in `--label-column` (default `target`). A JSONL source may be a list of dialogue turns,
joined with `--turn-separator`. Training is teacher-forced with label-smoothed cross-entropy
over the target pieces; `evaluate` decodes (greedy, or beam search with `--num-beams`) and
scores with sacrebleu: corpus BLEU (its `zh` tokenizer when the targets are Chinese, else
`13a`; lowercased when the vocabulary is) and chrF. `predict` writes one JSON line per source.

Bad input is one line: an empty source, a missing target (no field, a short row, an empty
value). Targets longer than the decoder (`--max-target-length`) are counted, truncated and
said once per file.
"""

import dataclasses
import sys


from albert_keras.errors import AlbertInputError
from albert_keras.tasks import readers
from albert_keras.tasks.base import FinetuneTask
from albert_keras.tasks.base import TaskData

DEFAULT_SOURCE_COLUMN = "source"
DEFAULT_TARGET_COLUMN = "target"
DEFAULT_TURN_SEPARATOR = " | "
DEFAULT_LABEL_SMOOTHING = 0.1
SHUFFLE_BUFFER = 10000
# Share of CJK characters in the targets above which BLEU uses sacrebleu's `zh` tokenizer.
CHINESE_SHARE = 0.3


@dataclasses.dataclass
class PairExample:
    """One source text (a dialogue context already joined) and its target (None when unlabelled)."""

    source: str
    target: str = None
    line: int = 0


def _is_chinese(texts):
    characters = [c for text in texts for c in text if not c.isspace()]
    if not characters:
        return False
    from albert_keras.modeling.generation import _is_cjk

    return sum(map(_is_cjk, characters)) / len(characters) > CHINESE_SHARE


def _text(value, path, line, what, separator):
    if isinstance(value, list):
        if not all(isinstance(turn, str) for turn in value):
            raise AlbertInputError(f"{path}:{line}: the {what} list must hold strings (dialogue turns)")
        value = separator.join(turn.strip() for turn in value if turn.strip())
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    return value.strip()


def read_pairs(path, options, labelled=True):
    """The `PairExample`s of a CSV/TSV/JSONL file.

    Raises:
        AlbertInputError: an empty source, a missing or empty target (one line naming the file and line).

    Example:
    ```python
    read_pairs("train.tsv", {"text_column": 0, "label_column": 1, "header": False})
    ```
    """
    source_column = options.get("text_column")
    target_column = options.get("label_column")
    spec = readers.ColumnSpec(
        text_column=DEFAULT_SOURCE_COLUMN if source_column is None else source_column,
        label_column=(DEFAULT_TARGET_COLUMN if target_column is None else target_column) if labelled else None,
        header=options.get("header"),
        format=options.get("format"),
    )
    separator = options.get("turn_separator") or DEFAULT_TURN_SEPARATOR
    examples = []
    for line, values in readers.iter_records(path, spec):
        source = _text(values[spec.text_column], path, line, "source", separator)
        if not source:
            raise AlbertInputError(f"{path}:{line}: empty source (column {spec.text_column!r})")
        target = None
        if labelled:
            target = _text(values[spec.label_column], path, line, "target", separator)
            if not target:
                raise AlbertInputError(f"{path}:{line}: missing target (column {spec.label_column!r} is empty)")
        examples.append(PairExample(source, target, line))
    if not examples:
        raise AlbertInputError(f"{path}: no source-target pairs")
    return examples


class TranslationTask(FinetuneTask):
    """Sequence-to-sequence fine-tuning (`--task translation`) of an `AlbertSeq2Seq`.

    Metrics: sacrebleu corpus BLEU (primary) and chrF.

    Example:
    ```python
    task = TranslationTask()
    data = task.read("train.tsv", {"text_column": "source", "label_column": "target"})
    model = task.build_model("pretrained_dir", data.metadata, {"max_target_length": 32})
    ```
    """

    name = "translation"
    primary_metric = "bleu"

    @classmethod
    def add_arguments(cls, parser):
        group = parser.add_argument_group("translation")
        group.add_argument("--max-target-length", type=int, default=None,
                           help="decoder positions: [CLS] + target pieces, the last [SEP] (default 64)")
        group.add_argument("--share-decoder", action="store_true", default=None,
                           help="the decoder's self-attention and feed-forward are the encoder's (half the weights)")
        group.add_argument("--label-smoothing", type=float, default=None,
                           help=f"label smoothing of the training loss (default {DEFAULT_LABEL_SMOOTHING})")
        group.add_argument("--turn-separator", default=None,
                           help=f"joins a JSONL list of dialogue turns into one source (default {DEFAULT_TURN_SEPARATOR!r})")
        group.add_argument("--num-beams", type=int, default=None, help="beam search width when scoring (default 1: greedy)")
        group.add_argument("--length-penalty", type=float, default=None,
                           help="GNMT length penalty alpha for beam search (default 0.6)")

    def read(self, path, options, metadata=None):
        labelled = options.get("labelled", True)
        examples = read_pairs(path, options, labelled=labelled)
        if metadata is None:
            chinese = _is_chinese(e.target for e in examples[:1000])
            smoothing = options.get("label_smoothing")
            metadata = {"metrics": ["bleu", "chrf"], "bleu_tokenize": "zh" if chinese else "13a",
                        "label_smoothing": DEFAULT_LABEL_SMOOTHING if smoothing is None else float(smoothing)}
        return TaskData(path=str(path), examples=examples, metadata=dict(metadata))

    def build_model(self, init_dir, metadata, options, dtype=None):
        from albert_keras.modeling.seq2seq import AlbertSeq2Seq
        from albert_keras.tokenization.vocabulary import vocabulary_path

        if vocabulary_path(init_dir) is None:
            raise AlbertInputError(f"{init_dir}: no vocabulary; translation needs the directory's spiece.model or vocab.txt")
        arguments = {key: options[key] for key in ("share_decoder", "max_target_length") if options.get(key) is not None}
        return AlbertSeq2Seq.from_pretrained(init_dir, dtype=dtype, source_length=options.get("max_seq_length"),
                                             **arguments)

    def compile_kwargs(self, metadata):
        import keras

        from albert_keras.tasks.keras_losses import SmoothedTokenCrossentropy

        return {"loss": SmoothedTokenCrossentropy(metadata.get("label_smoothing", DEFAULT_LABEL_SMOOTHING)),
                "weighted_metrics": [keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")]}

    def _say_truncated(self, model, data):
        """Count the targets longer than the decoder, once per file, and say so in one line."""
        if data.cache.get("lengths_checked") or data.examples[0].target is None:
            return
        data.cache["lengths_checked"] = True
        vocabulary = model.preprocessor.vocabulary
        room = model.max_target_length - 1  # [CLS] ... and the last position predicts [SEP]
        long = sum(1 for e in data.examples if len(vocabulary.encode(e.target)) > room)
        if long:
            print(f"{data.path}: {long} of {len(data.examples)} targets are longer than {room} pieces "
                  f"(--max-target-length {model.max_target_length}); truncated", file=sys.stderr)

    def dataset(self, model, data, batch_size, shuffle=False, seed=0, repeat=False, options=None):
        import tensorflow as tf

        if model.preprocessor is None:
            raise AlbertInputError(f"{data.path}: the model has no vocabulary to tokenize with")
        self._say_truncated(model, data)
        preprocessor = model.preprocessor
        sources = [e.source for e in data.examples]
        if data.examples[0].target is None:
            dataset = tf.data.Dataset.from_tensor_slices(sources).batch(batch_size)
            return dataset.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
        dataset = tf.data.Dataset.from_tensor_slices((sources, [e.target for e in data.examples]))
        if shuffle:
            dataset = dataset.shuffle(min(SHUFFLE_BUFFER, len(sources)), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        dataset = dataset.batch(batch_size, drop_remainder=repeat)
        return dataset.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def _generate(self, model, data, options):
        beams = int(options.get("num_beams") or 1)
        settings = {"sampler": "beam", "num_beams": beams} if beams > 1 else {"sampler": "greedy"}
        if options.get("length_penalty") is not None:
            settings["length_penalty"] = float(options["length_penalty"])
        return model.generate([e.source for e in data.examples], batch_size=options.get("batch_size") or 32,
                              **settings)

    def evaluate(self, model, data, options):
        import sacrebleu

        if data.examples[0].target is None:
            raise AlbertInputError(f"{data.path}: no targets to evaluate against (--label-column)")
        hypotheses = self._generate(model, data, options)
        references = [e.target for e in data.examples]
        lowercase = bool(model.preprocessor.vocabulary.lowercase)
        tokenize = data.metadata.get("bleu_tokenize") or "13a"
        # force: WordPiece output is detokenized by joining words ("cat ."), which sacrebleu would
        # otherwise take for already-tokenized text and warn about on every evaluation.
        bleu = sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize, lowercase=lowercase, force=True)
        if lowercase:  # chrF has no lowercase switch: compare as the model can write
            hypotheses, references = [h.lower() for h in hypotheses], [r.lower() for r in references]
        chrf = sacrebleu.corpus_chrf(hypotheses, [references])
        return {"bleu": float(bleu.score), "chrf": float(chrf.score)}

    def predict(self, model, data, options):
        for example, prediction in zip(data.examples, self._generate(model, data, options)):
            yield {"line": example.line, "source": example.source, "prediction": prediction}
