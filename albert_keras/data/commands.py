"""`albert-keras create-data`: text -> sharded ALBERT pretraining TFRecords (MLM + SOP).

A thin wrapper over `albert_keras.data.create.create_pretraining_data`. No TensorFlow import at
module level, so `albert-keras --help` stays fast.
"""

import json
import os
import sys

from albert_keras.cli_args import add_alias
from albert_keras.cli_args import add_casing
from albert_keras.cli_args import add_command
from albert_keras.cli_args import add_output
from albert_keras.cli_args import add_quiet
from albert_keras.cli_args import add_vocab


def register(subparsers):
    """Add the `create-data` subcommand to an argparse subparsers object."""
    parser = add_command(
        subparsers, "create-data",
        help="make ALBERT pretraining TFRecords (SOP + n-gram masking) from text",
        description=(
            "Create ALBERT pretraining TFRecords in the official schema from text files: one "
            "sentence per line, blank lines between documents. Writes "
            "OUTPUT/part-NNNNN-of-MMMMM.tfrecord and OUTPUT/manifest.json."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", nargs="+", metavar="FILE", help="input text files")
    source.add_argument("--embedded-corpus", action="store_true",
                        help="use the English corpus embedded in Python (pydoc_data topics)")
    add_vocab(parser, "the ALBERT vocabulary (required)", required=True)
    add_output(parser, "output directory, e.g. tfrecords/NAME")
    parser.add_argument("--max-seq-length", type=int, default=128, help="tokens per record")
    parser.add_argument("--max-predictions-per-seq", dest="max_predictions", type=int, default=20,
                        help="masked positions per record at most (the official flag's name)")
    add_alias(parser, "--max-predictions", "--max-predictions-per-seq", "max_predictions", type=int)
    parser.add_argument("--dupe-factor", type=int, default=1,
                        help="passes over the input, each with other segments and masks (official default 40)")
    parser.add_argument("--ngram", type=int, default=3, help="longest masked n-gram, in words")
    parser.add_argument("--masked-lm-prob", type=float, default=0.15)
    parser.add_argument("--short-seq-prob", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=1, help="processes creating instances")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--num-shards", type=int, default=8, help="output files")
    parser.add_argument("--shuffle-buffer", type=int, default=20000,
                        help="records held for shuffling (bounds memory)")
    parser.add_argument("--input-format", choices=("sentences", "paragraphs"), default="sentences",
                        help="sentences: one sentence per line; paragraphs: one paragraph per line, split here")
    add_casing(parser, "default: lowercase, as the English ALBERT models; --cased for a cased vocabulary",
               default=True)
    parser.add_argument("--gzip", action="store_true", help="gzip-compress the shards (.tfrecord.gz)")
    parser.add_argument("--on-bad-line", choices=("skip", "error"), default="skip",
                        help="undecodable or over-long lines: count them in the manifest, or stop")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output made with other inputs or settings")
    add_quiet(parser, old_no_progress=True)
    parser.add_argument("--official-nondeterministic", action="store_true",
                        help="official behaviour: unseeded RNG, output differs between runs")
    parser.add_argument("--official-random-negatives", action="store_true",
                        help="official behaviour: single-sentence chunks get a random-document segment B, label 1")
    parser.add_argument("--official-random-replacement", action="store_true",
                        help="official behaviour: random replacement tokens may be special pieces")
    chinese = parser.add_mutually_exclusive_group()
    chinese.add_argument("--whole-word-segmenter", choices=("jieba",), default=None,
                         help="Chinese whole-word masking with a WordPiece vocabulary: segment every line with "
                         "jieba (pip install 'albert-keras[zh]') and mask whole words (default: per character, "
                         "the official rule)")
    chinese.add_argument("--chinese-ref", nargs="+", metavar="FILE", default=None,
                         help="Chinese whole-word masking from Hugging Face run_chinese_ref.py files instead of "
                         "jieba: one per --input file, in the same order (local runner only)")
    parser.add_argument("--runner", choices=("local", "beam"), default="local",
                        help="local: --workers processes here; beam: an Apache Beam pipeline (same records)")
    parser.add_argument("--beam-options", default="",
                        help='Beam pipeline options, given with "=": --beam-options="--runner=DataflowRunner '
                        '--project=P ..." (default: the DirectRunner); see docs/data.md')
    parser.add_argument("--beam-split-mb", type=float, default=64.0,
                        help="--runner beam: MB of text per work unit; larger files are split at blank lines")
    parser.set_defaults(func=run)


def run(args):
    """Run `create_pretraining_data` with the parsed arguments; prints a short summary."""
    from albert_keras.data.create import create_pretraining_data
    from albert_keras.data.settings import CreateDataSettings

    # One settings object, checked once (before anything is written), whichever runner takes it.
    settings = CreateDataSettings(
        max_seq_length=args.max_seq_length,
        max_predictions_per_seq=args.max_predictions,
        dupe_factor=args.dupe_factor,
        masked_lm_prob=args.masked_lm_prob,
        short_seq_prob=args.short_seq_prob,
        ngram=args.ngram,
        lowercase=args.lowercase,
        seed=args.seed,
        num_shards=args.num_shards,
        shuffle_buffer_size=args.shuffle_buffer,
        compression="gzip" if args.gzip else None,
        input_format=args.input_format,
        on_bad_line=args.on_bad_line,
        official_nondeterministic=args.official_nondeterministic,
        official_random_negatives=args.official_random_negatives,
        official_random_replacement=args.official_random_replacement,
        whole_word_segmenter=args.whole_word_segmenter,
        chinese_ref=args.chinese_ref,
        workers=args.workers,
        split_bytes=int(args.beam_split_mb * 1e6),
    )
    settings.check_runner(args.runner)
    inputs = args.input
    if args.embedded_corpus:
        from albert_keras.corpus import write_embedded_corpus

        import filecmp
        import shutil
        import tempfile

        # Rewrite the corpus file only when its text changed, so its mtime (part of the output's
        # fingerprint) stays put and a rerun finds the output up to date.
        path = os.path.join(os.path.dirname(os.path.abspath(args.output)), "embedded_corpus.txt")
        with tempfile.TemporaryDirectory() as tmp:
            fresh = os.fspath(write_embedded_corpus(os.path.join(tmp, "embedded_corpus.txt")))
            if not (os.path.exists(path) and filecmp.cmp(fresh, path, shallow=False)):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                shutil.copyfile(fresh, path)
        inputs = [path]
    if args.runner == "beam":
        from albert_keras.data.beam import create_pretraining_data_beam

        manifest = create_pretraining_data_beam(inputs, args.vocab, args.output, args.beam_options,
                                                settings=settings, overwrite=args.overwrite)
    else:
        manifest = create_pretraining_data(inputs, args.vocab, args.output, settings=settings,
                                           overwrite=args.overwrite, progress=not args.quiet)
    stats = manifest["statistics"]
    summary = {
        "output": os.path.abspath(args.output),
        "instances": stats["instances"],
        "documents": stats["documents"],
        "masked_fraction": round(stats["masked_fraction"], 4),
        "sop_label_1_fraction": round(stats["sop_label_1_fraction"], 4),
        "skipped_lines": stats["skipped_lines"],
    }
    if args.whole_word_segmenter or args.chinese_ref:
        summary["whole_words_segmented"] = stats["whole_words_segmented"]
    print(json.dumps(summary), file=sys.stdout)
    return 0
