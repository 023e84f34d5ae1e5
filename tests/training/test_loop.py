"""The accelerator-ready loop: host-side step counting, reads only at boundaries, steps per
execution with exact checkpoints and weights, interval rounding, automatic precision."""

import os

import numpy as np
import pytest

from albert_keras.training import host_sync
from albert_keras.training.loop import TrainingSettings
from albert_keras.training.loop import align_intervals
from albert_keras.training.loop import auto_steps_per_execution
from albert_keras.training.loop import resolve_precision
from albert_keras.training.pretrain import pretrain

STEPS = 24


def _pretrain(config, records, output, **settings):
    host_sync.HOST_READS.clear()
    summary = pretrain(
        config, records, str(output), global_batch_size=8, num_train_steps=STEPS, num_warmup_steps=2,
        learning_rate=1e-3, optimizer="adamw", verbose=0, **settings,
    )
    return summary, dict(host_sync.HOST_READS)


@pytest.fixture(scope="module")
def one_step_run(tiny_config_path, small_records, tmp_path_factory):
    output = tmp_path_factory.mktemp("spe1") / "out"
    summary, reads = _pretrain(tiny_config_path, small_records, output, checkpoint_every=8, log_every=4,
                               eval_every=12, steps_per_execution=1)
    return summary, reads, str(output)


def test_the_step_loop_reads_the_device_only_at_boundaries(one_step_run):
    summary, reads, _ = one_step_run
    assert summary["step"] == STEPS
    fits = 1  # one `fit` of two 12-step epochs (see epoch_segments); one iterations read at its start
    # The loss is checked every min(log, checkpoint) = 4 steps, the logs written every 4: N/K each.
    assert reads.get("checkpoint") == STEPS // 4
    assert reads.get("logger") == STEPS // 4
    assert reads.get("checkpoint_begin") == fits and reads.get("logger_begin") == fits
    # No callback got Keras-converted logs (that would be one read per batch).
    assert "keras_callbacks" not in reads
    assert sum(reads.values()) < STEPS


def test_steps_per_execution_keeps_steps_checkpoints_and_weights(one_step_run, tiny_config_path, small_records,
                                                                 tmp_path):
    import tensorflow as tf

    base_summary, _, base_output = one_step_run
    # 24 steps, 4 per execution: the callbacks run 6 times; boundaries and weights must not move.
    summary, reads = _pretrain(tiny_config_path, small_records, tmp_path / "out", checkpoint_every=8, log_every=4,
                               eval_every=12, steps_per_execution=4)
    assert summary["step"] == STEPS
    assert reads.get("checkpoint") == STEPS // 4 and reads.get("logger") == STEPS // 4
    listing = sorted(os.listdir(tmp_path / "out" / "checkpoints"))
    assert listing == sorted(os.listdir(os.path.join(base_output, "checkpoints")))
    for name in ("loss", "masked_lm_accuracy"):
        assert summary["train"][name] == pytest.approx(base_summary["train"][name], rel=1e-5, abs=1e-6), name
    prefix = str(tmp_path / "out" / "checkpoints" / listing[-1] / "variables")
    ours = tf.train.load_checkpoint(prefix)
    theirs = tf.train.load_checkpoint(os.path.join(base_output, "checkpoints", listing[-1], "variables"))
    names = [name for name, _ in tf.train.list_variables(prefix) if name.startswith("model_variables")]
    assert names
    for name in names:
        np.testing.assert_allclose(ours.get_tensor(name), theirs.get_tensor(name), rtol=1e-5, atol=1e-6, err_msg=name)


def _tiny_loop(tmp_path, **settings):
    import keras

    from albert_keras.training.loop import TrainingLoop

    loop = TrainingLoop(
        TrainingSettings(str(tmp_path), global_batch_size=4, num_train_steps=10, optimizer="adamw",
                         learning_rate=1e-2, checkpoint_every=5, log_every=5, verbose=0, **settings),
        {"test": "tiny"},
    )
    loop.build(lambda: keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]), {"loss": "mse"})
    return loop


def _regression_data(skip):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, x.sum(axis=1, keepdims=True))).repeat().batch(4).skip(skip)


def test_deferring_callbacks_get_device_logs_and_others_floats(tmp_path):
    import keras
    import tensorflow as tf

    seen = {"deferred": [], "plain": []}

    class Deferred(keras.callbacks.Callback):
        defers_logs = True

        def on_train_batch_end(self, batch, logs=None):
            seen["deferred"].append((batch, type(logs["loss"])))

    class Plain(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen["plain"].append((batch, type(logs["loss"])))

    loop = _tiny_loop(tmp_path, steps_per_execution=5)
    host_sync.HOST_READS.clear()
    loop.fit(_regression_data, callbacks=[Deferred(), Plain()])
    assert loop.finish() == 10
    # Called once per execution of 5 batches, with the index of its last batch (per epoch).
    assert [batch for batch, _ in seen["deferred"]] == [4, 4]
    assert all(issubclass(kind, tf.Tensor) for _, kind in seen["deferred"])
    assert [kind for _, kind in seen["plain"]] == [float, float]
    assert host_sync.HOST_READS["keras_callbacks"] == 2  # converted once per execution, for Plain only
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["ckpt-000000005", "ckpt-000000010"]


def test_a_tail_shorter_than_an_execution_ends_on_the_last_step(tmp_path):
    # 10 steps with 4 per execution: the intervals are rounded to 8 and the last segment (2 steps)
    # runs with a divisor of its length instead of overrunning the run.
    loop = _tiny_loop(tmp_path, steps_per_execution=4)
    assert loop.settings.checkpoint_every == 8 and loop.settings.log_every == 8
    loop.fit(_regression_data)
    assert loop.step == 10 and loop.finish() == 10
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["ckpt-000000008", "ckpt-000000010"]


def test_intervals_round_up_to_whole_executions(capsys):
    settings = TrainingSettings("unused", log_every=30, checkpoint_every=1000, eval_every=250,
                                gradient_accumulation_steps=2).validate()
    messages = align_intervals(settings, 100, name="pretrain")
    # 100 batches per execution with 2 per step: 50 steps per execution.
    assert (settings.log_every, settings.checkpoint_every, settings.eval_every) == (50, 1000, 250)
    assert messages == [
        "pretrain: --log-every 30 rounded up to 50, a multiple of the 50 steps run per execution "
        "(--steps-per-execution 100)"
    ]
    assert capsys.readouterr().err.strip() == messages[0]
    settings = TrainingSettings("unused", log_every=7).validate()
    assert align_intervals(settings, 1) == [] and settings.log_every == 7


def test_automatic_steps_per_execution_divides_every_interval():
    assert auto_steps_per_execution([100, 1000, 1000], accelerator=False) == 1
    assert auto_steps_per_execution([100, 1000, 1000], accelerator=True) == 100
    assert auto_steps_per_execution([500, 1000], accelerator=True) == 100
    assert auto_steps_per_execution([240, 360], accelerator=True) == 60
    assert auto_steps_per_execution([37, 100], accelerator=True) == 1
    assert auto_steps_per_execution([100, 1000], accelerator=True, batches_per_step=4) == 400


def test_precision_auto_is_float32_on_this_cpu_and_explicit_values_stay():
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("resolves by the GPU's compute capability here")
    assert resolve_precision("auto") == "float32"
    assert resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    with pytest.raises(ValueError, match="resolved by TrainingLoop"):
        TrainingSettings("unused").validate().dtype_policy
    from albert_keras.errors import AlbertInputError

    with pytest.raises(AlbertInputError, match="--steps-per-execution must be positive"):
        TrainingSettings("unused", steps_per_execution=0).validate()


@pytest.mark.parametrize("command", ["pretrain", "finetune"])
def test_cli_flags_reach_the_settings(command):
    from albert_keras.cli import build_parser

    base = {
        "pretrain": ["pretrain", "--config", "c.json", "--train-files", "d", "--output-dir", "o"],
        "finetune": ["finetune", "--task", "classification", "--init", "i", "--train", "t", "--output", "o"],
    }[command]
    args = build_parser().parse_args(base)
    assert args.precision == "auto" and args.steps_per_execution is None
    assert build_parser().parse_args(base + ["--steps-per-execution", "50"]).steps_per_execution == 50
