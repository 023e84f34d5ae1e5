"""TFLite (LiteRT) export of an `AlbertSeq2Seq`: source text in, greedy-decoded ids out, loop in the file.

What converts (TF 2.21, builtin ops plus tensorflow-text's tokenizer ops, no Flex): the same
decoding graph the SavedModel serves (`GenerationMixin.generation_tensor`: the keras-hub
sampler's `tf.while_loop` with the key/value cache updated at the loop index) becomes one TFLite
`WHILE` op, with free batch and source lengths. One op in that graph has no TFLite kernel: Keras'
`ops.argmax` on floats maps -0.0 to -tiny first (a sign-bit test, `BitwiseAnd`), which the
converter emits as an unresolved custom op; the greedy sampler here picks the next token with
`tf.argmax` instead. Its inputs are softmax probabilities, never -0.0, so it picks the same token.

What does not: beam search (its beam ranking uses the same float `argmax`, and regathering the
cache across beams transposes a 7-D tensor, beyond TFLite's 6-D `TRANSPOSE`: both are left as
unresolved custom ops), and text out. Detokenizing needs string
joins and a regular expression (WordPiece) or tensorflow-text's SentencePiece detokenizer, none
of them TFLite builtins, so the file returns ids and the vocabulary file is written next to it:
`TFLiteGenerator` (Python) runs the file and detokenizes exactly as `generate()` does.

Files in the version directory: `model.tflite` (signature `serving_default(text [B] string) ->
generated_ids [B, max_length - 1] int32`, rows `generated ... [SEP] [PAD] ...`), the vocabulary
(`spiece.model` or `vocab.txt`), `albert_keras.json` (the generation settings under `generation`)
and `albert_export.json` (size, verification, latency).
"""

import json
import os
import time

import numpy as np

from albert_keras.errors import AlbertInputError

# The names `export_model` gives a TFLite version directory's files (exporter.py; not imported: exporter imports this).
TFLITE_FILE = "model.tflite"
REPORT_FILE = "albert_export.json"
METADATA_FILE = "albert_keras.json"
VOCABULARY_FILES = {"sentencepiece": "spiece.model", "wordpiece": "vocab.txt"}
VERIFICATION_SOURCES = (
    "ALBERT shares parameters across layers.",
    "Short.",
    "",
    "A longer sentence with digits 1,234.5 and punctuation; it is truncated if the source length is short.",
)


def tflite_greedy_sampler():
    """A keras-hub `GreedySampler` whose next token is `tf.argmax` (a TFLite builtin).

    Example:
    ```python
    model.generation_tensor(ids, mask, 16, tflite_greedy_sampler())
    ```
    """
    import tensorflow as tf
    from keras_hub.samplers import GreedySampler

    class TFLiteGreedySampler(GreedySampler):
        def get_next_token(self, probabilities):
            # keras.ops.argmax would add a sign-bit test (BitwiseAnd, no TFLite kernel) for -0.0,
            # which softmax probabilities never hold.
            return tf.argmax(probabilities, axis=-1, output_type=tf.int32)

    return TFLiteGreedySampler()


def convert_seq2seq(model, max_length=None):
    """TFLite bytes of greedy decoding for an `AlbertSeq2Seq`, with the tokenizer inside.

    Args:
        model: an `AlbertSeq2Seq` built by `from_pretrained` (it carries the vocabulary).
        max_length: decoder positions, `[CLS]` included (default: the model's `max_target_length`).

    Returns:
        `(tflite_bytes, packer)`: the packer is the in-file `AlbertTextPacker` (its ids are what
        the file decodes from).

    Example:
    ```python
    tflite_bytes, _ = convert_seq2seq(AlbertSeq2Seq.from_pretrained("runs/translation/pretrained"))
    ```
    """
    import tensorflow as tf

    from albert_keras.export.text import AlbertTextPacker
    from albert_keras.export.tflite import convert_function

    if model.preprocessor is None:
        raise AlbertInputError(f"{model.name}: no vocabulary; export a model loaded with from_pretrained")
    max_length = _check_max_length(model, max_length)
    tokenizer = model.preprocessor.tokenizer
    packer = AlbertTextPacker(model.preprocessor.vocabulary, tokenizer.sequence_length,
                              lowercase=tokenizer.lowercase, tflite_compatible=True)
    sampler = tflite_greedy_sampler()

    def serve(text):
        features = packer(text)
        rows = model.generation_tensor(features["token_ids"], features["padding_mask"], max_length, sampler,
                                       use_cache=True)
        return {"generated_ids": rows[:, 1:]}

    spec = [tf.TensorSpec([None], tf.string, name="text")]
    return convert_function(model, serve, spec, allow_custom_ops=True), packer


def _check_max_length(model, max_length):
    max_length = int(max_length or model.max_target_length)
    limit = model.encoder.config.max_position_embeddings
    if not 2 <= max_length <= limit:
        raise AlbertInputError(f"--max-length: {max_length} is outside [2, max_position_embeddings={limit}]")
    return max_length


def strip_generated(rows, end_id):
    """Lists of ids before the first `[SEP]` (the whole row when there is none), as `generate_ids` returns.

    Example:
    ```python
    strip_generated(np.array([[7, 8, 3, 0]]), 3)  # [[7, 8]]
    ```
    """
    out = []
    for row in np.asarray(rows).tolist():
        out.append(row[: row.index(end_id)] if end_id in row else row)
    return out


def verify_seq2seq_tflite(tflite_model, model, packer, max_length, texts=VERIFICATION_SOURCES, runs=3):
    """Run the file on `texts` one at a time and check its ids equal `generate_ids` (greedy) on the packer's ids.

    Returns:
        `{"verified_sources", "latency_ms", "ms_per_token"}`: the mean time of one source, and of
        one decoding step (steps run: the generated tokens plus `[SEP]`, at most `max_length - 1`).

    Raises:
        TFLiteVerificationError: a source decodes differently.

    Example:
    ```python
    verify_seq2seq_tflite("model.tflite", model, packer, max_length=32)
    ```
    """
    import tensorflow as tf

    from albert_keras.export.tflite import TFLiteVerificationError
    from albert_keras.export.tflite import interpreter

    runner = interpreter(tflite_model).get_signature_runner()
    end = model.preprocessor.vocabulary.special_ids["sep"]
    # One batch (padded to its longest source, as `generate()` pads), so the loop is traced once.
    features = packer(tf.constant(list(texts)))
    expected_rows = model.generate_ids(features["token_ids"].numpy(), features["padding_mask"].numpy(),
                                       max_length=max_length, sampler="greedy")
    seconds, steps = 0.0, 0
    for text, expected in zip(texts, expected_rows):
        request = np.array([text.encode("utf-8")], dtype=object)
        got = strip_generated(runner(text=request)["generated_ids"], end)[0]
        if got != expected:
            raise TFLiteVerificationError(f"TFLite decoding of {text!r} gives ids {got}, generate_ids {expected}")
        begin = time.perf_counter()
        for _ in range(runs):
            runner(text=request)
        seconds += (time.perf_counter() - begin) / runs
        steps += min(len(expected) + 1, max_length - 1)
    return {"verified_sources": len(texts), "latency_ms": 1000 * seconds / len(texts),
            "ms_per_token": 1000 * seconds / max(steps, 1)}


def export_seq2seq_tflite(model, version_dir, max_length=None, metadata=None, overwrite=False):
    """Write greedy decoding of an `AlbertSeq2Seq` as `model.tflite` (verified) with its vocabulary beside it.

    Args:
        model: an `AlbertSeq2Seq` built by `from_pretrained`.
        version_dir: the version directory, e.g. `tflite_models/translate/1`.
        max_length: decoder positions (default: the model's `max_target_length`).
        metadata: `export_metadata`'s record, written as `albert_keras.json` with `generation` added.
        overwrite: replace an existing `version_dir`.

    Returns:
        The report written as `albert_export.json` (`size_bytes`, `latency_ms`, `ms_per_token`, ...).

    Example:
    ```python
    model = AlbertSeq2Seq.from_pretrained("runs/translation/pretrained")
    export_seq2seq_tflite(model, "tflite_models/translate/1")
    TFLiteGenerator("tflite_models/translate/1")(["the cat sees a dog ."])
    ```
    """
    from albert_keras.export.tflite import tflite_input_shapes
    from albert_keras.io_utils import atomic_directory

    max_length = _check_max_length(model, max_length)
    tflite_bytes, packer = convert_seq2seq(model, max_length)
    vocabulary = model.preprocessor.vocabulary
    vocabulary_file = VOCABULARY_FILES[vocabulary.kind]
    settings = {"sampler": "greedy", "num_beams": 1, "max_length": max_length, "output": "generated_ids",
                "vocabulary": vocabulary_file, "lowercase": bool(packer.lowercase)}
    with atomic_directory(os.fspath(version_dir), overwrite=overwrite) as tmp:
        path = os.path.join(tmp, TFLITE_FILE)
        with open(path, "wb") as f:
            f.write(tflite_bytes)
        with open(os.path.join(tmp, vocabulary_file), "wb") as f:
            f.write(vocabulary.data)
        report = {"format": "tflite", "size_bytes": len(tflite_bytes), "generation": settings,
                  "input_shapes": tflite_input_shapes(path),
                  **verify_seq2seq_tflite(path, model, packer, max_length)}
        with open(os.path.join(tmp, REPORT_FILE), "w") as f:
            json.dump(report, f, indent=2, sort_keys=True)
        record = {**(metadata or {}), "generation": settings, "with_tokenizer": True,
                  "tflite_input_shapes": report["input_shapes"]}
        with open(os.path.join(tmp, METADATA_FILE), "w") as f:
            json.dump(record, f, indent=2, sort_keys=True)
    report["path"] = os.path.join(os.fspath(version_dir), TFLITE_FILE)
    return report


class TFLiteGenerator:
    """Run an exported translation `model.tflite` and detokenize its ids as `generate()` does.

    The file returns ids (TFLite has no builtin ops to detokenize); this reads the vocabulary
    written next to it. Needs `ai_edge_litert`, `tensorflow_text` (its tokenizer ops) and albert_keras.

    Args:
        directory: the export's version directory (`model.tflite`, `albert_keras.json`, the vocabulary).
        num_threads: interpreter threads (default: LiteRT's).

    Example:
    ```python
    generator = TFLiteGenerator("tflite_models/translate/1")
    generator(["the cat sees a dog ."])  # ["..."]
    generator.generate_ids(["the cat sees a dog ."])  # [[ids ...]]
    ```
    """

    def __init__(self, directory, num_threads=None):
        from albert_keras.export.tflite import interpreter
        from albert_keras.tokenization.vocabulary import load_vocabulary

        directory = os.fspath(directory)
        try:
            with open(os.path.join(directory, METADATA_FILE)) as f:
                settings = json.load(f)["generation"]
            vocabulary_path = os.path.join(directory, settings["vocabulary"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise AlbertInputError(f"{directory}: not a translation TFLite export ({error})") from None
        self.vocabulary = load_vocabulary(vocabulary_path, lowercase=settings.get("lowercase"))
        self.settings = settings
        self.runner = interpreter(os.path.join(directory, TFLITE_FILE), num_threads=num_threads).get_signature_runner()

    def generate_ids(self, sources):
        """Generated ids per source (without `[CLS]` and `[SEP]`), one source per interpreter call."""
        end = self.vocabulary.special_ids["sep"]
        out = []
        for text in sources:
            rows = self.runner(text=np.array([str(text).encode("utf-8")], dtype=object))["generated_ids"]
            out.extend(strip_generated(rows, end))
        return out

    def __call__(self, sources):
        """Generated text for a list of source strings."""
        from albert_keras.modeling.generation import detokenize

        return [detokenize(self.vocabulary, ids) for ids in self.generate_ids(sources)]
