"""`albert-keras inspect`: pretrained directories here; SavedModels and TFLite in tests/export."""

import json
import os

import pytest

from albert_keras.cli import main
from albert_keras.errors import AlbertInputError
from albert_keras.inspection import format_report
from albert_keras.inspection import inspect_artifact


@pytest.fixture(scope="module")
def classifier_dir(spm_model_path, tmp_path_factory):
    from albert_keras.config import AlbertConfig
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.pretrained import save_pretrained
    from albert_keras.modeling.task_models import AlbertClassifier

    config = AlbertConfig(vocab_size=1000, embedding_size=8, hidden_size=16, num_hidden_layers=1,
                          num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    model = AlbertClassifier(AlbertEncoder(config), labels=["negative", "positive"])
    return save_pretrained(model, str(tmp_path_factory.mktemp("inspect") / "sentiment"), spm_model=spm_model_path,
                           tokenizer_settings={"lowercase": False, "sequence_length": 32})


def test_pretrained_directory_report(classifier_dir):
    from albert_keras.modeling.pretrained import pretrained_fingerprint

    report = inspect_artifact(classifier_dir)
    assert report["kind"] == "pretrained directory" and report["class"] == "AlbertClassifier"
    assert report["labels"] == ["negative", "positive"]
    assert report["tokenizer"]["lowercase"] is False and report["tokenizer"]["sequence_length"] == 32
    assert report["tokenizer"]["spiece_model"]["pieces"] == 1000
    assert report["config"]["hidden_size"] == 16
    assert report["fingerprint"] == pretrained_fingerprint(classifier_dir)
    text = format_report(report)
    assert "labels: negative, positive" in text and "cased (no lowercasing), sequence length 32" in text


def test_cli_prints_text_or_json(classifier_dir, capsys):
    assert main(["inspect", classifier_dir, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["arguments"]["labels"] == ["negative", "positive"]
    assert main(["inspect", classifier_dir]) == 0
    assert "class: AlbertClassifier" in capsys.readouterr().out


def test_paths_that_are_none_of_the_three(tmp_path, capsys):
    with pytest.raises(AlbertInputError, match="not found"):
        inspect_artifact(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AlbertInputError, match="neither a pretrained directory"):
        inspect_artifact(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["inspect", str(tmp_path / "notes.txt")]) == 2
    assert "not a .tflite file" in capsys.readouterr().err
    # A base path resolves to its newest numbered version.
    os.makedirs(tmp_path / "base" / "2")
    os.makedirs(tmp_path / "base" / "10")
    with pytest.raises(AlbertInputError, match=r"base[/\\]10: neither"):
        inspect_artifact(tmp_path / "base")
