"""TFLite: every variant converts, runs in ai_edge_litert (no Flex), and matches the Keras model."""

import numpy as np
import pytest
import tensorflow as tf

from albert_keras.export import signatures as sigs
from albert_keras.export.tflite import TFLiteVerificationError
from albert_keras.export.tflite import compare_outputs
from albert_keras.export.tflite import convert_model
from albert_keras.export.tflite import convert_to_tflite
from albert_keras.export.tflite import interpreter
from albert_keras.export.tflite import reference_outputs
from albert_keras.export.tflite import sample_inputs
from albert_keras.export.tflite import verify_tflite
from tests.export.conftest import BAD_TEXTS


@pytest.mark.parametrize("with_tokenizer", [False, True], ids=["ids", "tokenizer"])
@pytest.mark.parametrize("quantize", ["none", "float16", "dynamic-int8"])
def test_classifier_every_variant(tiny_models, spm_model_path, tmp_path, quantize, with_tokenizer):
    path = tmp_path / "model.tflite"
    report = convert_to_tflite(
        tiny_models["classifier"],
        str(path),
        quantize=quantize,
        spm_model=spm_model_path,
        with_tokenizer=with_tokenizer,
        verbose=False,
    )
    assert path.stat().st_size == report["size_bytes"] > 0
    assert np.isfinite(report["max_diff"]) and report["latency_ms"] > 0
    if quantize == "none":
        assert report["max_diff"] < 1e-5


@pytest.mark.parametrize("kind", ["encoder", "token_classifier", "question_answerer", "multiple_choice"])
def test_other_kinds_with_tokenizer_match_keras_on_bad_text(tiny_models, spm_model_path, kind):
    model = tiny_models[kind]
    tflite_bytes, packer = convert_model(model, spm_model=spm_model_path, with_tokenizer=True)
    inputs = sample_inputs(model, packer, texts=[t.decode("utf-8", "replace") for t in BAD_TEXTS])
    # The raw bytes, undecodable ones included, go straight in.
    inputs["text"] = np.array(BAD_TEXTS, dtype=object)
    report = verify_tflite(tflite_bytes, model, packer=packer, inputs=inputs, threshold=1e-5, runs=1)
    assert report["label_agreement"] == 1.0
    runner = interpreter(tflite_bytes).get_signature_runner()
    empty = {key: value[:0] for key, value in inputs.items()}
    if kind == "token_classifier":
        # Known LiteRT limit (docs/export.md): it cannot hand back a zero-size per-token output.
        with pytest.raises(ValueError, match="Invalid tensor size"):
            runner(**empty)
        return
    outputs = runner(**empty)
    assert all(value.shape[0] == 0 for value in outputs.values())


def test_int8_classifier_agrees_with_float_labels(trained_classifier, spm_model_path, tmp_path):
    """On 600 held-out corpus sentences, the int8 TFLite model (tokenizer inside) keeps >= 98% of
    the float Keras model's labels. The model is trained for the task, so labels are not ties."""
    model, held_out, accuracy = trained_classifier
    assert accuracy > 0.8  # the task was learned: labels carry meaning
    tflite_bytes, packer = convert_model(
        model, quantize="dynamic-int8", spm_model=spm_model_path, with_tokenizer=True
    )
    inputs = {"text": np.array([s.encode("utf-8") for s in held_out], dtype=object)}
    expected = reference_outputs(model, inputs, packer)
    actual = interpreter(tflite_bytes).get_signature_runner()(**inputs)
    agreement = float(np.mean(actual["label_ids"] == expected["label_ids"]))
    assert agreement >= 0.98, agreement
    max_diff, _, has_nan = compare_outputs(expected, actual)
    assert not has_nan and max_diff < 0.2


def test_tokenizer_inside_tflite_matches_official_ids_on_corpus(tiny_models, spm_model_path, corpus_sentences):
    """The TFLite text path normalizes with the folded SentencePiece model instead of the official
    regex/ICU ops; on real sentences the token ids equal the official Python tokenization."""
    from albert_keras.export.text import AlbertTextPacker
    from albert_keras.tokenization import encode_for_albert
    from albert_keras.tokenization import load_sentencepiece

    sp = load_sentencepiece(spm_model_path)
    sentences = corpus_sentences[::10]
    packer = AlbertTextPacker(spm_model_path, 512, tflite_compatible=True)
    features = packer(tf.constant(sentences))
    same = 0
    for row, sentence in enumerate(sentences):
        ids = encode_for_albert(sp, sentence)
        length = int(features["padding_mask"][row].numpy().sum())
        same += list(features["token_ids"][row, 1 : length - 1].numpy()) == list(ids[: 510])
    assert same == len(sentences), same / len(sentences)


def test_verification_fails_loudly_on_the_nan_route(tiny_models):
    """`from_concrete_functions(..., keras_model)` converts without error but loses the weights
    (TF 2.21 / Keras 3): the verifier must refuse such a model."""
    model = tiny_models["classifier"]
    spec = sigs.ids_input_signature(model)

    @tf.function(input_signature=[spec[name] for name in sigs.FEATURES])
    def serve(token_ids, segment_ids, padding_mask):
        return sigs.task_outputs(
            model, {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}
        )

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], model)
    broken = converter.convert()
    with pytest.raises(TFLiteVerificationError):
        verify_tflite(broken, model, runs=1)


def test_quantized_gates_refuse_a_model_that_changes_the_answers(tiny_models, tmp_path):
    """The gates compare the converted file with the model it claims to be: a file converted from
    another model (other head or encoder weights) gives other labels or embeddings and is refused."""
    import keras

    from albert_keras import AlbertClassifier
    from albert_keras import AlbertEncoder
    from albert_keras.export.tflite import verification_texts

    texts = verification_texts(32)
    keras.utils.set_random_seed(1234)
    for kind, gate in (("classifier", {"min_label_agreement": 0.98}), ("encoder", {"min_cosine": 0.99})):
        model = tiny_models[kind]
        tflite_bytes, _ = convert_model(model)
        if kind == "encoder":
            other = AlbertEncoder(model.config)  # other random weights
        else:
            other = AlbertClassifier(model.encoder, num_classes=model.num_classes)  # a fresh head
        inputs = sample_inputs(model, texts=texts)
        verify_tflite(tflite_bytes, model, inputs=inputs, runs=1, **gate)  # the right model passes
        with pytest.raises(TFLiteVerificationError, match="required"):
            verify_tflite(tflite_bytes, other, inputs=inputs, threshold=1e9, runs=1, **gate)


def test_static_sequence_length_without_tokenizer(tiny_models, tmp_path):
    path = tmp_path / "static.tflite"
    report = convert_to_tflite(tiny_models["classifier"], str(path), sequence_length=16, verbose=False)
    assert report["max_diff"] < 1e-5
    details = interpreter(str(path)).get_signature_runner().get_input_details()
    assert all(list(d["shape_signature"])[-1] == 16 for d in details.values())


def test_layer_norms_convert_without_control_flow(tiny_models):
    """The oneDNN LayerNorm form (a `tf.cond` on the row count for dynamic shapes) is for
    TensorFlow's runtime; TFLite files get Keras' LayerNorm, with no IF op."""
    tflite_bytes, _ = convert_model(tiny_models["encoder"])
    ops = {op["op_name"] for op in interpreter(tflite_bytes)._get_ops_details()}
    assert "IF" not in ops and "WHILE" not in ops, sorted(ops)
    assert "MEAN" in ops  # Keras' LayerNorm: mean and variance
