"""Serving real text: raw sentences in, pooled output out, ours next to Hugging Face's.

Every implementation gets the same corpus sentences (a seeded sample of the embedded corpus, so
its length distribution), the same weights and the same SentencePiece model, and is timed on:

- throughput: sentences/s over all sentences at `--batch` (32), length-bucketed (sorted by token
  count, each batch padded to its own longest member; every implementation here pads per batch,
  so every one is bucketed);
- latency: p50 / p99 milliseconds of one sentence per call (batch 1) over `--latency-sentences`,
  in a second pass over them (the steady state of a warmed-up server); the first pass, where
  each sequence length is met for the first time, is reported as "first call p50".

Implementations alternate call by call (pass by pass, sentence by sentence), so load from other
jobs on a shared machine hits them alike.

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
- `Hugging Face (torch)`: `transformers.AlbertTokenizer` built from the same `spiece.model` (the
  tokenizers-backed one under transformers 5, the sentencepiece-backed one under 4.x) plus
  `transformers.AlbertModel` loaded from `albert_keras.convert.huggingface.to_huggingface` of the
  same directory (same weights), float32, `torch.set_num_threads(--threads)`, in its own process
  (`--hf-python`, default this Python; no TensorFlow loaded there) driven call by call. Reported
  as "not installed" when torch or transformers is missing there.

Equal work is checked, not assumed: each implementation's pooled outputs are compared with the
SavedModel's on every sentence (Hugging Face's on the sentences its tokenizer gives the same ids
for; it lacks the official ALBERT digit-comma split, e.g. "1," -> "1" ",", so a few sentences
differ and are counted).

    .venv/bin/python benchmarks/serving_text.py [--preset albert-base-v2] [--sentences 256]
        [--latency-sentences 200] [--runs 3] [--batch 32] [--threads N] [--skip-tflite]
        [--hf-python PYTHON]

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
    from albert_keras.corpus import embedded_corpus

    sentences = [s for document in embedded_corpus() for s in document if s.strip()]
    order = np.random.default_rng(seed).permutation(len(sentences))
    return [sentences[i] for i in order[:count]]


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
    """Hugging Face's ALBERT tokenizer for `spm_model`, built the way the installed transformers takes it.

    - transformers 5 builds `AlbertTokenizer` (tokenizers-backed) from a vocabulary list and
      ignores a bare `vocab_file`; its own `spiece.model` reader needs sentencepiece's protobuf
      module, which refuses to load under TensorFlow's protobuf runtime, so the pieces come from
      sentencepiece and the NFKC table from the model's wire format.
    - transformers 4 has no `vocab=` argument: its sentencepiece-backed `AlbertTokenizer` reads
      `vocab_file` (its `AlbertTokenizerFast` converts through the same refused protobuf module).

    Either way the result is checked to hold every piece of `spm_model`, so a transformers that
    takes neither form fails here in one line instead of tokenizing everything to `<unk>`.

    Example:
    ```python
    hugging_face_tokenizer("spiece.model")(["a sentence."])["input_ids"]
    ```
    """
    import sentencepiece
    import transformers

    from albert_keras.export import albert_spm

    with open(spm_model, "rb") as f:
        proto = f.read()
    processor = sentencepiece.SentencePieceProcessor(model_proto=proto)
    version = transformers.__version__
    if int(version.split(".")[0]) >= 5:
        vocab = [(processor.id_to_piece(i), processor.get_score(i)) for i in range(processor.get_piece_size())]
        charsmap = albert_spm.precompiled_charsmap(proto)
        tokenizer = transformers.AlbertTokenizer(vocab=vocab, do_lower_case=lowercase, keep_accents=not lowercase,
                                                 _spm_precompiled_charsmap=charsmap)
    else:
        tokenizer = transformers.AlbertTokenizer(vocab_file=spm_model, do_lower_case=lowercase,
                                                 keep_accents=not lowercase)
    if len(tokenizer) != processor.get_piece_size():
        raise RuntimeError(f"transformers {version}: AlbertTokenizer holds {len(tokenizer)} tokens, {spm_model} "
                           f"{processor.get_piece_size()}; this benchmark needs transformers 4.x (vocab_file=) "
                           "or 5.x (vocab=)")
    return tokenizer


def hugging_face_child():
    """The child process (`--hf-child`): Hugging Face, driven one command per stdin line.

    The first line is the setup (directory, SentencePiece model, sentences, batches, threads);
    then `{"op": "pass"}` runs one throughput pass and `{"op": "one", "i": k}` sentence `k` alone.
    Each reply is one JSON line with the seconds measured here. Library prints go to stderr.
    """
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def reply(message):
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    request = json.loads(sys.stdin.readline())
    try:
        import torch
        import transformers
    except ImportError as error:
        return reply({"status": "not installed", "error": str(error)})
    torch.set_num_threads(request["threads"])
    transformers.utils.logging.disable_progress_bar()
    model = transformers.AlbertModel.from_pretrained(request["hf_dir"], local_files_only=True).eval()
    tokenizer = hugging_face_tokenizer(request["spm_model"])
    sentences = request["sentences"]

    def run(batch):
        encoded = tokenizer(batch, padding=True, truncation=True, max_length=SEQUENCE_LENGTH, return_tensors="pt")
        with torch.inference_mode():
            return model(**encoded).pooler_output.numpy()

    reply({"status": "ok", "versions": f"torch {torch.__version__}, transformers {transformers.__version__} "
                                       f"({type(tokenizer).__module__.split('.')[-1]}.{type(tokenizer).__name__})",
           "input_ids": tokenizer(sentences, truncation=True, max_length=SEQUENCE_LENGTH)["input_ids"]})
    for line in sys.stdin:
        command = json.loads(line)
        start = time.perf_counter()
        if command["op"] == "pass":
            pooled = throughput_pass(run, sentences, request["batches"])
            seconds = time.perf_counter() - start
            reply({"s": seconds, "pooled": pooled.tolist() if command.get("keep") else None})
        elif command["op"] == "one":
            run([sentences[command["i"]]])
            reply({"s": time.perf_counter() - start})
        else:
            return None


class HuggingFaceProcess:
    """Hugging Face in its own process (as it is served), driven call by call so it alternates with ours.

    Its own process as Hugging Face is served, so TensorFlow's thread pools and torch's OpenMP
    threads never share one (the child loads no TensorFlow); driven call by call so that load from
    other jobs on a shared machine hits it and ours alike.

    Example:
    ```python
    hf = HuggingFaceProcess(sys.executable, "hf_dir", "spiece.model", ["a sentence."], [[0]], threads=2)
    hf.start()["status"]  # "ok"
    pooled, seconds = hf.timed_pass(keep=True)
    hf.close()
    ```
    """

    def __init__(self, python, hf_dir, spm_model, sentences, batches, threads, timeout=900):
        import subprocess

        self.timeout = timeout
        self.stderr = tempfile.TemporaryFile("w+")
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        self.process = subprocess.Popen([python, os.path.abspath(__file__), "--hf-child"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env)
        self.setup = {"hf_dir": hf_dir, "spm_model": spm_model, "sentences": sentences,
                      "batches": [[int(i) for i in indices] for indices in batches], "threads": threads}

    def start(self):
        """Load the model and tokenizer there: `{"status": "ok", "versions", "input_ids"}` or "not installed"."""
        return self._send(self.setup)

    def _send(self, message):
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(self.timeout)
            self.stderr.seek(0)
            last = (self.stderr.read().strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"Hugging Face process exited ({self.process.returncode}): {last}")
        return json.loads(line)

    def timed_pass(self, keep=False):
        reply = self._send({"op": "pass", "keep": keep})
        return (np.asarray(reply["pooled"], np.float32) if keep else None), reply["s"]

    def timed_one(self, i):
        return self._send({"op": "one", "i": int(i)})["s"]

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(self.timeout)


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


def _timed(function, *args):
    start = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - start


def summarize(count, pass_s, first_s, latencies_s):
    """Sentences/s (median pass), batch-1 p50 / p99 milliseconds (steady state) and first-call p50."""
    return {
        "sentences_per_s": count / statistics.median(pass_s), "pass_s": pass_s,
        "p50_ms": float(np.percentile(latencies_s, 50) * 1000), "p99_ms": float(np.percentile(latencies_s, 99) * 1000),
        "first_call_p50_ms": float(np.percentile(first_s, 50) * 1000), "latency_sentences": len(latencies_s),
    }


def measure(passes, singles, count, runs, latency_count):
    """`({name: figures}, {name: pooled outputs})`, implementations alternating call by call.

    Args:
        passes: `{name: pass(keep) -> (pooled or None, seconds)}`, one pass over every sentence.
        singles: `{name: one(i) -> seconds}`, sentence `i` alone (batch 1).
        count: the number of sentences.
        runs: timed passes (after one warm-up pass, whose outputs are returned).
        latency_count: sentences timed alone, twice: the first time meets every sequence length
            for the first time (what a fresh server pays); the second, the steady state of a
            warmed-up server, is the reported latency.
    """
    pooled = {name: go(True)[0] for name, go in passes.items()}
    times = {name: [] for name in passes}
    for _ in range(runs):
        for name, go in passes.items():  # alternating, so drift on a shared machine hits all alike
            times[name].append(go(False)[1])
    latencies = {name: ([], []) for name in singles}
    for round_ in (0, 1):
        for i in range(latency_count):
            for name, one in singles.items():
                latencies[name][round_].append(one(i))
    return {name: summarize(count, times[name], *latencies[name]) for name in passes}, pooled


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
    parser.add_argument("--hf-timeout", type=float, default=900, help="seconds to wait for the Hugging Face process to exit")
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    parser.add_argument("--hf-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hf_child:
        return hugging_face_child()
    for flag in ("sentences", "latency_sentences", "runs", "batch", "threads"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')}: must be at least 1")

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    from albert_keras.convert.huggingface import to_huggingface
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
    text = [s.encode("utf-8") for s in sentences]
    passes, singles = {}, {}
    for name, (run, _) in runners.items():
        if name in predictors:  # the Predictor buckets the whole list itself
            passes[name] = lambda keep, p=predictors[name]: _timed(
                lambda: p.predict(text, batch_size=args.batch)["pooled_output"])
        else:
            passes[name] = lambda keep, r=run: _timed(throughput_pass, r, text, batches)
        singles[name] = lambda i, r=run: _timed(r, [text[i]])[1]
    precisions = {name: precision for name, (_, precision) in runners.items()}
    hf_process = HuggingFaceProcess(args.hf_python, to_huggingface(pretrained_dir, os.path.join(work, "hf")),
                                    spm_model, sentences, batches, args.threads, args.hf_timeout)
    try:
        hf = hf_process.start()
    except RuntimeError as error:  # a broken reference must not lose our rows
        hf = {"status": f"failed ({error})"}
    if hf["status"] == "ok":
        passes[HF], singles[HF], precisions[HF] = hf_process.timed_pass, hf_process.timed_one, "float32"
    latency_count = min(args.latency_sentences, len(sentences))
    try:
        figures, pooled = measure(passes, singles, len(sentences), args.runs, latency_count)
    finally:
        hf_process.close()
    compared = {name: np.ones(len(sentences), bool) for name in passes}
    if HF in passes:
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
          f"latency: batch 1 over {latency_count} sentences")
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
        print(f"Hugging Face: {hf['versions']}, in its own process; {results['hf_id_mismatches']} of "
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
