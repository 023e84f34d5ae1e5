"""Generation speed of `AlbertSeq2Seq`: generated tokens per second, greedy and beam search,
batch 1 and 32, key/value cache on and off, float32 and bfloat16.

The model is built as a user builds one: a random seeded `AlbertEncoder` saved as a pretrained
directory with a SentencePiece model trained on the embedded corpus, then
`AlbertSeq2Seq.from_pretrained(directory, dtype=policy, max_target_length=new_tokens + 1)`
(unshared decoder, warm-started from the encoder's blocks). Sources are embedded-corpus
sentences packed by the model's own preprocessor (`--source-length` pieces at most).

Fixed stopping: every row generates exactly `--new-tokens` (32) tokens. The output head's bias
for `[SEP]` is set to -1e4, so no row ends early (random weights would otherwise end rows after a
few tokens, or never, by chance); the sampler's loop then always runs `new_tokens` steps. The
tokens counted are the real tokens `generate_ids` returns (the best beam's for beam search, not
beams x tokens), so tokens/s = counted tokens / median seconds of one `generate_ids` call
(encoder included; the first call, which traces the decoding loop, is not timed).
Cache on and off alternate call by call so load from other jobs hits both alike; "same tokens"
says whether the uncached call returned the cached call's tokens.

Presets: `small` (default; H 256, E 128, 4 layers in one shared group, 4 heads, I 1024, 2,000
pieces), `tiny` (the smoke test), or an `AlbertConfig` preset such as `albert-base-v2` (its
30,000-row embedding kept; slow here: uncached beam search at batch 32 is minutes a call).
`mixed_bfloat16` runs by default only where the CPU has bfloat16 units (`avx512_bf16` or
`amx_bf16`); `--precisions` overrides.

    python benchmarks/generation.py [--preset small] [--batches 1 32] [--new-tokens 32] [--runs 3]
        [--samplers greedy beam] [--num-beams 4] [--precisions float32 mixed_bfloat16]

Prints a table and writes benchmarks/results/generation.json (with the CPU flags and the load average).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

DEFAULT_OUTPUT = os.path.join(ROOT, "benchmarks", "results", "generation.json")
SMALL = dict(embedding_size=128, hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
             max_position_embeddings=128)
TINY = dict(embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=64)
# A logit bias no other logit reaches (random weights give logits of order 1): [SEP] is never the best token.
NO_END_BIAS = -1e4


def build_pretrained(work, preset, seed=0):
    """A random seeded encoder saved as a pretrained directory with a corpus-trained spiece.model."""
    import keras

    from albert_keras.config import AlbertConfig
    from albert_keras.corpus import write_embedded_corpus
    from albert_keras.modeling import AlbertEncoder
    from albert_keras.modeling import save_pretrained
    from albert_keras.tokenization import train_sentencepiece

    corpus = write_embedded_corpus(os.path.join(work, "corpus.txt"))
    pieces = 1000 if preset == "tiny" else 2000  # 2,000 is the most this corpus allows
    spm = train_sentencepiece(corpus, os.path.join(work, "spiece.model"), vocab_size=pieces)
    if preset in ("tiny", "small"):
        config = AlbertConfig(vocab_size=pieces, **(TINY if preset == "tiny" else SMALL))
    else:
        config = AlbertConfig.from_preset(preset)
    keras.utils.set_random_seed(seed)
    directory = os.path.join(work, "pretrained")
    save_pretrained(AlbertEncoder(config), directory, spm_model=spm)
    return directory, config


def load_model(directory, policy, new_tokens, source_length, seed=0):
    """`AlbertSeq2Seq.from_pretrained` in `policy`, its `[SEP]` logit pushed out of reach."""
    import keras

    from albert_keras.modeling.seq2seq import AlbertSeq2Seq

    keras.utils.set_random_seed(seed)  # the same fresh cross-attention weights in every precision
    model = AlbertSeq2Seq.from_pretrained(directory, dtype=policy, source_length=source_length,
                                          max_target_length=new_tokens + 1)
    end = model.preprocessor.vocabulary.special_ids["sep"]
    vocab = model.encoder.config.vocab_size
    # The head's output bias is its one vocabulary-sized weight (the rest are E-sized).
    (bias,) = [w for w in model.lm_head.weights if tuple(w.shape) == (vocab,)]
    values = keras.ops.convert_to_numpy(bias)
    values[end] = NO_END_BIAS
    bias.assign(values)
    return model


def sources(count, seed=0):
    """`count` embedded-corpus sentences in a seeded order."""
    import numpy as np

    from albert_keras.corpus import embedded_corpus

    sentences = [s for document in embedded_corpus() for s in document if s.strip()]
    order = np.random.default_rng(seed).permutation(len(sentences))
    return [sentences[i] for i in order[:count]]


def time_setting(model, packed, sampler, num_beams, new_tokens, runs):
    """`{cache: (seconds per call list, generated ids)}` for cache on and off, alternating call by call."""
    calls = {}
    for cache in (True, False):
        calls[cache] = lambda cache=cache: model.generate_ids(
            packed["encoder_token_ids"], packed["encoder_padding_mask"], max_length=new_tokens + 1,
            sampler=sampler, num_beams=num_beams, use_cache=cache)
    outputs = {cache: call() for cache, call in calls.items()}  # traces the decoding loop
    times = {cache: [] for cache in calls}
    for _ in range(runs):
        for cache, call in calls.items():
            start = time.perf_counter()
            outputs[cache] = call()
            times[cache].append(time.perf_counter() - start)
    return {cache: (times[cache], outputs[cache]) for cache in calls}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", help="'small', 'tiny' (smoke test) or an AlbertConfig preset")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--samplers", nargs="+", default=["greedy", "beam"], choices=["greedy", "beam"])
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens every row generates (no early stop)")
    parser.add_argument("--source-length", type=int, default=64, help="packed source length")
    parser.add_argument("--runs", type=int, default=3, help="timed calls per setting (after one untimed)")
    parser.add_argument("--precisions", nargs="+", choices=["float32", "mixed_bfloat16"],
                        help="default: float32, and mixed_bfloat16 where the CPU has bfloat16 units")
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    for flag in ("runs", "num_beams", "new_tokens", "source_length"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')}: must be at least 1")
    if min(args.batches) < 1:
        parser.error("--batches: must be at least 1")

    import keras

    from albert_keras.export.inference import BF16_CPU_FLAGS
    from albert_keras.export.inference import cpu_flags

    flags = cpu_flags()
    bf16_units = [flag for flag in BF16_CPU_FLAGS if flag in flags]
    precisions = args.precisions or (["float32", "mixed_bfloat16"] if bf16_units else ["float32"])
    load_before = os.getloadavg()
    work = tempfile.mkdtemp(prefix="albert_generation_bench_")
    directory, config = build_pretrained(work, args.preset)
    if args.new_tokens + 1 > config.max_position_embeddings:
        parser.error(f"--new-tokens: at most {config.max_position_embeddings - 1} for this preset")
    text = sources(max(args.batches))

    rows, parameters = [], None
    for policy in precisions:
        model = load_model(directory, policy, args.new_tokens, args.source_length)
        parameters = model.count_params()
        for batch in args.batches:
            packed = model.preprocessor(text[:batch])
            source_tokens = int(keras.ops.convert_to_numpy(packed["encoder_padding_mask"]).sum())
            for sampler in args.samplers:
                measured = time_setting(model, packed, sampler, args.num_beams, args.new_tokens, args.runs)
                for cache, (times, ids) in measured.items():
                    tokens = sum(len(row) for row in ids)
                    seconds = statistics.median(times)
                    rows.append({
                        "precision": policy, "sampler": sampler if sampler == "greedy" else f"beam {args.num_beams}",
                        "batch": batch, "cache": cache, "generated_tokens": tokens,
                        "source_tokens": source_tokens, "seconds_per_call": seconds, "times": times,
                        "tokens_per_s": tokens / seconds,
                        "same_tokens_as_cache": ids == measured[True][1],
                    })
                    # Progress on stderr: a full run on a loaded 2-core machine takes many minutes.
                    print(f"{policy} {rows[-1]['sampler']} batch {batch} cache {'on' if cache else 'off'}: "
                          f"{rows[-1]['tokens_per_s']:.1f} tokens/s", file=sys.stderr, flush=True)
        del model
        keras.backend.clear_session()

    results = {
        "settings": {**vars(args), "precisions": precisions, "config": config.to_dict(), "parameters": parameters},
        "machine": {
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "bf16_cpu_flags": bf16_units, "load_average_before": load_before, "load_average_after": os.getloadavg(),
        },
        "rows": rows,
    }
    print(f"\nAlbertSeq2Seq ({args.preset}: H {config.hidden_size}, E {config.embedding_size}, "
          f"{config.num_hidden_layers} layers, vocab {config.vocab_size}), {args.new_tokens} new tokens a row "
          f"(no early stop), sources <= {args.source_length} pieces, median of {args.runs} calls")
    print(f"{os.cpu_count()} CPUs, bfloat16 units: {', '.join(bf16_units) or 'none'}; "
          f"load average {load_before[0]:.1f} -> {results['machine']['load_average_after'][0]:.1f}")
    print("| precision | sampler | batch | cache | s/call | generated tokens/s | cache speed-up | same tokens |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        cached = next(r for r in rows if r["cache"] and all(r[k] == row[k] for k in ("precision", "sampler", "batch")))
        # How much faster the cached call is than this one (1.00x on the cached rows).
        row["cache_speedup"] = row["seconds_per_call"] / cached["seconds_per_call"]
        speedup = f"{row['cache_speedup']:.2f}x"
        print(f"| {row['precision']} | {row['sampler']} | {row['batch']} | {'on' if row['cache'] else 'off'} | "
              f"{row['seconds_per_call']:.3f} | {row['tokens_per_s']:.1f} | {speedup if not row['cache'] else '-'} | "
              f"{'yes' if row['same_tokens_as_cache'] else 'no'} |")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    temporary = args.output + ".tmp"
    with open(temporary, "w") as f:
        json.dump(results, f, indent=2, default=str)
    os.replace(temporary, args.output)
    print(f"wrote {args.output}")
    return results


if __name__ == "__main__":
    main()
