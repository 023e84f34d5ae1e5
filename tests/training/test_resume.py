"""Crash test: `kill -9` the pretraining process at a random step, rerun the same command, and get
the weights of an uninterrupted run; no checkpoint is ever left half-written."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np

from tests.training.conftest import REPO
from tests.training.conftest import subprocess_env

STEPS = 150


def _command(config, records, output):
    return [
        sys.executable, "-m", "albert_keras", "pretrain", "--config", config, "--train-files", records,
        "--output-dir", output, "--global-batch-size", "8", "--num-train-steps", str(STEPS),
        "--num-warmup-steps", "10", "--learning-rate", "1e-3", "--checkpoint-every", "10",
        "--keep-checkpoints", "2", "--deterministic", "--verbose", "0",
    ]


def _start(command):
    return subprocess.Popen(command, env=subprocess_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _complete_checkpoints(directory):
    import tensorflow as tf

    found = []
    for name in sorted(os.listdir(directory)):
        if name.startswith("."):
            continue  # an interrupted write's temporary directory, never read
        path = os.path.join(directory, name)
        with open(os.path.join(path, "state.json")) as f:  # present in every final-named checkpoint
            state = json.load(f)
        reader = tf.train.load_checkpoint(os.path.join(path, "variables"))
        assert len(reader.get_variable_to_shape_map()) > state["num_model_variables"]
        assert name == f"ckpt-{state['step']:09d}"
        found.append(state["step"])
    return found


def test_kill_and_resume_gives_the_uninterrupted_weights(tiny_config_path, small_records, tmp_path):
    from albert_keras.modeling.pretrained import load_pretrained

    crashed, reference = str(tmp_path / "crashed"), str(tmp_path / "reference")
    uninterrupted = _start(_command(tiny_config_path, small_records, reference))
    victim = _start(_command(tiny_config_path, small_records, crashed))
    checkpoints = os.path.join(crashed, "checkpoints")
    try:
        deadline = time.time() + 180
        while not (os.path.isdir(checkpoints) and any(n.startswith("ckpt-") for n in os.listdir(checkpoints))):
            assert victim.poll() is None, victim.communicate()[1][-3000:]
            assert time.time() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
        delay = random.uniform(0.0, 0.6)
        time.sleep(delay)
        assert victim.poll() is None, f"the run finished before the kill (delay {delay:.2f}s)"
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL
    killed_at = _complete_checkpoints(checkpoints)
    assert killed_at and max(killed_at) < STEPS

    rerun = subprocess.run(
        _command(tiny_config_path, small_records, crashed), env=subprocess_env(), cwd=REPO, capture_output=True,
        text=True, timeout=240,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resuming from step {max(killed_at)}" in rerun.stderr
    assert _complete_checkpoints(checkpoints) == [STEPS - 10, STEPS]
    assert not [n for n in os.listdir(checkpoints) if n.startswith(".")]  # leftovers cleaned up

    _, err = uninterrupted.communicate(timeout=240)
    assert uninterrupted.returncode == 0, err[-3000:]
    resumed = load_pretrained(os.path.join(crashed, "pretrained")).get_weights()
    expected = load_pretrained(os.path.join(reference, "pretrained")).get_weights()
    for a, b in zip(resumed, expected):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
