"""Full-integer TFLite (full-int8, int16x8): calibrated on texts, gated, run in LiteRT, float ops said."""

import os

import numpy as np
import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.export import exporter
from albert_keras.export import quantization
from albert_keras.export.tflite import convert_to_tflite
from albert_keras.export.tflite import interpreter
from albert_keras.export.tflite import reference_outputs
from tests.export.conftest import SEQUENCE_LENGTH

# What may stay float in a full-int8 ALBERT file: the boundaries and the float outputs' tail.
BOUNDARY_AND_OUTPUT_OPS = {"QUANTIZE", "DEQUANTIZE", "CAST", "ARG_MAX", "SOFTMAX", "GATHER"}


@pytest.fixture(scope="module")
def calibration_file(corpus_sentences, tmp_path_factory):
    """The user's texts: 150 corpus sentences outside the classifier's training and held-out sets."""
    path = tmp_path_factory.mktemp("calibration") / "texts.txt"
    path.write_text("\n".join(s for s in corpus_sentences[2100:2250] if s.strip()) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("quantize", ["full-int8", "int16x8"])
def test_full_integer_classifier_passes_the_gate_and_runs_in_litert(
    trained_classifier, spm_model_path, calibration_file, tmp_path, quantize
):
    model, held_out, accuracy = trained_classifier
    assert accuracy > 0.8  # the labels mean something
    path = tmp_path / "model.tflite"
    report = convert_to_tflite(
        model, str(path), quantize=quantize, spm_model=spm_model_path, calibration=calibration_file, verbose=False
    )
    assert report["label_agreement"] >= 0.98 and report["calibration_texts"] > 100
    # On 600 held-out sentences, in LiteRT: the float model's labels, at two lengths.
    for length in (SEQUENCE_LENGTH, 20):
        inputs = quantization.packed_features(held_out, spm_model_path, length)
        actual = interpreter(str(path)).get_signature_runner()(**inputs)
        expected = reference_outputs(model, inputs)
        assert np.mean(actual["label_ids"] == expected["label_ids"]) >= 0.98
    ops = {op["op_name"] for op in interpreter(str(path))._get_ops_details()}
    assert "SQUARED_DIFFERENCE" not in ops and "NEG" not in ops  # LayerNorm traced integer-friendly
    floats = report["float_ops"]
    assert floats and all(row["reason"] for row in floats)
    if quantize == "full-int8":
        assert {row["op"] for row in floats} <= BOUNDARY_AND_OUTPUT_OPS, floats
        float32 = convert_to_tflite(model, str(tmp_path / "float.tflite"), verbose=False)
        assert report["size_bytes"] < 0.7 * float32["size_bytes"]


def test_integer_friendly_tracing_keeps_the_float_numbers(trained_classifier, spm_model_path, corpus_sentences):
    """Inside the block the attention masks probabilities, LayerNorm centres by subtraction and
    embeddings gather: the same function, so the Keras model's outputs stay (to float rounding),
    padding included; the layers get their classes back afterwards."""
    model, _, _ = trained_classifier
    features = quantization.packed_features(corpus_sentences[:16], spm_model_path, SEQUENCE_LENGTH)
    assert features["padding_mask"].min() == 0  # some rows are padded: the mask matters
    classes = [type(layer) for layer in model._flatten_layers()]
    before = model(features, training=False).numpy()
    with quantization.integer_friendly_tracing(model):
        swapped = [type(layer) for layer in model._flatten_layers()]
        inside = model(features, training=False).numpy()
    assert swapped != classes
    np.testing.assert_allclose(inside, before, atol=1e-5)
    assert [type(layer) for layer in model._flatten_layers()] == classes


def test_bad_calibration_input_is_one_line_and_nothing_written(tiny_models, spm_model_path, tmp_path):
    from albert_keras.modeling.pretrained import save_pretrained

    directory = save_pretrained(tiny_models["classifier"], str(tmp_path / "classifier"), spm_model=spm_model_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    output = tmp_path / "exported"
    with pytest.raises(AlbertInputError, match=r"empty\.txt: no texts \(empty file\)") as error:
        exporter.export_model(directory, str(output), format="tflite", quantize="full-int8", calibration=str(empty))
    assert "\n" not in str(error.value) and not output.exists()
    with pytest.raises(AlbertInputError, match="--calibration: only for --quantize full-int8 or int16x8"):
        exporter.export_model(directory, str(output), format="tflite", quantize="dynamic-int8", calibration=str(empty))
    with pytest.raises(AlbertInputError, match="not with --with-tokenizer"):
        convert_to_tflite(tiny_models["classifier"], str(tmp_path / "m.tflite"), quantize="full-int8",
                          spm_model=spm_model_path, with_tokenizer=True, verbose=False)
    assert not output.exists() and not os.path.exists(tmp_path / "m.tflite")
