"""`albert-keras fill-mask | embed | index | search | attention`: see what a model learned.

Thin wrappers over `albert_keras.representations` (fill_mask, embeddings, search, attention).
Texts are read by `albert_keras.text_files` (a `.txt` file is one text a line; CSV/TSV/JSONL by
`--text-column`). No TensorFlow import at module level, so `albert-keras --help` stays fast.
"""

import json

from albert_keras.cli_args import add_batch_size
from albert_keras.cli_args import add_command
from albert_keras.cli_args import add_max_seq_length
from albert_keras.cli_args import add_model
from albert_keras.cli_args import add_output
from albert_keras.cli_args import add_precision
from albert_keras.cli_args import add_quiet
from albert_keras.cli_args import progress
from albert_keras.errors import AlbertInputError

EMBED_PRECISIONS = ("auto", "float32", "bfloat16")  # the encoders compute these; float16 is export-only


def register(subparsers):
    """Add the fill-mask, embed, index, search and attention subcommands."""
    parser = add_command(
        subparsers, "fill-mask",
        help="the masked-LM head's top pieces at each [MASK] of a sentence",
        description="Print the most likely pieces, with probabilities, at each [MASK] of TEXT.",
    )
    add_model(parser, "the pretraining output (AlbertPretrainer, with its masked-LM head)")
    parser.add_argument("text", help='text with [MASK], e.g. "The [MASK] statement returns a value."')
    parser.add_argument("-k", "--top-k", type=int, default=5, help="pieces per mask")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run_fill_mask)

    parser = add_command(
        subparsers, "embed",
        help="sentence embeddings of a text file (one text a line) as a .npy file",
        description=(
            "Embed every text of INPUT (mean over real tokens, L2-normalized; batched, length-bucketed) "
            "into OUTPUT, a float32 [texts, hidden] .npy file; for a .txt file row i is line i + 1."
        ),
    )
    add_model(parser, "the model (any kind, with its vocabulary)")
    _add_input(parser)
    add_output(parser, ".npy file to write")
    _add_embedding_flags(parser)
    parser.set_defaults(func=run_embed)

    parser = add_command(
        subparsers, "index",
        help="build a semantic search index from a text file",
        description="Embed every non-blank text of INPUT and write a search index directory OUTPUT.",
    )
    add_model(parser, "the model (with its vocabulary)")
    _add_input(parser)
    add_output(parser, "index directory to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing index")
    _add_embedding_flags(parser)
    parser.set_defaults(func=run_index)

    parser = add_command(
        subparsers, "search",
        help="the indexed texts most similar to a query (exact cosine search)",
        description="Print the K indexed texts most similar to QUERY, with cosine scores.",
    )
    parser.add_argument("--index", required=True, help="index directory (albert-keras index)")
    parser.add_argument("query", help="query text")
    parser.add_argument("-k", "--top-k", type=int, default=5, help="hits")
    add_model(parser, "the model (default: the one the index was built with)", required=False)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run_search)

    parser = add_command(
        subparsers, "attention",
        help="a PNG of each attention head of one layer (needs matplotlib)",
        description="Draw one heatmap per attention head of LAYER for TEXT, pieces on both axes.",
    )
    add_model(parser, "the model (any kind, with its vocabulary)")
    parser.add_argument("--text", required=True, help="the sentence")
    add_output(parser, ".png file to write")
    parser.add_argument("--layer", type=int, default=None, help="0-based layer (default: the last; -1 too)")
    parser.set_defaults(func=run_attention)


def _add_input(parser):
    parser.add_argument("--input", required=True, help="text file: .txt one text a line, or CSV/TSV/JSONL")
    parser.add_argument("--text-column", default=None,
                        help="CSV/TSV/JSONL: the column of the texts, a name or a 0-based index (default: 'text')")
    parser.add_argument("--format", choices=("lines", "csv", "tsv", "jsonl"), default=None,
                        help="default: from the extension (.txt and unknown: lines)")
    parser.add_argument("--no-header", dest="header", action="store_false", help="CSV/TSV: no header row")


def _add_embedding_flags(parser):
    add_batch_size(parser, 32, help="sequences per model call")
    add_max_seq_length(parser, None, "longest packed sequence (default: tokenizer.json, else the model's maximum)")
    add_precision(parser)
    add_quiet(parser, old_no_progress=True)


def _texts(args, skip_blank):
    from albert_keras.text_files import read_column

    return read_column(args.input, column=args.text_column, format=args.format, header=args.header,
                       skip_blank=skip_blank)


def _embedding_precision(args):
    if args.precision not in EMBED_PRECISIONS:
        raise AlbertInputError(f"--precision {args.precision}: {args.command} computes {', '.join(EMBED_PRECISIONS)}")
    return args.precision


def run_fill_mask(args):
    from albert_keras.representations.fill_mask import fill_mask

    results = fill_mask(args.model, args.text, top_k=args.top_k)
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
        return 0
    for number, guesses in enumerate(results, 1):
        print(f"[MASK] {number}:" if len(results) > 1 else "[MASK]:")
        for guess in guesses:
            print(f"  {guess['probability']:.4f}  {guess['piece']}")
    return 0


def run_embed(args):
    from albert_keras.representations.embeddings import SentenceEmbedder

    precision = _embedding_precision(args)
    texts = _texts(args, skip_blank=False)  # row i must stay text i: a blank one is refused
    embedder = SentenceEmbedder(args.model, sequence_length=args.max_seq_length, precision=precision)
    embedder.embed_to_file(texts, args.output, batch_size=args.batch_size, progress=progress(args))
    print(f"wrote {args.output}: {len(texts)} x {embedder.dimension} float32 embeddings")
    return 0


def run_index(args):
    from albert_keras.representations.search import build_index

    precision = _embedding_precision(args)
    info = build_index(
        args.model, _texts(args, skip_blank=True), args.output, batch_size=args.batch_size,
        sequence_length=args.max_seq_length, precision=precision, overwrite=args.overwrite, progress=progress(args),
    )
    print(f"wrote {args.output}: {info['count']} texts x {info['dimension']} (model {info['model']['fingerprint'][:12]})")
    return 0


def run_search(args):
    from albert_keras.representations.search import search

    hits = search(args.index, args.query, k=args.top_k, model=args.model)
    if args.json:
        print(json.dumps(hits, ensure_ascii=False))
        return 0
    for hit in hits:
        print(f"{hit['rank']:>3}  {hit['score']:.4f}  {hit['text']}")
    return 0


def run_attention(args):
    from albert_keras.representations.attention import attention_picture

    summary = attention_picture(args.model, args.text, args.output, layer=args.layer)
    print(f"wrote {summary['path']}: {summary['heads']} heads, {len(summary['pieces'])} pieces, layer {summary['layer']}")
    return 0
