"""Pretraining throughput: our `AlbertPretrainer` (MLM + SOP, official LAMB) next to keras-hub's
`AlbertMaskedLM.fit` (MLM only, AdamW) in the same run.

ALBERT-base (V=30000, E=128, H=768, 12 layers, one shared group), sequence 128, batch 8, 20 masked
positions, random ids with some padding, float32 and mixed_bfloat16, no XLA (slower on CPU: see
docs/training.md). Each precision runs in a fresh child process that builds both Keras models and
alternates one `fit` step of each, so the load of a shared machine
hits both alike; a step's time is measured between Keras batch callbacks, the first `--warmup`
steps (tracing) are dropped, and the median of the rest is reported as examples per second.

    python benchmarks/pretrain_throughput.py --steps 8 --warmup 3
    python benchmarks/pretrain_throughput.py --precisions mixed_bfloat16 --impls ours keras_hub --xla
    python benchmarks/pretrain_throughput.py --hf-python /tmp/hfvenv/bin/python

Hugging Face's `AlbertForPreTraining` is added when `--hf-python` names an interpreter with torch and
transformers (or when they import here). Prints a table; writes
`benchmarks/results/pretrain_throughput.json`.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SEQ, BATCH, PREDICTIONS, VOCAB = 128, 8, 20, 30000
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "pretrain_throughput.json")


def _random_batch(seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = rng.integers(SEQ * 3 // 4, SEQ + 1, size=BATCH)
    mask = (np.arange(SEQ)[None, :] < lengths[:, None]).astype("int32")
    ids = rng.integers(5, VOCAB, size=(BATCH, SEQ)).astype("int32") * mask
    segments = (np.arange(SEQ)[None, :] >= (lengths // 2)[:, None]).astype("int32") * mask
    positions = np.sort(np.stack([rng.choice(int(n), PREDICTIONS, replace=False) for n in lengths]), axis=1)
    return {
        "input_ids": ids,
        "input_mask": mask,
        "segment_ids": segments,
        "masked_lm_positions": positions.astype("int32"),
        "masked_lm_ids": rng.integers(5, VOCAB, size=(BATCH, PREDICTIONS)).astype("int32"),
        "masked_lm_weights": np.ones((BATCH, PREDICTIONS), "float32"),
        "next_sentence_labels": rng.integers(0, 2, size=BATCH).astype("int32"),
    }


class _StepTimer:
    def __init__(self):
        import keras

        timer = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                timer.start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                timer.times.append(time.perf_counter() - timer.start)

        self.times = []
        self.callback = Callback()


def _build_ours(precision, xla):
    import tensorflow as tf

    from albert_keras.config import AlbertConfig
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.pretrainer import AlbertPretrainer
    from albert_keras.training.optimization import create_optimizer

    dtype = None if precision == "float32" else precision
    model = AlbertPretrainer(AlbertEncoder(AlbertConfig.from_preset("albert-base-v2"), dtype=dtype))
    model.compile(optimizer=create_optimizer("lamb", 1e-4, num_train_steps=1000, num_warmup_steps=10), jit_compile=xla)
    return model, tf.data.Dataset.from_tensors(_random_batch()).repeat()


def _build_keras_hub(precision, xla):
    import keras
    import keras_hub
    import tensorflow as tf

    dtype = None if precision == "float32" else precision
    backbone = keras_hub.models.AlbertBackbone(
        vocabulary_size=VOCAB, num_layers=12, num_heads=12, embedding_dim=128, hidden_dim=768,
        intermediate_dim=3072, num_groups=1, num_inner_repetitions=1, max_sequence_length=512, dtype=dtype,
    )
    model = keras_hub.models.AlbertMaskedLM(backbone, preprocessor=None)
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy()],
        jit_compile=xla,
    )
    batch = _random_batch()
    x = {
        "token_ids": batch["input_ids"],
        "segment_ids": batch["segment_ids"],
        "padding_mask": batch["input_mask"],
        "mask_positions": batch["masked_lm_positions"],
    }
    return model, tf.data.Dataset.from_tensors((x, batch["masked_lm_ids"], batch["masked_lm_weights"])).repeat()


BUILDERS = {"ours": _build_ours, "keras_hub": _build_keras_hub}


def _child_keras(impls, precision, steps, xla):
    """Time `steps` fit steps of each Keras implementation, alternating one step of each."""
    built = {impl: BUILDERS[impl](precision, xla) for impl in impls}
    timers = {impl: _StepTimer() for impl in impls}
    for _ in range(steps):
        for impl, (model, data) in built.items():
            model.fit(data, steps_per_epoch=1, epochs=1, verbose=0, callbacks=[timers[impl].callback])
    return {impl: timers[impl].times for impl in impls}


def _child_hf(precision, steps, xla):
    import torch
    from transformers import AlbertConfig
    from transformers import AlbertForPreTraining

    torch.manual_seed(0)
    config = AlbertConfig(vocab_size=VOCAB, embedding_size=128, hidden_size=768, num_hidden_layers=12,
                          num_attention_heads=12, intermediate_size=3072, hidden_act="gelu_new",
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = AlbertForPreTraining(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = {k: torch.as_tensor(v) for k, v in _random_batch().items()}
    labels = torch.full((BATCH, SEQ), -100, dtype=torch.long)
    labels.scatter_(1, batch["masked_lm_positions"].long(), batch["masked_lm_ids"].long())
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision != "float32"):
            out = model(input_ids=batch["input_ids"].long(), attention_mask=batch["input_mask"].long(),
                        token_type_ids=batch["segment_ids"].long(), labels=labels,
                        sentence_order_label=batch["next_sentence_labels"].long())
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return times


IMPLS = ("ours", "keras_hub", "hf")
LABELS = {
    "ours": "albert-keras AlbertPretrainer.fit (MLM+SOP, LAMB)",
    "keras_hub": "keras-hub AlbertMaskedLM.fit (MLM, AdamW)",
    "hf": "HF AlbertForPreTraining (MLM+SOP, AdamW)",
}


def _run_child(kind, precision, steps, xla, python, impls=()):
    command = [python, os.path.abspath(__file__), "--child", kind, precision, str(steps), str(int(xla)), *impls]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    for line in result.stdout.splitlines():
        if line.startswith("TIMES "):
            return json.loads(line[len("TIMES "):])
    raise RuntimeError(f"{kind} {precision} failed:\n{result.stderr[-3000:]}")


def _hf_available(python):
    if python != sys.executable:
        return True
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps (tracing)")
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--impls", nargs="+", default=["ours", "keras_hub", "hf"], choices=IMPLS)
    parser.add_argument("--xla", action="store_true", help="jit_compile=True (default off: slower on CPU)")
    parser.add_argument("--hf-python", default=sys.executable, help="interpreter with torch + transformers")
    args = parser.parse_args(argv)

    if args.child:
        kind, precision, steps, xla, *impls = args.child
        if kind == "hf":
            times = {"hf": _child_hf(precision, int(steps), bool(int(xla)))}
        else:
            times = _child_keras(impls, precision, int(steps), bool(int(xla)))
        print("TIMES " + json.dumps(times), flush=True)
        return 0

    rows = []
    keras_impls = [impl for impl in args.impls if impl != "hf"]
    for precision in args.precisions:
        times = {}
        if keras_impls:
            times.update(_run_child("keras", precision, args.warmup + args.steps, args.xla, sys.executable, keras_impls))
        if "hf" in args.impls:
            if _hf_available(args.hf_python):
                times.update(_run_child("hf", precision, args.warmup + args.steps, args.xla, args.hf_python))
            else:
                print("hf: torch/transformers not importable; skipped", file=sys.stderr)
        for impl, all_times in times.items():
            timed = all_times[args.warmup:]
            median = statistics.median(timed)
            rows.append({"impl": impl, "precision": precision, "xla": args.xla, "median_step_s": round(median, 4),
                         "min_step_s": round(min(timed), 4), "examples_per_s": round(BATCH / median, 3),
                         "steps": len(timed)})
            print(f"{impl:10s} {precision:15s} median {median:.3f} s/step  {BATCH / median:6.2f} ex/s", file=sys.stderr)

    print(f"\nALBERT-base pretraining step, batch {BATCH}, seq {SEQ}, {PREDICTIONS} predictions, xla={args.xla}")
    print(f"| implementation | precision | s/step (median) | examples/s | vs keras-hub |")
    print("|---|---|---|---|---|")
    for row in rows:
        base = next((r for r in rows if r["impl"] == "keras_hub" and r["precision"] == row["precision"]), None)
        ratio = f"{base['median_step_s'] / row['median_step_s']:.2f}x" if base else "-"
        print(f"| {LABELS[row['impl']]} | {row['precision']} | {row['median_step_s']:.3f} | {row['examples_per_s']:.2f} | {ratio} |")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump({"batch": BATCH, "seq": SEQ, "predictions": PREDICTIONS, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
