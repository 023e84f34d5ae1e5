"""`albert-keras inspect PATH`: what a pretrained directory, SavedModel or TFLite model holds.

Thin wrapper over `albert_keras.inspection.inspect_artifact`; TensorFlow is imported only when an
export's signatures are listed.
"""

from albert_keras.cli_args import add_command
from albert_keras.cli_args import resolve_model


def register(subparsers):
    parser = add_command(
        subparsers, "inspect",
        help="show a pretrained directory's, SavedModel's or TFLite model's class, labels, tokenizer, precision",
        description=(
            "Describe a pretrained directory, a SavedModel or a TFLite model (or a TF Serving base path: "
            "its newest version): class, config, tokenizer and casing, labels, precision, albert-keras "
            "version and source fingerprint, and the serving signatures with their inputs and outputs."
        ),
    )
    parser.add_argument("path", help="pretrained directory, training run directory, SavedModel directory, "
                        ".tflite file or base path")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument(
        "--no-signatures", dest="signatures", action="store_false",
        help="do not load exports to list their signatures (faster)",
    )
    parser.set_defaults(func=run)


def run(args):
    import json

    from albert_keras.inspection import format_report
    from albert_keras.inspection import inspect_artifact

    report = inspect_artifact(resolve_model(args.path), signatures=args.signatures)
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else format_report(report))
    return 0
