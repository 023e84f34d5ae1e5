"""`--strategy` resolution (no TensorFlow runtime state is touched except for `default`)."""

import json

import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.training.strategy import is_chief
from albert_keras.training.strategy import resolve_strategy
from albert_keras.training.strategy import tf_config_workers


def test_tf_config_workers():
    assert tf_config_workers({}) == 0
    cluster = {"cluster": {"chief": ["a:1"], "worker": ["b:2", "c:3"]}, "task": {"type": "chief", "index": 0}}
    assert tf_config_workers({"TF_CONFIG": json.dumps(cluster)}) == 3
    with pytest.raises(AlbertInputError, match="TF_CONFIG: not a JSON object"):
        tf_config_workers({"TF_CONFIG": "{oops"})


def test_auto_without_devices_or_cluster_is_the_default_strategy(monkeypatch):
    import tensorflow as tf

    monkeypatch.delenv("TF_CONFIG", raising=False)
    strategy = resolve_strategy("auto")
    assert strategy is tf.distribute.get_strategy() and is_chief(strategy)


def test_unknown_names_and_missing_cluster(monkeypatch):
    with pytest.raises(AlbertInputError, match="--strategy: unknown 'horovod'"):
        resolve_strategy("horovod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(AlbertInputError, match="TF_CONFIG is not set"):
        resolve_strategy("multi-worker")
