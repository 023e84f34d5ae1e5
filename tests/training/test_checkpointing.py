"""`StepCheckpointer`: exact round trip of model and optimizer state, pruning, and crash leftovers."""

import json
import os

import keras
import numpy as np
import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.training.checkpointing import StepCheckpointer
from albert_keras.training.optimization import AlbertLamb


def _model_and_optimizer(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dropout(0.5, seed=seed)])
    optimizer = AlbertLamb(learning_rate=0.01)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def test_round_trip_keep_and_leftovers(tmp_path):
    model, optimizer = _model_and_optimizer(0)
    optimizer.apply([np.ones(v.shape, "float32") for v in model.trainable_variables], model.trainable_variables)
    leftover = tmp_path / ".ckpt-000000001.abc.tmp"
    leftover.mkdir(parents=True)
    checkpointer = StepCheckpointer(str(tmp_path), model, optimizer, keep=2)
    assert not leftover.exists()  # a crashed write's temporary directory is removed on start
    for step in (1, 2, 3):
        checkpointer.save(step, batches_consumed=step * 4)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-000000002", "ckpt-000000003"]

    fresh_model, fresh_optimizer = _model_and_optimizer(1)
    state = StepCheckpointer(str(tmp_path), fresh_model, fresh_optimizer).restore_latest()
    assert state["step"] == 3 and state["batches_consumed"] == 12
    for a, b in zip(model.variables + optimizer.variables, fresh_model.variables + fresh_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # seed-generator state included
    assert int(fresh_optimizer.iterations.numpy()) == 1


def test_restore_into_another_model_is_a_clear_error(tmp_path):
    model, optimizer = _model_and_optimizer(0)
    StepCheckpointer(str(tmp_path), model, optimizer).save(5, 5)
    keras.utils.set_random_seed(0)
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    other_optimizer = AlbertLamb()
    other_optimizer.build(other.trainable_variables)
    with pytest.raises(AlbertInputError, match="checkpoint holds .* variables"):
        StepCheckpointer(str(tmp_path), other, other_optimizer).restore_latest()


def test_non_chief_writes_nothing_in_the_directory(tmp_path):
    model, optimizer = _model_and_optimizer(0)
    assert StepCheckpointer(str(tmp_path / "ckpt"), model, optimizer, is_chief=False).save(1, 1) is None
    assert not (tmp_path / "ckpt").exists()


def test_incomplete_checkpoints_are_never_listed(tmp_path):
    model, optimizer = _model_and_optimizer(0)
    checkpointer = StepCheckpointer(str(tmp_path), model, optimizer)
    checkpointer.save(1, 1)
    (tmp_path / "ckpt-000000009").mkdir()  # no state.json: not a complete checkpoint
    assert checkpointer.latest()[0] == 1
    assert json.load(open(tmp_path / "ckpt-000000001" / "state.json"))["format"] == "albert-keras-checkpoint-1"


@pytest.mark.parametrize("entry_point", ["pretrain", "finetune"])
def test_divergence_advice_names_real_flags(entry_point):
    import re

    from albert_keras.cli import build_parser
    from albert_keras.training.checkpointing import divergence_advice

    parser = build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    assert entry_point in subcommands
    known = {flag for action in subcommands[entry_point]._actions for flag in action.option_strings}
    named = set(re.findall(r"--[a-z][a-z0-9-]*", divergence_advice(entry_point)))
    assert named and named <= known, named - known
