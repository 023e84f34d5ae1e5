"""Strategies give one device's result: MirroredStrategy over two logical CPUs, and
MultiWorkerMirroredStrategy over two real worker processes on 127.0.0.1."""

import json
import os

import numpy as np
import pytest

from tests.training.conftest import REPO
from tests.training.conftest import run_python_together
from tests.training.conftest import worker_tf_configs

WORKER = os.path.join(REPO, "tests", "training", "pretrain_worker.py")


def _load(out, name):
    with open(os.path.join(out, name + ".json")) as f:
        summary = json.load(f)
    weights = np.load(os.path.join(out, name + ".npz"))
    return summary, [weights[key] for key in weights.files]


@pytest.fixture(scope="module")
def runs(tiny_config_path, small_records, tmp_path_factory):
    """Three processes started together (to share the TensorFlow start-up time): one with two
    logical CPUs running the default strategy then MirroredStrategy, and two multi-worker workers."""
    out = str(tmp_path_factory.mktemp("distributed"))
    commands = [([WORKER, tiny_config_path, small_records, out, "local", "default", "mirrored"], {"LOGICAL_CPUS": "2"})]
    for index, tf_config in enumerate(worker_tf_configs(2)):
        commands.append(([WORKER, tiny_config_path, small_records, out, f"worker{index}", "multi-worker"], {"TF_CONFIG": tf_config}))
    run_python_together(commands, timeout=300)
    return out


def _assert_same_run(a, b, rtol=1e-5):
    (summary_a, weights_a), (summary_b, weights_b) = a, b
    assert summary_a["step"] == summary_b["step"] == 10
    loss_a, loss_b = summary_a["train"]["loss"], summary_b["train"]["loss"]
    assert abs(loss_a - loss_b) <= rtol * abs(loss_a), (loss_a, loss_b)
    for wa, wb in zip(weights_a, weights_b):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)


def test_mirrored_matches_default(runs):
    default = _load(runs, "local-default")
    mirrored = _load(runs, "local-mirrored")
    assert mirrored[0]["replicas"] == 2 and mirrored[0]["strategy"] == "MirroredStrategy"
    _assert_same_run(default, mirrored)


def test_multi_worker_matches_single_process(runs):
    chief, other = _load(runs, "worker0-multi-worker"), _load(runs, "worker1-multi-worker")
    assert chief[0]["replicas"] == 2 and chief[0]["strategy"] == "CollectiveAllReduceStrategy"
    for a, b in zip(chief[1], other[1]):
        np.testing.assert_array_equal(a, b)  # the workers hold identical weights
    _assert_same_run(_load(runs, "local-default"), chief)
    # Only the chief wrote the checkpoints and the pretrained directory.
    assert os.path.isdir(os.path.join(runs, "multi-worker", "pretrained"))
    assert sorted(os.listdir(os.path.join(runs, "multi-worker", "checkpoints"))) == ["ckpt-000000005", "ckpt-000000010"]
