"""Smoke test for examples/sentiment.py with tiny settings: it fine-tunes on raw strings, predicts a
label name, reports the saved classifier's dev accuracy, and leaves a pretrained directory with the labels."""

import json
import os

import pytest

from tests.scripts import load_script

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")


def test_sentiment_example(tmp_path, capsys):
    example = load_script(os.path.join(EXAMPLES, "sentiment.py"), "example_sentiment")
    result = example.main(["--output-dir", str(tmp_path), "--examples", "32", "--epochs", "1"])
    assert result["label"] in ("negative", "positive")
    with open(os.path.join(result["classifier_dir"], "model.json")) as f:
        assert json.load(f)["arguments"]["labels"] == ["negative", "positive"]
    assert f": {result['label']}" in capsys.readouterr().out

    # Two steps from random weights do not beat the balanced dev set's majority (0.5; measured 0.5 at
    # 32 x 1 and 64 x 3 too), so the test checks what the example does reliably: its accuracy is the
    # saved classifier's on the dev reviews and its printed label the saved classifier's, recomputed here.
    from albert_keras import AlbertClassifier

    dev_texts, dev_labels = example.made_up_reviews(8, seed=1)
    assert dev_labels.count("positive") == dev_labels.count("negative")
    classifier = AlbertClassifier.from_pretrained(result["classifier_dir"])
    predicted = classifier.predict_labels(dev_texts)
    assert result["accuracy"] == pytest.approx(sum(p == y for p, y in zip(predicted, dev_labels)) / len(dev_labels))
    assert classifier.predict_labels(["The soundtrack was brilliant, truly moving."]) == [result["label"]]
