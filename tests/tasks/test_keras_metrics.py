"""Keras metrics against the NumPy functions: batch by batch, with sample weights, inside `fit`
compiled by XLA, after a `.keras` round trip, and under MirroredStrategy over two logical CPUs."""

import json
import math
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from albert_keras.errors import AlbertInputError
from albert_keras.tasks import keras_metrics as km
from albert_keras.tasks import metrics as m


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: km.F1Score(num_classes=1), "num_classes must be an int >= 2"),
        (lambda: km.F1Score(num_classes=2, average="micro"), "average must be"),
        (lambda: km.F1Score(num_classes=2, positive_label=2), "positive_label 2"),
        (lambda: km.SpearmanCorrelation(capacity=1), "capacity must be"),
    ],
)
def test_bad_arguments_are_one_clear_error(call, message):
    with pytest.raises(AlbertInputError, match=message):
        call()


def _batches(rng, n):
    """Uneven batch boundaries over n examples."""
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(4, n - 1), replace=False))
    return np.split(np.arange(n), cuts)


def test_keras_classification_metrics_equal_the_functions_over_batches():
    rng = np.random.default_rng(3)
    for classes in (2, 3, 5):
        y_true = rng.integers(0, classes, 90)
        logits = rng.normal(size=(90, classes)) + 2.0 * np.eye(classes)[y_true] * (rng.random((90, 1)) < 0.5)
        weights = (rng.random(90) < 0.8).astype("float32")  # 0 leaves an example out
        kept = weights > 0
        metrics = [km.F1Score(classes, average="macro"), km.MatthewsCorrelation(classes)] + [
            km.F1Score(classes, positive_label=p) for p in range(classes)]
        for index in _batches(rng, 90):
            for metric in metrics:
                metric.update_state(y_true[index], logits[index].astype("float32"), sample_weight=weights[index])
        predicted = logits.argmax(1)
        assert float(metrics[0].result()) == pytest.approx(m.f1(y_true[kept], predicted[kept], average="macro"), abs=1e-6)
        assert float(metrics[1].result()) == pytest.approx(m.matthews_corrcoef(y_true[kept], predicted[kept]), abs=1e-6)
        for p, metric in enumerate(metrics[2:]):
            assert float(metric.result()) == pytest.approx(m.f1(y_true[kept], predicted[kept], positive_label=p), abs=1e-6)
        metrics[1].reset_state()
        metrics[1].update_state(y_true[:10], predicted[:10].astype("int32"))  # class ids as y_pred
        assert float(metrics[1].result()) == pytest.approx(m.matthews_corrcoef(y_true[:10], predicted[:10]), abs=1e-6)


def test_keras_metric_rejects_logits_of_the_wrong_width():
    with pytest.raises(AlbertInputError, match="y_pred has 4 scores per example but num_classes is 3"):
        km.F1Score(3, average="macro").update_state(np.array([0, 1]), np.zeros((2, 4), "float32"))


def test_keras_binary_metrics_take_one_logit_or_probability():
    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 2, 40)
    logit = (rng.normal(size=(40, 1)) + (y_true[:, None] - 0.5)).astype("float32")
    expected = (logit[:, 0] > 0).astype(int)
    from_logits, from_probabilities = km.MatthewsCorrelation(2), km.MatthewsCorrelation(2, from_logits=False)
    from_logits.update_state(y_true[:, None], logit)
    from_probabilities.update_state(y_true, 1 / (1 + np.exp(-logit[:, 0])))
    assert float(from_logits.result()) == pytest.approx(m.matthews_corrcoef(y_true, expected), abs=1e-6)
    assert float(from_probabilities.result()) == pytest.approx(m.matthews_corrcoef(y_true, expected), abs=1e-6)


def test_keras_correlation_metrics_equal_the_functions_over_batches():
    rng = np.random.default_rng(5)
    for trial in range(4):
        n = 70
        gold = np.round(rng.uniform(0, 5, n) * 5) / 5  # ties
        predicted = (gold + rng.normal(size=n)).astype("float32")
        weights = (rng.random(n) < 0.85).astype("float32")
        kept = weights > 0
        pearson, spearman = km.PearsonCorrelation(), km.SpearmanCorrelation(capacity=128)
        for index in _batches(rng, n):
            shaped = predicted[index][:, None] if trial % 2 else predicted[index]  # [B, 1] or [B]
            pearson.update_state(gold[index], shaped, sample_weight=weights[index])
            spearman.update_state(gold[index], shaped, sample_weight=weights[index])
        assert float(pearson.result()) == pytest.approx(stats.pearsonr(predicted[kept], gold[kept]).statistic, abs=1e-6)
        assert float(spearman.result()) == pytest.approx(stats.spearmanr(predicted[kept], gold[kept]).statistic, abs=1e-6)
        spearman.reset_state()
        spearman.update_state(gold[:5], gold[:5])
        assert float(spearman.result()) == pytest.approx(1.0)


def test_pearson_state_keeps_precision_when_the_mean_is_large():
    rng = np.random.default_rng(6)
    # Mean/spread 1e3: float32 sums would keep about one digit of the variance; float64 keeps ten.
    gold = 1e3 + rng.normal(size=500)
    predicted = gold + rng.normal(size=500)
    metric = km.PearsonCorrelation()
    for index in np.array_split(np.arange(500), 7):
        metric.update_state(gold[index], predicted[index])
    assert float(metric.result()) == pytest.approx(stats.pearsonr(gold, predicted).statistic, abs=1e-9)


def test_spearman_capacity_overflow_is_a_clear_error():
    metric = km.SpearmanCorrelation(capacity=8, name="sts_spearman")
    metric.update_state(np.arange(6.0), np.arange(6.0))
    assert float(metric.result()) == pytest.approx(1.0)
    metric.update_state(np.arange(6.0), np.arange(6.0))
    with pytest.raises(AlbertInputError, match=r"sts_spearman: more values than SpearmanCorrelation\(capacity=8\)"):
        metric.result()
    # In a graph (as inside a compiled train step) it cannot raise: the result is NaN instead.
    assert math.isnan(float(tf.function(metric.result)()))
    metric.reset_state()
    metric.update_state([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])
    assert float(metric.result()) == pytest.approx(-1.0)


def test_get_config_round_trips():
    for metric in (km.F1Score(4, average="macro", positive_label=2, from_logits=False, name="f"),
                   km.MatthewsCorrelation(3), km.PearsonCorrelation(name="p"), km.SpearmanCorrelation(capacity=99)):
        config = metric.get_config()
        clone = type(metric).from_config(config)
        assert clone.get_config() == config
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
        assert type(restored) is type(metric) and restored.get_config() == config


@pytest.fixture(scope="module")
def rule_data():
    """Classification (class = argmax of a fixed projection) and regression data, split."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(160, 6)).astype("float32")
    labels = (x @ rng.normal(size=(6, 3))).argmax(1)
    target = (x @ rng.normal(size=6) + 0.3 * rng.normal(size=160)).astype("float32")
    return x, labels, target


def _classifier():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"), km.F1Score(3, average="macro"),
                 km.MatthewsCorrelation(3, name="mcc")],
        jit_compile=True,  # update_state and result inside one XLA cluster
    )
    return model


def _regressor():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse",
                  metrics=[km.PearsonCorrelation(), km.SpearmanCorrelation(capacity=256)], jit_compile=True)
    return model


def test_keras_metrics_in_fit_and_after_a_keras_round_trip(rule_data, tmp_path):
    x, labels, target = rule_data
    keras.utils.set_random_seed(0)
    classifier = _classifier()
    history = classifier.fit(x[:120], labels[:120], validation_data=(x[120:], labels[120:]), batch_size=16,
                             epochs=3, verbose=0)
    predicted = classifier.predict(x[120:], verbose=0).argmax(1)
    assert history.history["val_accuracy"][-1] == pytest.approx(m.accuracy(labels[120:], predicted), abs=1e-6)
    assert history.history["val_f1"][-1] == pytest.approx(m.f1(labels[120:], predicted, average="macro"), abs=1e-6)
    assert history.history["val_mcc"][-1] == pytest.approx(m.matthews_corrcoef(labels[120:], predicted), abs=1e-6)
    assert history.history["val_accuracy"][-1] > 0.6  # the metrics see a model that learned

    regressor = _regressor()
    history = regressor.fit(x[:120], target[:120], validation_data=(x[120:], target[120:]), batch_size=16,
                            epochs=3, verbose=0)
    values = regressor.predict(x[120:], verbose=0)[:, 0]
    assert history.history["val_pearson"][-1] == pytest.approx(m.pearson(values, target[120:]), abs=1e-5)
    assert history.history["val_spearman"][-1] == pytest.approx(m.spearman(values, target[120:]), abs=1e-5)

    path = tmp_path / "regressor.keras"
    regressor.save(path)
    reloaded = keras.saving.load_model(path)
    scores = reloaded.evaluate(x[120:], target[120:], batch_size=7, verbose=0, return_dict=True)
    assert scores["spearman"] == pytest.approx(m.spearman(values, target[120:]), abs=1e-5)
    assert scores["pearson"] == pytest.approx(m.pearson(values, target[120:]), abs=1e-5)


_MIRRORED = r"""
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from albert_keras.tasks import keras_metrics as km
rng = np.random.default_rng(8)
x = rng.normal(size=(45, 4)).astype("float32")
labels = rng.integers(0, 3, 45)
target = (x.sum(1) + rng.normal(size=45)).astype("float32")
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, [keras.layers.Dense(3, name="logits")(inputs), keras.layers.Dense(1, name="value")(inputs)])
    model.compile(optimizer="sgd", loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True), "mse"],
                  metrics=[[km.F1Score(3, average="macro"), km.MatthewsCorrelation(3, name="mcc")],
                           [km.PearsonCorrelation(), km.SpearmanCorrelation(capacity=64)]])
model.fit(x, (labels, target), batch_size=10, epochs=1, verbose=0)
scores = model.evaluate(x, (labels, target), batch_size=10, verbose=0, return_dict=True)
logits, values = model.predict(x, verbose=0)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "scores": scores,
                  "logits": logits.tolist(), "values": values[:, 0].tolist(),
                  "labels": labels.tolist(), "target": target.tolist()}))
"""


def test_keras_metrics_under_mirrored_strategy_on_two_logical_cpus():
    result = subprocess.run([sys.executable, "-c", _MIRRORED], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    scores, labels, target = out["scores"], np.array(out["labels"]), np.array(out["target"])
    predicted, values = np.array(out["logits"]).argmax(1), np.array(out["values"])
    f1_key = next(k for k in scores if k.endswith("f1"))
    mcc_key = next(k for k in scores if k.endswith("mcc"))
    pearson_key = next(k for k in scores if k.endswith("pearson"))
    spearman_key = next(k for k in scores if k.endswith("spearman"))
    assert scores[f1_key] == pytest.approx(m.f1(labels, predicted, average="macro"), abs=1e-5)
    assert scores[mcc_key] == pytest.approx(m.matthews_corrcoef(labels, predicted), abs=1e-5)
    assert scores[pearson_key] == pytest.approx(m.pearson(values, target), abs=1e-5)
    # 45 values over two replicas' disjoint slots (32 each): the union, not one replica's half.
    assert scores[spearman_key] == pytest.approx(m.spearman(values, target), abs=1e-5)
