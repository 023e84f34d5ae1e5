"""benchmarks/pretrain_throughput.py: the FLOP formula against the real model's weights, the
device peaks, and a tiny end-to-end run that prints the table and writes the JSON;
benchmarks/encoder_profile.py: a tiny profiled run whose categories cover the op time;
benchmarks/generation.py: a tiny run whose every row generated exactly the fixed number of tokens."""

import json
import os
import subprocess
import sys

import pytest

from tests.scripts import load_script

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "benchmarks", "pretrain_throughput.py")


@pytest.fixture(scope="module")
def bench():
    return load_script(SCRIPT)


def test_flops_count_every_matmul_weight_of_the_model_once_per_use(bench):
    import numpy as np

    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.pretrainer import AlbertPretrainer

    layers, hidden, heads, intermediate, vocab, embedding = bench.MODELS["tiny"]
    model = AlbertPretrainer(AlbertEncoder(bench._config("tiny")))
    model(bench._random_batch(1, 8, 2, vocab))
    kernels = {w.path: int(np.prod(w.shape)) for w in model.weights if w.path.endswith("kernel")}
    layer = sum(size for path, size in kernels.items() if "inner_layer" in path)
    projection = sum(size for path, size in kernels.items() if "embedding_projection" in path)
    # One shared layer's matmul weights (read from the model) run L times per token.
    assert layer == 4 * hidden * hidden + 2 * hidden * intermediate
    assert projection == embedding * hidden
    seq, predictions = 16, 3
    flops = bench.flops_per_example(layers, hidden, intermediate, vocab, embedding, seq, predictions)
    per_token = projection + layers * layer
    heads_flops = predictions * (hidden * embedding + embedding * vocab) + hidden * hidden + 2 * hidden
    assert flops == 6 * (seq * per_token + heads_flops) + 12 * layers * hidden * seq**2


def test_device_peaks(bench):
    assert bench.gpu_peak("NVIDIA H100 80GB HBM3", "mixed_bfloat16")[0] == 989.0
    assert bench.gpu_peak("NVIDIA H100 PCIe", "float32")[0] == 378.0  # TF32
    assert bench.gpu_peak("NVIDIA A100-SXM4-80GB", "mixed_bfloat16")[0] == 312.0
    assert bench.gpu_peak("NVIDIA L4", "mixed_bfloat16")[0] == 121.0
    assert bench.gpu_peak("Tesla T4", "mixed_bfloat16")[0] is None
    assert bench.gpu_peak("Some GPU", "float32") == (None, "'Some GPU' is not in the peak table: give --peak-tflops")
    assert bench.cpu_flops_per_cycle({"avx2", "fma"}, "mixed_bfloat16")[0] == 32
    assert bench.cpu_flops_per_cycle({"avx512f"}, "float32") == (64, "AVX-512 FMA")
    assert bench.cpu_flops_per_cycle({"avx512f", "avx512_bf16"}, "float32", "AuthenticAMD", 25)[0] == 32
    assert bench.cpu_flops_per_cycle({"avx512f", "avx512_bf16"}, "mixed_bfloat16", "AuthenticAMD", 25)[0] == 64
    facts = {"cores": 2, "ghz": 2.5, "flags": {"avx512f", "amx_bf16"}, "vendor": "GenuineIntel", "family": 6}
    assert bench.cpu_peak("mixed_bfloat16", facts)[0] == pytest.approx(2 * 2.5 * 1024 / 1000)


def test_tiny_run_prints_the_table_and_writes_json(tmp_path):
    output = tmp_path / "throughput.json"
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, SCRIPT, "--tiny", "--precisions", "float32", "--output", str(output)],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| implementation | model | seq | batch | precision | s/step | examples/s | TFLOP/s | MFU |" in result.stdout
    assert "peak float32:" in result.stdout
    rows = json.loads(output.read_text())["rows"]
    assert {row["impl"] for row in rows} == {"ours", "keras_hub"}
    for row in rows:
        assert row["model"] == "tiny" and row["seq"] == 32 and row["examples_per_s"] > 0
        achieved = row["examples_per_s"] * row["gflops_per_example"] / 1e3
        assert row["mfu"] == pytest.approx(achieved / row["peak_tflops"], rel=1e-3)
        assert 0 < row["mfu"] < 1


def test_encoder_profile_groups_the_op_time(tmp_path):
    output = tmp_path / "profile.json"
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "benchmarks", "encoder_profile.py"), "--batch", "1", "--seq", "16",
         "--runs", "1", "--output", str(output)],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| category | s/batch | share |" in result.stdout
    profile = json.loads(output.read_text())
    categories = profile["categories"]
    assert categories["matmul: feed-forward"] > 0 and categories["matmul: q/k/v/output projections"] > 0
    assert sum(categories.values()) == pytest.approx(sum(profile["op_types"].values()))


def test_intent_slots_serving_tiny_run(tmp_path):
    """benchmarks/intent_slots_serving.py: every implementation and batch has a row, and the float32
    TFLite file gives the SavedModel's intents (the same work)."""
    output = tmp_path / "intent_slots_serving.json"
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "benchmarks", "intent_slots_serving.py"), "--presets", "tiny",
         "--utterances", "40", "--runs", "1", "--threads", "1", "--output", str(output)],
        capture_output=True, text=True, timeout=400, env=env, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "utterances/s" in result.stdout
    report = json.loads(output.read_text())
    rows = {(row["implementation"], row["batch"]): row for row in report["rows"]}
    assert set(rows) == {(name, batch) for name in ("SavedModel", "TFLite float32", "TFLite dynamic-int8")
                         for batch in (1, 32)}
    assert all(row["utterances_per_s"] > 0 and row["preset"] == "tiny" for row in rows.values())
    assert rows[("TFLite float32", 32)]["intent_agreement"] == 1.0
    assert report["utterances"] == 40 and 3 <= report["mean_words"] <= 12


def test_generation_benchmark_counts_the_fixed_number_of_generated_tokens(tmp_path):
    output = tmp_path / "generation.json"
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "benchmarks", "generation.py"), "--preset", "tiny", "--batches", "2",
         "--new-tokens", "3", "--runs", "1", "--precisions", "float32", "--output", str(output)],
        capture_output=True, text=True, timeout=600, env=env, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    header = "| precision | sampler | batch | cache | s/call | generated tokens/s | cache speed-up | same tokens |"
    assert header in result.stdout
    rows = json.loads(output.read_text())["rows"]
    assert {(row["sampler"], row["cache"]) for row in rows} == {
        ("greedy", True), ("greedy", False), ("beam 4", True), ("beam 4", False)}
    for row in rows:
        # [SEP] is out of reach, so every row of the batch generates all 3 tokens, cached or not.
        assert row["generated_tokens"] == 2 * 3 and row["same_tokens_as_cache"]
        assert row["tokens_per_s"] == pytest.approx(row["generated_tokens"] / row["seconds_per_call"])
