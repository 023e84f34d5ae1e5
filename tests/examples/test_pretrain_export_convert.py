"""Smoke tests for examples/pretrain_small.py, export_and_query.py and convert_huggingface.py: each
runs with tiny settings and its result is checked."""

import os

import numpy as np
import pytest

from tests.scripts import load_script

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")


def _example(name):
    return load_script(os.path.join(EXAMPLES, f"{name}.py"), f"example_{name}")


def test_pretrain_small_trains_and_fills_a_mask(tmp_path, capsys):
    example = _example("pretrain_small")
    summary = example.main([
        "--output-dir", str(tmp_path), "--vocab-size", "1000", "--max-seq-length", "32", "--dupe-factor", "1",
        "--hidden-size", "32", "--num-hidden-layers", "2", "--num-train-steps", "6", "--global-batch-size", "8",
    ])
    assert summary["step"] == 6
    assert os.path.isfile(os.path.join(summary["pretrained_dir"], "spiece.model"))
    line = [l for l in capsys.readouterr().out.splitlines() if "'mutable' masked ->" in l]
    assert line, "the example prints its fill-mask answer"

    from albert_keras.modeling.pretrained import load_pretrained
    from albert_keras.tokenization import load_sentencepiece

    top = example.fill_mask(load_pretrained(summary["pretrained_dir"]),
                            load_sentencepiece(os.path.join(tmp_path, "spiece.model")), "Lists are mutable.", "mutable")
    probabilities = [p for _, p in top]
    assert len(top) == 5 and probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0001


def test_export_and_query_serves_raw_text_without_our_package(tmp_path):
    answer = _example("export_and_query").main(
        ["--output", str(tmp_path), "Lists are mutable sequences.", "A tuple cannot be changed."]
    )
    assert answer["albert_keras_imported"] is False
    vectors = np.asarray(answer["sentence_embedding"])
    assert vectors.shape[0] == 2 and np.allclose(np.linalg.norm(vectors, axis=-1), 1.0, atol=1e-4)
    assert np.asarray(answer["pooled_output"]).shape[0] == 2
    assert "serving_default" in answer["signatures"]


def test_convert_huggingface_matches_transformers_on_the_fixture(tmp_path):
    result = _example("convert_huggingface").main(["--output", str(tmp_path / "converted")])
    assert type(result["model"]).__name__ == "AlbertPretrainer"
    assert result["max_diff"] < 1e-4


def test_convert_huggingface_names_a_missing_source(tmp_path):
    from albert_keras.errors import AlbertInputError

    with pytest.raises((AlbertInputError, FileNotFoundError), match="nothing_here"):
        _example("convert_huggingface").main(["--source", str(tmp_path / "nothing_here"), "--output", str(tmp_path / "o")])
