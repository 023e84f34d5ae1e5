"""benchmarks/serving_text.py: a tiny run has every implementation's row, and they do equal work
(the same pooled output for the same sentence); Hugging Face is reported when it is missing; its
tokenizer built from our spiece.model gives our ids except for the official digit-comma split."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.scripts import load_script

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "benchmarks", "serving_text.py")
SENTENCES = 12
HAS_HF = all(importlib.util.find_spec(name) for name in ("torch", "transformers"))


@pytest.fixture(scope="module")
def bench():
    return load_script(SCRIPT)


def _env():
    return dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("serving_text") / "serving_text.json"
    result = subprocess.run(
        [sys.executable, SCRIPT, "--preset", "tiny", "--sentences", str(SENTENCES), "--latency-sentences", "4",
         "--runs", "1", "--output", str(output)],
        capture_output=True, text=True, timeout=300, env=_env(), cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, json.loads(output.read_text())


def test_every_implementation_has_a_row_with_positive_figures(bench, tiny_run):
    stdout, results = tiny_run
    assert "| implementation | precision | sentences/s (batch 32) | vs HF |" in stdout
    names = {row["implementation"] for row in results["rows"]}
    expected = {bench.REFERENCE, "Predictor float32"} | {
        f"TFLite {variant} + tokenizer ({os.cpu_count()} XNNPACK threads)" for variant in ("float32", "dynamic-int8")
    }
    if HAS_HF:
        expected.add(bench.HF)
    else:
        assert results["hugging_face"] == "not installed"
    assert expected <= names
    assert results["sentences"]["count"] == SENTENCES
    for row in results["rows"]:
        assert row["sentences_per_s"] > 0 and row["first_call_p50_ms"] > 0, row
        assert 0 < row["p50_ms"] <= row["p99_ms"], row
        assert row["latency_sentences"] == 4 and len(row["pass_s"]) == 1
    from albert_keras.export.inference import cpu_flags

    assert results["machine"]["cpu_flags"] == sorted(cpu_flags() & set(bench.REPORTED_FLAGS))


def test_implementations_return_the_same_pooled_output(bench, tiny_run):
    _, results = tiny_run
    for row in results["rows"]:
        if row["precision"] == "float32":  # int8 and bfloat16 are reported, not held to float32
            assert row["max_abs_diff_vs_saved_model"] <= 1e-4, row
            assert row["equal_work"], row
        else:
            assert row["max_abs_diff_vs_saved_model"] < 0.1, row
        if row["implementation"] == bench.HF:
            assert row["compared_sentences"] == SENTENCES - results["hf_id_mismatches"] > 0
        else:
            assert row["compared_sentences"] == SENTENCES


def test_hugging_face_reported_not_installed_without_torch():
    # The child process as the benchmark starts it, in a Python where `import torch` fails.
    code = ("import runpy, sys; sys.modules['torch'] = None; "
            f"sys.argv = [{SCRIPT!r}, '--hf-child']; runpy.run_path({SCRIPT!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], input=json.dumps({"threads": 1}) + "\n",
                            capture_output=True, text=True, timeout=120, env=_env())
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["status"] == "not installed"


def test_hugging_face_tokenizer_gives_our_ids_but_for_the_digit_comma_split(bench, embedded_corpus_path, tmp_path):
    pytest.importorskip("transformers")
    from albert_keras.corpus import embedded_corpus
    from albert_keras.export.text import AlbertTextPacker
    from albert_keras.tokenization import train_sentencepiece

    # The benchmark's 2,000 pieces: enough for pieces such as "1," that the split applies to.
    spm = str(train_sentencepiece(embedded_corpus_path, tmp_path / "spiece.model", vocab_size=2000))
    sentences = [s for document in embedded_corpus() for s in document if s.strip()]
    hf_ids = bench.hugging_face_tokenizer(spm)(sentences, truncation=True, max_length=128)["input_ids"]
    same = bench.same_ids(hf_ids, AlbertTextPacker(spm, 128), sentences)
    differing = [s for s, equal in zip(sentences, same) if not equal]
    # The official ALBERT tokenizer splits a piece ending "<digit>," into "<digit>" ","; HF's does not.
    assert differing and all(re.search(r"\d,", s) for s in differing)
    assert np.mean(same) > 0.99
