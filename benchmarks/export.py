"""Export benchmark on ALBERT-base: TFLite variants, encoder inference, SavedModel serving.

Prints markdown tables and writes benchmarks/results/export.json.

    .venv/bin/python benchmarks/export.py [--sentences 512] [--skip-tflite] [--skip-bf16]
        [--hf-python /tmp/hfvenv/bin/python]

`--hf-python` names a Python with torch + transformers (kept out of this project's environment);
the Hugging Face AlbertModel is then timed in the same run, in a subprocess, on the same batch
shape, so the 1.3x target compares figures from one machine at one moment.

Weights are random (seeded): speed does not depend on them, and differences are measured between
formats of the same weights. The SentencePiece model (2,000 pieces, the most this corpus allows) is trained on the embedded
corpus; the encoder keeps ALBERT-base's 30,000-row embedding, so sizes are ALBERT-base's.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HF_BF16_SEQ_PER_S = 16.7  # baselines.md: HF AlbertModel, torch.autocast bf16, batch 32 x 128
TARGET_RATIO = 1.3
INT8_SIZE_TARGET_MB = 12.5


def timed(fn, runs, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def random_features(batch, length, vocab, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab, (batch, length)).astype(np.int32)
    ids[:, 0], ids[:, -1] = 2, 3
    return {
        "token_ids": ids,
        "segment_ids": np.zeros((batch, length), np.int32),
        "padding_mask": np.ones((batch, length), np.int32),
    }


HF_SCRIPT = r"""
import json, statistics, time, torch
from transformers import AlbertConfig, AlbertModel
torch.manual_seed(0)
torch.set_num_threads(THREADS)
model = AlbertModel(AlbertConfig()).eval()  # albert-base-v2 shape, random weights
ids = torch.randint(5, 30000, (32, 128))
mask = torch.ones_like(ids)
out = {}
for precision in ("float32", "bfloat16"):
    def run():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            model(input_ids=ids, attention_mask=mask).pooler_output.float()
    run()
    times = []
    for _ in range(2):
        start = time.perf_counter(); run(); times.append(time.perf_counter() - start)
    out[precision] = statistics.median(times)
print(json.dumps(out))
"""


def hugging_face_figures(python, timeout):
    """Seconds per 32 x 128 batch for HF AlbertModel, float32 and autocast bfloat16."""
    import subprocess

    code = HF_SCRIPT.replace("THREADS", str(os.cpu_count()))
    result = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=512)
    parser.add_argument("--skip-tflite", action="store_true")
    parser.add_argument("--skip-bf16", action="store_true")
    parser.add_argument("--hf-python", help="a Python with torch + transformers, for the same-run HF figure")
    parser.add_argument("--hf-timeout", type=float, default=900, help="seconds allowed for the HF run")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from albert_keras.config import AlbertConfig
    from albert_keras.corpus import embedded_corpus
    from albert_keras.corpus import write_embedded_corpus
    from albert_keras.export import tflite as tfl
    from albert_keras.export.inference import choose_precision
    from albert_keras.export.inference import cpu_flags
    from albert_keras.export.inference import length_buckets
    from albert_keras.export.inference import with_precision
    from albert_keras.export.saved_model import export_saved_model
    from albert_keras.export.text import AlbertTextPacker
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.tokenization import train_sentencepiece

    results = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "bf16_flags": sorted(cpu_flags() & {"amx_bf16", "avx512_bf16", "avx512f"}),
            "auto_precision": choose_precision("auto"),
        }
    }
    print(f"machine: {results['machine']}")
    work = tempfile.mkdtemp(prefix="albert_export_bench_")
    corpus = write_embedded_corpus(os.path.join(work, "corpus.txt"))
    spm = train_sentencepiece(corpus, os.path.join(work, "spiece.model"), vocab_size=2000)
    keras.utils.set_random_seed(0)
    encoder = AlbertEncoder(AlbertConfig.from_preset("albert-base-v2"))
    print(f"ALBERT-base: {encoder.count_params() / 1e6:.2f}M parameters")

    # --- TFLite variants: size, latency at batch 1 x 128, max |diff| vs Keras ------------------
    rows = []
    int8_bytes = None
    if not args.skip_tflite:
        inputs = random_features(1, 128, 30000)
        for quantize, tokenizer in (("none", False), ("float16", False), ("dynamic-int8", False), ("dynamic-int8", True)):
            start = time.perf_counter()
            tflite_bytes, packer = tfl.convert_model(encoder, quantize=quantize, spm_model=spm, with_tokenizer=tokenizer, sequence_length=128)
            convert_s = time.perf_counter() - start
            if tokenizer:
                sample = {"text": np.array([" ".join(["word"] * 200).encode()], dtype=object)}
            else:
                sample = inputs
            runner = tfl.interpreter(tflite_bytes, num_threads=os.cpu_count()).get_signature_runner()
            latency, _ = timed(lambda: runner(**sample), runs=10, warmup=2)
            expected = tfl.reference_outputs(encoder, sample, packer)
            max_diff, _, has_nan = tfl.compare_outputs(expected, runner(**sample))
            row = {
                "variant": quantize + (" + tokenizer" if tokenizer else ""),
                "size_mb": len(tflite_bytes) / 1e6,
                "latency_ms": latency * 1000,
                "max_diff": max_diff,
                "nan": has_nan,
                "convert_s": convert_s,
            }
            rows.append(row)
            print(row, flush=True)
            if quantize == "dynamic-int8" and not tokenizer:
                int8_bytes = tflite_bytes
        results["tflite"] = rows

    # --- Encoder inference, batch 32 x 128 (random ids), float32 and bfloat16 -----------------
    features = {k: tf.constant(v) for k, v in random_features(32, 128, 30000).items()}
    encoder_rows = []
    precisions = ["float32"] + ([] if args.skip_bf16 else ["bfloat16"])
    models = {p: with_precision(encoder, p) for p in precisions}
    for precision in precisions:
        model = models[precision]
        forward = tf.function(lambda x, m=model: m(x, training=False)["pooled_output"])
        pooled = forward(features).numpy()  # also the warm-up call
        if precision == "float32":
            reference = pooled
        median, times = timed(lambda: forward(features).numpy(), runs=2, warmup=0)
        diff = float(np.max(np.abs(pooled - reference)))
        row = {"precision": precision, "s_per_batch": median, "seq_per_s": 32 / median, "max_diff_vs_f32": diff, "runs_s": times}
        encoder_rows.append(row)
        print(row, flush=True)
    if int8_bytes is not None:
        # The same batch through the dynamic-range int8 TFLite model (XNNPACK, all cores).
        runner = tfl.interpreter(int8_bytes, num_threads=os.cpu_count()).get_signature_runner()
        numpy_features = {k: v.numpy() for k, v in features.items()}
        pooled = runner(**numpy_features)["pooled_output"]  # also the warm-up call
        median, times = timed(lambda: runner(**numpy_features), runs=2, warmup=0)
        diff = float(np.max(np.abs(pooled - reference)))
        row = {"precision": "dynamic-int8 TFLite", "s_per_batch": median, "seq_per_s": 32 / median, "max_diff_vs_f32": diff, "runs_s": times}
        encoder_rows.append(row)
        print(row, flush=True)
    results["encoder_32x128"] = encoder_rows

    # --- SavedModel serving on real sentences, with and without length bucketing --------------
    sentences = [s for doc in embedded_corpus() for s in doc]
    rng = np.random.default_rng(0)
    sentences = [sentences[i] for i in rng.permutation(len(sentences))[: args.sentences]]
    packer = AlbertTextPacker(spm, 128)
    lengths = packer.token_lengths(tf.constant(sentences)).numpy()
    serving_rows = []
    for precision in precisions:
        path = os.path.join(work, f"sm_{precision}", "1")
        export_saved_model(models[precision], path, spm_model=spm, sequence_length=128, warmup=False)
        serve = tf.saved_model.load(path).signatures["serving_default"]
        text = np.array([s.encode() for s in sentences], dtype=object)
        for bucketing in (False, True):
            if bucketing:
                batches = length_buckets(lengths, 32)
            else:
                batches = [np.arange(i, min(i + 32, len(text))) for i in range(0, len(text), 32)]
            serve(text=tf.constant(text[batches[0]]))  # warm up

            def run_all():
                for indices in batches:
                    serve(text=tf.constant(text[indices]))["sentence_embedding"].numpy()

            seconds, _ = timed(run_all, runs=1, warmup=0)
            padded = sum(min(int(lengths[i].max()) + 2, 128) * len(i) for i in batches)
            row = {
                "precision": precision,
                "bucketing": bucketing,
                "sentences_per_s": len(text) / seconds,
                "padded_tokens": padded,
                "real_tokens": int(np.minimum(lengths + 2, 128).sum()),
            }
            serving_rows.append(row)
            print(row, flush=True)
    results["serving"] = serving_rows
    results["serving_mean_tokens"] = float(np.mean(np.minimum(lengths + 2, 128)))

    hf_bf16 = HF_BF16_SEQ_PER_S
    figures = None
    if args.hf_python:
        try:
            figures = hugging_face_figures(args.hf_python, args.hf_timeout)
        except Exception as error:  # a missing or too-slow reference must not lose the tables
            print(f"HF run failed or timed out ({type(error).__name__}); using the recorded figure", flush=True)
    if figures:
        hf_bf16 = 32 / figures["bfloat16"]
        results["hf_same_run"] = {k: {"s_per_batch": v, "seq_per_s": 32 / v} for k, v in figures.items()}
        hf_note = (f"HF AlbertModel measured in this run: float32 {32 / figures['float32']:.1f} seq/s, "
                   f"autocast bfloat16 {hf_bf16:.1f} seq/s")
    else:
        hf_note = f"torch not used: recorded HF bfloat16 figure {HF_BF16_SEQ_PER_S} seq/s (baselines.md, Intel AMX machine)"
    results["hf_reference"] = hf_note
    print(hf_note, flush=True)

    # --- Tables --------------------------------------------------------------------------------
    print("\n## TFLite, ALBERT-base encoder (batch 1, sequence 128, %d threads)" % os.cpu_count())
    print("| variant | size (MB) | latency (ms) | max abs diff vs Keras | NaN |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['size_mb']:.1f} | {row['latency_ms']:.0f} | {row['max_diff']:.2g} | {row['nan']} |")
    int8 = [row for row in rows if row["variant"] == "dynamic-int8"]
    if int8:
        verdict = "met" if int8[0]["size_mb"] <= INT8_SIZE_TARGET_MB else "MISSED"
        print(f"int8 size target <= {INT8_SIZE_TARGET_MB} MB: {verdict} ({int8[0]['size_mb']:.2f} MB)")
    print("\n## Encoder inference, batch 32 x 128")
    print(f"| precision | s / batch | sequences / s | vs HF bf16 {hf_bf16:.1f} seq/s (target >= {TARGET_RATIO}x) | max diff vs f32 |")
    print("|---|---|---|---|---|")
    for row in encoder_rows:
        print(f"| {row['precision']} | {row['s_per_batch']:.2f} | {row['seq_per_s']:.1f} | {row['seq_per_s'] / hf_bf16:.2f}x | {row['max_diff_vs_f32']:.2g} |")
    for name, figure in results.get("hf_same_run", {}).items():
        print(f"| HF PyTorch {name} (same run) | {figure['s_per_batch']:.2f} | {figure['seq_per_s']:.1f} | {figure['seq_per_s'] / hf_bf16:.2f}x | - |")
    print(f"\n## SavedModel serving_default, {len(sentences)} corpus sentences, batch 32, max length 128 "
          f"(mean {results['serving_mean_tokens']:.1f} tokens)")
    print("| precision | length bucketing | sentences / s | padded tokens |")
    print("|---|---|---|---|")
    for row in serving_rows:
        print(f"| {row['precision']} | {row['bucketing']} | {row['sentences_per_s']:.1f} | {row['padded_tokens']} |")
    print(f"\nHF reference: {hf_note}")

    os.makedirs(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"), exist_ok=True)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "export.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=2, default=str)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
