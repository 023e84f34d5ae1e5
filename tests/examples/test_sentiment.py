"""Smoke test for examples/sentiment.py with tiny settings: it fine-tunes on raw strings, predicts a
label name, and leaves a pretrained directory with the labels."""

import json
import os

from tests.scripts import load_script

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")


def test_sentiment_example(tmp_path, capsys):
    example = load_script(os.path.join(EXAMPLES, "sentiment.py"), "example_sentiment")
    result = example.main(["--output-dir", str(tmp_path), "--examples", "32", "--epochs", "1"])
    assert result["label"] in ("negative", "positive") and 0.0 <= result["accuracy"] <= 1.0
    with open(os.path.join(result["classifier_dir"], "model.json")) as f:
        assert json.load(f)["arguments"]["labels"] == ["negative", "positive"]
    assert f": {result['label']}" in capsys.readouterr().out
