"""`pretrain --on-divergence rollback`: a planted learning-rate spike makes the loss explode at a
known step; the run goes back to a checkpoint from before it, at half the learning rate, and ends
below the diverged loss. The same run with `warn` only reports it."""

import glob
import json
import os

import keras
import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.training.pretrain import pretrain

SPIKE_AT = 60


class LearningRateSpike(keras.callbacks.Callback):
    """Multiplies the learning rate by `factor` for the steps `[at, at + steps)`, once: a transient fault.

    It changes the real schedule's scale (the variable the compiled step reads), as a bad batch
    or a wrong schedule would change the update; after a rollback replays those steps it does not
    fire again.
    """

    def __init__(self, at=SPIKE_AT, steps=5, factor=1000.0):
        super().__init__()
        self.at, self.steps, self.factor = at, steps, factor
        self.state = "waiting"

    def on_train_batch_begin(self, batch, logs=None):
        from albert_keras.training.optimization import learning_rate_scale
        from albert_keras.training.optimization import set_learning_rate_scale

        step = int(self.model.optimizer.iterations.numpy())
        optimizer = self.model.optimizer
        if self.state == "waiting" and step == self.at:
            set_learning_rate_scale(optimizer, learning_rate_scale(optimizer) * self.factor)
            self.state = "on"
        elif self.state == "on" and step == self.at + self.steps:
            set_learning_rate_scale(optimizer, learning_rate_scale(optimizer) / self.factor)
            self.state = "done"


def test_loss_spike_rule_on_interval_means(capsys):
    from albert_keras.training.callbacks import DivergenceWatch

    watch = DivergenceWatch(every_steps=10, min_step=20, on_divergence="rollback")
    # Accuracy steady at 0.3; the loss falls, then one interval at 2.1 x the median of the ones before.
    losses = [8.0, 6.0, 5.0, 4.6, 4.4, 4.3]
    for index, loss in enumerate(losses):
        watch.check(10 * (index + 1), 0.3, loss=loss)
    assert watch.events == []
    watch.check(70, 0.3, loss=2.1 * 5.0)  # the median of 8, 6, 5, 4.6, 4.4, 4.3 is 4.8: 10.5 > 9.6
    assert watch.pending == {"step": 70, "reason": "loss spike", "value": 10.5, "median": 4.8, "action": "rollback"}
    assert watch.rollback_before(watch.pending) == 40
    assert "divergence: step 70: loss 10.5000" in capsys.readouterr().err
    # Paused until the rollback is done; the spike never entered the median.
    watch.check(80, 0.3, loss=float("nan"))
    assert len(watch.events) == 1
    watch.rolled_back(40)
    assert [loss for _, loss in watch._judged_losses] == [8.0, 6.0, 5.0, 4.6]
    watch.check(50, 0.3, loss=float("nan"))
    assert watch.pending["reason"] == "loss spike" and watch.pending["value"] is None and len(watch.events) == 2
    # Warmup (min_step) and "warn" once: a spike at step 20 is not judged; warn fires one event only.
    early = DivergenceWatch(every_steps=10, min_step=20, verbose=False)
    for step, loss in ((10, 5.0), (20, 5.0), (30, 5.0), (40, 50.0), (50, 50.0)):
        early.check(step, 0.3, loss=loss)
    assert [event["step"] for event in early.events] == [40] and early.pending is None


def _run(config, records, output, on_divergence, steps=120, **kwargs):
    return pretrain(
        config, records, str(output), global_batch_size=16, num_train_steps=steps, num_warmup_steps=10,
        learning_rate=1e-3, optimizer="adamw", checkpoint_every=10, keep_checkpoints=10, log_every=10,
        on_divergence=on_divergence, callbacks=[LearningRateSpike()], verbose=0, **kwargs,
    )


@pytest.fixture(scope="module")
def rolled_back(tiny_config_path, small_records, tmp_path_factory):
    output = tmp_path_factory.mktemp("rollback") / "out"
    return _run(tiny_config_path, small_records, output, "rollback"), output


def test_rollback_recovers_from_a_planted_divergence(rolled_back):
    summary, output = rolled_back
    event = summary["divergence"]
    # The spike's interval (steps 60-70) is judged at step 70; the rollback restores the newest
    # checkpoint one window (3 x 10 steps) before it.
    assert event["step"] == SPIKE_AT + 10 and event["reason"] == "loss spike" and event["action"] == "rollback"
    assert event["value"] > 2 * event["median"]
    assert summary["rollbacks"] == [{
        "step": 70, "reason": "loss spike", "restored_step": 40, "learning_rate_scale": 0.5,
        "learning_rate": pytest.approx(5e-4),
    }]
    assert summary["learning_rate_scale"] == 0.5 and summary["step"] == 120
    # The run ends below the diverged loss (and it is training again: below the loss before the spike, too).
    assert summary["train"]["loss"] < event["value"]
    assert summary["train"]["loss"] < event["median"]
    on_disk = json.load(open(output / "summary.json"))
    assert on_disk["rollbacks"][0]["restored_step"] == 40
    # Every checkpoint written after the rollback carries the scale.
    states = [json.load(open(path)) for path in sorted(glob.glob(str(output / "checkpoints" / "*" / "state.json")))]
    assert all(state["learning_rate_scale"] == 0.5 for state in states if state["step"] >= 40)


def test_rollback_is_in_tensorboard(rolled_back):
    import tensorflow as tf

    _, output = rolled_back
    scalars, texts = {}, {}
    for path in glob.glob(str(output / "logs" / "train" / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                array = tf.make_ndarray(value.tensor)
                if array.dtype == object:
                    texts.setdefault(value.tag, []).append((event.step, array.item().decode()))
                else:
                    scalars.setdefault(value.tag, []).append((event.step, float(array)))
    assert [step for step, _ in texts["divergence/rollback"]] == [70]
    assert "rolled back to step 40" in texts["divergence/rollback"][0][1]
    assert scalars["divergence/learning_rate_scale"] == [(70, 0.5)]
    assert scalars["divergence/restored_step"] == [(70, 40.0)]
    # The learning rate logged at step 120 is half the schedule's (linear decay to 0 at step 120: use step 110).
    rates = dict(scalars["learning_rate"])
    assert rates[110] == pytest.approx(0.5 * 1e-3 * (1 - 110 / 120), rel=1e-5)


def test_resume_keeps_the_lowered_learning_rate(rolled_back, tiny_config_path, small_records):
    _, output = rolled_back
    summary = pretrain(
        tiny_config_path, small_records, str(output), global_batch_size=16, num_train_steps=130, num_warmup_steps=10,
        learning_rate=1e-3, optimizer="adamw", checkpoint_every=10, keep_checkpoints=10, log_every=10, verbose=0,
    )
    assert summary["resumed_from"] == 120 and summary["learning_rate_scale"] == 0.5
    assert summary["rollbacks"][0]["restored_step"] == 40


def test_warn_reports_the_same_divergence_without_rolling_back(rolled_back, tiny_config_path, small_records, tmp_path,
                                                              capsys):
    summary = _run(tiny_config_path, small_records, tmp_path / "out", "warn")
    event = summary["divergence"]
    assert event["step"] == SPIKE_AT + 10 and event["reason"] == "loss spike" and event["action"] == "warn"
    assert summary["rollbacks"] == [] and summary["learning_rate_scale"] == 1.0
    # Without the rollback the run never recovers: it ends far above where the rolled-back one ends.
    assert summary["train"]["loss"] > 2 * rolled_back[0]["train"]["loss"]
    assert capsys.readouterr().err.count("divergence: step 70: loss") == 1


def test_rollback_needs_a_checkpoint_before_the_window(tiny_config_path, small_records, tmp_path, capsys):
    # Checkpoints every 100 steps: none is old enough at step 70, so the run stops there with one line.
    summary = pretrain(
        tiny_config_path, small_records, str(tmp_path / "out"), global_batch_size=16, num_train_steps=120,
        num_warmup_steps=10, learning_rate=1e-3, optimizer="adamw", checkpoint_every=100, log_every=10,
        on_divergence="rollback", callbacks=[LearningRateSpike()], verbose=0,
    )
    assert summary["step"] == 70 and summary["rollbacks"] == [] and summary["divergence"]["action"] == "stop"
    assert "divergence: step 70: cannot roll back: no checkpoint at or before step 40" in capsys.readouterr().err


def test_bad_rollback_settings_are_refused(tiny_config_path, small_records, tmp_path):
    with pytest.raises(AlbertInputError, match="--rollback-lr-factor"):
        pretrain(tiny_config_path, small_records, str(tmp_path / "out"), num_train_steps=2, rollback_lr_factor=1.5)
    assert not os.path.exists(tmp_path / "out" / "checkpoints")


def test_a_non_finite_loss_rolls_back_too(tiny_config_path, small_records, tmp_path):
    # A learning rate 1e15 times too high for 5 steps: the loss becomes NaN. The loss check at step
    # 70 raises TrainingDivergedError, which rollback turns into a rollback like a spike.
    summary = pretrain(
        tiny_config_path, small_records, str(tmp_path / "out"), global_batch_size=16, num_train_steps=80,
        num_warmup_steps=10, learning_rate=1e-3, optimizer="adamw", checkpoint_every=10, log_every=10,
        on_divergence="rollback", callbacks=[LearningRateSpike(factor=1e15)], verbose=0,
    )
    assert [(r["step"], r["reason"], r["restored_step"]) for r in summary["rollbacks"]] == [(70, "non-finite loss", 40)]
    # Training again: below the loss at initialization (ln(1000) + ln(2) = 7.6 for the MLM and SOP heads).
    assert summary["step"] == 80 and summary["train"]["loss"] < 6.0
