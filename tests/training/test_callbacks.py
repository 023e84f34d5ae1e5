"""Pretraining callbacks: the throughput logger and the collapse watch (measures, a collapsed and a
healthy model, and `pretrain` reporting a forced collapse in summary.json and TensorBoard)."""

import glob
import json
import os

import numpy as np
import pytest

from albert_keras.training.callbacks import CollapseWatch
from albert_keras.training.callbacks import PretrainingLogger
from albert_keras.training.callbacks import representation_spread
from albert_keras.training.callbacks import top_prediction_share
from tests.training.conftest import TINY_CONFIG


def test_throughput_is_defined_before_any_fit():
    """A resumed run that had already reached its last step runs no `fit` and still reports."""
    logger = PretrainingLogger(None, global_batch_size=8)
    assert logger.examples_per_second == 0.0


def test_spread_is_zero_for_identical_tokens_and_ignores_padding():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(2, 5, 8))
    mask = np.ones((2, 5))
    assert representation_spread(vectors, mask) > 0.9  # unrelated random vectors
    same = np.broadcast_to(rng.normal(size=8), (2, 5, 8)).copy()
    assert representation_spread(same, mask) < 1e-9
    same[:, 3:] = rng.normal(size=(2, 2, 8)) * 100  # padding positions do not count
    mask[:, 3:] = 0
    assert representation_spread(same, mask) < 1e-9


def test_top_prediction_share_counts_weighted_positions_only():
    logits = np.zeros((2, 3, 6))
    logits[0, :, 2] = 1.0
    logits[1, 0, 2] = 1.0
    logits[1, 1, 4] = 1.0
    logits[1, 2, 5] = 1.0  # weight 0 below: ignored
    weights = np.array([[1, 1, 1], [1, 1, 0]], "float32")
    share, piece = top_prediction_share(logits, weights)
    assert piece == 2 and share == pytest.approx(4 / 5)


@pytest.fixture(scope="module")
def probe(pretraining_records):
    from albert_keras.data import batches as inputs

    files = inputs.match_files(os.path.join(pretraining_records, "*.tfrecord"))
    batch = next(iter(inputs.global_batches(files, 8, 32, 5, shuffle=False).take(1)))
    return {name: value.numpy() for name, value in batch.items()}


def _pretrainer():
    from albert_keras import AlbertConfig
    from albert_keras import AlbertEncoder
    from albert_keras import AlbertPretrainer

    return AlbertPretrainer(AlbertEncoder(AlbertConfig(**TINY_CONFIG)))


def test_a_directly_collapsed_model_is_flagged_and_a_fresh_one_is_not(probe, capsys):
    model = _pretrainer()
    watch = CollapseWatch(probe, every_steps=1, learning_rate=1e-2, num_warmup_steps=0, patience=1)
    watch.set_model(model)
    assert watch.check(5) == []  # random initial weights: distinct tokens, varied predictions
    spread, share, _, _ = watch.measure()
    assert spread > 0.1 and share < 0.9

    # The block's last LayerNorm with zero gain outputs its bias for every token: the collapse the
    # issue reported (every token of every sentence the same vector).
    norm = [w for w in model.encoder.weights if w.path.endswith("feedforward_layer_norm/gamma")][0]
    norm.assign(np.zeros(norm.shape, "float32"))
    beta = [w for w in model.encoder.weights if w.path.endswith("feedforward_layer_norm/beta")][0]
    beta.assign(np.random.default_rng(0).normal(size=beta.shape).astype("float32"))
    found = watch.check(10)
    assert len(found) == 2, found
    assert found[0].startswith("step 10: representation collapse") and "learning rate too high (0.01)" in found[0]
    assert "masked-LM collapse" in found[1] and "100%" in found[1]
    assert "WARNING pretrain: step 10" in capsys.readouterr().err
    assert watch.check(15) == [] and len(watch.warnings) == 2  # each kind reported once
    assert [step for step, _, _ in watch.history] == [5, 10, 15]


def test_one_piece_predictions_need_warmup_and_patience(probe):
    model = _pretrainer()
    vocab = TINY_CONFIG["vocab_size"]
    head_bias = [w for w in model.masked_lm_head.weights if tuple(w.shape) == (vocab,)][0]
    bias = np.zeros(head_bias.shape, "float32")
    bias[7] = 1e4  # the MLM answers piece 7 everywhere; the encoder itself is healthy
    head_bias.assign(bias)
    watch = CollapseWatch(probe, every_steps=1, num_warmup_steps=20, patience=2, verbose=False)
    watch.set_model(model)
    assert watch.check(10) == [] and watch.check(20) == []  # in warmup; then the first of two
    found = watch.check(30)
    assert len(found) == 1 and "piece id 7" in found[0] and "2 checks in a row" in found[0]


def _tensorboard_tags(output):
    import tensorflow as tf

    tags = {}
    for path in glob.glob(os.path.join(output, "logs", "train", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


def test_pretrain_reports_a_forced_collapse(tiny_config_path, pretraining_records, tmp_path):
    """AdamW at 1e-2 without warmup collapses a tiny model within a few dozen steps."""
    from albert_keras.training.pretrain import pretrain

    output = str(tmp_path / "collapsed")
    summary = pretrain(
        tiny_config_path, os.path.join(pretraining_records, "*.tfrecord"), output, global_batch_size=16,
        num_train_steps=40, num_warmup_steps=0, learning_rate=1e-2, optimizer="adamw", checkpoint_every=40,
        log_every=10, verbose=0,
    )
    collapse = [w for w in summary["warnings"] if "representation collapse" in w]
    assert collapse and "learning rate too high" in collapse[0] and "warmup too short (0 steps)" in collapse[0]
    assert json.load(open(os.path.join(output, "summary.json")))["warnings"] == summary["warnings"]
    assert [check[0] for check in summary["collapse_watch"]] == [10, 20, 30, 40]
    tags = _tensorboard_tags(output)
    assert tags["collapse/token_spread"] == [10, 20, 30, 40]
    assert "collapse/warning" in tags


def test_pretrain_does_not_flag_a_healthy_run(tiny_config_path, small_records, tmp_path):
    from albert_keras.training.pretrain import pretrain

    summary = pretrain(
        tiny_config_path, small_records, str(tmp_path / "healthy"), global_batch_size=32, num_train_steps=300,
        num_warmup_steps=30, learning_rate=1e-3, optimizer="adamw", checkpoint_every=300, log_every=50,
        verbose=0,
    )
    assert summary["warnings"] == [], summary["collapse_watch"]
    assert summary["train"]["masked_lm_accuracy"] > 0.15  # it did learn: not a run too short to collapse
    assert min(spread for _, spread, _ in summary["collapse_watch"]) > 0.05
