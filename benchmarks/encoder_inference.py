"""ALBERT-base encoder inference: our AlbertEncoder (`fuse="auto"`, the default, and `fuse=False`)
next to keras-hub's AlbertBackbone.

Batch 32 x sequence 128 of random token ids, float32 and mixed_bfloat16, sequences per second
(median of timed runs after warm-up). Implementations are timed in alternation inside one process
so drift on a shared machine hits them equally, with a pause before each call (`--gap-s`) so one
framework's spinning worker threads do not slow the next. Hugging Face's AlbertModel (PyTorch) is added when
torch and transformers happen to be installed (transformers 4.x or 5.x). `fuse=False` keeps every
Keras and keras-hub layer's own class: its row is what the fusions of `modeling/fusion.py` add.

    python benchmarks/encoder_inference.py [--runs 5] [--batch 32] [--seq 128] [--preset albert-base-v2]

Prints a table and writes benchmarks/results/encoder_inference.json.
"""

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np


HF = "Hugging Face AlbertModel (torch)"
OURS = "albert-keras AlbertEncoder"
UNFUSED = "albert-keras AlbertEncoder fuse=False"


def _inputs(batch, seq, vocab, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "token_ids": rng.integers(5, vocab, (batch, seq)).astype("int32"),
        "segment_ids": np.zeros((batch, seq), "int32"),
        "padding_mask": np.ones((batch, seq), "int32"),
    }


def _keras_runners(preset, policy, inputs):
    import keras
    import keras_hub
    import tensorflow as tf

    from albert_keras import AlbertConfig, AlbertEncoder

    config = AlbertConfig.from_preset(preset)
    ours = AlbertEncoder(config, dtype=policy)  # fuse="auto": fused for inference on the CPU
    unfused = AlbertEncoder(config, dtype=policy, fuse=False)
    unfused.set_weights(ours.get_weights())
    theirs = keras_hub.models.AlbertBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads, embedding_dim=config.embedding_size,
        hidden_dim=config.hidden_size, intermediate_dim=config.intermediate_size,
        num_groups=config.num_hidden_groups, num_inner_repetitions=config.inner_group_num,
        dtype=policy,
    )
    theirs.set_weights(ours.get_weights())
    tensors = {k: tf.constant(v) for k, v in inputs.items()}

    def runner(model):
        function = tf.function(lambda x: model(x, training=False)["pooled_output"])
        return lambda: function(tensors).numpy()

    difference = float(np.abs(runner(ours)() - runner(theirs)()).max())
    del keras
    return {OURS: runner(ours), UNFUSED: runner(unfused), "keras-hub AlbertBackbone": runner(theirs)}, difference


def _torch_runners(preset, bf16, inputs):
    try:
        import torch
        import transformers
    except ImportError:
        return {}
    from albert_keras import AlbertConfig

    config = AlbertConfig.from_preset(preset)
    model = transformers.AlbertModel(transformers.AlbertConfig(
        vocab_size=config.vocab_size, embedding_size=config.embedding_size, hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size, hidden_act="gelu_new",
    )).eval()
    ids = torch.tensor(inputs["token_ids"], dtype=torch.long)
    mask = torch.tensor(inputs["padding_mask"], dtype=torch.long)

    def run():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model(input_ids=ids, attention_mask=mask).pooler_output

    return {HF: run}


def _time_alternating(runners, runs, gap_s=1.0):
    for run in runners.values():
        run()  # warm-up: tracing, oneDNN primitive creation
        run()
    times = {name: [] for name in runners}
    for _ in range(runs):
        for name, run in runners.items():
            # PyTorch's OpenMP workers and TensorFlow's thread pool spin for a while after a call;
            # without a pause the next implementation shares the cores with the last one's spinners.
            time.sleep(gap_s)
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="albert-base-v2")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--gap-s", type=float, default=1.0, help="pause before each timed call (idle spinning threads)")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results", "encoder_inference.json"))
    args = parser.parse_args()

    import keras

    from albert_keras.export.inference import BF16_CPU_FLAGS, cpu_flags

    flags = cpu_flags()
    load_before = os.getloadavg()[0]
    bf16_units = [flag for flag in BF16_CPU_FLAGS if flag in flags]
    inputs = _inputs(args.batch, args.seq, 30000)
    rows = []
    for policy in ("float32", "mixed_bfloat16"):
        runners, difference = _keras_runners(args.preset, policy, inputs)
        runners.update(_torch_runners(args.preset, policy != "float32", inputs))
        medians = _time_alternating(runners, args.runs, args.gap_s)
        baseline = medians["keras-hub AlbertBackbone"]
        versions = None
        if HF in medians:
            import transformers

            versions = transformers.__version__
        for name, seconds in medians.items():
            rows.append({
                "implementation": name, "precision": policy, "seconds_per_batch": seconds,
                "sequences_per_second": args.batch / seconds, "speed_vs_keras_hub": baseline / seconds,
                "speed_vs_hugging_face": medians[HF] / seconds if HF in medians else None,
                "speed_vs_unfused": medians[UNFUSED] / seconds,
                "transformers": versions if name == HF else None,
                "max_abs_diff_vs_keras_hub": difference if name == OURS else None,
            })
        keras.backend.clear_session()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"\n{args.preset}, batch {args.batch} x seq {args.seq}, median of {args.runs} runs, {os.cpu_count()} CPUs, "
          f"bfloat16 units: {', '.join(bf16_units) or 'none (bfloat16 is emulated: its ratio means little here)'}, "
          f"load average {load_before} -> {load}")
    print(f"{'implementation':38} {'precision':15} {'s/batch':>8} {'seq/s':>8} {'vs keras-hub':>13} {'vs HF':>7} "
          f"{'vs fuse=False':>13}")
    for row in rows:
        versus_hf = f"{row['speed_vs_hugging_face']:6.2f}x" if row["speed_vs_hugging_face"] else "      -"
        print(f"{row['implementation']:38} {row['precision']:15} {row['seconds_per_batch']:8.3f} "
              f"{row['sequences_per_second']:8.2f} {row['speed_vs_keras_hub']:12.2f}x {versus_hf} "
              f"{row['speed_vs_unfused']:12.2f}x")
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({"settings": vars(args), "machine": platform.processor() or platform.machine(),
                   "cpus": os.cpu_count(),
                   "bf16_cpu_flags": bf16_units, "load_average_before": load_before, "load_average": load,
                   "rows": rows}, f, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
