"""TFLite ids files take any length up to the model's maximum unless a fixed length is asked for;
the export's output and `inspect` say which shape the file expects."""

import json
import os

import numpy as np
import pytest

from albert_keras.export import exporter
from albert_keras.export.tflite import interpreter
from albert_keras.export.tflite import reference_outputs
from albert_keras.export.tflite import sample_inputs
from albert_keras.inspection import format_report
from albert_keras.inspection import inspect_artifact
from tests.export.conftest import SEQUENCE_LENGTH


@pytest.fixture(scope="module")
def classifier_dir(tiny_models, spm_model_path, tmp_path_factory):
    """The tiny classifier saved with a tokenizer length (24) shorter than its maximum (32)."""
    from albert_keras.modeling.pretrained import save_pretrained

    return save_pretrained(
        tiny_models["classifier"], str(tmp_path_factory.mktemp("lengths") / "classifier"),
        spm_model=spm_model_path, tokenizer_settings={"lowercase": True, "sequence_length": 24},
    )


def _run_resized(path, inputs):
    """Invoke a `.tflite` file after `resize_tensor_input` to the inputs' shapes (the low-level API
    an app uses), returning the serving signature's outputs by name."""
    # The tensor indices of the signature's names, from a second interpreter of the same file (a
    # signature runner holds views of the first one's buffers, which resizing must not have).
    runner = interpreter(path, num_threads=1).get_signature_runner()
    litert = interpreter(path, num_threads=1)
    index = {name: details["index"] for name, details in runner.get_input_details().items()}
    for name, value in inputs.items():
        litert.resize_tensor_input(index[name], list(value.shape))
    litert.allocate_tensors()
    for name, value in inputs.items():
        litert.set_tensor(index[name], value)
    litert.invoke()
    return {name: litert.get_tensor(details["index"]) for name, details in runner.get_output_details().items()}

def test_ids_file_without_a_length_takes_any_length_up_to_the_maximum(
    tiny_models, classifier_dir, tmp_path, capsys
):
    model = tiny_models["classifier"]
    version_dir = exporter.export_model(classifier_dir, str(tmp_path / "free"), format="tflite")
    printed = capsys.readouterr().out
    assert f"[batch, any length] (up to {SEQUENCE_LENGTH} tokens)" in printed, printed
    path = os.path.join(version_dir, "model.tflite")
    for length in (SEQUENCE_LENGTH, 7, 24):
        inputs = sample_inputs(model, sequence_length=length)
        actual = _run_resized(path, inputs)
        expected = reference_outputs(model, inputs)
        np.testing.assert_allclose(actual["probabilities"], expected["probabilities"], atol=1e-5)
        np.testing.assert_array_equal(actual["label_ids"], expected["label_ids"])
    report = json.loads(open(os.path.join(version_dir, "albert_export.json")).read())
    assert report["input_shapes"]["token_ids"] == [-1, -1] and report["verified_lengths"] == [32, 15]
    text = format_report(inspect_artifact(version_dir))
    assert "input shape: padding_mask, segment_ids, token_ids [batch, any length] (up to 32 tokens)" in text, text


def test_an_asked_length_is_fixed_and_said(tiny_models, classifier_dir, tmp_path, capsys):
    version_dir = exporter.export_model(
        classifier_dir, str(tmp_path / "fixed"), format="tflite", sequence_length=16
    )
    printed = capsys.readouterr().out
    assert "[batch, 16] (fixed: pad every input to 16 tokens)" in printed, printed
    path = os.path.join(version_dir, "model.tflite")
    model = tiny_models["classifier"]
    inputs = sample_inputs(model, sequence_length=16)
    np.testing.assert_allclose(
        _run_resized(path, inputs)["probabilities"], reference_outputs(model, inputs)["probabilities"], atol=1e-5
    )
    for report in (inspect_artifact(version_dir), inspect_artifact(version_dir, signatures=False)):
        assert "input shape: padding_mask, segment_ids, token_ids [batch, 16] (fixed: pad every input to 16 " \
               "tokens)" in format_report(report)
