"""SavedModel export of an `AlbertSeq2Seq`: source text in, generated text out, decoding in the graph.

The signature `serving_default(text [B] string)` tokenizes with the model's own in-graph
`AlbertTokenizer`, runs the encoder and the whole decoding loop (the keras-hub sampler's
`while_loop` with the key/value cache), and detokenizes in the graph: SentencePiece with
tensorflow-text's detokenizer, WordPiece by joining the pieces as `modeling.generation.detokenize`
does. It returns `generated_text [B]` and `generated_ids [B, max_length - 1]`. The decoding
settings (greedy or a beam width, length penalty, maximum length) are fixed at export and recorded
in `assets.extra/albert_keras.json` under `generation`. Loading needs only tensorflow and
tensorflow_text.

TFLite: greedy decoding converts (builtin ops plus the tokenizer's tensorflow-text ops; ids out,
the vocabulary beside the file): `albert_keras.export.generation_tflite`. Beam search and
detokenizing do not (see that module and docs/generation.md).
"""

import os

from albert_keras.errors import AlbertInputError

GENERATION_SIGNATURES = ("serving_default",)


def _wordpiece_detokenizer(vocabulary, special_ids):
    import tensorflow as tf

    tokens = tf.constant(vocabulary.tokens())
    special = tf.constant(sorted(special_ids), tf.int32)

    def detokenize(ids, lengths):
        ragged = tf.RaggedTensor.from_tensor(ids, lengths=lengths)
        keep = tf.reduce_all(tf.not_equal(tf.expand_dims(ragged, -1), special), axis=-1)
        pieces = tf.gather(tokens, tf.ragged.boolean_mask(ragged, keep))
        text = tf.strings.reduce_join(pieces, axis=-1, separator=" ")
        text = tf.strings.regex_replace(text, " ##", "")
        # Twice: each pass joins every other pair of neighbouring CJK characters (RE2 has no lookahead).
        for _ in range(2):
            text = tf.strings.regex_replace(text, r"(\p{Han}) (\p{Han})", r"\1\2")
        return text

    return detokenize


def _sentencepiece_detokenizer(vocabulary, special_ids):
    import tensorflow as tf
    import tensorflow_text as tf_text

    detokenizer = tf_text.SentencepieceTokenizer(model=vocabulary.data, out_type=tf.int32)
    special = tf.constant(sorted(special_ids), tf.int32)

    def detokenize(ids, lengths):
        ragged = tf.RaggedTensor.from_tensor(ids, lengths=lengths)
        keep = tf.reduce_all(tf.not_equal(tf.expand_dims(ragged, -1), special), axis=-1)
        return detokenizer.detokenize(tf.ragged.boolean_mask(ragged, keep))

    return detokenize, detokenizer


def export_seq2seq(model, export_dir, sampler="greedy", num_beams=4, length_penalty=0.6, max_length=None,
                   metadata=None, overwrite=False):
    """Write an `AlbertSeq2Seq` (with its preprocessor) as a text-to-text SavedModel.

    Args:
        model: an `AlbertSeq2Seq` built by `from_pretrained` (it carries the vocabulary).
        export_dir: the version directory, e.g. `saved_models/translate/1`.
        sampler: `"greedy"` or `"beam"` (random samplers are not served: their seed would be fixed).
        num_beams, length_penalty: beam search settings.
        max_length: decoder positions (default: the model's `max_target_length`).
        metadata: a dict written as `assets.extra/albert_keras.json`, with `generation` added.
        overwrite: replace an existing `export_dir`.

    Returns:
        `export_dir`.

    Example:
    ```python
    model = AlbertSeq2Seq.from_pretrained("runs/translation/pretrained")
    export_seq2seq(model, "saved_models/translate/1", sampler="beam", num_beams=4)
    # In a process with only tensorflow + tensorflow_text:
    #   served = tf.saved_model.load("saved_models/translate/1")
    #   served.signatures["serving_default"](text=tf.constant(["the cat sees a dog ."]))["generated_text"]
    ```
    """
    import keras
    import tensorflow as tf

    from albert_keras.export.saved_model import write_metadata
    from albert_keras.io_utils import atomic_directory
    from albert_keras.modeling.generation import make_sampler

    if model.preprocessor is None:
        raise AlbertInputError(f"{model.name}: no vocabulary; export a model loaded with from_pretrained")
    if sampler not in ("greedy", "beam"):
        raise AlbertInputError(f"--sampler: a served model decodes with greedy or beam, got {sampler!r}")
    max_length = int(max_length or model.max_target_length)
    settings = {"sampler": sampler, "num_beams": int(num_beams) if sampler == "beam" else 1,
                "length_penalty": float(length_penalty), "max_length": max_length}
    keras_sampler = make_sampler(sampler, num_beams=settings["num_beams"])
    tokenizer = model.preprocessor.tokenizer
    vocabulary = model.preprocessor.vocabulary
    special = model._special_generation_ids()
    special_ids = set(vocabulary.special_ids.values())
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(tokenizer)
    if vocabulary.kind == "sentencepiece":
        detokenize, detokenizer = _sentencepiece_detokenizer(vocabulary, special_ids)
        archive.track(detokenizer)
    else:
        detokenize = _wordpiece_detokenizer(vocabulary, special_ids)

    def serve(text):
        packed = tokenizer(text)
        rows = model.generation_tensor(packed["token_ids"], packed["padding_mask"], max_length, keras_sampler,
                                       use_cache=True, length_penalty=settings["length_penalty"])
        generated = rows[:, 1:]
        is_end = tf.cast(tf.equal(generated, special["sep"]), tf.int32)
        lengths = tf.where(tf.reduce_any(is_end > 0, axis=1), tf.argmax(is_end, axis=1, output_type=tf.int32),
                           tf.shape(generated)[1])
        return {"generated_text": detokenize(generated, lengths), "generated_ids": generated}

    archive.add_endpoint("serving_default", serve, input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    with atomic_directory(os.fspath(export_dir), overwrite=overwrite) as tmp:
        archive.write_out(tmp, verbose=False)
        write_metadata(tmp, {**(metadata or {}), "generation": settings, "signatures": list(GENERATION_SIGNATURES)})
    return os.fspath(export_dir)


def export_generation_directory(model_dir, version_dir, format, precision, sequence_length, metadata, generation,
                                overwrite=False, verbose=True):
    """What `export_model` does for a directory holding an `AlbertSeq2Seq` (a translation run's result).

    Args:
        model_dir: the pretrained directory.
        version_dir: `OUTPUT/VERSION`.
        format: `"saved_model"`, or `"tflite"` (greedy only, float32, ids out: `generation_tflite`).
        precision: only `"float32"`.
        sequence_length: the source length served.
        metadata: `export_metadata`'s record.
        generation: `{"num_beams", "length_penalty", "max_length"}` (beam search when `num_beams > 1`).
        overwrite, verbose: as `export_model`.

    Example:
    ```python
    export_model("runs/translation/pretrained", "saved_models/translate", generation={"num_beams": 4})
    ```
    """
    from albert_keras.modeling.seq2seq import AlbertSeq2Seq

    if precision != "float32":
        raise AlbertInputError(f"--precision {precision}: translation models export in float32 only")
    beams = int(generation.get("num_beams") or 1)
    if format == "tflite":
        return _export_tflite_directory(model_dir, version_dir, sequence_length, metadata, generation, beams,
                                        overwrite, verbose)
    model = AlbertSeq2Seq.from_pretrained(model_dir, source_length=sequence_length)
    export_seq2seq(model, version_dir, sampler="beam" if beams > 1 else "greedy", num_beams=beams,
                   length_penalty=generation.get("length_penalty", 0.6), max_length=generation.get("max_length"),
                   metadata=metadata, overwrite=overwrite)
    if verbose:
        print(f"wrote {version_dir} (SavedModel, text to text, {'beam ' + str(beams) if beams > 1 else 'greedy'}, "
              f"source length {sequence_length})")
    return version_dir


def _export_tflite_directory(model_dir, version_dir, sequence_length, metadata, generation, beams, overwrite,
                             verbose):
    from albert_keras.export.generation_tflite import export_seq2seq_tflite
    from albert_keras.modeling.seq2seq import AlbertSeq2Seq

    if beams > 1:
        raise AlbertInputError(f"--num-beams {beams}: a translation TFLite file decodes greedily only (beam search "
                               "does not convert to builtin ops; see docs/generation.md); export a SavedModel for beams")
    quantize = (metadata or {}).get("quantize") or "none"
    if quantize != "none":
        raise AlbertInputError(f"--quantize {quantize}: translation TFLite files are float32 only")
    model = AlbertSeq2Seq.from_pretrained(model_dir, source_length=sequence_length)
    report = export_seq2seq_tflite(model, version_dir, max_length=generation.get("max_length"), metadata=metadata,
                                   overwrite=overwrite)
    if verbose:
        print(f"wrote {report['path']}: {report['size_bytes'] / 1e6:.2f} MB, greedy, max length "
              f"{report['generation']['max_length']}, ids out (vocabulary {report['generation']['vocabulary']} beside "
              f"it), verified on {report['verified_sources']} sources, {report['ms_per_token']:.2f} ms/token")
    return version_dir
