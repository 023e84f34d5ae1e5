"""The `albert-keras` vocabulary: one spelling per concept, shared by every command (`docs/cli.md`).

Command modules build their flags from these helpers, so `--model`, `--output`, `--batch-size`,
`--max-seq-length`, `--cased/--uncased`, `--quiet`, `--precision` and `--vocab` read and mean the
same everywhere. Old spellings stay as hidden aliases that set the same destination and print one
deprecation line. This module is part of the CLI layer: library modules must not import it.
No TensorFlow here, so `albert-keras --help` stays fast.
"""

import argparse
import os
import sys

from albert_keras.errors import AlbertInputError

# One list for every command. "auto" means the same everywhere: bfloat16 where this machine runs it
# natively (TPU, NVIDIA GPU of compute capability >= 8.0), float32 otherwise.
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
AUTO_PRECISION_HELP = "auto: bfloat16 where this machine runs it natively (TPU, NVIDIA GPU >= 8.0), else float32"
# Training computes in mixed precision: the Keras dtype policy names of the one list's values.
TRAINING_PRECISIONS = {"auto": "auto", "float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
_OLD_PRECISIONS = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
# Marks a pretrained directory (modeling.pretrained.CONFIG_FILE; not imported: it pulls in Keras).
_CONFIG_FILE = "albert_config.json"
_RUN_MODEL_DIR = "pretrained"  # where `pretrain` and `finetune` put the model inside their --output


def deprecation(old, new):
    """Print the one-line notice for a deprecated spelling on stderr.

    Args:
        old: the old spelling, e.g. `"--spm-model"`.
        new: what to write instead, e.g. `"--vocab"`.

    Example:
    ```python
    deprecation("--output-dir", "--output")
    # albert-keras: warning: --output-dir is deprecated, use --output (it goes in the next release)
    ```
    """
    print(f"albert-keras: warning: {old} is deprecated, use {new} (it goes in the next release)", file=sys.stderr)


class DeprecatedAlias(argparse.Action):
    """An old flag that stores into the new flag's destination and prints one deprecation line.

    Args:
        new: the spelling to use instead (printed in the notice).
        const: with `nargs=0`, the value stored (a flag that takes no value).
        Other arguments as for `argparse.Action`.

    Example:
    ```python
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", dest="output")
    parser.add_argument("--output-dir", dest="output", action=DeprecatedAlias, new="--output",
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.parse_args(["--output-dir", "run"]).output  # "run", and a warning on stderr
    ```
    """

    def __init__(self, option_strings, dest, new, nargs=None, const=None, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, nargs=nargs, const=const, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        deprecation(option_string, self.new)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def add_alias(parser, old, new, dest, **kwargs):
    """Add `old` as a hidden deprecated alias of the flag `new` (same `dest`).

    Args:
        parser: a parser or argument group.
        old: the old option string.
        new: the canonical spelling (for the notice).
        dest: the destination the canonical flag stores into.
        **kwargs: `type`, `choices`, `nargs=0` with `const`, as the old flag took.

    Example:
    ```python
    add_alias(parser, "--global-batch-size", "--batch-size", "batch_size", type=int)
    ```
    """
    parser.add_argument(old, dest=dest, action=DeprecatedAlias, new=new, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS, **kwargs)


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults in `--help`, except None/False ones (their help text says what happens).

    Every command's parser uses it.

    Example:
    ```python
    parser = argparse.ArgumentParser(formatter_class=DefaultsFormatter)
    ```
    """

    def _get_help_string(self, action):
        # Flags without a value (--cased, --quiet) say in their help what they change.
        if action.default in (None, False) or action.nargs == 0 or action.help is None or "%(default)" in action.help:
            return action.help
        return super()._get_help_string(action)


def add_command(subparsers, name, **kwargs):
    """`subparsers.add_parser` with the shared help formatter.

    Args:
        subparsers: the CLI's subparsers object.
        name: the command name.
        **kwargs: as for `add_parser` (`help`, `description`).

    Example:
    ```python
    parser = add_command(subparsers, "embed", help="sentence embeddings of a text file")
    ```
    """
    kwargs.setdefault("formatter_class", DefaultsFormatter)
    return subparsers.add_parser(name, **kwargs)


def add_model(parser, help, required=True, aliases=()):
    """`--model DIR`: the model a command reads, a pretrained directory or the run directory of
    `pretrain`/`finetune` (whose `pretrained/` is used; see `resolve_model`).

    Args:
        parser: a parser.
        help: what the command does with the model.
        required: whether the flag must be given.
        aliases: further accepted spellings that are not deprecated (e.g. `("--init",)` on finetune).

    Example:
    ```python
    add_model(parser, "the fine-tuned model to score")
    ```
    """
    parser.add_argument("--model", *aliases, dest="model", required=required, metavar="DIR",
                        help=help + " (a pretrained directory or a pretrain/finetune --output directory)")


def resolve_model(path):
    """The pretrained directory `path` names: itself, or the `pretrained/` a training run wrote inside it.

    Args:
        path: a pretrained directory or a `pretrain`/`finetune` output directory; None passes through.

    Returns:
        the directory to load.

    Example:
    ```python
    resolve_model("runs/sentiment")  # "runs/sentiment/pretrained"
    ```
    """
    if path is None or "://" in os.fspath(path):
        return path  # remote paths are taken as given (no listing round trips)
    inner = os.path.join(path, _RUN_MODEL_DIR)
    if not os.path.isfile(os.path.join(path, _CONFIG_FILE)) and os.path.isdir(inner):
        return inner
    return path


def add_output(parser, help, required=True, old=()):
    """`--output PATH`: what a command writes (a file, a directory or a base path; `help` says which).

    Args:
        parser: a parser.
        help: what is written there.
        required: whether the flag must be given.
        old: deprecated spellings, e.g. `("--output-dir",)`.

    Example:
    ```python
    add_output(parser, "run directory", old=("--output-dir",))
    ```
    """
    # With old spellings argparse cannot require "one of them": `albert_keras.cli.main` checks
    # `_required_output` after parsing instead.
    parser.add_argument("--output", dest="output", required=required and not old, default=None,
                        help=help + (" (required)" if required and old else ""))
    for spelling in old:
        add_alias(parser, spelling, "--output", "output")
    parser.set_defaults(_required_output=required)


def add_batch_size(parser, default, help="examples per step, all replicas together (global)"):
    """`--batch-size N`, always the global batch; `--global-batch-size` is its deprecated spelling.

    Example:
    ```python
    add_batch_size(parser, 64)
    ```
    """
    parser.add_argument("--batch-size", dest="batch_size", type=int, default=default, help=help)
    add_alias(parser, "--global-batch-size", "--batch-size", "batch_size", type=int)


def add_max_seq_length(parser, default, help):
    """`--max-seq-length N`; `--sequence-length` is its deprecated spelling.

    Example:
    ```python
    add_max_seq_length(parser, None, "longest packed sequence (default: the model's)")
    ```
    """
    parser.add_argument("--max-seq-length", dest="max_seq_length", type=int, default=default, help=help)
    add_alias(parser, "--sequence-length", "--max-seq-length", "max_seq_length", type=int)


def add_casing(parser, default_help, default=None):
    """`--cased` / `--uncased` into `lowercase` (`default` when neither is given); `--no-lowercase` is a
    deprecated `--cased`.

    Args:
        parser: a parser.
        default_help: what happens without either flag, e.g. `"default: lowercase"`.
        default: `lowercase` without either flag (None: the model or source decides).

    Example:
    ```python
    add_casing(parser, "default: what the model's tokenizer.json records")
    parser.parse_args(["--cased"]).lowercase  # False
    ```
    """
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--cased", dest="lowercase", action="store_false", default=default,
                       help=f"keep case ({default_help})")
    group.add_argument("--uncased", dest="lowercase", action="store_true", default=default,
                       help="lowercase, the official --do_lower_case")
    add_alias(group, "--no-lowercase", "--cased", "lowercase", nargs=0, const=False)


def add_quiet(parser, old_no_progress=False, old_verbose=False):
    """`--quiet`: no progress output (by default progress shows on a terminal).

    Args:
        parser: a parser.
        old_no_progress: also accept the deprecated `--no-progress`.
        old_verbose: also accept the deprecated `--verbose {0,1,2}` (Keras' verbosity).

    Example:
    ```python
    add_quiet(parser, old_no_progress=True)
    progress(parser.parse_args(["--quiet"]))  # False
    ```
    """
    parser.add_argument("--quiet", action="store_true", help="no progress output (default: progress on a terminal)")
    if old_no_progress:
        add_alias(parser, "--no-progress", "--quiet", "quiet", nargs=0, const=True)
    if old_verbose:
        add_alias(parser, "--verbose", "--quiet", "verbose", type=int, choices=(0, 1, 2))


def progress(args):
    """`False` under `--quiet`, else None (the library's default: progress on a terminal).

    Example:
    ```python
    progress(argparse.Namespace(quiet=True))  # False
    ```
    """
    return False if args.quiet else None


def keras_verbose(args):
    """Keras' `verbose` for `fit` from `--quiet` (and the deprecated `--verbose`).

    Example:
    ```python
    keras_verbose(argparse.Namespace(quiet=True))  # 0; else 1 on a terminal, 2 (a line per epoch) in a log
    ```
    """
    old = getattr(args, "verbose", None)
    if old is not None:
        return old
    if args.quiet:
        return 0
    # Keras' animated bar on a terminal; in a log file one line per epoch instead of escape codes.
    return 1 if sys.stdout.isatty() else 2


def _precision(value):
    if value in _OLD_PRECISIONS:
        deprecation(f"--precision {value}", f"--precision {_OLD_PRECISIONS[value]}")
        return _OLD_PRECISIONS[value]
    if value not in PRECISIONS:
        raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from {', '.join(PRECISIONS)})")
    return value


def add_precision(parser, default="auto", help=AUTO_PRECISION_HELP):
    """`--precision {auto,float32,bfloat16,float16}`, the one list of every command.

    Args:
        parser: a parser.
        default: the command's default.
        help: the help text (default: what `auto` means).

    Example:
    ```python
    add_precision(parser)
    parser.parse_args(["--precision", "mixed_bfloat16"]).precision  # "bfloat16" (and a deprecation line)
    ```
    """
    parser.add_argument("--precision", type=_precision, default=default, metavar="{" + ",".join(PRECISIONS) + "}",
                        help=help)


def add_vocab(parser, help, required=False):
    """`--vocab PATH`: a SentencePiece `.model`, a WordPiece `vocab.txt`, or a directory holding one;
    `--spm-model` is its deprecated spelling.

    Example:
    ```python
    add_vocab(parser, "vocabulary to copy into the pretrained directory")
    ```
    """
    parser.add_argument("--vocab", dest="vocab", default=None, metavar="PATH",
                        help=help + " (a SentencePiece .model, a WordPiece vocab.txt, or a directory holding one)")
    add_alias(parser, "--spm-model", "--vocab", "vocab")
    parser.set_defaults(_required_vocab=required)  # see `missing_required`


def resolve_vocab(path):
    """The vocabulary file `path` names: itself, or the one vocabulary file a directory holds.

    Args:
        path: a `.model` / `vocab.txt` file or a directory; None passes through.

    Raises:
        AlbertInputError: a directory with no or several vocabulary files.

    Example:
    ```python
    resolve_vocab("runs/base/pretrained")  # "runs/base/pretrained/spiece.model"
    ```
    """
    if path is None or "://" in os.fspath(path) or not os.path.isdir(path):
        return path
    names = sorted(os.listdir(path))
    for preferred in ("spiece.model", "vocab.txt"):
        if preferred in names:
            return os.path.join(path, preferred)
    found = [name for name in names if name.endswith(".model")]
    if len(found) != 1:
        raise AlbertInputError(f"--vocab {path}: a directory without exactly one vocabulary file "
                               "(spiece.model, vocab.txt or one *.model)")
    return os.path.join(path, found[0])


def missing_required(args):
    """The required flags with deprecated spellings that were not given, as `--flag` strings.

    Example:
    ```python
    missing_required(argparse.Namespace(output=None, _required_output=True))  # ["--output"]
    ```
    """
    names = [key[len("_required_"):] for key, value in vars(args).items() if key.startswith("_required_") and value]
    return ["--" + name.replace("_", "-") for name in names if getattr(args, name, None) is None]
