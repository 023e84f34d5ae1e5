"""`albert-keras convert`: checkpoints in and out (official TF1, Hugging Face, keras-hub, Model Garden)."""

import logging

from albert_keras.cli_args import add_casing
from albert_keras.cli_args import add_command
from albert_keras.cli_args import add_output
from albert_keras.cli_args import add_quiet
from albert_keras.cli_args import add_vocab
from albert_keras.cli_args import resolve_model


def register(subparsers):
    parser = add_command(
        subparsers, "convert",
        help="convert checkpoints: official TF1 / Hugging Face / keras-hub / Model Garden <-> pretrained directory",
        description=(
            "Read a foreign checkpoint into a pretrained directory (--from FORMAT SRC --output DIR), or "
            "write a pretrained directory in Hugging Face or keras-hub format (--to FORMAT DIR --output OUT)."
        ),
    )
    direction = parser.add_mutually_exclusive_group(required=True)
    direction.add_argument("--from", dest="from_format", metavar="FORMAT",
                           help="official | huggingface | keras-hub | model-garden")
    direction.add_argument("--to", dest="to_format", metavar="FORMAT", help="huggingface | keras-hub")
    parser.add_argument("source", help="checkpoint directory, .tar.gz archive or checkpoint prefix (--from); "
                                       "pretrained directory or training run directory (--to)")
    add_output(parser, "directory to write")
    parser.add_argument("--config", default=None,
                        help="albert_config.json (or preset name) overriding the one found with the checkpoint "
                             "(official, model-garden)")
    add_vocab(parser, "vocabulary to carry over instead of the one found")
    parser.add_argument("--num-choices", type=int, default=None,
                        help="choices per example, for Hugging Face AlbertForMultipleChoice checkpoints")
    add_casing(parser, "default: what the source records, else lowercase")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    add_quiet(parser)
    parser.set_defaults(func=run)


def run(args):
    from albert_keras.convert.dispatch import convert_from
    from albert_keras.convert.dispatch import convert_to

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    if args.from_format is not None:
        output = convert_from(
            args.from_format, args.source, args.output, overwrite=args.overwrite,
            config=args.config, spm_model=args.vocab, num_choices=args.num_choices, lowercase=args.lowercase,
        )
    else:
        if args.config or args.vocab or args.num_choices or args.lowercase is not None:
            from albert_keras.errors import AlbertInputError

            raise AlbertInputError("--config, --vocab, --num-choices and --cased/--uncased only apply with --from")
        output = convert_to(args.to_format, resolve_model(args.source), args.output, overwrite=args.overwrite)
    print(f"wrote {output}")
    return 0
