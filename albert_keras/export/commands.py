"""`albert-keras export`: a pretrained directory -> `saved_models/NAME/VERSION/` (SavedModel or TFLite).

Thin wrapper over `albert_keras.export.exporter.export_model`; TensorFlow is imported only when
the command runs.
"""

import os

from albert_keras.cli_args import add_alias
from albert_keras.cli_args import add_casing
from albert_keras.cli_args import add_command
from albert_keras.cli_args import add_max_seq_length
from albert_keras.cli_args import add_model
from albert_keras.cli_args import add_output
from albert_keras.cli_args import add_precision
from albert_keras.cli_args import add_quiet
from albert_keras.cli_args import add_vocab


def register(subparsers):
    parser = add_command(
        subparsers, "export",
        help="export a model for TF Serving (SavedModel) or LiteRT (TFLite)",
        description=(
            "Export the model of a pretrained directory to OUTPUT/VERSION/ (TF Serving's layout), "
            "written atomically. SavedModels get raw-text and token-id signatures and a warmup "
            "file; TFLite models are verified against the Keras model after conversion."
        ),
    )
    add_model(parser, "the model to export (with its vocabulary for text signatures)")
    add_output(parser, "model base path, e.g. saved_models/sentiment (a directory; VERSION/ goes inside)")
    parser.add_argument("--model-version", type=int, default=1, help="version number, the VERSION/ directory")
    add_alias(parser, "--version", "--model-version", "model_version", type=int)
    parser.add_argument("--format", choices=("saved_model", "tflite"), default="saved_model")
    parser.add_argument(
        "--quantize",
        choices=("none", "float16", "dynamic-int8", "full-int8", "int16x8"),
        default="none",
        help="TFLite quantization: float16 or dynamic-int8 weights; full-int8 (int8 weights and activations, "
        "calibrated on --calibration; for NPUs/DSPs) or int16x8 (16-bit activations, 8-bit weights), both for "
        "token-id models (not --with-tokenizer)",
    )
    parser.add_argument(
        "--calibration",
        metavar="FILE",
        help="TFLite full-int8/int16x8: representative texts, one a line, whose activation ranges the file is "
        "calibrated on (default: sentences of the embedded corpus)",
    )
    parser.add_argument(
        "--with-tokenizer",
        action="store_true",
        help="TFLite: put normalization, SentencePiece and packing inside the model (raw-text input)",
    )
    parser.add_argument(
        "--metadata",
        action="store_true",
        help="TFLite: fixed-shape ids/mask/segment_ids inputs and TFLite metadata (SentencePiece tokenizer, "
        "labels) for MediaPipe Tasks / the TFLite Task Library (classifiers, encoders, question answering)",
    )
    parser.add_argument(
        "--signature",
        choices=("text", "ids", "all"),
        default="all",
        help="SavedModel signatures: raw text, token ids, or both",
    )
    add_precision(
        parser, default="float32",
        help="SavedModel compute precision; auto is refused here, as what an export computes must not depend on the "
        "machine that exports it. bfloat16 runs natively on AMX/AVX-512-BF16 CPUs and GPUs, float16 on GPUs",
    )
    add_max_seq_length(parser, None, "longest packed sequence (default: the model's tokenizer.json, else "
                       "max_position_embeddings)")
    add_vocab(parser, "vocabulary overriding the model's own")
    add_casing(parser, "default: what the model's tokenizer.json records")
    parser.add_argument("--num-beams", type=int, default=1,
                        help="translation models: beam width fixed in the SavedModel (1: greedy)")
    parser.add_argument("--length-penalty", type=float, default=0.6, help="translation models: GNMT length penalty")
    parser.add_argument("--max-length", type=int, default=None,
                        help="translation models: decoder positions (default: the model's max_target_length)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version directory")
    add_quiet(parser)
    parser.set_defaults(func=run)


def run(args):
    import logging

    from albert_keras.export.exporter import export_model

    from albert_keras.errors import AlbertInputError

    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise AlbertInputError(f"--output {args.output}: is a file; export writes a base path directory "
                               "(VERSION/ goes inside it)")
    logging.basicConfig(level=logging.WARNING, format="albert-keras export: warning: %(message)s")
    export_model(
        args.model,
        args.output,
        version=args.model_version,
        format=args.format,
        quantize=args.quantize,
        with_tokenizer=args.with_tokenizer,
        signature=args.signature,
        precision=args.precision,
        sequence_length=args.max_seq_length,
        spm_model=args.vocab,
        lowercase=args.lowercase,
        overwrite=args.overwrite,
        tflite_metadata=args.metadata,
        calibration=args.calibration,
        verbose=not args.quiet,
        generation={"num_beams": args.num_beams, "length_penalty": args.length_penalty, "max_length": args.max_length},
    )
    return 0
