"""`CreateDataSettings`: the create-data settings, checked once, shared by the local and the Beam runner.

Both runners (`create.py`, `beam.py`) and the CLI (`commands.py`) take one frozen settings object
instead of two lists of keywords, so a bad value is rejected in one place with one message
naming the argument and its flag, and both runners record the same `settings` in their manifests
(the manifest's `fingerprint` holds them: an output made by an earlier version with the same
settings is still up to date).
"""

import dataclasses
import os

from albert_keras.data import reader as reader_lib
from albert_keras.data.instances import InstanceOptions
from albert_keras.errors import AlbertInputError

INPUT_FORMATS = ("sentences", "paragraphs")
ON_BAD_LINE = ("skip", "error")
RUNNERS = ("local", "beam")
# Work unit of the Beam runner's count and record stages: big enough that per-element overhead
# vanishes, small enough that a 100 GB corpus gives thousands of units.
DEFAULT_SPLIT_BYTES = 64_000_000  # the CLI default, --beam-split-mb 64

# The CLI flag of each setting that has one, for messages that name both.
FLAGS = {
    "max_seq_length": "--max-seq-length", "max_predictions_per_seq": "--max-predictions-per-seq",
    "dupe_factor": "--dupe-factor", "masked_lm_prob": "--masked-lm-prob", "short_seq_prob": "--short-seq-prob",
    "ngram": "--ngram", "seed": "--seed", "num_shards": "--num-shards",
    "shuffle_buffer_size": "--shuffle-buffer", "compression": "--gzip", "input_format": "--input-format",
    "on_bad_line": "--on-bad-line", "official_nondeterministic": "--official-nondeterministic",
    "official_random_negatives": "--official-random-negatives",
    "official_random_replacement": "--official-random-replacement", "workers": "--workers",
    "split_bytes": "--beam-split-mb", "whole_word_segmenter": "--whole-word-segmenter", "chinese_ref": "--chinese-ref",
}
# Recorded in every manifest, in this order (the order of the manifests written before this class).
RECORDED = (
    "max_seq_length", "max_predictions_per_seq", "dupe_factor", "masked_lm_prob", "short_seq_prob", "ngram",
    "favor_shorter_ngram", "do_whole_word_mask", "lowercase", "seed", "num_shards", "shuffle_buffer_size",
    "compression", "input_format", "on_bad_line", "max_line_bytes", "max_document_bytes", "chunk_bytes",
    "official_nondeterministic", "official_random_negatives", "official_random_replacement",
)
# Settings that must be >= 1 (>= 0 for the shuffle buffer: 0 turns shuffling off).
_MINIMUM = {"dupe_factor": 1, "num_shards": 1, "workers": 1, "split_bytes": 1, "max_line_bytes": 1,
            "max_document_bytes": 1, "chunk_bytes": 1, "shuffle_buffer_size": 0}


def _named(field):
    flag = FLAGS.get(field)
    return f"{field} ({flag})" if flag else field


@dataclasses.dataclass(frozen=True)
class CreateDataSettings:
    """Everything that decides a create-data run's records, checked when built.

    Args:
        max_seq_length, max_predictions_per_seq, dupe_factor, masked_lm_prob, short_seq_prob,
            ngram, favor_shorter_ngram, do_whole_word_mask: the official flags (`dupe_factor`
            passes re-read the input, so memory does not grow with it).
        lowercase: normalize with lowercasing (the English models are uncased).
        seed: the random seed; the same inputs and seed give the same records.
        num_shards: number of output files.
        shuffle_buffer_size: records held for shuffling (bounds memory; 0 = no shuffling).
        compression: None or `"gzip"` (stored as TensorFlow names it: None or `"GZIP"`).
        input_format: `"sentences"` (one per line) or `"paragraphs"` (one per line, split here).
        on_bad_line: `"skip"` (count undecodable / over-long lines in the manifest) or `"error"`.
        max_line_bytes, max_document_bytes, chunk_bytes: memory bounds (see `reader`).
        official_nondeterministic, official_random_negatives, official_random_replacement:
            restore the official behaviour in place of deviations (a), (b), (c) (`instances`).
        whole_word_segmenter: `"jieba"` for Chinese whole-word masking with a WordPiece
            vocabulary, or None (see `create_pretraining_data`).
        chinese_ref: Hugging Face `run_chinese_ref.py` files, one per input file (local runner only).
        workers: processes of the local runner (the Beam runner's parallelism is its own).
        split_bytes: the Beam runner's work unit in bytes of text.

    Raises:
        AlbertInputError: one line naming the argument and its CLI flag.

    Example:
    ```python
    from albert_keras.data.settings import CreateDataSettings
    settings = CreateDataSettings(max_seq_length=64, num_shards=2, compression="gzip")
    print(settings.compression, settings.instance_options().max_seq_length)  # GZIP 64
    CreateDataSettings(num_shards=0)  # AlbertInputError: create-data: num_shards (--num-shards) must be >= 1, got 0
    ```
    """

    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    dupe_factor: int = 1
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    ngram: int = 3
    favor_shorter_ngram: bool = True
    do_whole_word_mask: bool = True
    lowercase: bool = True
    seed: int = 12345
    num_shards: int = 8
    shuffle_buffer_size: int = 20000
    compression: str | None = None
    input_format: str = "sentences"
    on_bad_line: str = "skip"
    max_line_bytes: int = reader_lib.DEFAULT_MAX_LINE_BYTES
    max_document_bytes: int = reader_lib.DEFAULT_MAX_DOCUMENT_BYTES
    chunk_bytes: int = reader_lib.DEFAULT_CHUNK_BYTES
    official_nondeterministic: bool = False
    official_random_negatives: bool = False
    official_random_replacement: bool = False
    whole_word_segmenter: str | None = None
    chinese_ref: tuple | None = None
    workers: int = 1
    split_bytes: int = DEFAULT_SPLIT_BYTES

    def __post_init__(self):
        if self.input_format not in INPUT_FORMATS:
            raise AlbertInputError(f"create-data: {_named('input_format')} must be one of {INPUT_FORMATS}, "
                                   f"got {self.input_format!r}")
        if self.on_bad_line not in ON_BAD_LINE:
            raise AlbertInputError(f"create-data: {_named('on_bad_line')} must be 'skip' or 'error', "
                                   f"got {self.on_bad_line!r}")
        compression = (self.compression or "").upper() or None
        if compression not in (None, "GZIP"):
            raise AlbertInputError(f"create-data: {_named('compression')} must be None or 'gzip', "
                                   f"got {self.compression!r}")
        object.__setattr__(self, "compression", compression)  # frozen: normalized once, here
        for name, minimum in _MINIMUM.items():
            value = getattr(self, name)
            if int(value) < minimum:
                raise AlbertInputError(f"create-data: {_named(name)} must be >= {minimum}, got {value}")
        if self.whole_word_segmenter and self.chinese_ref:
            raise AlbertInputError("create-data: whole_word_segmenter (--whole-word-segmenter) and chinese_ref "
                                   "(--chinese-ref): give one or the other")
        if self.chinese_ref:
            references = self.chinese_ref
            if isinstance(references, (str, bytes, os.PathLike)):
                references = [references]
            object.__setattr__(self, "chinese_ref", tuple(os.fspath(path) for path in references))
        else:
            object.__setattr__(self, "chinese_ref", None)
        self.instance_options()  # its own checks, with the flag named

    @classmethod
    def build(cls, settings=None, **changes):
        """`settings` (or the defaults) with `changes` applied, checked.

        What both runners do with their arguments, so that `create_pretraining_data(...,
        max_seq_length=64)` and `create_pretraining_data(..., settings=CreateDataSettings(
        max_seq_length=64))` are the same run.

        Example:
        ```python
        CreateDataSettings.build(None, num_shards=2).num_shards  # 2
        ```
        """
        if settings is None:
            return cls(**changes)
        return dataclasses.replace(settings, **changes) if changes else settings

    def instance_options(self):
        """The `InstanceOptions` of these settings.

        Raises:
            AlbertInputError: a value `InstanceOptions` rejects, named with its flag.
        """
        try:
            return InstanceOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(InstanceOptions)})
        except ValueError as error:
            message = str(error)
            field = message.split(" ", 1)[0]  # InstanceOptions' messages start with the field name
            if field in FLAGS:
                message = message.replace(field, _named(field), 1)
            raise AlbertInputError(f"create-data: {message}") from None

    def reader_options(self):
        """The keyword arguments of `reader.iter_chunks` these settings fix."""
        return {name: getattr(self, name) for name in ("max_line_bytes", "max_document_bytes", "chunk_bytes",
                                                       "on_bad_line")}

    def check_runner(self, runner):
        """Reject what `runner` (`"local"` or `"beam"`) cannot do, in one line naming the flag.

        The Beam runner's work units start mid-file, so it cannot draw random negatives from the
        local run's chunks that span files, nor pair reference lines counted from a file's start.
        """
        if runner not in RUNNERS:
            raise AlbertInputError(f"create-data: --runner must be one of {RUNNERS}, got {runner!r}")
        if runner != "beam":
            return
        if self.chinese_ref:
            raise AlbertInputError(
                "create-data --runner beam: --chinese-ref pairs reference lines with input lines counted from "
                "the start of each file; use the local runner for it, or --whole-word-segmenter jieba")
        if self.official_random_negatives:
            raise AlbertInputError(
                "create-data --runner beam: --official-random-negatives draws from the local run's work "
                "chunks, which span files; use the local runner for it")
        if self.workers != 1:
            raise AlbertInputError(
                f"create-data --runner beam: {_named('workers')} is the local runner's; the Beam runner's "
                "parallelism is set in --beam-options (e.g. --direct_num_workers=4)")

    def recorded(self, runner, references=None):
        """The `settings` a manifest records (and its fingerprint compares) for `runner`.

        Args:
            runner: `"local"` or `"beam"` (the Beam run records `split_bytes` too).
            references: the checked `chinese_ref` paths (`chinese_ref.check_reference_files`).

        Returns:
            A JSON-able dict: the keys the manifests have always had, `whole_word_segmenter` and
            `chinese_ref` only when used (so older fingerprints still match).
        """
        settings = {name: getattr(self, name) for name in RECORDED}
        if self.whole_word_segmenter:
            settings["whole_word_segmenter"] = self.whole_word_segmenter
        if references:
            settings["chinese_ref"] = list(references)
        if runner == "beam":
            settings["split_bytes"] = self.split_bytes
        return settings
