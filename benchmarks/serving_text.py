"""Serving real text: raw sentences in, pooled output out, ours next to Hugging Face's.

Every implementation gets the same corpus sentences (a seeded sample of the embedded corpus, so
its length distribution), the same weights and the same SentencePiece model, and is timed on:

- throughput: sentences/s over all sentences at `--batch` (32), length-bucketed (sorted by token
  count, each batch padded to its own longest member; every implementation here pads per batch,
  so every one is bucketed);
- latency: p50 / p99 milliseconds of one sentence per call (batch 1) over `--latency-sentences`.

Implementations (each returns `pooled_output` for raw strings; its work includes tokenizing):

- `SavedModel text signature`: `albert_keras.export.exporter.export_model` of a pretrained
  directory, then `tf.saved_model.load(...).signatures["serving_default"](text=...)`.
- `Predictor float32`: `albert_keras.export.inference.Predictor` (it buckets the whole list
  itself, so its throughput includes one extra tokenization pass for the lengths), and
  `Predictor auto (...)` when `auto` resolves to bfloat16 on this machine (reported, not held to
  float32 agreement).
- `TFLite float32` / `TFLite dynamic-int8`: `albert_keras.export.tflite.convert_model` with the
  tokenizer inside (the conversion `albert-keras export --format tflite --with-tokenizer` runs,
  without its verification pass), run by ai_edge_litert with `--threads` XNNPACK threads.
- `Hugging Face (torch)`: `transformers.AlbertTokenizer` built from the same `spiece.model` plus
  `transformers.AlbertModel` loaded from `albert_keras.convert.huggingface.to_huggingface` of the
  same directory (same weights), float32, `torch.set_num_threads(--threads)`. Reported as "not
  installed" when torch or transformers is missing.

Equal work is checked, not assumed: each implementation's pooled outputs are compared with the
SavedModel's on every sentence (Hugging Face's on the sentences its tokenizer gives the same ids
for; it lacks the official ALBERT digit-comma split, e.g. "1," -> "1" ",", so a few sentences
differ and are counted).

    .venv/bin/python benchmarks/serving_text.py [--preset albert-base-v2] [--sentences 256]
        [--latency-sentences 200] [--runs 3] [--batch 32] [--threads N] [--skip-tflite]

Weights are random (seeded): speed does not depend on them. ALBERT-base keeps its 30,000-row
embedding; the SentencePiece model (2,000 pieces) is trained on the embedded corpus, as in
benchmarks/export.py. `--preset tiny` is a 2-layer model for the smoke test. Prints a table and
writes benchmarks/results/serving_text.json (with the CPU flags and the load average).
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

DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "serving_text.json")
SEQUENCE_LENGTH = 128
# Largest |pooled - SavedModel pooled| for implementations that do the same float32 work.
EQUAL_TOLERANCE = 1e-3
# Flags that decide which matmul units TensorFlow, LiteRT and torch can use.
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8")
TINY = dict(embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=SEQUENCE_LENGTH)
HF = "Hugging Face AlbertTokenizer + AlbertModel (torch)"
REFERENCE = "SavedModel text signature"


def corpus_sentences(count, seed=0):
    """`count` sentences of the embedded corpus in a seeded random order (its length distribution).

    Example:
    ```python
    corpus_sentences(8)[0]  # a sentence string
    ```
    """
    from albert_keras.data.corpus import embedded_corpus

    sentences = [s for document in embedded_corpus() for s in document if s.strip()]
    order = np.random.default_rng(seed).permutation(len(sentences))
    return [sentences[i] for i in order[:count]]


def build_pretrained(work, preset, seed=0):
    """A random seeded encoder saved as a pretrained directory with a corpus-trained spiece.model."""
    import keras

    from albert_keras.config import AlbertConfig
    from albert_keras.data.corpus import write_embedded_corpus
    from albert_keras.modeling import AlbertEncoder
    from albert_keras.modeling import save_pretrained
    from albert_keras.tokenization import train_sentencepiece

    corpus = write_embedded_corpus(os.path.join(work, "corpus.txt"))
    pieces = 1000 if preset == "tiny" else 2000  # 2,000 is the most this corpus allows
    spm = train_sentencepiece(corpus, os.path.join(work, "spiece.model"), vocab_size=pieces)
    if preset == "tiny":
        config = AlbertConfig(vocab_size=pieces, **TINY)
    else:
        config = AlbertConfig.from_preset(preset)
    keras.utils.set_random_seed(seed)
    encoder = AlbertEncoder(config)
    directory = os.path.join(work, "pretrained")
    save_pretrained(encoder, directory, spm_model=spm,
                    tokenizer_settings={"lowercase": True, "sequence_length": SEQUENCE_LENGTH})
    return directory, encoder, spm


def hugging_face_tokenizer(spm_model, lowercase=True):
    """`transformers.AlbertTokenizer` with the pieces, scores and NFKC table of `spm_model`.

    transformers 5 builds ALBERT's tokenizer from a vocabulary list; its own `spiece.model` reader
    needs sentencepiece's protobuf module, which refuses to load under TensorFlow's protobuf
    runtime, so the pieces come from sentencepiece and the table from the model's wire format.
    """
    import sentencepiece
    import transformers

    from albert_keras.export import albert_spm

    with open(spm_model, "rb") as f:
        proto = f.read()
    processor = sentencepiece.SentencePieceProcessor(model_proto=proto)
    vocab = [(processor.id_to_piece(i), processor.get_score(i)) for i in range(processor.get_piece_size())]
    charsmap = None
    for number, field in albert_spm._fields(proto):
        if number == albert_spm._NORMALIZER_SPEC:
            for inner, value in albert_spm._fields(albert_spm._payload(field)):
                if inner == albert_spm._CHARSMAP:
                    charsmap = albert_spm._payload(value)
    return transformers.AlbertTokenizer(vocab=vocab, do_lower_case=lowercase, keep_accents=not lowercase,
                                        _spm_precompiled_charsmap=charsmap)


def _time_hugging_face(request, torch, transformers):
    """Time Hugging Face on the request's sentences and batches (runs in the child process)."""
    torch.set_num_threads(request["threads"])
    transformers.utils.logging.disable_progress_bar()
    model = transformers.AlbertModel.from_pretrained(request["hf_dir"], local_files_only=True).eval()
    tokenizer = hugging_face_tokenizer(request["spm_model"])
    sentences = request["sentences"]

    def run(batch):
        encoded = tokenizer(batch, padding=True, truncation=True, max_length=SEQUENCE_LENGTH, return_tensors="pt")
        with torch.inference_mode():
            return model(**encoded).pooler_output.numpy()

    def one_pass():
        return throughput_pass(run, sentences, request["batches"])

    pooled = one_pass()  # also the warm-up pass
    np.save(request["pooled"], pooled)
    pass_s = []
    for _ in range(request["runs"]):
        start = time.perf_counter()
        one_pass()
        pass_s.append(time.perf_counter() - start)
    first_s, latencies_s = batch_one_latencies({HF: run}, sentences[: request["latency_sentences"]])[HF]
    return {
        "status": "ok", "versions": f"torch {torch.__version__}, transformers {transformers.__version__}",
        "pass_s": pass_s, "first_s": first_s, "latencies_s": latencies_s,
        "input_ids": tokenizer(sentences, truncation=True, max_length=SEQUENCE_LENGTH)["input_ids"],
    }


def hugging_face_child(request_path):
    """The child process's entry (`--hf-child REQUEST.json`): time HF, write `request["result"]`."""
    with open(request_path) as f:
        request = json.load(f)
    try:
        import torch
        import transformers
    except ImportError as error:
        result = {"status": "not installed", "error": str(error)}
    else:
        result = _time_hugging_face(request, torch, transformers)
    with open(request["result"], "w") as f:
        json.dump(result, f)


def hugging_face(pretrained_dir, spm_model, work, sentences, batches, args):
    """Hugging Face timed in its own process: `(result dict, pooled or None)`.

    Its own process, as it is served: torch's OpenMP threads and TensorFlow's pools each keep
    spinning after a call, so in one process each slows the other on a 2-core machine. The child
    loads no TensorFlow (it needs torch, transformers and sentencepiece); it runs right after ours.
    """
    import subprocess

    from albert_keras.convert.huggingface import to_huggingface

    hf_dir = to_huggingface(pretrained_dir, os.path.join(work, "hf"))
    request = {
        "hf_dir": hf_dir, "spm_model": spm_model, "sentences": sentences, "threads": args.threads,
        "batches": [[int(i) for i in indices] for indices in batches], "runs": args.runs,
        "latency_sentences": args.latency_sentences, "pooled": os.path.join(work, "hf_pooled.npy"),
        "result": os.path.join(work, "hf_result.json"),
    }
    path = os.path.join(work, "hf_request.json")
    with open(path, "w") as f:
        json.dump(request, f)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    try:
        done = subprocess.run([args.hf_python, os.path.abspath(__file__), "--hf-child", path], env=env,
                              capture_output=True, text=True, timeout=args.hf_timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"timed out after {args.hf_timeout:.0f} s"}, None
    if done.returncode != 0 or not os.path.exists(request["result"]):
        return {"status": "failed: " + (done.stderr.strip().splitlines() or ["no output"])[-1]}, None
    with open(request["result"]) as f:
        result = json.load(f)
    return result, (np.load(request["pooled"]) if result["status"] == "ok" else None)


def our_runners(pretrained_dir, encoder, spm_model, work, threads, skip_tflite):
    """`{name: (run(batch of str) -> pooled numpy, precision)}` and the Predictors by name."""
    import tensorflow as tf

    from albert_keras.export import tflite
    from albert_keras.export.exporter import export_model
    from albert_keras.export.inference import Predictor

    runners, predictors = {}, {}
    path = export_model(pretrained_dir, os.path.join(work, "saved_model"), signature="text", verbose=False)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    runners[REFERENCE] = (lambda batch: serve(text=tf.constant(batch))["pooled_output"].numpy(), "float32")
    predictors["Predictor float32"] = Predictor(encoder, spm_model, SEQUENCE_LENGTH, precision="float32")
    auto = Predictor(encoder, spm_model, SEQUENCE_LENGTH, precision="auto")
    if auto.precision != "float32":
        predictors[f"Predictor auto ({auto.precision})"] = auto
    for name, predictor in predictors.items():
        runners[name] = (
            lambda batch, p=predictor: p.predict(batch, batch_size=len(batch), bucketing=False)["pooled_output"],
            predictor.precision,
        )
    if not skip_tflite:
        for quantize, label in (("none", "float32"), ("dynamic-int8", "dynamic-int8")):
            model, _ = tflite.convert_model(encoder, quantize=quantize, spm_model=spm_model, with_tokenizer=True,
                                            sequence_length=SEQUENCE_LENGTH)
            runner = tflite.interpreter(model, num_threads=threads).get_signature_runner()
            runners[f"TFLite {label} + tokenizer ({threads} XNNPACK threads)"] = (
                lambda batch, r=runner: r(text=np.asarray(batch, dtype=object))["pooled_output"], label,
            )
    return runners, predictors


def throughput_pass(run, text, batches):
    """Pooled outputs of every sentence (input order) from running `run` on each batch."""
    outputs = [None] * len(text)
    for indices in batches:
        for i, row in zip(indices, run([text[i] for i in indices])):
            outputs[i] = row
    return np.stack(outputs)


def batch_one_latencies(runs, sentences):
    """`{name: (first-call seconds, steady-state seconds)}` per sentence, implementations alternating.

    The first pass meets every sequence length for the first time (what a fresh server pays);
    the second is the steady state a warmed-up server runs at, and is the reported latency.
    """
    latencies = {name: ([], []) for name in runs}
    for round_ in (0, 1):
        for sentence in sentences:
            for name, run in runs.items():
                start = time.perf_counter()
                run([sentence])
                latencies[name][round_].append(time.perf_counter() - start)
    return latencies


def summarize(count, pass_s, first_s, latencies_s):
    """Sentences/s (median pass), batch-1 p50 / p99 milliseconds (steady state) and first-call p50."""
    return {
        "sentences_per_s": count / statistics.median(pass_s), "pass_s": pass_s,
        "p50_ms": float(np.percentile(latencies_s, 50) * 1000), "p99_ms": float(np.percentile(latencies_s, 99) * 1000),
        "first_call_p50_ms": float(np.percentile(first_s, 50) * 1000), "latency_sentences": len(latencies_s),
    }


def measure(runners, predictors, sentences, batches, runs, latency_count):
    """`({name: figures}, {name: pooled outputs})`: alternating timed passes, then batch-1 latencies."""
    text = [s.encode("utf-8") for s in sentences]
    passes = {}
    for name, (run, _) in runners.items():
        if name in predictors:  # the Predictor buckets the whole list itself
            passes[name] = lambda p=predictors[name]: p.predict(text, batch_size=len(batches[0]))["pooled_output"]
        else:
            passes[name] = lambda r=run: throughput_pass(r, text, batches)
    pooled = {name: go() for name, go in passes.items()}  # also the warm-up pass
    times = {name: [] for name in runners}
    for _ in range(runs):
        for name, go in passes.items():  # alternating, so drift on a shared machine hits all alike
            start = time.perf_counter()
            go()
            times[name].append(time.perf_counter() - start)
    latencies = batch_one_latencies({name: run for name, (run, _) in runners.items()}, text[:latency_count])
    return {name: summarize(len(text), times[name], *latencies[name]) for name in runners}, pooled


def same_ids(hf_ids, packer, sentences):
    """Mask of the sentences Hugging Face's tokenizer packed to exactly our ids."""
    import tensorflow as tf

    features = packer(tf.constant(sentences))
    ours, mask = features["token_ids"].numpy(), features["padding_mask"].numpy()
    return np.array([list(ours[i][mask[i] > 0]) == list(hf_ids[i]) for i in range(len(sentences))])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="albert-base-v2", help="an AlbertConfig preset, or 'tiny' (smoke test)")
    parser.add_argument("--sentences", type=int, default=256, help="corpus sentences for the throughput passes")
    parser.add_argument("--latency-sentences", type=int, default=200, help="sentences timed one per call")
    parser.add_argument("--runs", type=int, default=3, help="timed throughput passes per implementation")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="TF, XNNPACK and torch threads")
    parser.add_argument("--skip-tflite", action="store_true")
    parser.add_argument("--hf-python", default=sys.executable, help="the Python that runs Hugging Face")
    parser.add_argument("--hf-timeout", type=float, default=900, help="seconds allowed for the Hugging Face run")
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    parser.add_argument("--hf-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hf_child:
        return hugging_face_child(args.hf_child)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    from albert_keras.export.inference import choose_precision
    from albert_keras.export.inference import cpu_flags
    from albert_keras.export.inference import length_buckets
    from albert_keras.export.text import AlbertTextPacker

    load_before = os.getloadavg()
    sentences = corpus_sentences(args.sentences)
    work = tempfile.mkdtemp(prefix="albert_serving_text_")
    pretrained_dir, encoder, spm_model = build_pretrained(work, args.preset)
    packer = AlbertTextPacker(spm_model, SEQUENCE_LENGTH)
    lengths = packer.token_lengths(tf.constant(sentences)).numpy()
    batches = length_buckets(lengths, args.batch)
    runners, predictors = our_runners(pretrained_dir, encoder, spm_model, work, args.threads, args.skip_tflite)
    figures, pooled = measure(runners, predictors, sentences, batches, args.runs, args.latency_sentences)
    precisions = {name: precision for name, (_, precision) in runners.items()}
    compared = {name: np.ones(len(sentences), bool) for name in runners}
    hf, hf_pooled = hugging_face(pretrained_dir, spm_model, work, sentences, batches, args)
    if hf_pooled is not None:
        figures[HF] = summarize(len(sentences), hf["pass_s"], hf["first_s"], hf["latencies_s"])
        pooled[HF], precisions[HF] = hf_pooled, "float32"
        compared[HF] = same_ids(hf["input_ids"], packer, sentences)

    reference = pooled[REFERENCE]
    rows = []
    for name, precision in precisions.items():
        mask = compared[name]
        diff = float(np.abs(pooled[name][mask] - reference[mask]).max()) if mask.any() else float("nan")
        rows.append({
            "implementation": name, "precision": precision, "bucketed": True, **figures[name],
            "max_abs_diff_vs_saved_model": diff, "compared_sentences": int(mask.sum()),
            "equal_work": precision == "float32" and diff <= EQUAL_TOLERANCE,
        })
    hf_rate = figures[HF]["sentences_per_s"] if HF in figures else None
    for row in rows:
        row["vs_hf"] = row["sentences_per_s"] / hf_rate if hf_rate else None
    tokens = np.minimum(lengths + 2, SEQUENCE_LENGTH)
    results = {
        "settings": {**vars(args), "sequence_length": SEQUENCE_LENGTH, "parameters": encoder.count_params()},
        "machine": {
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "cpu_flags": sorted(cpu_flags() & set(REPORTED_FLAGS)), "auto_precision": choose_precision("auto"),
            "load_average_before": load_before, "load_average_after": os.getloadavg(),
        },
        "sentences": {"count": len(sentences), "mean_tokens": float(tokens.mean()), "max_tokens": int(tokens.max())},
        "hugging_face": hf.get("versions", hf["status"]),
        "hf_id_mismatches": int((~compared[HF]).sum()) if HF in compared else None,
        "rows": rows,
    }

    print(f"\n{args.preset}: {len(sentences)} corpus sentences (mean {tokens.mean():.1f} tokens, max {tokens.max()}), "
          f"batch {args.batch} length-bucketed, {args.threads} threads, median of {args.runs} passes; "
          f"latency: batch 1 over {min(args.latency_sentences, len(sentences))} sentences")
    print(f"CPU flags: {', '.join(results['machine']['cpu_flags']) or 'none of ' + ', '.join(REPORTED_FLAGS)}; "
          f"load average {load_before[0]:.1f} -> {results['machine']['load_average_after'][0]:.1f}")
    print(f"| implementation | precision | sentences/s (batch {args.batch}) | vs HF | p50 ms (batch 1) | p99 ms | "
          "first call p50 ms | max abs diff vs SavedModel |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        ratio = f"{row['vs_hf']:.2f}x" if row["vs_hf"] else "-"
        print(f"| {row['implementation']} | {row['precision']} | {row['sentences_per_s']:.1f} | {ratio} | "
              f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['first_call_p50_ms']:.1f} | "
              f"{row['max_abs_diff_vs_saved_model']:.2g} |")
    if HF in figures:
        print(f"Hugging Face: {hf['versions']}, in its own process after ours; {results['hf_id_mismatches']} of "
              f"{len(sentences)} sentences tokenized differently (no digit-comma split), left out of its diff")
    else:
        print(f"| {HF} | {hf['status']} | - | - | - | - | - | - |")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(results, f, indent=2, default=str)
    print(f"wrote {args.output}")
    return results


if __name__ == "__main__":
    main()
