"""The `albert-keras` command line.

Each subcommand lives in the package of the stage it belongs to (`albert_keras/<stage>/commands.py`)
and is a thin wrapper over one documented Python function. Command modules must not import
TensorFlow at module level, so `albert-keras --help` stays fast.
"""

import argparse
import importlib
import os
import sys

from albert_keras.errors import AlbertInputError

# Each module defines `register(subparsers)`, which adds its subcommands and sets `func`.
COMMAND_MODULES = (
    "albert_keras.tokenization.commands",
    "albert_keras.data.commands",
    "albert_keras.training.commands",
    "albert_keras.training.finetune_commands",
    "albert_keras.export.commands",
    "albert_keras.convert.commands",
    "albert_keras.inspection_commands",
    "albert_keras.representations.commands",
    "albert_keras.quickstart",
)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="albert-keras",
        description="ALBERT for TensorFlow 2 / Keras 3: data, pretraining, export, conversion.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            # Only a stage that is not installed is skipped; a broken import inside it still fails.
            if error.name != module_name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv=None):
    # TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) hides our own output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except (AlbertInputError, FileNotFoundError, FileExistsError) as error:
        message = str(error).replace("\n", " ")
        print(f"albert-keras {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"albert-keras {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
