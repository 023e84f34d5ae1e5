"""`albert-keras export`: versioned, atomic output; clear errors."""

import os

import numpy as np
import pytest
import tensorflow as tf

from albert_keras.cli import main


@pytest.fixture(scope="module")
def pretrained_dirs(tiny_models, spm_model_path, tmp_path_factory):
    from albert_keras.modeling.pretrained import save_pretrained

    root = tmp_path_factory.mktemp("pretrained")
    save_pretrained(tiny_models["classifier"], str(root / "with_spm"), spm_model=spm_model_path)
    save_pretrained(tiny_models["classifier"], str(root / "without_spm"))
    return str(root / "with_spm"), str(root / "without_spm")


def test_saved_model_export_is_versioned_and_loads(pretrained_dirs, tmp_path, tiny_models, capsys):
    model_dir, _ = pretrained_dirs
    output = tmp_path / "saved_models" / "sentiment"
    assert main(["export", "--model", model_dir, "--output", str(output), "--version", "3",
                 "--precision", "float32"]) == 0
    assert sorted(os.listdir(output)) == ["3"]  # no temporary directory left behind
    assert os.path.isfile(output / "3" / "assets.extra" / "tf_serving_warmup_requests")
    served = tf.saved_model.load(str(output / "3"))
    out = served.signatures["serving_default"](text=tf.constant(["a sentence"]))
    assert out["probabilities"].shape == (1, 3)
    # The same version again is refused (exit 2, one line).
    assert main(["export", "--model", model_dir, "--output", str(output), "--version", "3"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_missing_spm_is_a_clear_error_unless_ids_only(pretrained_dirs, tmp_path, capsys, tiny_models):
    _, model_dir = pretrained_dirs
    output = tmp_path / "out"
    assert main(["export", "--model", model_dir, "--output", str(output)]) == 2
    error = capsys.readouterr().err.strip()
    assert "no vocabulary" in error and "--signature ids" in error and len(error.splitlines()) == 1
    assert not os.path.exists(output / "1")
    assert main(["export", "--model", model_dir, "--output", str(output), "--signature", "ids",
                 "--precision", "float32"]) == 0
    served = tf.saved_model.load(str(output / "1"))
    assert sorted(served.signatures) == ["serving_default"]
    features = {
        "token_ids": tf.constant([[2, 10, 11, 3]]),
        "segment_ids": tf.zeros([1, 4], tf.int32),
        "padding_mask": tf.ones([1, 4], tf.int32),
    }
    outputs = served.signatures["serving_default"](**features)
    np.testing.assert_allclose(outputs["probabilities"], tf.nn.softmax(tiny_models["classifier"](features)), atol=1e-6)
    assert main(["export", "--model", model_dir, "--output", str(tmp_path / "t"), "--format", "tflite",
                 "--with-tokenizer"]) == 2


def test_a_model_directory_that_does_not_exist_says_so(tmp_path, capsys):
    assert main(["export", "--model", str(tmp_path / "nope"), "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith("nope: pretrained directory not found") and len(error.splitlines()) == 1


def test_tflite_export_writes_verified_model(pretrained_dirs, tmp_path):
    model_dir, _ = pretrained_dirs
    output = tmp_path / "tflite" / "sentiment"
    assert main(["export", "--model", model_dir, "--output", str(output), "--format", "tflite",
                 "--quantize", "dynamic-int8", "--with-tokenizer"]) == 0
    assert sorted(os.listdir(output / "1")) == ["albert_export.json", "albert_keras.json", "model.tflite"]
    from albert_keras.export.tflite import interpreter

    runner = interpreter(str(output / "1" / "model.tflite")).get_signature_runner()
    probabilities = runner(text=np.array([b"hello there"], dtype=object))["probabilities"]
    assert probabilities.shape == (1, 3) and np.isfinite(probabilities).all()

    # `albert-keras inspect` reads the record beside the file and the interpreter's signatures.
    from albert_keras.inspection import inspect_artifact
    from albert_keras.modeling.pretrained import pretrained_fingerprint

    report = inspect_artifact(str(output))  # the base path: its newest version
    assert report["kind"] == "TFLite model" and report["version"] == 1
    assert report["precision"] == "float32" and report["quantize"] == "dynamic-int8"
    assert report["source_fingerprint"] == pretrained_fingerprint(model_dir)["sha256"]
    assert report["metadata"]["with_tokenizer"] is True and report["class"] == "AlbertClassifier"
    inputs = report["signatures"]["serving_default"]["inputs"]
    assert list(inputs) == ["text"] and report["signatures"]["serving_default"]["outputs"]["probabilities"]["shape"][-1] == 3
