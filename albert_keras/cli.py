"""The `albert-keras` command line.

Each subcommand lives in the package of the stage it belongs to (`albert_keras/<stage>/commands.py`)
and is a thin wrapper over one documented Python function. Every command spells its flags with the
shared vocabulary of `albert_keras.cli_args` (the table is in `docs/cli.md`). Command modules must
not import TensorFlow at module level, so `albert-keras --help` stays fast.
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
    "albert_keras.training.distill_commands",
    "albert_keras.export.commands",
    "albert_keras.convert.commands",
    "albert_keras.inspection_commands",
    "albert_keras.representations.commands",
    "albert_keras.quickstart",
)


class CommandImportError(RuntimeError):
    """A command module failed to import: the CLI stops instead of silently losing its commands."""


def build_parser():
    """The `albert-keras` parser with every command of `COMMAND_MODULES`.

    Raises:
        CommandImportError: a command module does not import (naming it and why).

    Example:
    ```python
    build_parser().parse_args(["inspect", "runs/base/pretrained"]).command  # "inspect"
    ```
    """
    from albert_keras import __version__
    from albert_keras.cli_args import DefaultsFormatter

    parser = argparse.ArgumentParser(
        prog="albert-keras",
        description="ALBERT for TensorFlow 2 / Keras 3: data, pretraining, export, conversion. "
        "Every command spells its flags the same way; see docs/cli.md.",
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("--version", action="version", version=f"albert-keras {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            # Every stage ships with the package: a module that does not import is a broken
            # install or a bug, and its commands must not just vanish from --help.
            raise CommandImportError(f"albert-keras: command module {module_name} failed to import: "
                                     f"{type(error).__name__}: {error}") from error
        module.register(subparsers)
    return parser


def _os_message(error):
    # `[Errno 17] File exists` alone does not say which path; name it, without the errno.
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    return str(error)


def main(argv=None):
    """Run one `albert-keras` command; returns the exit status (2 for bad input, one line on stderr).

    Example:
    ```python
    main(["inspect", "runs/base/pretrained", "--no-signatures"])  # 0
    ```
    """
    from albert_keras.cli_args import missing_required
    from albert_keras.cli_args import resolve_model
    from albert_keras.cli_args import resolve_vocab
    from albert_keras.text_files import allow_large_fields

    # TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) hides our own output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    allow_large_fields()  # task readers use Python's csv module too
    try:
        missing = missing_required(args)
        if missing:
            raise AlbertInputError(f"the following arguments are required: {', '.join(missing)}")
        if getattr(args, "model", None) is not None:
            args.model = resolve_model(args.model)
        if getattr(args, "vocab", None) is not None:
            args.vocab = resolve_vocab(args.vocab)
        result = args.func(args)
    except AlbertInputError as error:
        message = str(error).replace("\n", " ")
        print(f"albert-keras {args.command}: error: {message}", file=sys.stderr)
        return 2
    except (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError) as error:
        print(f"albert-keras {args.command}: error: {_os_message(error)}".replace("\n", " "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"albert-keras {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
