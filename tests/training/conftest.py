"""Fixtures for the training tests: real pretraining TFRecords from the embedded corpus and a tiny
config. Subprocess helpers share one environment that keeps TensorFlow quiet and single-threaded."""

import json
import os
import subprocess
import sys

import pytest

TINY_CONFIG = {
    "vocab_size": 1000,
    "embedding_size": 16,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_hidden_groups": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "inner_group_num": 1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "max_position_embeddings": 64,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def tiny_config_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "albert_config.json"
    path.write_text(json.dumps(TINY_CONFIG))
    return str(path)


@pytest.fixture(scope="session")
def pretraining_records(embedded_corpus_path, spm_model_path, tmp_path_factory):
    """`create-data` output (seq 32, 5 predictions, 2 shards) from the embedded corpus."""
    from albert_keras.data.create import create_pretraining_data

    directory = tmp_path_factory.mktemp("records") / "embedded"
    create_pretraining_data(
        [str(embedded_corpus_path)], str(spm_model_path), str(directory), max_seq_length=32,
        max_predictions_per_seq=5, num_shards=2,
    )
    return str(directory)


@pytest.fixture(scope="session")
def small_records(pretraining_records, tmp_path_factory):
    """The first 64 records in one file: small enough for a tiny model to fit in a few hundred steps."""
    import tensorflow as tf

    path = tmp_path_factory.mktemp("small") / "small.tfrecord"
    source = sorted(tf.io.gfile.glob(os.path.join(pretraining_records, "*.tfrecord")))[0]
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in tf.data.TFRecordDataset(source).take(64):
            writer.write(record.numpy())
    return str(path)


def subprocess_env(**extra):
    env = dict(os.environ)
    env.update(
        PYTHONPATH=REPO + os.pathsep + env.get("PYTHONPATH", ""),
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="",
        TF_NUM_INTEROP_THREADS="1",
    )
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def run_python(args, timeout=240, **env):
    """Run `python args...` with the repo on the path; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=subprocess_env(**env), cwd=REPO
    )


def _free_ports(count):
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def worker_tf_configs(count):
    """TF_CONFIG values for `count` MultiWorkerMirroredStrategy workers on free 127.0.0.1 ports."""
    workers = [f"127.0.0.1:{port}" for port in _free_ports(count)]
    return [json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
            for index in range(count)]


def run_python_together(commands, timeout):
    """Start `python args...` for every `(args, env)` at once (workers must meet; separate ones
    share the TensorFlow start-up time), wait for all, and assert each exited 0.

    Returns their `(stdout, stderr)` pairs, in order.
    """
    processes = [
        subprocess.Popen([sys.executable, *args], env=subprocess_env(**env), cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for args, env in commands
    ]
    try:
        outputs = [process.communicate(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    return outputs
