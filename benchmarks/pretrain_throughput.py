"""Pretraining throughput and model-FLOPs utilisation (MFU): our `AlbertPretrainer` (MLM + SOP,
official LAMB) next to keras-hub's `AlbertMaskedLM.fit` (MLM only, AdamW) in the same run.

For each model size (ALBERT-base / -large, V=30000, E=128), sequence length and precision, a fresh
child process builds both Keras models and alternates rounds of `fit` (`--steps-per-round` steps
each, compiled with that many `steps_per_execution`, so a round is one host round trip), so the
load of a shared machine hits both alike. The first `--warmup` rounds (tracing, XLA compilation)
are dropped; the median round gives the seconds per step, the examples per second, and the MFU:

    model FLOPs per example = 6 * (S * (E*H + L * (4*H^2 + 2*H*I))       # tokens x matmul params
                                   + P * (H*E + E*V) + H^2 + 2*H)         # MLM head on P positions, SOP
                              + 12 * L * H * S^2                          # attention scores and mix
    MFU = FLOPs per example * examples per second / the device's peak FLOP/s

(S sequence, P masked positions, L layers, H hidden, I intermediate, E embedding, V vocabulary).
6 = 2 FLOPs per multiply-add x (forward + 2 x backward); ALBERT's shared layer counts once per use
(L times), embedding lookups count nothing, and the attention term is QK^T and AV (2 * 2*S^2*H per
layer forward, x3 for training). The same formula scores keras-hub's model (MLM only, so its true
work is a bit smaller: its MFU is slightly overstated against ours).

The peak comes from a table of NVIDIA GPUs (dense tensor-core figures: bfloat16 for
mixed_bfloat16; TF32 for float32, which TensorFlow uses for float32 matmuls on Ampere and later)
or, on CPU, from `lscpu` / `/proc/cpuinfo`: cores x GHz x FLOPs per cycle per core (fp32: AVX2 FMA
32, AVX-512 64, or 32 on AMD Zen 4, which runs 512-bit FMAs on 256-bit units; bfloat16: AMX 1024,
AVX512_BF16 twice the fp32 figure, else the fp32 figure); where one large matmul measured in a
child process runs faster than that (a VM reporting its base clock while the cores boost), the
measured figure is the peak, and the output says so. `--peak-tflops` overrides both.

    python benchmarks/pretrain_throughput.py --device gpu
    python benchmarks/pretrain_throughput.py --device cpu --steps 5 --warmup 2
    python benchmarks/pretrain_throughput.py --device cpu --models base --seqs 128 --hf-python /tmp/hf/bin/python
    python benchmarks/pretrain_throughput.py --tiny   # smoke test: a tiny config, one timed round

Hugging Face's `AlbertForPreTraining` is added with `--impls ours keras_hub hf` when `--hf-python`
names an interpreter with torch and transformers (or when they import here). Prints a table;
writes `benchmarks/results/pretrain_throughput.json` (or `--output`).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "pretrain_throughput.json")
VOCAB, EMBEDDING = 30000, 128
MODELS = {
    # name: (layers, hidden, heads, intermediate, vocabulary, embedding)
    "base": (12, 768, 12, 3072, VOCAB, EMBEDDING),
    "large": (24, 1024, 16, 4096, VOCAB, EMBEDDING),
    "tiny": (2, 32, 2, 64, 1000, 16),
}
# Masked positions per sequence: the official 20 at 128 (max_predictions_per_seq), 76 at 512.
PREDICTIONS = {128: 20, 512: 76}
DEFAULT_BATCH = {"gpu": {128: 128, 512: 32}, "cpu": {128: 8, 512: 2}}

# Dense (no sparsity) peak TFLOP/s of common NVIDIA GPUs, from NVIDIA's data sheets. The first
# matching name wins, so the more specific names come first.
GPU_PEAKS = [
    # (name pattern, bfloat16, tf32, fp32)
    ("H200", 989.0, 494.0, 67.0),
    ("H100 PCIe", 756.0, 378.0, 51.0),
    ("H100 NVL", 835.0, 418.0, 60.0),
    ("H100", 989.0, 494.0, 67.0),  # SXM
    ("A100", 312.0, 156.0, 19.5),
    ("L40S", 362.0, 183.0, 91.6),
    ("L4", 121.0, 60.0, 30.3),
    ("A10", 125.0, 62.5, 31.2),
    ("V100", None, None, 15.7),  # no bfloat16 / TF32 units
    ("T4", None, None, 8.1),
]


# --- FLOPs and peaks ---------------------------------------------------------------------------


def flops_per_example(layers, hidden, intermediate, vocab, embedding, seq, predictions):
    """Training FLOPs (forward + backward) per example of ALBERT pretraining (see module docstring).

    Example:
    >>> round(flops_per_example(12, 768, 3072, 30000, 128, 128, 20) / 1e9, 1)
    75.8
    """
    per_token = embedding * hidden + layers * (4 * hidden * hidden + 2 * hidden * intermediate)
    heads = predictions * (hidden * embedding + embedding * vocab) + hidden * hidden + 2 * hidden
    return 6 * (seq * per_token + heads) + 12 * layers * hidden * seq * seq


def gpu_peak(name, precision):
    """(peak TFLOP/s, source) of an NVIDIA GPU for `precision`, or (None, why) when not in the table."""
    for pattern, bf16, tf32, fp32 in GPU_PEAKS:
        if pattern.lower() in name.lower():
            if precision == "float32":
                value, unit = (tf32, "TF32") if tf32 else (fp32, "FP32")
            else:
                value, unit = bf16, "BF16"
            if value is None:
                return None, f"{pattern} has no {unit} units"
            return value, f"{pattern} {unit} dense (data sheet)"
    return None, f"{name!r} is not in the peak table: give --peak-tflops"


def _cpu_facts():
    """Cores, GHz, CPU flags, vendor and family from lscpu and /proc/cpuinfo."""
    facts = {"cores": os.cpu_count() or 1, "ghz": None, "flags": set(), "vendor": "", "family": None}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    try:
        facts["cores"] = int(fields["Core(s) per socket"]) * int(fields.get("Socket(s)", 1))
    except (KeyError, ValueError):
        pass
    facts["flags"] = set(fields.get("Flags", "").split())
    facts["vendor"] = fields.get("Vendor ID", "")
    facts["family"] = int(fields["CPU family"]) if fields.get("CPU family", "").isdigit() else None
    if fields.get("CPU max MHz"):
        facts["ghz"] = float(fields["CPU max MHz"]) / 1000
    else:
        try:
            with open("/proc/cpuinfo") as f:
                mhz = re.findall(r"^cpu MHz\s*:\s*([\d.]+)", f.read(), re.M)
            facts["ghz"] = max(float(value) for value in mhz) / 1000 if mhz else None
        except OSError:
            pass
    if not facts["flags"]:
        try:
            with open("/proc/cpuinfo") as f:
                flags = re.search(r"^flags\s*:\s*(.*)$", f.read(), re.M)
            facts["flags"] = set(flags.group(1).split()) if flags else set()
        except OSError:
            pass
    return facts


def cpu_flops_per_cycle(flags, precision, vendor="", family=None):
    """(FLOPs per cycle per core, how) for `precision` from the CPU's flags.

    Example:
    >>> cpu_flops_per_cycle({"avx2", "fma"}, "float32")
    (32, 'AVX2 FMA')
    >>> cpu_flops_per_cycle({"avx512f", "amx_bf16"}, "mixed_bfloat16")
    (1024, 'AMX-BF16')
    """
    if "avx512f" in flags:
        zen4 = vendor == "AuthenticAMD" and family == 25  # 512-bit FMAs on 256-bit units
        fp32, how = (32, "AVX-512 on Zen 4 (256-bit units)") if zen4 else (64, "AVX-512 FMA")
    elif "avx2" in flags and "fma" in flags:
        fp32, how = 32, "AVX2 FMA"
    else:
        fp32, how = 8, "SSE (no FMA)"
    if precision == "float32":
        return fp32, how
    if "amx_bf16" in flags:
        return 1024, "AMX-BF16"
    if "avx512_bf16" in flags:
        return 2 * fp32, f"AVX512_BF16 (2 x {how})"
    return fp32, f"{how} (no bfloat16 units: bfloat16 computes at the fp32 rate)"


def cpu_peak(precision, facts=None):
    """(peak TFLOP/s, source) of this CPU: cores x GHz x FLOPs per cycle per core."""
    facts = facts or _cpu_facts()
    per_cycle, how = cpu_flops_per_cycle(facts["flags"], precision, facts["vendor"], facts["family"])
    if not facts["ghz"]:
        return None, "clock unknown: give --peak-tflops"
    peak = facts["cores"] * facts["ghz"] * per_cycle / 1000
    return peak, f"{facts['cores']} cores x {facts['ghz']:.2f} GHz x {per_cycle} FLOPs/cycle ({how})"


# --- the models --------------------------------------------------------------------------------


def _random_batch(batch, seq, predictions, vocab, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = rng.integers(max(seq * 3 // 4, predictions + 2), seq + 1, size=batch)
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype("int32")
    ids = rng.integers(5, vocab, size=(batch, seq)).astype("int32") * mask
    segments = (np.arange(seq)[None, :] >= (lengths // 2)[:, None]).astype("int32") * mask
    positions = np.sort(np.stack([rng.choice(int(n), predictions, replace=False) for n in lengths]), axis=1)
    return {
        "input_ids": ids,
        "input_mask": mask,
        "segment_ids": segments,
        "masked_lm_positions": positions.astype("int32"),
        "masked_lm_ids": rng.integers(5, vocab, size=(batch, predictions)).astype("int32"),
        "masked_lm_weights": np.ones((batch, predictions), "float32"),
        "next_sentence_labels": rng.integers(0, 2, size=batch).astype("int32"),
    }


def _config(model):
    from albert_keras.config import AlbertConfig

    layers, hidden, heads, intermediate, vocab, embedding = MODELS[model]
    return AlbertConfig(
        vocab_size=vocab, embedding_size=embedding, hidden_size=hidden, num_hidden_layers=layers,
        num_hidden_groups=1, num_attention_heads=heads, intermediate_size=intermediate, inner_group_num=1,
        hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=512,
        type_vocab_size=2, initializer_range=0.02,
    )


def _build_ours(model, precision, xla, batch, seq, predictions, steps_per_execution):
    import tensorflow as tf

    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.pretrainer import AlbertPretrainer
    from albert_keras.training.optimization import create_optimizer

    dtype = None if precision == "float32" else precision
    pretrainer = AlbertPretrainer(AlbertEncoder(_config(model), dtype=dtype))
    pretrainer.compile(optimizer=create_optimizer("lamb", 1e-4, num_train_steps=1000, num_warmup_steps=10),
                       jit_compile=xla, steps_per_execution=steps_per_execution)
    data = _random_batch(batch, seq, predictions, MODELS[model][4])
    return pretrainer, tf.data.Dataset.from_tensors(data).repeat()


def _build_keras_hub(model, precision, xla, batch, seq, predictions, steps_per_execution):
    import keras
    import keras_hub
    import tensorflow as tf

    layers, hidden, heads, intermediate, vocab, embedding = MODELS[model]
    dtype = None if precision == "float32" else precision
    backbone = keras_hub.models.AlbertBackbone(
        vocabulary_size=vocab, num_layers=layers, num_heads=heads, embedding_dim=embedding, hidden_dim=hidden,
        intermediate_dim=intermediate, num_groups=1, num_inner_repetitions=1, max_sequence_length=512, dtype=dtype,
    )
    masked_lm = keras_hub.models.AlbertMaskedLM(backbone, preprocessor=None)
    masked_lm.compile(
        optimizer=keras.optimizers.AdamW(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy()],
        jit_compile=xla, steps_per_execution=steps_per_execution,
    )
    data = _random_batch(batch, seq, predictions, vocab)
    x = {
        "token_ids": data["input_ids"],
        "segment_ids": data["segment_ids"],
        "padding_mask": data["input_mask"],
        "mask_positions": data["masked_lm_positions"],
    }
    return masked_lm, tf.data.Dataset.from_tensors((x, data["masked_lm_ids"], data["masked_lm_weights"])).repeat()


BUILDERS = {"ours": _build_ours, "keras_hub": _build_keras_hub}


def _child_keras(spec):
    """Time `rounds` rounds of each Keras implementation, alternating one round of each."""
    steps = spec["steps_per_round"]
    built = {}
    for impl in spec["impls"]:
        built[impl] = BUILDERS[impl](spec["model"], spec["precision"], spec["xla"], spec["batch"], spec["seq"],
                                     spec["predictions"], steps)
    times = {impl: [] for impl in built}
    for _ in range(spec["rounds"]):
        for impl, (model, data) in built.items():
            start = time.perf_counter()
            # History converts the epoch's logs to floats: the round ends when the device is done.
            model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
            times[impl].append((time.perf_counter() - start) / steps)
    return times


def _child_hf(spec):
    import torch
    from transformers import AlbertConfig
    from transformers import AlbertForPreTraining

    layers, hidden, heads, intermediate, vocab, embedding = MODELS[spec["model"]]
    device = "cuda" if spec["device"] == "gpu" else "cpu"
    torch.manual_seed(0)
    config = AlbertConfig(vocab_size=vocab, embedding_size=embedding, hidden_size=hidden, num_hidden_layers=layers,
                          num_attention_heads=heads, intermediate_size=intermediate, hidden_act="gelu_new",
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = AlbertForPreTraining(config).train().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = _random_batch(spec["batch"], spec["seq"], spec["predictions"], vocab)
    batch = {k: torch.as_tensor(v).to(device) for k, v in data.items()}
    labels = torch.full((spec["batch"], spec["seq"]), -100, dtype=torch.long, device=device)
    labels.scatter_(1, batch["masked_lm_positions"].long(), batch["masked_lm_ids"].long())
    times = []
    for _ in range(spec["rounds"]):
        start = time.perf_counter()
        for _ in range(spec["steps_per_round"]):
            with torch.autocast(device, dtype=torch.bfloat16, enabled=spec["precision"] != "float32"):
                out = model(input_ids=batch["input_ids"].long(), attention_mask=batch["input_mask"].long(),
                            token_type_ids=batch["segment_ids"].long(), labels=labels,
                            sentence_order_label=batch["next_sentence_labels"].long())
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
        float(out.loss)  # wait for the device
        times.append((time.perf_counter() - start) / spec["steps_per_round"])
    return {"hf": times}


IMPLS = ("ours", "keras_hub", "hf")
LABELS = {
    "ours": "albert-keras AlbertPretrainer (MLM+SOP, LAMB)",
    "keras_hub": "keras-hub AlbertMaskedLM (MLM, AdamW)",
    "hf": "HF AlbertForPreTraining (MLM+SOP, AdamW)",
}


def _child_matmul(spec):
    """Seconds per square float32 / bfloat16 matmul of `spec["size"]` on this device (best of a few)."""
    import tensorflow as tf

    size = spec["size"]
    dtype = tf.float32 if spec["precision"] == "float32" else tf.bfloat16
    a = tf.cast(tf.random.normal((size, size)), dtype)
    b = tf.cast(tf.random.normal((size, size)), dtype)
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y)[:1, :1], tf.float32)))
    matmul(a, b).numpy()
    times = []
    for _ in range(spec["rounds"]):
        start = time.perf_counter()
        matmul(a, b).numpy()
        times.append(time.perf_counter() - start)
    return {"matmul": times}


def measured_matmul_tflops(precision, device="cpu", size=2048, rounds=5, python=sys.executable):
    """TFLOP/s one large matmul reaches here: a floor for the peak where the clock is under-reported.

    A VM's lscpu / /proc/cpuinfo may give the base clock while the cores boost (the 2-core EPYC
    VM this project measures on reports 2.6 GHz, yet a bfloat16 matmul runs above 2.6 GHz x 64 FLOPs
    x 2 cores), which would put MFU above what the hardware can do.
    """
    times = _run_child({"matmul": True, "size": size, "precision": precision, "device": device,
                        "rounds": rounds}, python)["matmul"]
    return 2 * size ** 3 / min(times) / 1e12


def _run_child(spec, python):
    command = [python, os.path.abspath(__file__), "--child", json.dumps(spec)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if spec["device"] == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    for line in result.stdout.splitlines():
        if line.startswith("TIMES "):
            return json.loads(line[len("TIMES "):])
    what = f"{spec['size']}^3 matmul" if spec.get("matmul") else f"{spec['model']} seq {spec['seq']}"
    raise RuntimeError(f"{what} {spec['precision']} failed:\n{result.stderr[-3000:]}")


def _hf_available(python):
    if python != sys.executable:
        return True
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def _gpu_name():
    """The first GPU's name as TensorFlow reports it (in a child: this process stays TF-free)."""
    code = ("import tensorflow as tf; g = tf.config.list_physical_devices('GPU'); "
            "print('NAME', tf.config.experimental.get_device_details(g[0]).get('device_name', 'GPU') if g else '')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")).stdout
    names = [line[5:] for line in out.splitlines() if line.startswith("NAME ")]
    return names[0] if names else ""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--models", nargs="+", choices=("base", "large"), default=None,
                        help="default: base and large on GPU, base on CPU (large steps take minutes there)")
    parser.add_argument("--seqs", nargs="+", type=int, choices=(128, 512), default=None,
                        help="default: 128 and 512 on GPU, 128 on CPU")
    parser.add_argument("--batch", type=int, default=None, help="examples per step (default: GPU 128 / 32 at "
                        "seq 128 / 512, CPU 8 / 2)")
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"],
                        choices=("float32", "mixed_bfloat16"))
    parser.add_argument("--impls", nargs="+", default=["ours", "keras_hub"], choices=IMPLS)
    parser.add_argument("--steps", type=int, default=None, help="timed rounds (default GPU 5, CPU 4)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed first rounds (default 2)")
    parser.add_argument("--steps-per-round", type=int, default=None,
                        help="fit steps per timed round, = steps_per_execution (default GPU 10, CPU 1)")
    xla = parser.add_mutually_exclusive_group()
    xla.add_argument("--xla", dest="xla", action="store_true", default=None, help="jit_compile (default on GPU)")
    xla.add_argument("--no-xla", dest="xla", action="store_false", help="no XLA (default on CPU: slower there)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak TFLOP/s for the MFU (overrides the table / lscpu estimate)")
    parser.add_argument("--hf-python", default=sys.executable, help="interpreter with torch + transformers")
    parser.add_argument("--tiny", action="store_true", help="smoke test: a tiny config at seq 32, one timed round")
    parser.add_argument("--output", default=RESULTS, help="JSON results path")
    args = parser.parse_args(argv)

    if args.child:
        spec = json.loads(args.child)
        if spec.get("matmul"):
            times = _child_matmul(spec)
        else:
            times = _child_hf(spec) if spec["impls"] == ["hf"] else _child_keras(spec)
        print("TIMES " + json.dumps(times), flush=True)
        return 0

    gpu = args.device == "gpu"
    models = ["tiny"] if args.tiny else args.models or (["base", "large"] if gpu else ["base"])
    seqs = [32] if args.tiny else args.seqs or ([128, 512] if gpu else [128])
    rounds = 1 if args.tiny and args.steps is None else args.steps or (5 if gpu else 4)
    warmup = (1 if args.tiny else 2) if args.warmup is None else args.warmup
    steps_per_round = args.steps_per_round or (10 if gpu else 1)
    use_xla = gpu if args.xla is None else args.xla
    device_name = _gpu_name() if gpu else "CPU"
    if gpu and not device_name:
        parser.error("--device gpu: TensorFlow sees no GPU")
    facts = None if gpu else _cpu_facts()
    cpu_flags = sorted(facts["flags"] & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"}) if facts else []

    rows = []
    measured = {}  # precision -> TFLOP/s one large matmul reaches on this CPU
    calibration_size = 256 if args.tiny else 2048
    for model in models:
        layers, hidden, heads, intermediate, vocab, embedding = MODELS[model]
        for seq in seqs:
            predictions = 5 if args.tiny else PREDICTIONS[seq]
            batch = 2 if args.tiny and args.batch is None else args.batch or DEFAULT_BATCH[args.device][seq]
            flops = flops_per_example(layers, hidden, intermediate, vocab, embedding, seq, predictions)
            for precision in args.precisions:
                spec = {"model": model, "seq": seq, "batch": batch, "predictions": predictions,
                        "precision": precision, "xla": use_xla, "device": args.device,
                        "rounds": warmup + rounds, "steps_per_round": steps_per_round}
                times = {}
                keras_impls = [impl for impl in args.impls if impl != "hf"]
                if keras_impls:
                    times.update(_run_child({**spec, "impls": keras_impls}, sys.executable))
                if "hf" in args.impls:
                    if _hf_available(args.hf_python):
                        times.update(_run_child({**spec, "impls": ["hf"]}, args.hf_python))
                    else:
                        print("hf: torch/transformers not importable; skipped", file=sys.stderr)
                if args.peak_tflops:
                    peak, source = args.peak_tflops, "--peak-tflops"
                elif gpu:
                    peak, source = gpu_peak(device_name, precision)
                else:
                    peak, source = cpu_peak(precision, facts)
                    if precision not in measured:
                        measured[precision] = measured_matmul_tflops(precision, size=calibration_size)
                    if peak is None or measured[precision] > peak:
                        peak, source = measured[precision], (
                            f"measured: one {calibration_size}^3 {precision} matmul, above the clock-based "
                            f"estimate ({source}), so the clock is under-reported")
                for impl, all_times in times.items():
                    timed = all_times[warmup:] or all_times
                    step_s = statistics.median(timed)
                    examples = batch / step_s
                    achieved = flops * examples / 1e12
                    rows.append({
                        "impl": impl, "model": model, "seq": seq, "batch": batch, "predictions": predictions,
                        "precision": precision, "xla": use_xla, "steps_per_round": steps_per_round,
                        "median_step_s": round(step_s, 5), "min_step_s": round(min(timed), 5),
                        "examples_per_s": round(examples, 3), "rounds": len(timed),
                        "gflops_per_example": float(f"{flops / 1e9:.6g}"), "achieved_tflops": float(f"{achieved:.6g}"),
                        "peak_tflops": peak, "peak_source": source,
                        "mfu": float(f"{achieved / peak:.6g}") if peak else None,
                    })
                    print(f"{impl:10s} {model} seq {seq} {precision:15s} {step_s:.4f} s/step {examples:8.2f} ex/s",
                          file=sys.stderr)

    where = device_name if gpu else f"CPU ({', '.join(cpu_flags) or 'no AVX2/AVX-512 flags'})"
    print(f"\nALBERT pretraining step on {where}, xla={use_xla}, {steps_per_round} steps per execution")
    print("| implementation | model | seq | batch | precision | s/step | examples/s | TFLOP/s | MFU | vs keras-hub |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        base = next((r for r in rows if r["impl"] == "keras_hub" and all(
            r[key] == row[key] for key in ("model", "seq", "precision"))), None)
        ratio = f"{base['median_step_s'] / row['median_step_s']:.2f}x" if base else "-"
        mfu = f"{100 * row['mfu']:.1f} %" if row["mfu"] is not None else "n/a"
        print(f"| {LABELS[row['impl']]} | {row['model']} | {row['seq']} | {row['batch']} | {row['precision']} | "
              f"{row['median_step_s']:.4f} | {row['examples_per_s']:.2f} | {row['achieved_tflops']:.3g} | {mfu} | "
              f"{ratio} |")
    peaks = sorted({(row["precision"], row["peak_tflops"], row["peak_source"]) for row in rows}, key=str)
    for precision, peak, source in peaks:
        shown = f"{peak:.2f} TFLOP/s" if peak else "unknown"
        print(f"peak {precision}: {shown} ({source})")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({"device": where, "cpu_flags": cpu_flags, "xla": use_xla, "steps_per_round": steps_per_round,
                   "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
