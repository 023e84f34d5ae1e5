"""`inspect_artifact`: what a pretrained directory, SavedModel or TFLite model holds and was made with.

One report for the three artifacts a model passes through: its class and arguments, labels,
config, tokenizer (SentencePiece model, casing, sequence length), precision, and for exports the
albert-keras version and the fingerprint of the pretrained directory they came from (read from
`albert_keras.json`, which `albert-keras export` writes into `assets.extra/` or beside the
`.tflite` file), plus the serving signatures with their inputs and outputs.

Example:
```python
report = inspect_artifact("saved_models/sentiment")  # the newest version
print(format_report(report))
report["precision"], report["labels"], sorted(report["signatures"])
```
"""

import json
import os

from albert_keras.errors import AlbertInputError

PRETRAINED = "pretrained directory"
SAVED_MODEL = "SavedModel"
TFLITE = "TFLite model"


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise AlbertInputError(f"{path}: unreadable JSON ({error})") from None


def _spm_summary(path):
    from albert_keras.tokenization.vocabulary import load_vocabulary

    vocabulary = load_vocabulary(path)
    return {"path": path, "kind": vocabulary.kind, "pieces": vocabulary.vocabulary_size(), "sha256": vocabulary.sha256()}


def _resolve(path):
    """`(kind, concrete path, version or None)` for a path, a TF Serving base path taking its newest version."""
    path = os.fspath(path)
    if os.path.isfile(path):
        if path.endswith(".tflite"):
            return TFLITE, path, None
        raise AlbertInputError(f"{path}: not a .tflite file, SavedModel or pretrained directory")
    if not os.path.isdir(path):
        raise AlbertInputError(f"{path}: not found")
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return SAVED_MODEL, path, None
    if os.path.isfile(os.path.join(path, "model.tflite")):
        return TFLITE, os.path.join(path, "model.tflite"), None
    from albert_keras.modeling.pretrained import CONFIG_FILE

    if os.path.isfile(os.path.join(path, CONFIG_FILE)):
        return PRETRAINED, path, None
    versions = sorted(int(name) for name in os.listdir(path) if name.isdigit() and os.path.isdir(os.path.join(path, name)))
    if versions:
        kind, concrete, _ = _resolve(os.path.join(path, str(versions[-1])))
        return kind, concrete, versions[-1]
    raise AlbertInputError(
        f"{path}: neither a pretrained directory (albert_config.json), a SavedModel (saved_model.pb), a "
        "TFLite model (model.tflite) nor a base path of numbered versions"
    )


def _inspect_pretrained(path):
    from albert_keras.config import AlbertConfig
    from albert_keras.modeling.pretrained import CONFIG_FILE
    from albert_keras.modeling.pretrained import TOKENIZER_FILE
    from albert_keras.modeling.pretrained import pretrained_fingerprint
    from albert_keras.modeling.pretrained import read_model_description
    from albert_keras.modeling.pretrained import read_tokenizer_settings
    from albert_keras.modeling.pretrained import spm_model_path

    description = read_model_description(path)
    settings = read_tokenizer_settings(path)
    spm = spm_model_path(path)
    return {
        "class": description["class"],
        "arguments": description["arguments"],
        "labels": description["arguments"].get("labels"),
        "config": AlbertConfig.from_json_file(os.path.join(path, CONFIG_FILE)).to_dict(),
        "tokenizer": {
            "spiece_model": _spm_summary(spm) if spm else None,
            "lowercase": settings["lowercase"],
            "sequence_length": settings["sequence_length"],
            "recorded": os.path.isfile(os.path.join(path, TOKENIZER_FILE)),
        },
        # save_pretrained writes float32 weights; precision is chosen when a model is exported or run.
        "precision": "float32 weights",
        "fingerprint": pretrained_fingerprint(path),
    }


def _spec(spec):
    return {"dtype": spec.dtype.name, "shape": None if spec.shape.rank is None else list(spec.shape.as_list())}


def saved_model_signatures(path):
    """`{name: {"inputs": {name: {dtype, shape}}, "outputs": {...}}}` of a SavedModel, loaded with TensorFlow.

    Example:
    ```python
    saved_model_signatures("saved_models/sentiment/1")["serving_default"]["inputs"]
    # {"text": {"dtype": "string", "shape": [None]}}
    ```
    """
    import tensorflow as tf

    try:
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops the text signatures use)
    except ImportError:
        pass
    try:
        loaded = tf.saved_model.load(path)
    except (OSError, ValueError, tf.errors.OpError) as error:
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AlbertInputError(f"{path}: TensorFlow cannot load this SavedModel ({text})") from None
    signatures = {}
    for name, function in loaded.signatures.items():
        inputs = function.structured_input_signature[1]
        outputs = function.structured_outputs
        signatures[name] = {
            "inputs": {key: _spec(spec) for key, spec in sorted(inputs.items())},
            "outputs": {key: _spec(spec) for key, spec in sorted(outputs.items())},
        }
    return signatures


def tflite_signatures(path):
    """The signature runners of a `.tflite` file, with each input's and output's dtype and shape.

    Example:
    ```python
    tflite_signatures("tflite_models/sentiment/1/model.tflite")["serving_default"]["inputs"]
    ```
    """
    from albert_keras.export.tflite import interpreter

    try:
        runtime = interpreter(path, num_threads=1)
    except (ValueError, RuntimeError) as error:
        raise AlbertInputError(f"{path}: LiteRT cannot load this model ({error})") from None
    signatures = {}
    for name in runtime.get_signature_list():
        runner = runtime.get_signature_runner(name)

        def describe(details):
            return {
                key: {"dtype": getattr(value["dtype"], "__name__", str(value["dtype"])),
                      "shape": [int(d) for d in value["shape_signature"]]}
                for key, value in sorted(details.items())
            }

        signatures[name] = {"inputs": describe(runner.get_input_details()), "outputs": describe(runner.get_output_details())}
    return signatures


def inspect_artifact(path, signatures=True):
    """Describe a pretrained directory, a SavedModel or a TFLite model.

    Args:
        path: a pretrained directory, a SavedModel directory, a `.tflite` file (or the export
            version directory holding `model.tflite`), or a TF Serving base path (its newest
            numbered version is inspected).
        signatures: also load exports to list their signatures (TensorFlow / LiteRT).

    Returns:
        a JSON-able dict: `kind`, `path`, `version`, `class`, `arguments`, `labels`, `config`,
        `tokenizer`, `precision`, and for exports `albert_keras_version`, `source_fingerprint`,
        `metadata` (the export's whole `albert_keras.json`, or None when it has none) and
        `signatures`.

    Raises:
        AlbertInputError: the path is none of these.

    Example:
    ```python
    inspect_artifact("runs/sentiment")["tokenizer"]["lowercase"]
    ```
    """
    kind, concrete, version = _resolve(path)
    report = {"kind": kind, "path": concrete, "version": version}
    if kind == PRETRAINED:
        report.update(_inspect_pretrained(concrete))
        return report
    from albert_keras.export.exporter import METADATA_FILE

    if kind == SAVED_MODEL:
        metadata_path = os.path.join(concrete, "assets.extra", METADATA_FILE)
    else:
        metadata_path = os.path.join(os.path.dirname(os.path.abspath(concrete)), METADATA_FILE)
    metadata = _read_json(metadata_path) if os.path.isfile(metadata_path) else None
    known = metadata or {}
    report.update(
        {
            "class": known.get("model_class"),
            "arguments": known.get("arguments"),
            "labels": known.get("labels"),
            "config": known.get("config"),
            "tokenizer": known.get("tokenizer"),
            "precision": known.get("precision"),
            "quantize": known.get("quantize"),
            "albert_keras_version": known.get("albert_keras_version"),
            "source_fingerprint": (known.get("source_fingerprint") or {}).get("sha256"),
            "metadata": metadata,
        }
    )
    if signatures:
        report["signatures"] = saved_model_signatures(concrete) if kind == SAVED_MODEL else tflite_signatures(concrete)
    return report


def _shape(spec):
    return "?" if spec["shape"] is None else "[" + ", ".join("None" if d in (None, -1) else str(d) for d in spec["shape"]) + "]"


def _tflite_input_line(report):
    """What a TFLite file takes: a fixed or free sequence length, from its signature or its export record."""
    from albert_keras.export.tflite import describe_input_shapes

    shapes = (report.get("metadata") or {}).get("tflite_input_shapes")
    signatures = report.get("signatures") or {}
    if signatures:
        inputs = (signatures.get("serving_default") or next(iter(signatures.values())))["inputs"]
        shapes = {name: [-1 if d is None else d for d in spec["shape"]] for name, spec in inputs.items()}
    if not shapes:
        return "unknown (no albert_keras.json; inspect with signatures)"
    return describe_input_shapes(shapes, (report.get("config") or {}).get("max_position_embeddings"))


def format_report(report):
    """The report of `inspect_artifact` as lines of text (what `albert-keras inspect` prints).

    Example:
    ```python
    print(format_report(inspect_artifact("runs/sentiment")))
    ```
    """
    unknown = "unknown (no albert_keras.json: not written by albert-keras export)"
    where = report["path"] + (f" (version {report['version']})" if report.get("version") is not None else "")
    lines = [f"{report['kind']}: {where}", f"class: {report.get('class') or unknown}"]
    if report.get("arguments"):
        lines.append("arguments: " + json.dumps(report["arguments"], sort_keys=True))
    lines.append("labels: " + (", ".join(report["labels"]) if report.get("labels") else "none"))
    precision = report.get("precision") or unknown
    if report.get("quantize") and report["quantize"] != "none":
        precision += f", quantized {report['quantize']}"
    lines.append(f"precision: {precision}")
    tokenizer = report.get("tokenizer")
    if tokenizer:
        spm = tokenizer.get("spiece_model")
        if isinstance(spm, dict):
            spm_text = f"{os.path.basename(spm['path'])} ({spm['pieces']} {spm.get('kind', 'sentencepiece')} tokens, sha256 {spm['sha256'][:12]})"
        elif tokenizer.get("spiece_model_sha256"):
            spm_text = f"SentencePiece sha256 {tokenizer['spiece_model_sha256'][:12]}"
        else:
            spm_text = "no SentencePiece model"
        casing = "lowercased (uncased)" if tokenizer.get("lowercase") else "cased (no lowercasing)"
        length = tokenizer.get("sequence_length")
        lines.append(f"tokenizer: {spm_text}, {casing}, sequence length {length if length else 'not recorded'}")
    else:
        lines.append(f"tokenizer: {unknown}")
    config = report.get("config")
    if config:
        keys = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups",
                "num_attention_heads", "intermediate_size", "max_position_embeddings", "hidden_act")
        lines.append("config: " + ", ".join(f"{key}={config[key]}" for key in keys if key in config))
    if report["kind"] == PRETRAINED:
        lines.append(f"fingerprint: sha256 {report['fingerprint']['sha256']}")
    else:
        lines.append(f"albert-keras version: {report.get('albert_keras_version') or unknown}")
        lines.append(f"source fingerprint: {report.get('source_fingerprint') or unknown}")
    if report["kind"] == TFLITE:
        lines.append("input shape: " + _tflite_input_line(report))
    for name, signature in sorted((report.get("signatures") or {}).items()):
        inputs = ", ".join(f"{key}: {spec['dtype']} {_shape(spec)}" for key, spec in signature["inputs"].items())
        outputs = ", ".join(f"{key}: {spec['dtype']} {_shape(spec)}" for key, spec in signature["outputs"].items())
        lines.append(f"signature {name}({inputs}) -> {outputs}")
    return "\n".join(lines)
