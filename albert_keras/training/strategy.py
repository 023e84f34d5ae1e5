"""Choosing a `tf.distribute` strategy from a `--strategy` name.

`auto` follows the hardware: a TPU when an address is given, MultiWorkerMirrored when `TF_CONFIG`
lists several workers, Mirrored with more than one GPU, else the default (one device) strategy.
"""

import json
import os

from albert_keras.errors import AlbertInputError

STRATEGIES = ("auto", "default", "one-device", "mirrored", "multi-worker", "tpu")


def tf_config_workers(environ=None):
    """Number of workers (chief included) that `TF_CONFIG` lists; 0 when unset.

    Example:
    ```python
    tf_config_workers({"TF_CONFIG": '{"cluster": {"worker": ["a:1", "b:2"]}}'})  # 2
    ```
    """
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (ValueError, AttributeError) as error:
        raise AlbertInputError(f"TF_CONFIG: not a JSON object ({error})") from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def resolve_strategy(name="auto", tpu=None):
    """Create the `tf.distribute.Strategy` named by `name`.

    Args:
        name: one of `auto`, `default`, `one-device`, `mirrored`, `multi-worker`, `tpu`.
            `mirrored` uses every GPU, or every logical CPU device when there are no GPUs and the
            CPU was split into several logical devices (useful for tests).
        tpu: TPU name or `grpc://` address for `tpu` (and for `auto`, which then picks `tpu`);
            `"local"` for a TPU VM.

    Returns:
        A strategy; create the model and optimizer under `strategy.scope()`.

    Example:
    ```python
    strategy = resolve_strategy("auto")
    with strategy.scope():
        model = ...
    ```
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise AlbertInputError(f"--strategy: unknown {name!r}; choose one of {', '.join(STRATEGIES)}")
    # Physical devices only: listing logical devices initializes the runtime, after which a
    # MultiWorkerMirroredStrategy can no longer be created.
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        if tpu:
            name = "tpu"
        elif tf_config_workers() > 1:
            name = "multi-worker"
        elif len(gpus) > 1:
            name = "mirrored"
        elif gpus:
            # One GPU: a one-device strategy, whose distributed input is prefetched onto the GPU
            # (the default strategy would copy each batch in the step).
            name = "one-device"
        else:
            name = "default"

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one-device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("GPU")])
        # With no GPU, MirroredStrategy would pick only CPU:0; list the logical CPUs explicitly.
        return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    if name == "multi-worker":
        if tf_config_workers() < 1:
            raise AlbertInputError("--strategy multi-worker: TF_CONFIG is not set (it must list the cluster's workers)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    # name == "tpu"
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy):
    """Whether this process writes outputs: always true except on non-chief multi-worker tasks."""
    from albert_keras.compat import in_multi_worker_mode

    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not in_multi_worker_mode(strategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def worker_index(strategy):
    """This process's task index under multi-worker (0 otherwise)."""
    from albert_keras.compat import in_multi_worker_mode

    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not in_multi_worker_mode(strategy):
        return 0
    return int(resolver.task_id or 0)
