"""`albert-keras export`: a pretrained directory -> `saved_models/NAME/VERSION/` (SavedModel or TFLite).

Thin wrapper over `albert_keras.export.exporter.export_model`; TensorFlow is imported only when
the command runs.
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export a model for TF Serving (SavedModel) or LiteRT (TFLite)",
        description=(
            "Export the model of a pretrained directory to OUTPUT/VERSION/ (TF Serving's layout), "
            "written atomically. SavedModels get raw-text and token-id signatures and a warmup "
            "file; TFLite models are verified against the Keras model after conversion."
        ),
    )
    parser.add_argument("--model", required=True, help="pretrained directory (with spiece.model for text)")
    parser.add_argument("--output", required=True, help="model base path, e.g. saved_models/sentiment")
    parser.add_argument("--version", type=int, default=1, help="version number (default 1)")
    parser.add_argument("--format", choices=("saved_model", "tflite"), default="saved_model")
    parser.add_argument(
        "--quantize",
        choices=("none", "float16", "dynamic-int8"),
        default="none",
        help="TFLite weight quantization (default none)",
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
        help="SavedModel signatures: raw text, token ids, or both (default all)",
    )
    parser.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "float16"),
        default="float32",
        help="SavedModel compute precision (default float32; never chosen from this machine). bfloat16 runs "
        "natively on AMX/AVX-512-BF16 CPUs and GPUs, float16 on GPUs",
    )
    parser.add_argument(
        "--sequence-length",
        type=int,
        default=None,
        help="longest packed sequence (default: the model's tokenizer.json, else max_position_embeddings)",
    )
    parser.add_argument(
        "--spm-model", default=None, help="SentencePiece model overriding the directory's spiece.model"
    )
    casing = parser.add_mutually_exclusive_group()
    casing.add_argument(
        "--cased", dest="lowercase", action="store_false", default=None,
        help="do not lowercase (overrides the directory's tokenizer.json)",
    )
    casing.add_argument(
        "--uncased", dest="lowercase", action="store_true", default=None, help="lowercase (overrides tokenizer.json)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version directory")
    parser.set_defaults(func=run)


def run(args):
    import logging

    from albert_keras.export.exporter import export_model

    logging.basicConfig(level=logging.WARNING, format="albert-keras export: warning: %(message)s")
    export_model(
        args.model,
        args.output,
        version=args.version,
        format=args.format,
        quantize=args.quantize,
        with_tokenizer=args.with_tokenizer,
        signature=args.signature,
        precision=args.precision,
        sequence_length=args.sequence_length,
        spm_model=args.spm_model,
        lowercase=args.lowercase,
        overwrite=args.overwrite,
        tflite_metadata=args.metadata,
    )
    return 0
