"""Where CPU inference time goes in the ALBERT encoder: TensorFlow's profiler, per op category.

Runs our `AlbertEncoder` (ALBERT-base by default, random ids, no padding) forward in a
`tf.function` under `tf.profiler.experimental`, then reads the profiler's per-op self times
(its `framework_op_stats` tool) and groups them by op type and name scope: the matmuls of the
feed-forward, of the q/k/v/output projections and of the attention itself, LayerNorm, GELU,
softmax, transposes and reshapes, casts, bias adds, and the rest. The share of each category is what to optimise; the op names show whether
oneDNN's fusions (e.g. `_FusedMatMul` with a GELU, `_MklLayerNorm`) are in use.

    python benchmarks/encoder_profile.py                       # float32, batch 32 x 128
    python benchmarks/encoder_profile.py --precision mixed_bfloat16 --runs 3

Prints a table; writes `benchmarks/results/encoder_profile.json`. The profiler adds a little
overhead to every op, and the ops' self times add up over the threads that run ops in parallel,
so the op total can exceed the wall time.
"""

import argparse
import glob
import json
import os
import re
import sys
import tempfile
import time

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "encoder_profile.json")
# (category, op-type pattern, op-name pattern): the first match wins. Matmuls are split by the
# layer they belong to (from the op's name scope); the other ops mostly by their layer too, since
# an `AddV2` or `Mul` may belong to the GELU, a LayerNorm or the attention.
CATEGORIES = (
    ("matmul: feed-forward", r"MatMul|Einsum", r"feedforward"),
    ("matmul: q/k/v/output projections", r"MatMul|Einsum", r"/(query|key|value|attention_output)"),
    ("matmul: attention scores and context", r"MatMul|Einsum", r"self_attention"),
    ("matmul: other (embedding projection, pooler)", r"MatMul|Einsum", r""),
    ("layernorm", r"", r"layer_norm"),
    ("softmax", r"Softmax", r""),
    ("transpose/reshape", r"Transpose|Reshape|ExpandDims|Squeeze|ConcatV2|StridedSlice|Slice|Pack", r""),
    ("cast", r"^Cast$", r""),
    ("gelu", r"", r"feedforward_intermediate|activation|gelu"),
    ("bias add", r"BiasAdd", r""),
    ("embedding gathers", r"Gather", r""),
    ("attention masking and scaling", r"", r"self_attention"),
)


def _category(op_type, name):
    for category, type_pattern, name_pattern in CATEGORIES:
        if re.search(type_pattern, op_type) and re.search(name_pattern, name):
            return category
    return "other"


def _op_stats(xplane_paths):
    # The profiler's own converter (what TensorBoard's profile plugin calls); not public API, but
    # it is the only way to read per-op times without installing the TensorBoard plugin.
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin

    data, ok = _pywrap_profiler_plugin.xspace_to_tools_data(xplane_paths, "framework_op_stats", {})
    if not ok:
        raise RuntimeError(f"profiler: {data[:200]!r}")
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    rows = []
    for row in table["rows"]:
        values = dict(zip(columns, [cell.get("v") if cell else None for cell in row["c"]]))
        if values.get("host_or_device") == "Host" and values.get("type") not in ("IDLE", None):
            rows.append(values)
    return rows


def ran_op_types(function, *args):
    """The op types TensorFlow ran for `function(*args)` after its graph optimizations (e.g. oneDNN fusions).

    Example:
    ```python
    ran_op_types(tf.function(lambda x: x @ x), tf.ones((2, 2)))  # {'_MklMatMul', ...}
    ```
    """
    import tensorflow as tf

    function(*args)  # trace and optimize outside the profile
    logdir = tempfile.mkdtemp(prefix="albert-keras-ops-")
    tf.profiler.experimental.start(logdir)
    function(*args)
    tf.profiler.experimental.stop()
    return {row["type"] for row in _op_stats(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="albert-base-v2")
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16"), default="float32")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3, help="profiled forward passes (after one warm-up)")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)

    import tensorflow as tf

    from albert_keras import AlbertConfig
    from albert_keras import AlbertEncoder

    config = AlbertConfig.from_preset(args.preset)
    encoder = AlbertEncoder(config, dtype=None if args.precision == "float32" else args.precision)
    rng = np.random.default_rng(0)
    inputs = {
        "token_ids": tf.constant(rng.integers(5, config.vocab_size, (args.batch, args.seq)).astype("int32")),
        "segment_ids": tf.zeros((args.batch, args.seq), tf.int32),
        "padding_mask": tf.ones((args.batch, args.seq), tf.int32),
    }

    @tf.function
    def forward(x):
        return encoder(x, training=False)["sequence_output"]

    forward(inputs).numpy()  # trace and warm up
    start = time.perf_counter()
    forward(inputs).numpy()
    unprofiled = time.perf_counter() - start
    logdir = tempfile.mkdtemp(prefix="albert-keras-profile-")
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    for _ in range(args.runs):
        forward(inputs).numpy()
    profiled = (time.perf_counter() - start) / args.runs
    tf.profiler.experimental.stop()
    rows = _op_stats(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))

    by_category, by_type = {}, {}
    for row in rows:
        seconds = float(row["total_self_time"]) / 1e6 / args.runs
        category = _category(row["type"], row.get("operation") or "")
        by_category[category] = by_category.get(category, 0.0) + seconds
        by_type[row["type"]] = by_type.get(row["type"], 0.0) + seconds
    total = sum(by_category.values())
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    from albert_keras.export.inference import cpu_flags

    flags = sorted(cpu_flags() & {"avx512f", "avx512_bf16", "amx_bf16"})

    print(f"\n{args.preset} encoder forward, batch {args.batch} x {args.seq}, {args.precision}; CPU flags "
          f"{', '.join(flags) or 'none of avx512f/avx512_bf16/amx_bf16'}; load average {load}")
    print(f"unprofiled {unprofiled:.3f} s/batch, profiled {profiled:.3f} s/batch, op self time {total:.3f} s/batch")
    print("| category | s/batch | share |")
    print("|---|---|---|")
    for name, seconds in sorted(by_category.items(), key=lambda item: -item[1]):
        print(f"| {name} | {seconds:.4f} | {100 * seconds / total:.1f} % |")
    print("\ntop op types: " + ", ".join(
        f"{name} {100 * seconds / total:.1f} %" for name, seconds in sorted(by_type.items(), key=lambda i: -i[1])[:10]))
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({"preset": args.preset, "precision": args.precision, "batch": args.batch, "seq": args.seq,
                   "cpu_flags": flags, "load_average": load, "unprofiled_s": unprofiled, "profiled_s": profiled,
                   "categories": by_category, "op_types": by_type}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
