"""Every use of a private Keras, keras-hub or TensorFlow attribute, in one place.

albert-keras reaches below the public APIs only here, so a new Keras or keras-hub release breaks
one module, not many (`tests/test_compat.py` fails if another module reads, sets or overrides a
private library name). This module holds only that access and the version check: what albert-keras
builds with it (the CPU fusions of `modeling/fusion.py`, the optimizers, the training loop) lives
with the code that uses it. `check_versions()` runs on import and refuses a package whose installed
version is outside the range these accesses were tested with (setup.cfg pins the same range);
`ALBERT_KERAS_ALLOW_UNTESTED_VERSIONS=1` turns that into a warning, to try a newer release.

What is here: `in_multi_worker_mode` / `is_multi_worker` (a strategy's `_in_multi_worker_mode`),
`set_attention_probs_dropout` / `attention_probs_dropout` and `transformer_block_layers` (keras-hub
`TransformerEncoder`'s sub-layers), `replace_layer_class` (a layer's recorded call signature),
`attention_class_with` (`MultiHeadAttention._compute_attention`), `accept_any_call_arguments` (a
layer's input conversion), `optimizer_variable_index` (`Optimizer._get_variable_index`),
`learning_rate_schedule` (`Optimizer._learning_rate`),
`device_scope_type` and `in_xla_compilation` (TensorFlow's eager context and XLA control-flow
context), `BatchLogsCallbackList` (how Keras' `CallbackList` converts and dispatches batch logs), `SummedGradientClippingMixin` (the optimizer hooks `_clip_gradients`,
`_backend_update_step`, `_get_current_learning_rate`) and `MultiWorkerTrainerMixin` (the trainer's
`_maybe_symbolic_build`).

`MultiWorkerTrainerMixin`: Keras 3.15's TensorFlow trainer fails under
MultiWorkerMirroredStrategy in two places (keras-team/keras#20585, #20329): `_maybe_symbolic_build`
calls `strategy.reduce("MEAN", batch)` on a per-replica batch, which the collective strategy cannot
convert to a tensor, and `reduce_per_replica` reduces scalar logs with
`strategy.reduce("MEAN", v, axis=0)`, which fails on rank-0 values. The mixin replaces exactly those
two steps *for multi-worker runs only* in the model classes that inherit it; every other strategy
keeps Keras' own code path. No Keras function is patched. It lives here, below `modeling` and
`training`, because models inherit it and training relies on it.
"""

import functools
import importlib.metadata
import os
import warnings

from albert_keras.errors import AlbertInputError

# Tested ranges: (package, lowest tested, first untested). Keep setup.cfg's pins the same.
TESTED_VERSIONS = (
    ("keras", (3, 15), (3, 16)),
    ("keras-hub", (0, 32), (0, 33)),
    ("tensorflow", (2, 20), (2, 22)),
)


def _version_tuple(text):
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


# Set to 1 to run with a Keras / keras-hub / TensorFlow version outside the tested ranges (a warning
# instead of an error): the private APIs below may have changed there.
ALLOW_UNTESTED_ENV = "ALBERT_KERAS_ALLOW_UNTESTED_VERSIONS"


def check_versions(installed=None, allow_untested=None):
    """Refuse (or warn about) a package whose version is outside the tested range.

    Args:
        installed: `{package: version string}` to check instead of the installed packages.
        allow_untested: warn instead of raising `AlbertInputError`; None reads the environment
            variable `ALBERT_KERAS_ALLOW_UNTESTED_VERSIONS` (`1`, `true` or `yes` allow).

    Returns:
        The messages for the untested versions found (empty when every version is tested).

    Example:
    ```python
    check_versions({"keras": "3.15.1", "keras-hub": "0.32.0", "tensorflow": "2.21.0"})
    ```
    """
    if allow_untested is None:
        allow_untested = os.environ.get(ALLOW_UNTESTED_ENV, "").strip().lower() in ("1", "true", "yes")
    messages = []
    for package, low, high in TESTED_VERSIONS:
        if installed is not None:
            version = installed.get(package)
        else:
            try:
                version = importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                version = None
        if version is None or low <= _version_tuple(version) < high:
            continue
        tested = f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"
        if not allow_untested:
            raise AlbertInputError(
                f"{package} {version} is outside the range albert-keras was tested with ({tested}); install a "
                f"version in that range (pip install \"{package}{tested}\") or set {ALLOW_UNTESTED_ENV}=1 to try it"
            )
        messages.append(f"{package} {version} is outside the range albert-keras was tested with ({tested}); "
                        f"running anyway because {ALLOW_UNTESTED_ENV} is set")
        warnings.warn(messages[-1], RuntimeWarning, stacklevel=2)
    return messages


check_versions()

import tensorflow as tf
from keras import tree


def in_multi_worker_mode(strategy):
    """Whether any `tf.distribute` strategy spans several worker processes (False for others).

    Example:
    ```python
    in_multi_worker_mode(tf.distribute.get_strategy())  # False
    ```
    """
    extended = getattr(strategy, "extended", None)
    check = getattr(extended, "_in_multi_worker_mode", None)
    return bool(check()) if check is not None else False


def is_multi_worker(strategy):
    """Whether `strategy` is a MultiWorkerMirroredStrategy spanning several workers."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and in_multi_worker_mode(strategy)


def set_attention_probs_dropout(block, rate):
    """Set the attention-probability dropout of a keras-hub `TransformerEncoder` block.

    keras-hub has one dropout rate for attention probabilities and residual branches; ALBERT
    configs may set them apart. The dropout layer is weightless, so changing its rate after the
    block is built changes nothing else.

    Example:
    ```python
    block = keras_hub.layers.TransformerEncoder(64, 2, dropout=0.1)
    block.build((None, 8, 32))
    set_attention_probs_dropout(block, 0.0)
    ```
    """
    attention = block._self_attention_layer
    attention._dropout = rate
    attention._dropout_layer.rate = rate


def attention_probs_dropout(block):
    """The attention-probability dropout rate of a keras-hub `TransformerEncoder` block."""
    return block._self_attention_layer._dropout_layer.rate


def transformer_block_layers(block):
    """The sub-layers of a built keras-hub `TransformerEncoder` block that albert-keras computes differently.

    Returns:
        A dict: `feedforward_dense` (the intermediate and output `Dense` layers), `attention` (the
        `MultiHeadAttention`) and `layer_norms` (after attention, after the feed-forward).

    Example:
    ```python
    block = keras_hub.layers.TransformerEncoder(64, 2)
    block.build((None, 8, 32))
    transformer_block_layers(block)["attention"]  # a keras.layers.MultiHeadAttention
    ```
    """
    return {
        "feedforward_dense": (block._feedforward_intermediate_dense, block._feedforward_output_dense),
        "attention": block._self_attention_layer,
        "layer_norms": (block._self_attention_layer_norm, block._feedforward_layer_norm),
    }


def replace_layer_class(layer, cls):
    """Make a built Keras layer an instance of `cls` (a subclass of its class), keeping its variables.

    The layer keeps its object, name and variables (checkpoints are unchanged). Keras records
    when a layer is made whether its `call` takes `training`; that record is updated for `cls.call`,
    so Keras passes the outer call's `training` down to it.

    Args:
        layer: a Keras layer.
        cls: a subclass of `type(layer)` that adds no state, or a class the layer had before
            (to undo an earlier replacement).

    Example:
    ```python
    class Doubled(keras.layers.Dense):
        def call(self, inputs, training=None):
            return 2 * super().call(inputs)

    layer = keras.layers.Dense(4)
    layer.build((None, 3))
    replace_layer_class(layer, Doubled)
    ```
    """
    import inspect

    if not (issubclass(cls, type(layer)) or issubclass(type(layer), cls)):
        raise TypeError(f"{cls.__name__} is not a subclass of {type(layer).__name__}")
    layer.__class__ = cls
    layer._call_signature = inspect.signature(layer.call)
    layer.call_signature_parameters = list(layer._call_signature.parameters)
    layer._call_has_training_arg = "training" in layer.call_signature_parameters
    layer._call_has_context_arg = {**layer._call_has_context_arg, "training": layer._call_has_training_arg}


@functools.cache  # one class per (compute, name): isinstance checks and tf.function caches stay stable
def attention_class_with(compute, name):
    """A `keras.layers.MultiHeadAttention` subclass whose dot-product step `compute` may replace.

    Keras computes scores, mask, softmax, dropout and the weighted sum of the values in
    `MultiHeadAttention`'s private `_compute_attention`. In the common case (attention over the
    sequence axis, no scores returned, no causal mask, no flash attention) the subclass calls
    `compute(layer, query, key, value, attention_mask, training, scale)` with the projected
    `[batch, length, heads, head size]` tensors and Keras' `1 / sqrt(head size)`; it returns the
    `[batch, T, heads, head size]` result, or None for Keras' own code.

    Args:
        compute: a function as above (a module-level function: the class is cached per function).
        name: the subclass' name.

    Example:
    ```python
    def keras_code(layer, query, key, value, mask, training, scale):
        return None

    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)
    layer(np.zeros((1, 3, 16)), np.zeros((1, 3, 16)))
    replace_layer_class(layer, attention_class_with(keras_code, "SameAttention"))
    ```
    """
    import keras

    def _compute_attention(self, query, key, value, attention_mask=None, training=None,
                           return_attention_scores=False, use_causal_mask=False):
        if not (return_attention_scores or use_causal_mask or self._flash_attention
                or tuple(self._attention_axes) != (1,)):
            outputs = compute(self, query, key, value, attention_mask, training, self._inverse_sqrt_key_dim)
            if outputs is not None:
                return outputs, None
        return keras.layers.MultiHeadAttention._compute_attention(
            self, query, key, value, attention_mask=attention_mask, training=training,
            return_attention_scores=return_attention_scores, use_causal_mask=use_causal_mask)

    return type(name, (keras.layers.MultiHeadAttention,), {"_compute_attention": _compute_attention,
                                                           "__module__": getattr(compute, "__module__", __name__)})


def accept_any_call_arguments(layer):
    """Let a Keras layer take non-tensor (e.g. string list) positional inputs, passed to `call` as given.

    Keras converts a layer's positional inputs to tensors and refuses non-tensor ones; text layers
    take Python strings and lists and convert them themselves. Call it in the layer's `__init__`
    after `super().__init__`.

    Example:
    ```python
    class Echo(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            accept_any_call_arguments(self)
    ```
    """
    layer._convert_input_args = False
    layer._allow_non_tensor_positional_args = True


def optimizer_variable_index(optimizer, variable):
    """The index of `variable` in a built `keras.optimizers.Optimizer`'s variable list.

    It is the index of the variable's slots in lists made by `add_optimizer_variables`; inside a
    distributed update Keras hands `update_step` the per-device variable, which this maps too.

    Example:
    ```python
    optimizer.build(model.trainable_variables)
    optimizer_variable_index(optimizer, model.trainable_variables[3])  # 3
    ```
    """
    return optimizer._get_variable_index(variable)


def learning_rate_schedule(optimizer):
    """The `LearningRateSchedule` a Keras optimizer was given, or None for a constant rate.

    Keras keeps it in a private attribute and its public `learning_rate` returns the current rate
    instead; a `LossScaleOptimizer` is looked through (`inner_optimizer`).

    Example:
    ```python
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(1e-3, 100, 0.9))
    learning_rate_schedule(optimizer)  # the ExponentialDecay
    ```
    """
    import keras

    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    schedule = optimizer._learning_rate
    return schedule if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule) else None


def device_scope_type():
    """The device type (`"CPU"`, `"GPU"`, `"TPU"`) of the innermost `tf.device` scope, or None.

    Works eagerly and while a `tf.function` is traced (the scope around the call or inside it).

    Example:
    ```python
    with tf.device("/CPU:0"):
        device_scope_type()  # "CPU"
    ```
    """
    from tensorflow.python.eager import context

    name = context.context().device_name
    return tf.DeviceSpec.from_string(name).device_type if name else None


def in_xla_compilation():
    """Whether the code calling it is being traced for XLA (`tf.function(jit_compile=True)`).

    TensorFlow marks the graph of a `jit_compile=True` function (and of functions it calls) with
    an XLA control-flow context; Keras' `compile(jit_compile=True)` traces its steps that way.
    Global auto-clustering (`tf.config.optimizer.set_jit`) counts as XLA too.

    Example:
    ```python
    tf.function(lambda: in_xla_compilation(), jit_compile=True)()  # True (as a tensor)
    ```
    """
    from tensorflow.python.ops import control_flow_util

    if tf.executing_eagerly():  # XLA compiles traced functions only (and this is called per layer call)
        return False
    if tf.config.optimizer.get_jit():
        return True
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))

def _has_batch_hook(callback):
    # Callbacks that keep the base class' (empty) batch hooks, like `History`, read no logs: the
    # test Keras' CallbackList makes (`utils.is_default`) before it dispatches batches.
    import keras

    base = keras.callbacks.Callback
    kind = type(callback)
    return kind.on_train_batch_end is not base.on_train_batch_end or kind.on_batch_end is not base.on_batch_end


def _callback_list_class():
    import keras

    class BatchLogsCallbackList(keras.callbacks.CallbackList):
        """A `CallbackList` that hands training-batch logs unconverted to the callbacks that ask.

        It relies on three behaviours of Keras 3.15 that its documentation does not promise, so it
        lives here, version-checked: `fit(callbacks=...)` uses a `CallbackList` it is given as it is;
        `CallbackList.on_train_batch_end` converts the logs to Python floats (a device-to-host copy
        per batch) before any callback sees them, and may run the callbacks on a thread pool; the
        `ProgbarLogger` accepts tensors (it averages them and converts only what it prints).

        Callbacks with `defers_logs = True`, the progress bar and callbacks without batch hooks get
        the logs as they come; the others get `convert_batch_logs(logs)`, at most once per batch.
        Batch callbacks run synchronously (a checkpoint must not be written while the next step
        updates the variables).
        """

        def convert_batch_logs(self, logs):
            """The logs as Python floats for callbacks that do not defer (a subclass may count reads)."""
            converted = {}
            for name, value in logs.items():
                try:
                    converted[name] = float(keras.ops.convert_to_numpy(value)) if keras.ops.is_tensor(value) else value
                except (TypeError, ValueError):  # not a scalar: as Keras passes it
                    converted[name] = value
            return converted

        def on_train_batch_end(self, batch, logs=None):
            converted = None
            for callback in self.callbacks:
                if (getattr(callback, "defers_logs", False) or isinstance(callback, keras.callbacks.ProgbarLogger)
                        or not _has_batch_hook(callback)):
                    callback.on_train_batch_end(batch, logs=logs)
                    continue
                if converted is None:
                    converted = self.convert_batch_logs(dict(logs or {}))
                callback.on_train_batch_end(batch, logs=converted)

    return BatchLogsCallbackList


BatchLogsCallbackList = _callback_list_class()


class SummedGradientClippingMixin:
    """Mix into a `keras.optimizers.Optimizer` (before it in the bases) for two official behaviours.

    1. Global-norm clipping (`global_clipnorm`) of the *all-replica summed* gradient, as
       `tf.clip_by_global_norm` in the official `optimization.py`: Keras clips each replica's
       partial gradient before the all-reduce, which under a strategy is not what one device does.
    2. A learning-rate schedule evaluated at the optimizer-update count: Keras feeds it the
       micro-batch counter, but with gradient accumulation the official schedule counts updates.

    Example:
    ```python
    class MyOptimizer(SummedGradientClippingMixin, keras.optimizers.SGD):
        pass

    optimizer = MyOptimizer(learning_rate=0.1, global_clipnorm=1.0)
    ```
    """

    def _clip_gradients(self, grads):
        if self.global_clipnorm and self.global_clipnorm > 0:
            return grads  # Done on the summed gradient in `_backend_update_step`.
        return super()._clip_gradients(grads)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        import keras

        tf_variables = [v.value if isinstance(v, keras.Variable) else v for v in trainable_variables]
        grads_and_vars = self._all_reduce_sum_gradients(list(zip(grads, tf_variables)))
        grads = [g for g, _ in grads_and_vars]
        if self.global_clipnorm and self.global_clipnorm > 0:
            grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
            grads, _ = tf.clip_by_global_norm(grads, self.global_clipnorm)
        tf.__internal__.distribute.interim.maybe_merge_call(
            self._distributed_tf_update_step,
            self._distribution_strategy,
            list(zip(grads, tf_variables)),
            learning_rate,
        )

    def _get_current_learning_rate(self):
        import keras

        if isinstance(self._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            return self._learning_rate(self.iterations)
        return super()._get_current_learning_rate()


class MultiWorkerTrainerMixin:
    """Mix into a `keras.Model` (before `keras.Model` in the bases) to train it under MWMS.

    Under a multi-worker strategy, `fit` and `evaluate` run one `strategy.run(train_step)` per
    batch inside a `tf.function` and average the logs across all replicas with
    `strategy.reduce("MEAN", value, axis=None)`; the model is built symbolically from the first
    replica's share of the first batch. Gradients are still all-reduced by the optimizer, so
    training is unchanged.

    Example:
    ```python
    class MyModel(MultiWorkerTrainerMixin, keras.Model):
        ...

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = MyModel(...)
        model.compile(optimizer="adam", loss="mse")
    model.fit(dataset, epochs=2)
    ```
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = getattr(self, "_distribute_strategy", None)
        if strategy is None or not is_multi_worker(strategy) or iterator is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        for _, _, distributed_iterator in iterator:
            batch = next(distributed_iterator)
            # Any replica's share has the right structure and dtypes for a symbolic build.
            data_batch = tree.map_structure(
                lambda value: strategy.experimental_local_results(value)[0]
                if isinstance(value, tf.distribute.DistributedValues)
                else value,
                batch,
            )
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def make_train_function(self, force=False):
        if not is_multi_worker(self.distribute_strategy):
            return super().make_train_function(force=force)
        if self.train_function is not None and not force:
            return self.train_function
        self.train_function = self._multi_worker_function(self.train_step)
        return self.train_function

    def make_test_function(self, force=False):
        if not is_multi_worker(self.distribute_strategy):
            return super().make_test_function(force=force)
        if self.test_function is not None and not force:
            return self.test_function
        self.test_function = self._multi_worker_function(self.test_step)
        return self.test_function

    def _multi_worker_function(self, step_function):
        strategy = self.distribute_strategy

        def reduce(value):
            if isinstance(value, tf.distribute.DistributedValues):
                return strategy.reduce("MEAN", value, axis=None)
            return value

        def one_step_on_data(data):
            outputs = strategy.run(step_function, args=(data,))
            return tree.map_structure(reduce, outputs)

        if not self.run_eagerly:
            one_step_on_data = tf.function(one_step_on_data, reduce_retracing=True, jit_compile=self.jit_compile)

        def function(iterator):
            outputs = None
            for _ in range(self.steps_per_execution):
                try:
                    data = next(iterator)
                except (StopIteration, tf.errors.OutOfRangeError):
                    break
                outputs = one_step_on_data(data)
            if outputs is None:
                raise StopIteration
            return outputs

        return function


def transformer_decoder_layers(block):
    """The sub-layers of a built keras-hub `TransformerDecoder` block, by role.

    Returns:
        A dict: `self_attention` and `cross_attention` (`CachedMultiHeadAttention`, the latter None
        without cross-attention), their LayerNorms `self_attention_layer_norm` and
        `cross_attention_layer_norm`, `feedforward_dense` (intermediate, output) and
        `feedforward_layer_norm`.

    Example:
    ```python
    block = keras_hub.layers.TransformerDecoder(64, 2)
    block.build((None, 8, 32), (None, 9, 32))
    transformer_decoder_layers(block)["cross_attention"]
    ```
    """
    return {
        "self_attention": block._self_attention_layer,
        "self_attention_layer_norm": block._self_attention_layer_norm,
        "cross_attention": block._cross_attention_layer,
        "cross_attention_layer_norm": getattr(block, "_cross_attention_layer_norm", None),
        "feedforward_dense": (block._feedforward_intermediate_dense, block._feedforward_output_dense),
        "feedforward_layer_norm": block._feedforward_layer_norm,
    }


def attention_projections(attention):
    """The query, key, value and output `EinsumDense` layers of a built `MultiHeadAttention`."""
    return (attention._query_dense, attention._key_dense, attention._value_dense, attention._output_dense)


def share_decoder_with_encoder(decoder_block, encoder_block):
    """Make a built `TransformerDecoder`'s self-attention and feed-forward the encoder block's own layers.

    The decoder block then computes its self-attention projections, its two LayerNorms after
    self-attention and feed-forward, and its feed-forward with the very layer objects (and
    variables) of a built keras-hub `TransformerEncoder` of the same width; only its
    cross-attention keeps layers of its own. Keras locks a layer's tracked sub-layers once it is
    built, so the swap replaces the tracked entries in place (Keras' own
    `Tracker.replace_tracked_value`): weights lists and weight files then hold each variable once.

    Example:
    ```python
    encoder_block = keras_hub.layers.TransformerEncoder(64, 2)
    encoder_block.build((None, 8, 32))
    decoder_block = keras_hub.layers.TransformerDecoder(64, 2)
    decoder_block.build((None, 8, 32), (None, 9, 32))
    share_decoder_with_encoder(decoder_block, encoder_block)
    ```
    """

    def swap(owner, attribute, layer):
        old = getattr(owner, attribute)
        if old is layer:
            return
        owner._tracker.replace_tracked_value("layers", old, layer)
        # `replace_tracked_value` already swapped the layer in Keras' bookkeeping; the attribute is
        # set directly so that bookkeeping is not run a second time by Keras' __setattr__.
        object.__setattr__(owner, attribute, layer)

    attention = decoder_block._self_attention_layer
    for attribute, layer in zip(("_query_dense", "_key_dense", "_value_dense", "_output_dense"),
                                attention_projections(encoder_block._self_attention_layer)):
        swap(attention, attribute, layer)
    for attribute in ("_self_attention_layer_norm", "_feedforward_intermediate_dense", "_feedforward_output_dense",
                      "_feedforward_layer_norm"):
        swap(decoder_block, attribute, getattr(encoder_block, attribute))
