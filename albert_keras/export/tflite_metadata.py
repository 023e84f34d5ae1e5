"""TFLite models for the mobile text APIs: MediaPipe Tasks and the TFLite Task Library.

MediaPipe's `TextClassifier` / `TextEmbedder` and the Task Library's `BertNLClassifier` /
`BertQuestionAnswerer` take a `.tflite` file and do tokenization and label handling themselves,
from the file's TFLite metadata. They expect:

- three int32 inputs `[1, sequence_length]` that the metadata names `ids`, `mask` and
  `segment_ids` (MediaPipe's BERT preprocessor pads every text to the full length);
- the tokenizer as the subgraph's input process unit: a SentencePiece model
  (`SentencePieceTokenizerOptions`) or a WordPiece `vocab.txt` (`BertTokenizerOptions`, the
  Chinese models' kind);
- one output: class probabilities with the label names as a `TENSOR_AXIS_LABELS` file
  (classifiers), an embedding (embedders), or `end_logits` and `start_logits` (question answering).

How the metadata is written: the publishers' writers cannot be used beside TensorFlow here.
MediaPipe 1.2.3's `metadata_writers` fail to import from its PyPI wheel (`No module named
'mediapipe.tasks.cc'`), and tflite-support 0.4.4's pin protobuf 3.20 (TF 2.21 needs protobuf 6)
and need a system libusb. MediaPipe's wheel does ship the flatbuffers code generated from the
published schemas (`mediapipe.tasks.metadata.metadata_schema_py_generated` for
`metadata_schema.fbs`, `schema_py_generated` for the TFLite model), which import with the
`flatbuffers` package only; so this module fills the schema's own object API
(`ModelMetadataT`, ...) and packs it as the populator does: the metadata flatbuffer (file
identifier `M001`) goes into a model buffer named by a `TFLITE_METADATA` entry, and the
associated files (SentencePiece model, labels) are a zip archive appended to the model. A user
needs only `pip install albert-keras[mobile]` (mediapipe) beside TensorFlow.

The SentencePiece model written into the metadata is `albert_spm.folded_spm_model`'s: ALBERT's
normalization folded into the model's own normalization rules, so the apps' tokenizers, which
only run the SentencePiece model, reproduce ALBERT's normalization (see docs/export.md for the
measured agreement). A WordPiece vocabulary is written as it is: MediaPipe's BERT tokenizer
splits on whitespace, punctuation and CJK characters and runs the same greedy `##` WordPiece,
after lowercasing ASCII; it does not strip accents or drop control characters as the official
`FullTokenizer` does (docs/export.md has the measured agreement).
"""

import io
import logging
import os
import time
import zipfile

import numpy as np

from albert_keras.errors import AlbertInputError
from albert_keras.export import signatures as sigs

# What each mobile API takes, by model kind.
MOBILE_APIS = {
    sigs.CLASSIFIER: "MediaPipe TextClassifier / Task Library BertNLClassifier",
    sigs.ENCODER: "MediaPipe TextEmbedder",
    sigs.QUESTION_ANSWERER: "Task Library BertQuestionAnswerer",
}
INPUT_NAMES = ("ids", "mask", "segment_ids")
_FEATURE_OF_INPUT = {"ids": "token_ids", "mask": "padding_mask", "segment_ids": "segment_ids"}
METADATA_NAME = "TFLITE_METADATA"
# 1.1.0 introduced SentencePieceTokenizerOptions and input process units (metadata_schema.fbs).
MIN_PARSER_VERSION = "1.1.0"
SPM_FILE = "spiece.model"
VOCAB_FILE = "vocab.txt"
LABEL_FILE = "labels.txt"
TOKENIZER_KINDS = ("sentencepiece", "wordpiece")


def _schemas():
    """The generated flatbuffers modules for metadata_schema.fbs and the TFLite schema."""
    try:
        from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata_fb
        from mediapipe.tasks.metadata import schema_py_generated as model_fb
    except ImportError as error:
        raise AlbertInputError(
            f"--metadata: needs the mediapipe package ({error}); pip install 'albert-keras[mobile]'"
        ) from None
    return metadata_fb, model_fb


def check_mobile_kind(model):
    """Raise `AlbertInputError` unless a mobile text API can run `model`; return its kind.

    Example:
    ```python
    check_mobile_kind(classifier)  # "classifier"
    ```
    """
    kind = sigs.model_kind(model)
    if kind == sigs.CLASSIFIER and sigs.num_outputs(model) == 1:
        kind = "regression classifier"
    if kind not in MOBILE_APIS:
        supported = "; ".join(f"{k} ({api})" for k, api in MOBILE_APIS.items())
        raise AlbertInputError(
            f"--metadata: the mobile text APIs do not run a {kind} ({type(model).__name__}); "
            f"they take: {supported}"
        )
    return kind


def mobile_function(model, sequence_length):
    """The `[1, sequence_length]` ids/mask/segment_ids -> single-task-output function to convert.

    Outputs: `probability` [1, C] (classifier), `embedding` [1, H] (encoder: the L2-normalized
    masked mean, the project's sentence embedding), `start_logits`/`end_logits` [1, T] (QA).

    Example:
    ```python
    function, signature = mobile_function(classifier, 64)
    ```
    """
    import tensorflow as tf

    kind = check_mobile_kind(model)
    signature = [tf.TensorSpec([1, sequence_length], tf.int32, name=name) for name in INPUT_NAMES]

    def serve(ids, mask, segment_ids):
        features = {"token_ids": ids, "padding_mask": mask, "segment_ids": segment_ids}
        if kind == sigs.CLASSIFIER:
            return {"probability": sigs.task_outputs(model, features)["probabilities"]}
        if kind == sigs.ENCODER:
            return {"embedding": sigs.task_outputs(model, features)["sentence_embedding"]}
        raw = model(features, training=False)
        return {
            "start_logits": tf.cast(raw["start_logits"], tf.float32),
            "end_logits": tf.cast(raw["end_logits"], tf.float32),
        }

    return serve, signature


def convert_mobile_model(model, sequence_length, quantize="none", calibration=None):
    """Convert `model` to TFLite bytes (builtin ops only) with the mobile APIs' inputs, no metadata.

    `tflite.convert_function`'s route (SavedModel -> `from_saved_model`; the other routes lose the
    weights on TF 2.21), with this module's fixed-shape function instead of the ragged one.
    Full-integer modes (`full-int8`, `int16x8`) need `calibration`: `mobile_features` of the
    representative texts (`ids`/`mask`/`segment_ids`, as the apps pack them).

    Example:
    ```python
    tflite_bytes = convert_mobile_model(classifier, 64, quantize="dynamic-int8")
    ```
    """
    from albert_keras.export.tflite import QUANTIZE_CHOICES
    from albert_keras.export.tflite import convert_function

    if quantize not in QUANTIZE_CHOICES:
        raise AlbertInputError(f"quantize: must be one of {QUANTIZE_CHOICES}, got {quantize!r}")
    function, signature = mobile_function(model, sequence_length)
    return convert_function(model, function, signature, quantize, calibration=calibration)


def _signature_names(model_t):
    """`{tensor index: signature name}` over the inputs and outputs of the serving signature."""
    names = {}
    for signature in model_t.signatureDefs or []:
        for tensor_map in (signature.inputs or []) + (signature.outputs or []):
            name = tensor_map.name.decode() if isinstance(tensor_map.name, bytes) else tensor_map.name
            names[tensor_map.tensorIndex] = name
    return names


def _tensor_metadata(metadata_fb, name, description, stats=None, files=None):
    tensor = metadata_fb.TensorMetadataT()
    tensor.name = name
    tensor.description = description
    tensor.content = metadata_fb.ContentT()
    tensor.content.contentPropertiesType = metadata_fb.ContentProperties.FeatureProperties
    tensor.content.contentProperties = metadata_fb.FeaturePropertiesT()
    if stats is not None:
        tensor.stats = metadata_fb.StatsT()
        tensor.stats.min, tensor.stats.max = [stats[0]], [stats[1]]
    tensor.associatedFiles = files
    return tensor


def _associated_file(metadata_fb, name, description, file_type):
    file = metadata_fb.AssociatedFileT()
    file.name, file.description, file.type = name, description, file_type
    return file


_OUTPUT_DESCRIPTIONS = {
    "probability": "Probabilities of the labels (softmax over the classifier's logits).",
    "embedding": "Sentence embedding: L2-normalized mean of the final hidden states over real tokens.",
    "start_logits": "Answer-start logits per token position.",
    "end_logits": "Answer-end logits per token position.",
}


def build_metadata(kind, input_order, output_order, name="albert", description=None, version="1",
                   tokenizer="sentencepiece"):
    """The packed TFLite metadata flatbuffer (`M001`) for a mobile model.

    Args:
        kind: `"classifier"`, `"encoder"` or `"question_answerer"`.
        input_order: the subgraph's input names in tensor order (a permutation of `INPUT_NAMES`).
        output_order: the subgraph's output names in tensor order.
        name, description, version: shown by the apps' model info.
        tokenizer: `"sentencepiece"` (`SentencePieceTokenizerOptions` naming `spiece.model`) or
            `"wordpiece"` (`BertTokenizerOptions` naming `vocab.txt`).

    Example:
    ```python
    metadata = build_metadata("classifier", ["ids", "mask", "segment_ids"], ["probability"])
    ```
    """
    import flatbuffers

    metadata_fb, _ = _schemas()
    file_type = metadata_fb.AssociatedFileType
    input_descriptions = {
        "ids": "Token ids: [CLS] text [SEP], padded with 0.",
        "mask": "1 on real tokens, 0 on padding.",
        "segment_ids": "0 on the first text, 1 on the second (question answering context).",
    }
    subgraph = metadata_fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [_tensor_metadata(metadata_fb, n, input_descriptions[n]) for n in input_order]
    outputs = []
    for output in output_order:
        files, stats = None, None
        if output == "probability":
            stats = (0.0, 1.0)
            files = [
                _associated_file(metadata_fb, LABEL_FILE, "Label names, one a line.", file_type.TENSOR_AXIS_LABELS)
            ]
        outputs.append(_tensor_metadata(metadata_fb, output, _OUTPUT_DESCRIPTIONS[output], stats, files))
    subgraph.outputTensorMetadata = outputs
    unit = metadata_fb.ProcessUnitT()
    if tokenizer == "wordpiece":
        unit.options = metadata_fb.BertTokenizerOptionsT()
        unit.options.vocabFile = [_associated_file(metadata_fb, VOCAB_FILE, "WordPiece vocabulary, one token a line.",
                                                   file_type.VOCABULARY)]
        unit.optionsType = metadata_fb.ProcessUnitOptions.BertTokenizerOptions
    else:
        unit.options = metadata_fb.SentencePieceTokenizerOptionsT()
        unit.options.sentencePieceModel = [_associated_file(
            metadata_fb, SPM_FILE, "SentencePiece model with ALBERT's normalization.", file_type.DESCRIPTIONS)]
        unit.optionsType = metadata_fb.ProcessUnitOptions.SentencePieceTokenizerOptions
    subgraph.inputProcessUnits = [unit]
    model = metadata_fb.ModelMetadataT()
    model.name = name
    model.description = description or f"ALBERT {kind} ({MOBILE_APIS[kind]})"
    model.version = str(version)
    model.author = "albert-keras"
    model.minParserVersion = MIN_PARSER_VERSION
    model.subgraphMetadata = [subgraph]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"M001")
    return bytes(builder.Output())


def add_metadata(tflite_bytes, kind, spm_proto, labels=None, name="albert", version="1", tokenizer="sentencepiece"):
    """Return `tflite_bytes` with metadata and the associated files (zip appended), as the populator does.

    Args:
        tflite_bytes: a model from `convert_mobile_model`.
        kind: its kind (`check_mobile_kind`).
        spm_proto: bytes of the vocabulary the apps tokenize with: the SentencePiece model, or
            with `tokenizer="wordpiece"` the `vocab.txt` file.
        labels: label names (classifiers; default `0..C-1`).
        tokenizer: `"sentencepiece"` or `"wordpiece"` (see `build_metadata`).

    Example:
    ```python
    with_metadata = add_metadata(tflite_bytes, "classifier", spm_bytes, labels=["neg", "pos"])
    ```
    """
    import flatbuffers

    _, model_fb = _schemas()
    model_t = model_fb.ModelT.InitFromPackedBuf(bytearray(tflite_bytes), 0)
    names = _signature_names(model_t)
    subgraph = model_t.subgraphs[0]
    input_order = [names[index] for index in subgraph.inputs]
    output_order = [names[index] for index in subgraph.outputs]
    if sorted(input_order) != sorted(INPUT_NAMES):
        raise AlbertInputError(f"model inputs {input_order}: expected {INPUT_NAMES}")
    if tokenizer not in TOKENIZER_KINDS:
        raise AlbertInputError(f"tokenizer: must be one of {TOKENIZER_KINDS}, got {tokenizer!r}")
    metadata = build_metadata(kind, input_order, output_order, name=name, version=version, tokenizer=tokenizer)
    buffer = model_fb.BufferT()
    buffer.data = np.frombuffer(metadata, np.uint8)
    model_t.buffers.append(buffer)
    entry = model_fb.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model_t.buffers) - 1
    model_t.metadata = [m for m in (model_t.metadata or []) if _text(m.name) != METADATA_NAME] + [entry]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model_t.Pack(builder), file_identifier=b"TFL3")
    files = {VOCAB_FILE if tokenizer == "wordpiece" else SPM_FILE: spm_proto}
    if kind == sigs.CLASSIFIER:
        width = int(subgraph.tensors[subgraph.outputs[0]].shape[-1])
        labels = [str(label) for label in (labels or range(width))]
        if len(labels) != width:
            raise AlbertInputError(f"labels: {len(labels)} names for {width} classes")
        files[LABEL_FILE] = ("\n".join(labels) + "\n").encode("utf-8")
    # The populator appends the associated files as a zip archive after the flatbuffer; the
    # runtimes find them through the archive's central directory at the end of the file.
    out = io.BytesIO(bytes(builder.Output()))
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a") as archive:
        for file_name, data in files.items():
            archive.writestr(file_name, data)
    return out.getvalue()


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def read_metadata(tflite_bytes):
    """`(ModelMetadataT, {file name: bytes})` of a model written by `add_metadata`.

    Example:
    ```python
    metadata, files = read_metadata(open("model.tflite", "rb").read())
    files["labels.txt"]
    ```
    """
    metadata_fb, model_fb = _schemas()
    model = model_fb.Model.GetRootAsModel(bytearray(tflite_bytes), 0)
    found = None
    for i in range(model.MetadataLength()):
        if _text(model.Metadata(i).Name()) == METADATA_NAME:
            found = model.Buffers(model.Metadata(i).Buffer()).DataAsNumpy().tobytes()
    if found is None:
        raise AlbertInputError(f"model: no {METADATA_NAME} metadata")
    metadata = metadata_fb.ModelMetadataT.InitFromPackedBuf(bytearray(found), 0)
    with zipfile.ZipFile(io.BytesIO(bytes(tflite_bytes))) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    return metadata, files


def mobile_features(spm_proto, texts, sequence_length, text_b=None):
    """ids/mask/segment_ids `[N, L]` as the apps pack them: the tokenizer only, padded to `L`.

    `spm_proto` is SentencePiece model bytes, or a WordPiece `Vocabulary` (`load_vocabulary`),
    whose official ids (and `[CLS]`/`[SEP]`) are used.

    This is the reference for what MediaPipe's BERT preprocessor feeds the model. MediaPipe
    ASCII-lowercases the text first, which changes nothing for an uncased folded model (its rules
    lowercase anyway) but does for a cased one (`export_mobile_tflite` warns).

    Example:
    ```python
    features = mobile_features(spm_bytes, ["Hello world."], 64)
    ```
    """
    from albert_keras.tokenization.vocabulary import Vocabulary

    if isinstance(spm_proto, Vocabulary):  # WordPiece: the vocabulary's own ids and specials
        encode = spm_proto.encode
        CLS_ID, SEP_ID = spm_proto.special_ids["cls"], spm_proto.special_ids["sep"]
    else:
        import sentencepiece

        from albert_keras.tokenization.sentencepiece import CLS_ID
        from albert_keras.tokenization.sentencepiece import SEP_ID

        encode = sentencepiece.SentencePieceProcessor(model_proto=spm_proto).encode
    count = len(texts)
    ids = np.zeros((count, sequence_length), np.int32)
    segments = np.zeros_like(ids)
    for row, text in enumerate(texts):
        first = encode(text)
        if text_b is None:
            row_ids, row_segments = [CLS_ID] + first[: sequence_length - 2] + [SEP_ID], None
        else:
            second = encode(text_b[row])
            first = first[: max(sequence_length - 3 - len(second), 1)]
            second = second[: sequence_length - 3 - len(first)]
            row_ids = [CLS_ID] + first + [SEP_ID] + second + [SEP_ID]
            row_segments = [0] * (len(first) + 2) + [1] * (len(second) + 1)
        ids[row, : len(row_ids)] = row_ids
        if row_segments is not None:
            segments[row, : len(row_segments)] = row_segments
    return {"ids": ids, "mask": (ids != 0).astype(np.int32), "segment_ids": segments}


def verify_mobile_model(tflite_bytes, model, features, threshold, min_label_agreement=None, min_cosine=None):
    """Run the file in ai_edge_litert row by row and compare with the Keras model on `features`.

    Args:
        min_label_agreement: classifiers: the least share of rows whose top label is the Keras one
            (the quantized files' gate, `tflite.MIN_LABEL_AGREEMENT`); None: no gate.
        min_cosine: encoders: the least mean cosine between the embeddings; None: no gate.

    Returns:
        dict with `max_diff`, `label_agreement` (top label, classifiers; 1.0 otherwise),
        `embedding_cosine` (encoders, else None), `latency_ms` (median of one row, one thread),
        `size_bytes`.

    Example:
    ```python
    verify_mobile_model(tflite_bytes, classifier, mobile_features(spm, texts, 64), 1e-4)
    ```
    """
    import tensorflow as tf

    from albert_keras.export.tflite import TFLiteVerificationError
    from albert_keras.export.tflite import interpreter

    function, _ = mobile_function(model, features["ids"].shape[1])
    runner = interpreter(tflite_bytes, num_threads=1).get_signature_runner()
    max_diff, same, latencies, cosines = 0.0, 0, [], []
    rows = len(features["ids"])
    for row in range(rows):
        inputs = {name: features[name][row : row + 1] for name in INPUT_NAMES}
        start = time.perf_counter()
        try:
            actual = runner(**inputs)
        except RuntimeError as error:  # a kernel refusing its inputs: the file cannot run
            raise TFLiteVerificationError(f"mobile TFLite model fails to run: {str(error).splitlines()[0]}") from error
        latencies.append((time.perf_counter() - start) * 1000)
        expected = function(**{name: tf.constant(value) for name, value in inputs.items()})
        for key, want in expected.items():
            got = np.asarray(actual[key])
            if not np.all(np.isfinite(got)):
                raise TFLiteVerificationError(f"mobile TFLite model outputs NaN or inf ({key})")
            max_diff = max(max_diff, float(np.max(np.abs(got - want.numpy()))))
            if key == "probability":
                same += int(np.argmax(got) == np.argmax(want.numpy()))
            if key == "embedding":
                want = want.numpy().ravel().astype(np.float64)
                got = got.ravel().astype(np.float64)
                cosines.append(float(want @ got / max(np.linalg.norm(want) * np.linalg.norm(got), 1e-30)))
    if max_diff > threshold:
        raise TFLiteVerificationError(f"mobile TFLite model differs by {max_diff:.3g} > threshold {threshold:.3g}")
    agreement = same / rows if "probability" in expected else 1.0
    if min_label_agreement is not None and "probability" in expected and agreement < min_label_agreement:
        raise TFLiteVerificationError(
            f"mobile TFLite model gives the Keras model's labels on {agreement:.1%} of {rows} verification texts "
            f"(at least {min_label_agreement:.0%} required); nothing written: use a milder --quantize"
        )
    cosine = float(np.mean(cosines)) if cosines else None
    if min_cosine is not None and cosine is not None and cosine < min_cosine:
        raise TFLiteVerificationError(
            f"mobile TFLite embeddings have mean cosine {cosine:.4f} with the Keras model's on {rows} verification "
            f"texts (at least {min_cosine} required); nothing written: use a milder --quantize"
        )
    return {
        "max_diff": max_diff,
        "label_agreement": agreement,
        "embedding_cosine": cosine,
        "latency_ms": float(np.median(latencies)),
        "size_bytes": len(tflite_bytes),
    }


def export_mobile_tflite(
    model,
    output_path,
    spm_model,
    sequence_length,
    quantize="none",
    lowercase=True,
    labels=None,
    name="albert",
    version="1",
    threshold=None,
    verify_texts=None,
    calibration=None,
):
    """Write a `.tflite` that MediaPipe Tasks / the TFLite Task Library load as is.

    Args:
        model: an ALBERT classifier, encoder or question answerer.
        output_path: the `.tflite` file (written atomically, after verification).
        spm_model: the vocabulary (path or bytes): a SentencePiece model, or a WordPiece
            `vocab.txt` (MediaPipe's BERT tokenizer; see the module docstring).
        sequence_length: the fixed input length the apps pad to.
        quantize: `"none"`, `"float16"`, `"dynamic-int8"`, `"full-int8"` or `"int16x8"` (the
            full-integer files keep int32 inputs and a float32 output, which is what the apps
            feed and read, so MediaPipe runs them as it runs the float file).
        lowercase: the model's casing (folded into the SentencePiece model's normalization).
        labels: classifier label names (default: `model.labels`, else `0..C-1`).
        threshold: largest accepted |TFLite - Keras| (default: `tflite.DEFAULT_THRESHOLDS`).
        verify_texts: texts for the verification run (default: `tflite.DEFAULT_SAMPLE_TEXTS`, plus
            `tflite.verification_texts()` for quantized files, whose label agreement (classifiers)
            or embedding cosine (encoders) must pass the gate `convert_to_tflite` applies).
        calibration: full-integer modes: a one-text-a-line file or a list of representative texts
            (default: `quantization.calibration_texts()`), packed as the apps pack them.

    Returns:
        the verification report (full-integer files also `float_ops` and `calibration_texts`).

    Example:
    ```python
    export_mobile_tflite(classifier, "model.tflite", "spiece.model", 128, quantize="dynamic-int8")
    ```
    """
    from albert_keras.export import albert_spm
    from albert_keras.export import quantization
    from albert_keras.export.tflite import DEFAULT_SAMPLE_TEXTS
    from albert_keras.export.tflite import DEFAULT_THRESHOLDS
    from albert_keras.export.tflite import MIN_EMBEDDING_COSINE
    from albert_keras.export.tflite import MIN_LABEL_AGREEMENT
    from albert_keras.export.tflite import verification_texts
    from albert_keras.io_utils import atomic_write

    kind = check_mobile_kind(model)
    if spm_model is None:
        raise AlbertInputError("--metadata: needs the model's vocabulary (spiece.model or --vocab)")
    from albert_keras.tokenization.vocabulary import load_vocabulary

    vocabulary = load_vocabulary(spm_model, lowercase=lowercase)
    _schemas()  # fail before converting when mediapipe is missing
    if not lowercase:
        logging.getLogger("albert_keras.export").warning(
            "--metadata: MediaPipe's BERT preprocessor lowercases ASCII letters before tokenizing, so a cased "
            "model sees lowercased ASCII text in MediaPipe apps (non-ASCII letters keep their case)"
        )
    if vocabulary.kind == "wordpiece":
        # MediaPipe gives each line its number as id; ALBERT's reader gives a repeated token no id
        # of its own (later lines move up), so the file is rewritten one id a line.
        written, reference = ("\n".join(vocabulary.tokens()) + "\n").encode("utf-8"), vocabulary
    else:
        written = reference = albert_spm.folded_spm_model(vocabulary.data, lowercase=lowercase)
    pairs = kind == sigs.QUESTION_ANSWERER
    calibration_features = None
    if quantize in quantization.FULL_INTEGER:
        texts = calibration if isinstance(calibration, (list, tuple)) else quantization.calibration_texts(calibration)
        if not texts:
            raise AlbertInputError(f"--calibration: no texts to calibrate {quantize} on")
        calibration_features = mobile_features(reference, list(texts), sequence_length,
                                               text_b=list(texts)[::-1] if pairs else None)
    elif calibration is not None:
        raise AlbertInputError(f"--calibration: only for --quantize full-int8 or int16x8, not {quantize}")
    tflite_bytes = convert_mobile_model(model, sequence_length, quantize=quantize, calibration=calibration_features)
    model_bytes = len(tflite_bytes)
    labels = labels or getattr(model, "labels", None)
    tflite_bytes = add_metadata(tflite_bytes, kind, written, labels=labels, name=name, version=version,
                                tokenizer=vocabulary.kind)
    if verify_texts is None:
        verify_texts = DEFAULT_SAMPLE_TEXTS + (verification_texts() if quantize != "none" else ())
    texts = list(verify_texts)
    features = mobile_features(reference, texts, sequence_length, text_b=texts[::-1] if pairs else None)
    threshold = DEFAULT_THRESHOLDS[quantize] if threshold is None else threshold
    # The gate of the ids files (`tflite._quality_gates`): labels kept, or embeddings close.
    gated = quantize != "none"
    report = verify_mobile_model(
        tflite_bytes, model, features, threshold,
        min_label_agreement=MIN_LABEL_AGREEMENT if gated and kind == sigs.CLASSIFIER else None,
        min_cosine=MIN_EMBEDDING_COSINE if gated and kind == sigs.ENCODER else None,
    )
    if calibration_features is not None:
        report["float_ops"] = quantization.float_ops(tflite_bytes)
        report["calibration_texts"] = len(calibration_features["ids"])
    with atomic_write(output_path) as f:
        f.write(tflite_bytes)
    report.update(path=os.fspath(output_path), quantize=quantize, metadata=True, mobile_api=MOBILE_APIS[kind],
                  model_bytes=model_bytes)
    return report
