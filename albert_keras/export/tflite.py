"""TFLite (LiteRT) export with optional in-model tokenizer, checked after every conversion.

Route: the serving function is written out as a SavedModel (Keras' `ExportArchive`) and converted
with `tf.lite.TFLiteConverter.from_saved_model`. Two tempting routes are wrong on TF 2.21 /
Keras 3: `from_keras_model` raises, and `from_concrete_functions(..., keras_model)` converts
without error but drops the weights, so the model outputs NaN. Keras' own `format="litert"` always
allows Flex (`SELECT_TF_OPS`) ops, which the `ai-edge-litert` interpreter cannot run; here only
TFLite builtins are allowed, plus tensorflow-text's custom ops when the tokenizer is inside
(`FastSentencepieceTokenize`, `RaggedTensorToTensor`), which
`ai_edge_litert.interpreter.InterpreterWithCustomOps` runs with
`tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS`.

After converting, `convert_to_tflite` runs the file on sample inputs, compares it with the Keras
model and raises `TFLiteVerificationError` on NaN or on a difference above the variant's
threshold. A quantized model must also keep the float model's answers on a verification set of
real sentences: its labels (classifiers, taggers, multiple choice) agree on at least
`MIN_LABEL_AGREEMENT` of them, or its embeddings (encoders) have a mean cosine of at least
`MIN_EMBEDDING_COSINE` with the float ones; otherwise nothing is written.
"""

import os
import tempfile
import time

import numpy as np

from albert_keras.errors import AlbertInputError
from albert_keras.export import signatures as sigs
from albert_keras.export.quantization import FULL_INTEGER

QUANTIZE_CHOICES = ("none", "float16", "dynamic-int8") + FULL_INTEGER

# Largest accepted |TFLite - Keras| over the float outputs, per variant. float32 differs only by
# op ordering; float16 weights carry ~1e-3 relative error; dynamic-range int8 quantizes weights
# and activations of every matmul (measured: ~3e-2 on ALBERT-base's pooled output). Full-integer
# files quantize every activation with calibrated ranges; their gate is the label agreement or
# embedding cosine, the bound only catches a broken file.
DEFAULT_THRESHOLDS = {"none": 1e-4, "float16": 2e-2, "dynamic-int8": 0.2, "full-int8": 0.5, "int16x8": 0.5}

# Gates for quantized models (float16, dynamic-int8, full-int8, int16x8), on `verification_texts()`.
MIN_LABEL_AGREEMENT = 0.98
MIN_EMBEDDING_COSINE = 0.99
VERIFICATION_SENTENCES = 64
_LABEL_KINDS = (sigs.CLASSIFIER, sigs.MULTIPLE_CHOICE, sigs.TOKEN_CLASSIFIER)
_EMBEDDING_OUTPUTS = ("sentence_embedding", "pooled_output")

DEFAULT_SAMPLE_TEXTS = (
    "ALBERT shares parameters across layers.",
    "",
    "Short.",
    "A longer sentence with Ünïcödé, digits 1,234.5 and punctuation; it should be truncated if the "
    "model's maximum length is short, and padded otherwise.",
)


class TFLiteVerificationError(RuntimeError):
    """The converted model disagrees with the Keras model (or outputs NaN)."""


def verification_texts(count=VERIFICATION_SENTENCES):
    """`count` sentences of the embedded corpus, spread over its documents (deterministic).

    Example:
    ```python
    len(verification_texts(16))  # 16
    ```
    """
    from albert_keras.corpus import embedded_corpus

    sentences = [s for document in embedded_corpus() for s in document if s.strip()]
    step = max(len(sentences) // count, 1)
    return tuple(sentences[::step][:count])


def _quality_gates(model, quantize):
    """`(min_label_agreement, min_cosine)` for a model kind and quantization (None: no gate)."""
    if quantize == "none":
        return None, None
    kind = sigs.model_kind(model)
    if kind in _LABEL_KINDS and (sigs.num_outputs(model) or 0) > 1:
        return MIN_LABEL_AGREEMENT, None
    if kind == sigs.ENCODER:
        return None, MIN_EMBEDDING_COSINE
    return None, None


def embedding_cosine(expected, actual):
    """Mean cosine between the float and converted embeddings (rows of the embedding outputs).

    Example:
    ```python
    embedding_cosine({"pooled_output": a}, {"pooled_output": a})  # 1.0
    ```
    """
    cosines = []
    for key in _EMBEDDING_OUTPUTS:
        if key not in expected:
            continue
        want = np.asarray(expected[key], np.float64).reshape(len(expected[key]), -1)
        got = np.asarray(actual[key], np.float64).reshape(want.shape)
        norms = np.linalg.norm(want, axis=1) * np.linalg.norm(got, axis=1)
        cosines.append(np.sum(want * got, axis=1) / np.maximum(norms, 1e-30))
    return float(np.mean(np.concatenate(cosines))) if cosines else None


def interpreter(tflite_model, num_threads=None):
    """An `ai_edge_litert` interpreter for a `.tflite` path or bytes, with tensorflow-text's ops.

    Example:
    ```python
    runner = interpreter("model.tflite").get_signature_runner()
    runner(text=np.array([b"hello"], dtype=object))
    ```
    """
    from ai_edge_litert import interpreter as litert
    import tensorflow_text as tf_text

    kwargs = {"model_path": tflite_model} if isinstance(tflite_model, str) else {"model_content": tflite_model}
    return litert.InterpreterWithCustomOps(
        custom_op_registerers=tf_text.tflite_registrar.SELECT_TFTEXT_OPS,
        num_threads=num_threads or os.cpu_count(),
        **kwargs,
    )


def tflite_input_shapes(tflite_model):
    """`{input name: shape}` of a `.tflite` file's serving signature; -1 marks a free dimension.

    Read from the file's own signature (`shape_signature`), so it says what the file accepts,
    whatever the export was asked for.

    Example:
    ```python
    tflite_input_shapes("model.tflite")  # {"token_ids": [-1, -1], "segment_ids": [-1, -1], ...}
    ```
    """
    runner = interpreter(tflite_model, num_threads=1).get_signature_runner()
    return {name: [int(d) for d in details["shape_signature"]] for name, details in runner.get_input_details().items()}


def describe_input_shapes(shapes, max_length=None):
    """One line for the input shapes of `tflite_input_shapes`: fixed or free batch and length.

    Args:
        shapes: `{name: shape}`, -1 for a free dimension.
        max_length: the model's longest sequence (`max_position_embeddings`), said for a free length.

    Example:
    ```python
    describe_input_shapes({"token_ids": [-1, 24]})  # "token_ids [batch, 24] (fixed: pad every input to 24 tokens)"
    ```
    """
    groups = {}
    for name, shape in shapes.items():
        groups.setdefault(tuple(shape), []).append(name)
    groups = {shape: sorted(names) for shape, names in groups.items()}
    parts = []
    for shape, names in groups.items():
        dims = ["batch" if i == 0 and d == -1 else "any length" if d == -1 else str(d) for i, d in enumerate(shape)]
        text = f"{', '.join(names)} [{', '.join(dims)}]"
        if len(shape) >= 2 and shape[-1] == -1 and max_length:
            text += f" (up to {int(max_length)} tokens)"
        elif len(shape) >= 2 and shape[-1] > 0:
            text += f" (fixed: pad every input to {shape[-1]} tokens)"
        parts.append(text)
    return "; ".join(parts)


def _serving_function(model, spm_model, with_tokenizer, sequence_length, lowercase, max_answer_length):
    """The function to convert, its input signature and the packer (None without tokenizer)."""
    import tensorflow as tf

    from albert_keras.export.saved_model import model_sequence_length
    from albert_keras.export.text import AlbertTextPacker

    kind = sigs.model_kind(model)
    if not with_tokenizer:
        spec = sigs.ids_input_signature(model)
        if sequence_length:
            # A static sequence dimension for delegates that need static shapes (batch stays free).
            spec = {
                name: tf.TensorSpec(tuple(value.shape[:-1]) + (int(sequence_length),), value.dtype, name=value.name)
                for name, value in spec.items()
            }

        def serve_ids(token_ids, segment_ids, padding_mask):
            features = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}
            return sigs.task_outputs(model, features, max_answer_length=max_answer_length)

        return serve_ids, [spec[name] for name in sigs.FEATURES], None
    if spm_model is None:
        raise AlbertInputError("spm_model: a SentencePiece model is required for --with-tokenizer")
    packer = AlbertTextPacker(
        spm_model,
        model_sequence_length(model, sequence_length),
        lowercase=lowercase,
        tflite_compatible=True,
    )
    text = tf.TensorSpec([None], tf.string, name="text")
    if kind == sigs.MULTIPLE_CHOICE:
        second = tf.TensorSpec([None, sigs.num_outputs(model)], tf.string, name="choices")

        def serve_choices(text, choices):
            features = sigs.pack_choices(packer, text, choices)
            return sigs.task_outputs(model, features, max_answer_length=max_answer_length)

        return serve_choices, [text, second], packer
    if kind == sigs.QUESTION_ANSWERER:

        def serve_pair(text, text_b):
            features = packer(text, text_b)
            return sigs.task_outputs(model, features, max_answer_length=max_answer_length)

        return serve_pair, [text, tf.TensorSpec([None], tf.string, name="text_b")], packer

    def serve_text(text):
        return sigs.task_outputs(model, packer(text), max_answer_length=max_answer_length)

    return serve_text, [text], packer


def convert_model(
    model,
    quantize="none",
    spm_model=None,
    with_tokenizer=False,
    sequence_length=None,
    lowercase=True,
    max_answer_length=sigs.DEFAULT_MAX_ANSWER_LENGTH,
    calibration=None,
):
    """Convert `model` to TFLite flatbuffer bytes (no verification; see `convert_to_tflite`).

    `calibration` (full-integer modes only) is the packed features of the representative texts
    (`quantization.packed_features`).

    Returns:
        `(tflite_bytes, packer)`; `packer` is the in-model `AlbertTextPacker` (or None).

    Example:
    ```python
    tflite_bytes, _ = convert_model(encoder, quantize="dynamic-int8")
    ```
    """
    function, input_signature, packer = _serving_function(
        model, spm_model, with_tokenizer, sequence_length, lowercase, max_answer_length
    )
    bytes_ = convert_function(
        model, function, input_signature, quantize, allow_custom_ops=with_tokenizer, calibration=calibration
    )
    return bytes_, packer


def convert_function(model, function, input_signature, quantize="none", allow_custom_ops=False, calibration=None):
    """TFLite bytes of `function` (a serving function over `model`), builtin ops only.

    The one conversion route for every TFLite file: the function is written out as a SavedModel
    (Keras' `ExportArchive`) and converted `from_saved_model`, quantized as `quantize` says.

    Args:
        model: the Keras model the function calls (tracked, so its weights are in the file).
        function: the serving function.
        input_signature: its `tf.TensorSpec`s.
        quantize: one of `QUANTIZE_CHOICES`.
        allow_custom_ops: allow tensorflow-text's custom ops (the tokenizer inside).
        calibration: full-integer modes: packed `{token_ids, segment_ids, padding_mask}` arrays of
            the representative texts (the graph is traced integer-friendly: `quantization.py`).

    Example:
    ```python
    tflite_bytes = convert_function(encoder, serve, [spec], quantize="float16")
    ```
    """
    import contextlib

    import keras
    import tensorflow as tf

    from albert_keras.export import quantization

    if quantize not in QUANTIZE_CHOICES:
        raise AlbertInputError(f"quantize: must be one of {QUANTIZE_CHOICES}, got {quantize!r}")
    full_integer = quantize in FULL_INTEGER
    if full_integer and calibration is None:
        raise AlbertInputError(f"quantize: {quantize} needs calibration features (representative texts, packed)")
    from albert_keras.modeling.fusion import without_layer_norm_fusion

    archive = keras.export.ExportArchive()
    archive.track(model)
    tracing = quantization.integer_friendly_tracing(model) if full_integer else contextlib.nullcontext()
    with without_layer_norm_fusion(), tracing, tempfile.TemporaryDirectory(prefix="albert_tflite_") as tmp:
        # Traced here; TFLite's kernels gain nothing from the oneDNN LayerNorm form.
        archive.add_endpoint("serving_default", function, input_signature=input_signature)
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serving_default"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if allow_custom_ops:
            converter.allow_custom_ops = True
        if full_integer:
            choices = sigs.num_outputs(model) if sigs.model_kind(model) == sigs.MULTIPLE_CHOICE else None
            dataset = quantization.representative_dataset(calibration, input_signature, num_choices=choices)
            quantization.configure_converter(converter, quantize, dataset)
        elif quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()


def sample_inputs(model, packer=None, texts=DEFAULT_SAMPLE_TEXTS, sequence_length=32):
    """Inputs for verifying a converted model: text arrays with a tokenizer, else token ids.

    Example:
    ```python
    inputs = sample_inputs(classifier)  # random token ids [4, 32]
    ```
    """
    kind = sigs.model_kind(model)
    text = np.array([t.encode("utf-8") for t in texts], dtype=object)
    if packer is not None:
        if kind == sigs.MULTIPLE_CHOICE:
            count = sigs.num_outputs(model)
            choices = np.array([[text[(i + c) % len(text)] for c in range(count)] for i in range(len(text))], dtype=object)
            return {"text": text, "choices": choices}
        if kind == sigs.QUESTION_ANSWERER:
            return {"text": text, "text_b": text[::-1].copy()}
        return {"text": text}
    rng = np.random.default_rng(0)
    vocab = _vocab_size(model)
    shape = (len(texts), sequence_length)
    if kind == sigs.MULTIPLE_CHOICE:
        shape = (len(texts), sigs.num_outputs(model), sequence_length)
    ids = rng.integers(5, vocab, size=shape).astype(np.int32)
    lengths = np.linspace(3, sequence_length, len(texts)).astype(int)
    mask = (np.arange(sequence_length) < lengths.reshape((-1,) + (1,) * (len(shape) - 1))).astype(np.int32)
    mask = np.broadcast_to(mask, shape).copy()
    ids = np.where(mask == 1, ids, 0).astype(np.int32)
    ids[..., 0] = 2
    segments = np.zeros(shape, np.int32)
    segments[..., sequence_length // 2 :] = 1
    segments *= mask
    return {"token_ids": ids, "segment_ids": segments, "padding_mask": mask}


def _max_length(model):
    from albert_keras.export.saved_model import model_sequence_length

    return model_sequence_length(model)


def _vocab_size(model):
    config = getattr(getattr(model, "encoder", model), "config", None)
    if config is not None:
        return config.vocab_size
    return getattr(getattr(model, "encoder", model), "vocabulary_size", 100)


def reference_outputs(model, inputs, packer=None, max_answer_length=sigs.DEFAULT_MAX_ANSWER_LENGTH):
    """The Keras model's outputs for `inputs`, through the same packing as the TFLite graph.

    Example:
    ```python
    expected = reference_outputs(classifier, sample_inputs(classifier))
    ```
    """
    import tensorflow as tf

    if packer is None:
        features = {name: tf.constant(inputs[name]) for name in sigs.FEATURES}
    else:
        text_b = inputs.get("text_b", inputs.get("choices"))
        features = sigs.text_features(
            model, packer, tf.constant(inputs["text"]), None if text_b is None else tf.constant(text_b)
        )
    outputs = sigs.task_outputs(model, features, max_answer_length=max_answer_length)
    return {key: value.numpy() for key, value in outputs.items()}


def compare_outputs(expected, actual):
    """`(max |diff| over float outputs, agreement of integer outputs, any NaN)`.

    Example:
    ```python
    max_diff, label_agreement, has_nan = compare_outputs(expected, runner(**inputs))
    ```
    """
    max_diff, agreement, has_nan = 0.0, 1.0, False
    for key, want in expected.items():
        got = np.asarray(actual[key])
        if got.shape != want.shape:
            raise TFLiteVerificationError(f"output {key}: shape {got.shape}, expected {want.shape}")
        if np.issubdtype(want.dtype, np.floating):
            has_nan = has_nan or not np.all(np.isfinite(got))
            if want.size:
                max_diff = max(max_diff, float(np.max(np.abs(got.astype(np.float64) - want))))
        elif want.size:
            agreement = min(agreement, float(np.mean(got == want)))
    return max_diff, agreement, has_nan


def verify_tflite(tflite_model, model, packer=None, inputs=None, threshold=1e-4, runs=5, num_threads=None,
                  min_label_agreement=None, min_cosine=None):
    """Run a converted model on sample inputs and compare it with the Keras model.

    Args:
        tflite_model: `.tflite` path or bytes.
        model: the Keras model it was converted from.
        packer: the in-model `AlbertTextPacker` when the tokenizer is inside.
        inputs: dict of numpy inputs (defaults to `sample_inputs`).
        threshold: largest accepted max |diff| over the float outputs.
        runs: timed calls for the latency figure (median).
        num_threads: interpreter threads (default: all cores).
        min_label_agreement: smallest accepted agreement of the integer outputs (labels, tags).
        min_cosine: smallest accepted mean cosine of the embedding outputs.

    Returns:
        dict with `max_diff`, `label_agreement`, `embedding_cosine`, `latency_ms`, `size_bytes`.

    Raises:
        TFLiteVerificationError: NaN/inf in the outputs, max |diff| above `threshold`, or a gate
            (`min_label_agreement`, `min_cosine`) not met.

    Example:
    ```python
    tflite_bytes, packer = convert_model(classifier, quantize="float16")
    verify_tflite(tflite_bytes, classifier, threshold=2e-2)["max_diff"]
    ```
    """
    inputs = inputs if inputs is not None else sample_inputs(model, packer)
    runner = interpreter(tflite_model, num_threads=num_threads).get_signature_runner()
    try:
        actual = runner(**inputs)
    except RuntimeError as error:  # e.g. a variable the converter dropped: the file cannot run
        raise TFLiteVerificationError(f"TFLite model fails to run: {str(error).splitlines()[0]}") from error
    expected = reference_outputs(model, inputs, packer)
    max_diff, agreement, has_nan = compare_outputs(expected, actual)
    latencies = []
    for _ in range(runs):
        start = time.perf_counter()
        runner(**inputs)
        latencies.append((time.perf_counter() - start) * 1000)
    size = os.path.getsize(tflite_model) if isinstance(tflite_model, str) else len(tflite_model)
    cosine = embedding_cosine(expected, actual)
    report = {
        "max_diff": max_diff,
        "label_agreement": agreement,
        "embedding_cosine": cosine,
        "latency_ms": float(np.median(latencies)),
        "size_bytes": size,
    }
    if has_nan:
        raise TFLiteVerificationError(f"TFLite model outputs NaN or inf (report: {report})")
    if max_diff > threshold:
        raise TFLiteVerificationError(
            f"TFLite model differs from the Keras model by {max_diff:.3g} > threshold {threshold:.3g}"
        )
    rows = len(next(iter(inputs.values())))
    if min_label_agreement is not None and agreement < min_label_agreement:
        raise TFLiteVerificationError(
            f"TFLite model gives the Keras model's labels on {agreement:.1%} of {rows} verification inputs "
            f"(at least {min_label_agreement:.0%} required); nothing written: use a milder --quantize"
        )
    if min_cosine is not None and cosine is not None and cosine < min_cosine:
        raise TFLiteVerificationError(
            f"TFLite embeddings have mean cosine {cosine:.4f} with the Keras model's on {rows} verification "
            f"inputs (at least {min_cosine} required); nothing written: use a milder --quantize"
        )
    return report


def convert_to_tflite(
    model,
    output_path,
    quantize="none",
    spm_model=None,
    with_tokenizer=False,
    sequence_length=None,
    lowercase=True,
    max_answer_length=sigs.DEFAULT_MAX_ANSWER_LENGTH,
    threshold=None,
    verify_texts=None,
    verbose=True,
    calibration=None,
):
    """Convert `model` to a `.tflite` file, then verify it against the Keras model.

    The file is written only after verification passes (atomically), so a model that outputs NaN
    or drifts past the threshold never lands on disk.

    Args:
        model: an ALBERT encoder or task model.
        output_path: the `.tflite` file to write.
        quantize: `"none"` (float32), `"float16"` (float16 weights), `"dynamic-int8"`
            (dynamic-range int8: int8 weights, activations quantized on the fly), `"full-int8"`
            (int8 weights and activations, ranges calibrated on `calibration`) or `"int16x8"`
            (16-bit activations, 8-bit weights). Full-integer files take token ids (no tokenizer
            inside: calibration runs the graph without tensorflow-text's ops) and need `spm_model`.
        spm_model: the SentencePiece model (path or bytes), required with `with_tokenizer`.
        with_tokenizer: put normalization, SentencePiece and packing inside the model, so it takes
            raw strings (`text`, plus `text_b` for QA or `choices` for multiple choice).
        sequence_length: longest packed sequence (default: the model's maximum).
        lowercase: lowercase and strip accents (tokenizer inside only).
        max_answer_length: longest answer span (question answerers).
        threshold: largest accepted max |diff| (default: `DEFAULT_THRESHOLDS[quantize]`).
        verify_texts: texts for the verification run (default: `DEFAULT_SAMPLE_TEXTS` for float32;
            for quantized models `verification_texts()`, on which the label agreement or embedding
            cosine gate must hold).
        verbose: print size, latency and max difference.
        calibration: full-integer modes: a one-text-a-line file of representative texts, or a list
            of texts (default: sentences of the embedded corpus other than the verification ones).

    Returns:
        the verification report (`max_diff`, `label_agreement`, `latency_ms`, `size_bytes`,
        `input_shapes`; full-integer files also `float_ops`, the ops left in float32 and why).

    Example:
    ```python
    convert_to_tflite(classifier, "model.tflite", quantize="dynamic-int8",
                      spm_model="spiece.model", with_tokenizer=True)
    ```
    """
    from albert_keras.export import quantization
    from albert_keras.io_utils import atomic_write

    full_integer = quantize in FULL_INTEGER
    features = None
    if full_integer:
        if with_tokenizer:
            raise AlbertInputError(
                f"--quantize {quantize}: not with --with-tokenizer (calibration runs the graph without "
                "tensorflow-text's ops); export the ids model, or use dynamic-int8 with the tokenizer inside"
            )
        if spm_model is None:
            raise AlbertInputError(f"--quantize {quantize}: needs the model's vocabulary to tokenize the calibration texts")
        texts = calibration if isinstance(calibration, (list, tuple)) else quantization.calibration_texts(calibration)
        if not texts:
            raise AlbertInputError(f"--calibration: no texts to calibrate {quantize} on")
        features = quantization.packed_features(
            texts, spm_model, sequence_length or min(_max_length(model), 128), lowercase=lowercase,
            pairs=sigs.model_kind(model) in sigs.PAIR_KINDS,
        )
    elif calibration is not None:
        raise AlbertInputError(f"--calibration: only for --quantize full-int8 or int16x8, not {quantize}")
    tflite_bytes, packer = convert_model(
        model,
        quantize=quantize,
        spm_model=spm_model,
        with_tokenizer=with_tokenizer,
        sequence_length=sequence_length,
        lowercase=lowercase,
        max_answer_length=max_answer_length,
        calibration=features,
    )
    threshold = DEFAULT_THRESHOLDS[quantize] if threshold is None else threshold
    min_label_agreement, min_cosine = _quality_gates(model, quantize)
    if verify_texts is None:
        verify_texts = DEFAULT_SAMPLE_TEXTS if quantize == "none" else DEFAULT_SAMPLE_TEXTS + verification_texts()
    lengths = [int(sequence_length)] if sequence_length else [32]
    if packer is None and not sequence_length:
        # A free-length ids file is checked at two lengths: a length baked into the graph (a
        # broadcast, a slice) shows only when the input is resized.
        lengths = [min(32, _max_length(model))]
        lengths.append(max(lengths[0] // 2 - 1, 3))
    checks = []
    for length in lengths:
        inputs = sample_inputs(model, packer, texts=verify_texts, sequence_length=length)
        if full_integer:
            # Real sentences, not random ids: the gate asks whether the answers survive on text.
            inputs = quantization.packed_inputs(model, verify_texts, spm_model, length, lowercase)
        checks.append((inputs, verify_tflite(
            tflite_bytes, model, packer=packer, inputs=inputs, threshold=threshold,
            min_label_agreement=min_label_agreement, min_cosine=min_cosine, runs=1 if checks else 5,
        )))
    inputs, report = checks[0]
    report["max_diff"] = max(check["max_diff"] for _, check in checks)
    report["label_agreement"] = min(check["label_agreement"] for _, check in checks)
    report["input_shapes"] = tflite_input_shapes(tflite_bytes)
    if full_integer:
        report["float_ops"] = quantization.float_ops(tflite_bytes)
        report["calibration_texts"] = len(features["token_ids"])
    if packer is None:
        report["verified_lengths"] = lengths
    with atomic_write(output_path) as f:
        f.write(tflite_bytes)
    report.update(path=os.fspath(output_path), quantize=quantize, with_tokenizer=bool(with_tokenizer))
    if verbose:
        print(
            f"{output_path}: {report['size_bytes'] / 1e6:.2f} MB, quantize={quantize}, "
            f"tokenizer={'inside' if with_tokenizer else 'no'}, latency {report['latency_ms']:.1f} ms "
            f"(batch {len(inputs[next(iter(inputs))])}), max|diff| {report['max_diff']:.3g} "
            f"(threshold {threshold:.3g}), label agreement {report['label_agreement']:.3f}; "
            f"inputs {describe_input_shapes(report['input_shapes'], _max_length(model))}"
            + (f"; float ops: {quantization.describe_float_ops(report['float_ops'])}" if full_integer else "")
        )
    return report
