"""`export_model`: a pretrained directory -> a versioned SavedModel or TFLite model.

This is the function behind `albert-keras export`. What an export computes depends only on the
directory and the arguments, never on the exporting machine: precision is float32 unless
bfloat16 or float16 is asked for (the in-process `Predictor` is where the machine decides), and
the tokenizer (SentencePiece model, casing, sequence length) comes from the directory.

Every export carries `albert_keras.json` (in the SavedModel's `assets.extra/`, beside a TFLite
file): the precision, the albert-keras version, the source directory's fingerprint, the model's
class, arguments, labels, config and tokenizer settings (see `albert-keras inspect`).
"""

import json
import logging
import os

from albert_keras.errors import AlbertInputError
from albert_keras.io_utils import any_filesystem
from albert_keras.io_utils import atomic_directory

FORMATS = ("saved_model", "tflite")
PRECISIONS = ("float32", "bfloat16", "float16")
TFLITE_FILE = "model.tflite"
REPORT_FILE = "albert_export.json"
METADATA_FILE = "albert_keras.json"

logger = logging.getLogger("albert_keras.export")


def _check_precision(precision, format):
    if precision == "auto":
        raise AlbertInputError(
            "--precision: 'auto' is not an export setting (what a SavedModel computes must not depend on the "
            "machine that exports it); pass float32 (default), bfloat16 or float16"
        )
    if precision not in PRECISIONS:
        raise AlbertInputError(f"--precision: must be one of {PRECISIONS}, got {precision!r}")
    if format == "tflite" and precision != "float32":
        raise AlbertInputError("--precision: TFLite models are float32; use --quantize float16 or dynamic-int8")


def _warn_without_native_units(precision):
    """One warning when `precision` would be emulated here: the export is still the same file."""
    if precision == "float32":
        return
    from albert_keras.export.inference import native_support

    if native_support(precision) is None:
        units = "AMX or AVX-512-BF16" if precision == "bfloat16" else "AMX-FP16 or AVX-512-FP16"
        logger.warning(
            "--precision %s: this machine has no GPU and no %s units, so it cannot check %s speed; the export "
            "is the same as on any machine, but serve it where %s runs natively (emulated it is slower than "
            "float32)", precision, units, precision, precision,
        )


def export_metadata(model_dir, format, precision, spm_model, lowercase, sequence_length, quantize=None):
    """The `albert_keras.json` record of an export (nothing in it depends on the exporting machine).

    Example:
    ```python
    export_metadata("runs/sentiment", "saved_model", "float32", load_vocabulary("runs/sentiment"), True, 128)
    ```
    """
    import albert_keras
    from albert_keras.config import AlbertConfig
    from albert_keras.modeling.pretrained import CONFIG_FILE
    from albert_keras.modeling.pretrained import pretrained_fingerprint
    from albert_keras.tokenization.vocabulary import load_vocabulary
    from albert_keras.modeling.pretrained import read_model_description

    description = read_model_description(model_dir)
    arguments = description["arguments"]
    if spm_model is not None:
        spm_model = load_vocabulary(spm_model, lowercase=lowercase)
    metadata = {
        "albert_keras_version": albert_keras.__version__,
        "format": format,
        "precision": precision,
        "model_class": description["class"],
        "arguments": arguments,
        "labels": arguments.get("labels"),
        "config": AlbertConfig.from_json_file(os.path.join(model_dir, CONFIG_FILE)).to_dict(),
        "tokenizer": {
            "kind": spm_model.kind if spm_model is not None else None,
            # The key keeps its first name (a SentencePiece model's); it is the vocabulary file's digest.
            "spiece_model_sha256": spm_model.sha256() if spm_model is not None else None,
            "lowercase": bool(lowercase),
            "sequence_length": int(sequence_length),
        },
        "source_fingerprint": pretrained_fingerprint(model_dir),
    }
    if quantize is not None:
        metadata["quantize"] = quantize
    if "slot_labels" in arguments:
        # An intent-slot model: the intents are its `labels`; the slot tags name `slot_tag_ids`.
        metadata["intents"] = arguments.get("intents")
        metadata["slot_labels"] = arguments.get("slot_labels")
    return metadata


@any_filesystem(inputs=("model_dir", "spm_model"), outputs=("output",))
def export_model(
    model_dir,
    output,
    version=1,
    format="saved_model",
    quantize="none",
    with_tokenizer=False,
    signature="all",
    precision="float32",
    sequence_length=None,
    spm_model=None,
    lowercase=None,
    overwrite=False,
    verbose=True,
    tflite_metadata=False,
    calibration=None,
    generation=None,
):
    """Export the model of a pretrained directory to `output/<version>/`.

    `output/<version>/` is TF Serving's layout (a model base path holding numbered versions). It
    is written under a temporary name and renamed when complete.

    Args:
        model_dir: a pretrained directory (`save_pretrained` / `albert-keras convert` output);
            its `spiece.model` is needed for text signatures and `with_tokenizer`, its
            `tokenizer.json` gives the casing and the default sequence length.
        output: the model base path, e.g. `saved_models/sentiment`.
        version: positive integer version.
        format: `"saved_model"` or `"tflite"`.
        quantize: TFLite only: `"none"`, `"float16"` or `"dynamic-int8"`.
        with_tokenizer: TFLite only: the model takes raw strings.
        signature: SavedModel only: `"text"`, `"ids"` or `"all"`.
        precision: SavedModel compute precision: `"float32"` (default), `"bfloat16"` or
            `"float16"` (float32 variables, low-precision matmuls). Never chosen from the exporting
            machine; a warning says when this machine would emulate the one asked for.
        sequence_length: longest packed sequence (default: the directory's `tokenizer.json`, else
            the model's `max_position_embeddings`).
        spm_model: vocabulary (SentencePiece `.model` or WordPiece `vocab.txt`) overriding the
            directory's (a warning when they differ).
        lowercase: casing overriding the directory's `tokenizer.json` (a warning when they differ).
        overwrite: replace an existing version directory.
        verbose: print what was written.
        tflite_metadata: TFLite only: fixed-shape `ids`/`mask`/`segment_ids` inputs and TFLite
            metadata (tokenizer, labels) for MediaPipe Tasks / the TFLite Task Library
            (`albert_keras.export.tflite_metadata`).
        calibration: TFLite `full-int8` / `int16x8` only: a one-text-a-line file of representative
            texts (default: the embedded corpus; `albert_keras.export.quantization`).
        generation: an `AlbertSeq2Seq`'s decoding, fixed in its SavedModel: `{"num_beams": 1,
            "length_penalty": 0.6, "max_length": None}` (`albert_keras.export.generation`).

    Returns:
        the version directory.

    Example:
    ```python
    export_model("runs/sentiment", "saved_models/sentiment", version=1)
    export_model("runs/sentiment", "tflite_models/sentiment", version=1, format="tflite",
                 quantize="dynamic-int8", with_tokenizer=True)
    ```
    """
    from albert_keras.export.text import resolve_tokenizer
    from albert_keras.modeling.pretrained import _check_directory
    from albert_keras.modeling.pretrained import load_pretrained

    if format not in FORMATS:
        raise AlbertInputError(f"--format: must be one of {FORMATS}, got {format!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise AlbertInputError(f"--model-version: must be a positive integer, got {version!r}")
    if format == "saved_model" and (quantize != "none" or with_tokenizer):
        raise AlbertInputError("--quantize/--with-tokenizer: only apply to --format tflite")
    _check_precision(precision, format)
    model_dir = _check_directory(model_dir)
    spm_model, settings = resolve_tokenizer(model_dir, spm_model=spm_model, lowercase=lowercase)
    if tflite_metadata and (format != "tflite" or with_tokenizer):
        raise AlbertInputError("--metadata: only with --format tflite, without --with-tokenizer (the apps tokenize)")
    if calibration is not None and quantize not in ("full-int8", "int16x8"):
        raise AlbertInputError(f"--calibration: only for --quantize full-int8 or int16x8, not {quantize}")
    if calibration is not None:
        from albert_keras.export.quantization import calibration_texts

        calibration = calibration_texts(calibration)  # a bad file fails here, before the model loads
    needs_spm = (with_tokenizer or tflite_metadata) if format == "tflite" else signature != "ids"
    if needs_spm and spm_model is None:
        what = "--with-tokenizer" if format == "tflite" else f"--signature {signature}"
        fix = "export without --with-tokenizer" if format == "tflite" else "export with --signature ids"
        raise AlbertInputError(
            f"{model_dir}: no vocabulary; {what} needs one (spiece.model or vocab.txt: pass --vocab, or "
            f"{fix} to serve token ids only)"
        )
    version_dir = os.path.join(os.fspath(output), str(version))
    if os.path.exists(version_dir) and os.listdir(version_dir) and not overwrite:
        raise FileExistsError(f"{version_dir}: already exists (pass --overwrite, or a new --version)")
    _warn_without_native_units(precision)

    from albert_keras.export.saved_model import model_sequence_length

    model = load_pretrained(model_dir)
    if type(model).__name__ == "AlbertPretrainer":
        # A pretraining run's directory serves its encoder (pooled output, sentence embedding):
        # the MLM and SOP heads are training objectives, not a serving task.
        model = model.encoder
    # Without a recorded length, the same default fine-tuning trains at (not the model's maximum, whose
    # later positions such a model never saw).
    from albert_keras.tokenization.vocabulary import DEFAULT_SEQUENCE_LENGTH

    limit = model_sequence_length(model)
    asked_length = sequence_length
    sequence_length = model_sequence_length(
        model, sequence_length or settings["sequence_length"] or min(DEFAULT_SEQUENCE_LENGTH, limit)
    )
    lowercase = settings["lowercase"]
    intent_slots = type(model).__name__ == "AlbertIntentSlotTagger"
    if format == "tflite" and intent_slots and (not with_tokenizer or tflite_metadata):
        raise AlbertInputError(f"{model_dir}: an intent-slot TFLite file carries its tokenizer (words and their "
                               "spans are found inside it): pass --with-tokenizer, without --metadata")
    metadata = export_metadata(
        model_dir, format, precision, spm_model, lowercase, sequence_length,
        quantize=quantize if format == "tflite" else None,
    )
    if type(model).__name__ == "AlbertSeq2Seq":
        from albert_keras.export.generation import export_generation_directory

        return export_generation_directory(model_dir, version_dir, format, precision, sequence_length, metadata,
                                           generation or {}, overwrite=overwrite, verbose=verbose)
    report = {"format": format, "model_dir": os.path.abspath(model_dir), "version": version}
    if format == "saved_model":
        from albert_keras.export.inference import with_precision
        from albert_keras.export.saved_model import export_saved_model

        model = with_precision(model, precision)
        export_saved_model(
            model,
            version_dir,
            spm_model=spm_model,
            signature=signature,
            sequence_length=sequence_length,
            lowercase=lowercase,
            model_name=os.path.basename(os.path.normpath(os.fspath(output))),
            overwrite=overwrite,
            metadata=metadata,
        )
        if verbose:
            print(
                f"wrote {version_dir} (SavedModel, signature={signature}, {precision}, "
                f"{'lowercased' if lowercase else 'cased'}, sequence length {sequence_length})"
            )
    else:
        from albert_keras.export.intent_slots_tflite import convert_intent_slots
        from albert_keras.export.tflite import convert_to_tflite
        from albert_keras.export.tflite import describe_input_shapes
        from albert_keras.export.tflite import tflite_input_shapes

        from albert_keras.export.tflite_metadata import check_mobile_kind
        from albert_keras.export.tflite_metadata import export_mobile_tflite

        if tflite_metadata:
            check_mobile_kind(model)
        with atomic_directory(version_dir, overwrite=overwrite) as tmp:
            path = os.path.join(tmp, TFLITE_FILE)
            if tflite_metadata:
                tflite_report = export_mobile_tflite(
                    model, path, spm_model, sequence_length, quantize=quantize, lowercase=lowercase,
                    labels=metadata["labels"], version=str(version), calibration=calibration,
                )
            elif intent_slots:
                tflite_report = convert_intent_slots(
                    model, path, spm_model, sequence_length, quantize=quantize, lowercase=lowercase, verbose=False,
                )
            else:
                tflite_report = convert_to_tflite(
                    model,
                    path,
                    quantize=quantize,
                    spm_model=spm_model,
                    with_tokenizer=with_tokenizer,
                    # An ids file keeps a free length (up to the model's maximum) unless one is asked for.
                    sequence_length=sequence_length if with_tokenizer or asked_length else None,
                    lowercase=lowercase,
                    verbose=False,
                    calibration=calibration,
                )
            tflite_report["path"] = os.path.join(version_dir, TFLITE_FILE)
            if "input_shapes" not in tflite_report:
                tflite_report["input_shapes"] = tflite_input_shapes(path)
            report.update(tflite_report)
            with open(os.path.join(tmp, REPORT_FILE), "w") as f:
                json.dump(report, f, indent=2, sort_keys=True)
            metadata["with_tokenizer"] = bool(with_tokenizer)
            metadata["tflite_input_shapes"] = report["input_shapes"]
            with open(os.path.join(tmp, METADATA_FILE), "w") as f:
                json.dump(metadata, f, indent=2, sort_keys=True)
        if verbose:
            print(
                f"wrote {report['path']}: {report['size_bytes'] / 1e6:.2f} MB, quantize={quantize}, "
                f"tokenizer={'inside' if with_tokenizer else 'no'}, verified: max|diff| "
                f"{report['max_diff']:.3g}, label agreement {report['label_agreement']:.3f}, "
                f"latency {report['latency_ms']:.1f} ms; inputs {describe_input_shapes(report['input_shapes'], limit)}"
            )
            if "float_ops" in report:
                from albert_keras.export.quantization import describe_float_ops

                print(f"float ops (kept float32, and why): {describe_float_ops(report['float_ops'])}")
    return version_dir
