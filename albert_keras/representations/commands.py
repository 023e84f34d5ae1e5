"""`albert-keras fill-mask | embed | index | search | attention`: see what a model learned.

Thin wrappers over `albert_keras.representations` (fill_mask, embeddings, search, attention).
No TensorFlow import at module level, so `albert-keras --help` stays fast.
"""

import json


def register(subparsers):
    """Add the fill-mask, embed, index, search and attention subcommands."""
    parser = subparsers.add_parser(
        "fill-mask",
        help="the masked-LM head's top pieces at each [MASK] of a sentence",
        description="Print the most likely pieces, with probabilities, at each [MASK] of TEXT.",
    )
    parser.add_argument("--model", required=True, help="pretraining output directory (AlbertPretrainer)")
    parser.add_argument("text", help='text with [MASK], e.g. "The [MASK] statement returns a value."')
    parser.add_argument("-k", "--top-k", type=int, default=5, help="pieces per mask (default 5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run_fill_mask)

    parser = subparsers.add_parser(
        "embed",
        help="sentence embeddings of a text file (one text per line) as a .npy file",
        description=(
            "Embed every line of INPUT (mean over real tokens, L2-normalized; batched, length-bucketed) "
            "into OUTPUT, a float32 [lines, hidden] .npy file; row i is line i + 1."
        ),
    )
    parser.add_argument("--model", required=True, help="pretrained directory (any kind; with spiece.model)")
    parser.add_argument("--input", required=True, help="UTF-8 text file, one text per line")
    parser.add_argument("--output", required=True, help="output .npy file")
    _add_embedding_flags(parser)
    parser.set_defaults(func=run_embed)

    parser = subparsers.add_parser(
        "index",
        help="build a semantic search index from a text file",
        description="Embed every non-blank line of INPUT and write a search index directory OUTPUT.",
    )
    parser.add_argument("--model", required=True, help="pretrained directory (with spiece.model)")
    parser.add_argument("--input", required=True, help="UTF-8 text file, one text per line")
    parser.add_argument("--output", required=True, help="index directory")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing index")
    _add_embedding_flags(parser)
    parser.set_defaults(func=run_index)

    parser = subparsers.add_parser(
        "search",
        help="the indexed texts most similar to a query (exact cosine search)",
        description="Print the K indexed texts most similar to QUERY, with cosine scores.",
    )
    parser.add_argument("--index", required=True, help="index directory (albert-keras index)")
    parser.add_argument("query", help="query text")
    parser.add_argument("-k", "--top-k", type=int, default=5, help="hits (default 5)")
    parser.add_argument("--model", default=None, help="model directory (default: the one the index was built with)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run_search)

    parser = subparsers.add_parser(
        "attention",
        help="a PNG of each attention head of one layer (needs matplotlib)",
        description="Draw one heatmap per attention head of LAYER for TEXT, pieces on both axes.",
    )
    parser.add_argument("--model", required=True, help="pretrained directory (any kind; with spiece.model)")
    parser.add_argument("--text", required=True, help="the sentence")
    parser.add_argument("--output", required=True, help="output .png")
    parser.add_argument("--layer", type=int, default=None, help="0-based layer (default: the last; -1 too)")
    parser.set_defaults(func=run_attention)


def _add_embedding_flags(parser):
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per model call (default 32)")
    parser.add_argument("--sequence-length", type=int, default=None,
                        help="longest packed sequence (default: tokenizer.json, else the model's maximum)")
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                        help="auto = bfloat16 only where the hardware runs it natively")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")


def _progress(args):
    return False if args.no_progress else None


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
    from albert_keras.representations.embeddings import embed_file

    count, width = embed_file(
        args.model, args.input, args.output, batch_size=args.batch_size, sequence_length=args.sequence_length,
        precision=args.precision, progress=_progress(args),
    )
    print(f"wrote {args.output}: {count} x {width} float32 embeddings")
    return 0


def run_index(args):
    from albert_keras.representations.search import build_index

    info = build_index(
        args.model, args.input, args.output, batch_size=args.batch_size, sequence_length=args.sequence_length,
        precision=args.precision, overwrite=args.overwrite, progress=_progress(args),
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
