"""XLA on CPU: the pretraining and fine-tuning steps compile with `jit_compile=True` (the path GPUs and
TPUs take by default) and give the losses and weights of the steps without XLA, to float tolerance."""

import keras
import numpy as np
import pytest

from albert_keras.modeling.encoder import AlbertEncoder
from albert_keras.modeling.pretrainer import AlbertPretrainer
from albert_keras.modeling.task_models import AlbertClassifier
from albert_keras.training.optimization import create_optimizer
from tests.modeling.conftest import encoder_batch, pretraining_batch, tiny_config

# Dropout off: XLA draws other random numbers, and the comparison is about the compiled math.
CONFIG = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _train(make_model, batches, jit_compile, weights, optimizer_kwargs, loss=None):
    model = make_model()
    model.set_weights(weights)
    optimizer = create_optimizer(num_train_steps=100, num_warmup_steps=2, **optimizer_kwargs)
    model.compile(optimizer=optimizer, loss=loss, jit_compile=jit_compile)
    losses = [float(model.train_on_batch(x, y, return_dict=True)["loss"]) for x, y in batches]
    return losses, model.get_weights()


def _same_training(make_model, batches, optimizer_kwargs, loss=None):
    keras.utils.set_random_seed(7)
    weights = make_model().get_weights()
    plain = _train(make_model, batches, False, weights, optimizer_kwargs, loss)
    xla = _train(make_model, batches, True, weights, optimizer_kwargs, loss)
    np.testing.assert_allclose(xla[0], plain[0], rtol=2e-4, atol=1e-5)
    for xla_weight, plain_weight in zip(xla[1], plain[1]):
        np.testing.assert_allclose(xla_weight, plain_weight, rtol=1e-3, atol=1e-5)
    assert plain[0][-1] != plain[0][0]  # the steps trained
    return plain[0]


@pytest.mark.parametrize("optimizer_kwargs", [
    {"name": "lamb", "learning_rate": 1e-2},
    {"name": "lamb", "learning_rate": 1e-2, "gradient_accumulation_steps": 2},
], ids=["lamb", "lamb-accumulation"])
def test_pretraining_steps_under_xla_match(optimizer_kwargs):
    batches = [(pretraining_batch(seed=seed), None) for seed in range(4)]
    _same_training(lambda: AlbertPretrainer(AlbertEncoder(CONFIG)), batches, optimizer_kwargs)


def test_fine_tuning_steps_under_xla_match():
    rng = np.random.default_rng(3)
    batches = [(encoder_batch(batch=4, length=10, seed=seed, pad_from=8), rng.integers(0, 3, 4).astype("int32"))
               for seed in range(3)]
    _same_training(
        lambda: AlbertClassifier(AlbertEncoder(CONFIG), num_classes=3, dropout=0.0), batches,
        {"name": "adamw", "learning_rate": 1e-3, "weight_decay_rate": 0.01},
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
