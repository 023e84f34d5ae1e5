"""`albert-keras train-tokenizer`: train an ALBERT SentencePiece vocabulary.

A thin wrapper over `albert_keras.tokenization.train_sentencepiece`. Nothing here imports
TensorFlow (training a vocabulary does not need it).
"""

import os
import pathlib
import sys
import tempfile
import time

from albert_keras.cli_args import add_casing
from albert_keras.cli_args import add_command
from albert_keras.cli_args import add_output
from albert_keras.cli_args import add_quiet

# `--type wordpiece` will join when WordPiece training lands; the flag is here so scripts can say it.
TOKENIZER_TYPES = ("sentencepiece",)


def register(subparsers):
    """Add the `train-tokenizer` subcommand to an `argparse` subparsers object."""
    parser = add_command(
        subparsers, "train-tokenizer",
        help="train a SentencePiece vocabulary with ALBERT's special ids",
        description=(
            "Train a unigram SentencePiece model with <pad>=0, <unk>=1, [CLS]=2, [SEP]=3, [MASK]=4, "
            "normalising every line as ALBERT does (whitespace, NFKD, accents stripped, lowercase). "
            "Writes OUTPUT (.model) and the matching .vocab. Without --input, trains on the "
            "embedded corpus (Python's own documentation)."
        ),
    )
    parser.add_argument(
        "--input", nargs="+", metavar="FILE",
        help="UTF-8 text files, one sentence (or paragraph) per line",
    )
    parser.add_argument(
        "--embedded-corpus", action="store_true",
        help="train on the embedded corpus (also used when --input is not given)",
    )
    add_output(parser, "the .model file to write")
    parser.add_argument("--type", choices=TOKENIZER_TYPES, default="sentencepiece", help="vocabulary kind")
    parser.add_argument("--vocab-size", type=int, default=30000, help="pieces, special ones included")
    add_casing(parser, "default: lowercase; the English ALBERT models are uncased", default=True)
    parser.add_argument("--model-type", choices=("unigram", "bpe"), default="unigram",
                        help="SentencePiece algorithm (unigram, as ALBERT)")
    parser.add_argument(
        "--character-coverage", type=float, default=0.99995,
        help="fraction of characters the vocabulary covers (0.99995, as ALBERT)",
    )
    parser.add_argument(
        "--input-sentence-size", type=int, default=10_000_000,
        help="sample at most this many sentences (10M, as ALBERT)",
    )
    parser.add_argument(
        "--threads", type=int, default=1,
        help="training threads; the result depends on it, so keep it fixed to reproduce a model",
    )
    parser.add_argument("--seed", type=int, default=12345, help="sampling seed")
    add_quiet(parser)
    parser.set_defaults(func=run_train_tokenizer)
    return parser


def run_train_tokenizer(args):
    """Run `train-tokenizer` from parsed arguments; returns the exit status."""
    from albert_keras.errors import AlbertInputError
    from albert_keras.tokenization import load_sentencepiece, sentencepiece_checksum, train_sentencepiece

    if args.vocab_size < 6:
        raise AlbertInputError(f"--vocab-size {args.vocab_size}: must be larger than the 5 special pieces")
    if not args.output.endswith(".model"):
        raise AlbertInputError(f"--output {args.output}: must end in .model")
    start = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        if args.input and not args.embedded_corpus:
            inputs = [pathlib.Path(path) for path in args.input]  # Paths: always read as files
        else:
            from albert_keras.corpus import write_embedded_corpus

            inputs = [pathlib.Path(path) for path in args.input or []]
            inputs.append(pathlib.Path(write_embedded_corpus(os.path.join(scratch, "embedded.txt"))))
        path = train_sentencepiece(
            inputs,
            args.output,
            vocab_size=args.vocab_size,
            lowercase=args.lowercase,
            model_type=args.model_type,
            character_coverage=args.character_coverage,
            input_sentence_size=args.input_sentence_size,
            num_threads=args.threads,
            seed=args.seed,
            verbose=not args.quiet,
        )
    sp = load_sentencepiece(path)
    print(
        f"wrote {path} ({sp.get_piece_size()} pieces, sha256 {sentencepiece_checksum(path)[:16]}…) "
        f"in {time.time() - start:.1f}s",
        file=sys.stderr,
    )
    return 0
