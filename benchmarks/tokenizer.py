"""Throughput of ALBERT tokenization: Python (`encode_for_albert`) vs the in-graph `AlbertTokenizer`.

Prints a table and writes benchmarks/results/tokenizer.json. Uses the embedded corpus and a
vocabulary trained on it (or --spm-model). Example:

    python benchmarks/tokenizer.py --vocab-size 8000 --sequence-length 128 --batch-size 256
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spm-model", help="a trained .model (default: train one on the embedded corpus)")
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3, help="passes over the corpus per measurement")
    args = parser.parse_args()

    import tensorflow as tf

    from albert_keras.corpus import embedded_corpus
    from albert_keras.tokenization import (
        AlbertTokenizer,
        encode_for_albert,
        load_sentencepiece,
        preprocess_text,
        preprocess_text_tf,
        train_sentencepiece,
    )

    sentences = [s for doc in embedded_corpus() for s in doc]
    megabytes = sum(len(s.encode("utf-8")) for s in sentences) / 1e6
    spm_model = args.spm_model
    if spm_model is None:
        spm_model = os.path.join(tempfile.mkdtemp(), "bench.model")
        train_sentencepiece(iter(sentences), spm_model, vocab_size=args.vocab_size)
    sp = load_sentencepiece(spm_model)
    batches = [tf.constant(sentences[i : i + args.batch_size]) for i in range(0, len(sentences), args.batch_size)]

    def timed(fn):
        fn()  # warm-up (tracing)
        start = time.perf_counter()
        for _ in range(args.repeats):
            fn()
        return megabytes * args.repeats / (time.perf_counter() - start)

    rows = []
    rows.append(("python preprocess_text", timed(lambda: [preprocess_text(s) for s in sentences])))
    rows.append(("python encode_for_albert", timed(lambda: [encode_for_albert(sp, s) for s in sentences])))
    normalize = tf.function(preprocess_text_tf)
    rows.append(("tf preprocess_text_tf", timed(lambda: [normalize(b) for b in batches])))
    for fast in (False, True):
        for do_normalize in (True, False):
            layer = AlbertTokenizer(spm_model, args.sequence_length, use_fast_tokenizer=fast, normalize=do_normalize)
            fn = tf.function(layer)
            name = f"AlbertTokenizer fast={fast} normalize={do_normalize}"
            rows.append((name, timed(lambda: [fn(b) for b in batches])))

    print(f"corpus: {len(sentences)} sentences, {megabytes:.2f} MB; vocab {sp.get_piece_size()}, "
          f"seq {args.sequence_length}, batch {args.batch_size}")
    print(f"{'path':45s} {'MB/s':>8s}")
    for name, rate in rows:
        print(f"{name:45s} {rate:8.2f}")
    results_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "tokenizer.json"), "w") as f:
        json.dump({"settings": vars(args), "megabytes": megabytes, "mb_per_s": dict(rows)}, f, indent=2)


if __name__ == "__main__":
    main()
