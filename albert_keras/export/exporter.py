"""`export_model`: a pretrained directory -> a versioned SavedModel or TFLite model.

This is the function behind `albert-keras export`.
"""

import json
import os

from albert_keras.errors import AlbertInputError
from albert_keras.io_utils import any_filesystem
from albert_keras.io_utils import atomic_directory

FORMATS = ("saved_model", "tflite")
TFLITE_FILE = "model.tflite"
REPORT_FILE = "albert_export.json"


@any_filesystem(inputs=("model_dir", "spm_model"), outputs=("output",))
def export_model(
    model_dir,
    output,
    version=1,
    format="saved_model",
    quantize="none",
    with_tokenizer=False,
    signature="all",
    precision="auto",
    sequence_length=None,
    overwrite=False,
    verbose=True,
):
    """Export the model of a pretrained directory to `output/<version>/`.

    `output/<version>/` is TF Serving's layout (a model base path holding numbered versions). It
    is written under a temporary name and renamed when complete.

    Args:
        model_dir: a pretrained directory (`save_pretrained` / `albert-keras convert` output);
            its `spiece.model` is needed for text signatures and `with_tokenizer`.
        output: the model base path, e.g. `saved_models/sentiment`.
        version: positive integer version.
        format: `"saved_model"` or `"tflite"`.
        quantize: TFLite only: `"none"`, `"float16"` or `"dynamic-int8"`.
        with_tokenizer: TFLite only: the model takes raw strings.
        signature: SavedModel only: `"text"`, `"ids"` or `"all"`.
        precision: SavedModel only: `"auto"` (bfloat16 on CPUs with AMX/AVX-512-BF16 and on GPUs,
            else float32), `"float32"` or `"bfloat16"`. Decided on the exporting machine.
        sequence_length: longest packed sequence (default: the model's `max_position_embeddings`).
        overwrite: replace an existing version directory.
        verbose: print what was written.

    Returns:
        the version directory.

    Example:
    ```python
    export_model("runs/sentiment", "saved_models/sentiment", version=1)
    export_model("runs/sentiment", "tflite_models/sentiment", version=1, format="tflite",
                 quantize="dynamic-int8", with_tokenizer=True)
    ```
    """
    from albert_keras.modeling.pretrained import load_pretrained
    from albert_keras.modeling.pretrained import spm_model_path

    if format not in FORMATS:
        raise AlbertInputError(f"--format: must be one of {FORMATS}, got {format!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise AlbertInputError(f"--version: must be a positive integer, got {version!r}")
    if format == "saved_model" and (quantize != "none" or with_tokenizer):
        raise AlbertInputError("--quantize/--with-tokenizer: only apply to --format tflite")
    spm_model = spm_model_path(model_dir) if os.path.isdir(os.fspath(model_dir)) else None
    needs_spm = with_tokenizer if format == "tflite" else signature != "ids"
    if needs_spm and spm_model is None:
        what = "--with-tokenizer" if format == "tflite" else f"--signature {signature}"
        fix = "export without --with-tokenizer" if format == "tflite" else "export with --signature ids"
        raise AlbertInputError(
            f"{model_dir}: no spiece.model; {what} needs the SentencePiece model ({fix} to serve token ids only)"
        )
    version_dir = os.path.join(os.fspath(output), str(version))
    if os.path.exists(version_dir) and os.listdir(version_dir) and not overwrite:
        raise FileExistsError(f"{version_dir}: already exists (pass --overwrite, or a new --version)")

    model = load_pretrained(model_dir)
    if type(model).__name__ == "AlbertPretrainer":
        # A pretraining run's directory serves its encoder (pooled output, sentence embedding):
        # the MLM and SOP heads are training objectives, not a serving task.
        model = model.encoder
    report = {"format": format, "model_dir": os.path.abspath(os.fspath(model_dir)), "version": version}
    if format == "saved_model":
        from albert_keras.export.inference import choose_precision
        from albert_keras.export.inference import with_precision
        from albert_keras.export.saved_model import export_saved_model

        chosen, reason = choose_precision(precision)
        model = with_precision(model, chosen)
        export_saved_model(
            model,
            version_dir,
            spm_model=spm_model,
            signature=signature,
            sequence_length=sequence_length,
            model_name=os.path.basename(os.path.normpath(os.fspath(output))),
            overwrite=overwrite,
        )
        report.update(signature=signature, precision=chosen, precision_reason=reason)
        if verbose:
            print(f"wrote {version_dir} (SavedModel, signature={signature}, {chosen}: {reason})")
    else:
        from albert_keras.export.tflite import convert_to_tflite

        with atomic_directory(version_dir, overwrite=overwrite) as tmp:
            tflite_report = convert_to_tflite(
                model,
                os.path.join(tmp, TFLITE_FILE),
                quantize=quantize,
                spm_model=spm_model,
                with_tokenizer=with_tokenizer,
                sequence_length=sequence_length,
                verbose=False,
            )
            tflite_report["path"] = os.path.join(version_dir, TFLITE_FILE)
            report.update(tflite_report)
            with open(os.path.join(tmp, REPORT_FILE), "w") as f:
                json.dump(report, f, indent=2, sort_keys=True)
        if verbose:
            print(
                f"wrote {report['path']}: {report['size_bytes'] / 1e6:.2f} MB, quantize={quantize}, "
                f"tokenizer={'inside' if with_tokenizer else 'no'}, verified: max|diff| "
                f"{report['max_diff']:.3g}, label agreement {report['label_agreement']:.3f}, "
                f"latency {report['latency_ms']:.1f} ms"
            )
    return version_dir
