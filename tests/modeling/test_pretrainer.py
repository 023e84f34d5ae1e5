import keras
import tensorflow as tf
import numpy as np
import pytest

from albert_keras.modeling.encoder import AlbertEncoder
from albert_keras.modeling.pretrainer import AlbertPretrainer
from tests.modeling.conftest import pretraining_batch, tiny_config


def _log_softmax(logits):
    logits = logits - logits.max(-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def test_loss_is_the_official_weighted_mlm_plus_sop():
    keras.utils.set_random_seed(1)
    model = AlbertPretrainer(AlbertEncoder(tiny_config()))
    batch = pretraining_batch()
    outputs = model(batch)
    mlm = -np.take_along_axis(_log_softmax(np.asarray(outputs["mlm_logits"])), batch["masked_lm_ids"][..., None], -1)[..., 0]
    sop = -np.take_along_axis(_log_softmax(np.asarray(outputs["sop_logits"])), batch["next_sentence_labels"][:, None], -1)[:, 0]
    weights = batch["masked_lm_weights"]
    expected = (mlm * weights).sum() / (weights.sum() + 1e-5) + sop.mean()
    loss = model.compute_loss(x=batch, y_pred=outputs)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_mlm_head_is_tied_to_the_word_embeddings():
    model = AlbertPretrainer(AlbertEncoder(tiny_config()))
    head = model.masked_lm_head
    assert head.token_embedding is model.encoder.token_embedding
    assert head._intermediate_layer_norm.epsilon == 1e-12
    # Only the heads' own weights are added: transform (H*E+E), LayerNorm (2E), bias (V), SOP (2H+2).
    config = model.encoder.config
    extra = config.hidden_size * config.embedding_size + 3 * config.embedding_size + config.vocab_size + 2 * config.hidden_size + 2
    assert model.count_params() - model.encoder.count_params() == extra


def test_fit_overfits_a_fixed_batch_and_reports_official_metrics():
    keras.utils.set_random_seed(0)
    model = AlbertPretrainer(AlbertEncoder(tiny_config()))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    batch = pretraining_batch()
    initial = model.evaluate(batch, verbose=0, return_dict=True)
    steps = tf.data.Dataset.from_tensors(batch).repeat(50)
    history = model.fit(steps, epochs=3, verbose=0).history
    assert set(history) >= {"loss", "masked_lm_accuracy", "masked_lm_loss", "sentence_order_accuracy", "sentence_order_loss"}
    assert initial["loss"] > 4.0 and initial["masked_lm_loss"] > 3.5
    assert history["loss"][-1] < 0.05
    assert history["masked_lm_accuracy"][-1] == 1.0 and history["sentence_order_accuracy"][-1] == 1.0
    evaluation = model.evaluate(batch, verbose=0, return_dict=True)
    assert evaluation["masked_lm_accuracy"] == 1.0


def test_batches_without_labels_are_a_clear_error():
    model = AlbertPretrainer(AlbertEncoder(tiny_config()))
    model.compile(optimizer="adam")
    batch = pretraining_batch()
    del batch["masked_lm_weights"]
    with pytest.raises(ValueError, match="lacks the label feature\\(s\\) masked_lm_weights"):
        model.fit(batch, epochs=1, verbose=0)
