"""The official LAMB / AdamW update, clipping and learning-rate schedule against NumPy re-derivations."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from albert_keras.training.optimization import AlbertAdamW
from albert_keras.training.optimization import AlbertLamb
from albert_keras.training.optimization import WarmupPolynomialDecay
from albert_keras.training.optimization import create_optimizer


def numpy_official_step(params, grads, state, lr, layer_adaptation, wd=0.01, b1=0.9, b2=0.999, eps=1e-6, clip=1.0):
    """google-research/ALBERT optimization.py + lamb_optimizer.py, one step, in NumPy (float64)."""
    names = list(params)
    if clip:
        global_norm = np.sqrt(sum(np.sum(grads[n].astype(np.float64) ** 2) for n in names))
        grads = {n: grads[n] * clip / max(global_norm, clip) for n in names}
    for name in names:
        g = grads[name]
        m, v = state.setdefault(name, (np.zeros_like(g), np.zeros_like(g)))
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        update = m / (np.sqrt(v) + eps)
        excluded = re.search("LayerNorm|layer_norm|bias", name) is not None
        if not excluded:
            update = update + wd * params[name]
        ratio = 1.0
        if layer_adaptation and not excluded:
            w_norm = np.linalg.norm(params[name])
            u_norm = np.linalg.norm(update)
            ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
        params[name] = params[name] - ratio * lr * update
        state[name] = (m, v)
    return params


def tiny_model():
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, name="dense"), keras.layers.LayerNormalization(name="layer_norm")]
    )
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    return model


@pytest.mark.parametrize("optimizer_class,layer_adaptation", [(AlbertLamb, True), (AlbertAdamW, False)])
@pytest.mark.parametrize("gradient_scale", [0.05, 10.0])  # below and above the clip norm
def test_matches_official_update(optimizer_class, layer_adaptation, gradient_scale):
    model = tiny_model()
    optimizer = optimizer_class(learning_rate=0.01, global_clipnorm=1.0)
    params = {v.path: v.numpy().astype(np.float64) for v in model.trainable_variables}
    state = {}
    rng = np.random.default_rng(1)
    for _ in range(4):
        grads = {v.path: gradient_scale * rng.normal(size=v.shape) for v in model.trainable_variables}
        optimizer.apply([tf.constant(grads[v.path], "float32") for v in model.trainable_variables], model.trainable_variables)
        params = numpy_official_step(params, grads, state, 0.01, layer_adaptation)
    for variable in model.trainable_variables:
        np.testing.assert_allclose(variable.numpy(), params[variable.path], rtol=1e-5, atol=1e-6)


def test_exclusions_follow_keras_paths():
    optimizer = AlbertLamb()
    model = tiny_model()
    flags = {v.path.split("/", 1)[1]: (optimizer.uses_weight_decay(v), optimizer.uses_layer_adaptation(v)) for v in model.trainable_variables}
    assert flags == {
        "dense/kernel": (True, True),
        "dense/bias": (False, False),
        "layer_norm/gamma": (False, False),
        "layer_norm/beta": (False, False),
    }


def test_differs_from_keras_lamb():
    # keras.optimizers.Lamb has bias correction and a trust ratio everywhere: a different step.
    ours, theirs = tiny_model(), tiny_model()
    grads = [tf.ones_like(v) for v in ours.trainable_variables]
    AlbertLamb(learning_rate=0.01).apply(grads, ours.trainable_variables)
    keras.optimizers.Lamb(learning_rate=0.01).apply(grads, theirs.trainable_variables)
    assert not np.allclose(ours.get_weights()[1], theirs.get_weights()[1])


def test_schedule_is_official():
    schedule = WarmupPolynomialDecay(1.0, num_train_steps=100, num_warmup_steps=10)
    values = [float(schedule(step)) for step in (0, 5, 9, 10, 55, 100, 150)]
    # Decay counts from step 0: right after warmup the rate is 1 - 10/100, not the peak.
    np.testing.assert_allclose(values, [0.0, 0.5, 0.9, 0.9, 0.45, 0.0, 0.0], atol=1e-7)
    assert WarmupPolynomialDecay.from_config(schedule.get_config()).get_config() == schedule.get_config()


def test_gradient_accumulation_averages_micro_batches():
    accumulated, direct = tiny_model(), tiny_model()
    rng = np.random.default_rng(2)
    grads = [[tf.constant(rng.normal(size=v.shape), "float32") for v in accumulated.trainable_variables] for _ in range(2)]
    opt = create_optimizer("lamb", 0.01, num_train_steps=10, num_warmup_steps=0, gradient_accumulation_steps=2)
    for micro in grads:
        opt.apply(micro, accumulated.trainable_variables)
    ref = create_optimizer("lamb", 0.01, num_train_steps=10, num_warmup_steps=0)
    ref.apply([(a + b) / 2 for a, b in zip(*grads)], direct.trainable_variables)
    assert int(opt.iterations) == 1
    for a, b in zip(accumulated.get_weights(), direct.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_config_round_trip():
    optimizer = create_optimizer("adamw", 1e-3, num_train_steps=100, num_warmup_steps=10)
    clone = AlbertAdamW.from_config(optimizer.get_config())
    assert clone.layer_adaptation is False and clone.epsilon == 1e-6 and clone.global_clipnorm == 1.0
