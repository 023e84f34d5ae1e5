"""`albert-keras convert`: checkpoints in and out (official TF1, Hugging Face, keras-hub, Model Garden)."""

import logging


def register(subparsers):
    parser = subparsers.add_parser(
        "convert",
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
                                       "pretrained directory (--to)")
    parser.add_argument("--output", required=True, help="directory to write")
    parser.add_argument("--config", default=None,
                        help="albert_config.json (or preset name) overriding the one found with the checkpoint "
                             "(official, model-garden)")
    parser.add_argument("--vocabulary", "--spm-model", dest="spm_model", default=None,
                        help="vocabulary to carry over instead of the one found: a SentencePiece model or a "
                             "WordPiece vocab.txt (the Chinese models)")
    parser.add_argument("--num-choices", type=int, default=None,
                        help="choices per example, for Hugging Face AlbertForMultipleChoice checkpoints")
    casing = parser.add_mutually_exclusive_group()
    casing.add_argument("--cased", dest="lowercase", action="store_false", default=None,
                        help="the tokenizer does not lowercase (default: what the source records, else lowercase)")
    casing.add_argument("--uncased", dest="lowercase", action="store_true", default=None,
                        help="the tokenizer lowercases (the official --do_lower_case)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    parser.set_defaults(func=run)


def run(args):
    from albert_keras.convert.dispatch import convert_from
    from albert_keras.convert.dispatch import convert_to

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.from_format is not None:
        output = convert_from(
            args.from_format, args.source, args.output, overwrite=args.overwrite,
            config=args.config, spm_model=args.spm_model, num_choices=args.num_choices, lowercase=args.lowercase,
        )
    else:
        if args.config or args.spm_model or args.num_choices or args.lowercase is not None:
            from albert_keras.errors import AlbertInputError

            raise AlbertInputError(
                "--config, --vocabulary/--spm-model, --num-choices and --cased/--uncased only apply with --from"
            )
        output = convert_to(args.to_format, args.source, args.output, overwrite=args.overwrite)
    print(f"wrote {output}")
    return 0
