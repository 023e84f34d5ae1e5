"""Every use of a private Keras, keras-hub or TensorFlow attribute, in one place.

albert-keras reaches below the public APIs only here, so a new Keras or keras-hub release breaks
one module, not many (`tests/test_compat.py` fails if another module uses one of these names).
`check_versions()` runs on import and names the package whose installed version is outside the
range these workarounds were tested with (setup.cfg pins the same range).

What is here: `in_multi_worker_mode` / `is_multi_worker` (a strategy's `_in_multi_worker_mode`),
`set_attention_probs_dropout` / `attention_probs_dropout` (keras-hub `TransformerEncoder`'s
`_self_attention_layer._dropout_layer`), `fuse_transformer_block` (its `_feedforward_*_dense`
layers, its attention's `_compute_attention`, its `_*_layer_norm` layers), `fuse_layer_norm` (a LayerNormalization's
`_call_has_context_arg`),
`SummedGradientClippingMixin` (the optimizer hooks `_clip_gradients`,
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

import contextlib
import functools
import importlib.metadata

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


def check_versions(installed=None):
    """Raise `AlbertInputError` naming a package whose version is outside the tested range.

    Args:
        installed: `{package: version string}` to check instead of the installed packages.

    Example:
    ```python
    check_versions({"keras": "3.15.1", "keras-hub": "0.32.0", "tensorflow": "2.21.0"})
    ```
    """
    for package, low, high in TESTED_VERSIONS:
        if installed is not None:
            version = installed.get(package)
        else:
            try:
                version = importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                version = None
        if version is None:
            continue
        if not low <= _version_tuple(version) < high:
            raise AlbertInputError(
                f"{package} {version} is outside the range albert-keras was tested with "
                f"(>={'.'.join(map(str, low))},<{'.'.join(map(str, high))}); install a version in that range "
                f"(pip install \"{package}>={'.'.join(map(str, low))},<{'.'.join(map(str, high))}\")"
            )


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


def accept_string_inputs(layer):
    """Let a Keras layer receive strings (and Python lists of them) in `call` as they are.

    Keras converts positional call arguments to float tensors unless the layer's private
    `_convert_input_args` / `_allow_non_tensor_positional_args` say otherwise; tokenizer and
    preprocessor layers take raw text, so they need both off/on.
    """
    layer._convert_input_args = False
    layer._allow_non_tensor_positional_args = True


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


@functools.cache  # one class, made on first use: this module imports without Keras
def _fused_dense_class():
    import keras

    class FusedBiasDense(keras.layers.Dense):
        """A `keras.layers.Dense` whose TensorFlow graph is a 2-D `MatMul` + `BiasAdd` + activation.

        Keras' `Dense` on a 3-D input reshapes between the matmul and the bias add, a pattern
        TensorFlow's oneDNN remapper does not fuse; flattened to 2-D first, the matmul, bias and
        GELU run as one fused oneDNN matmul (`_MklNativeFusedMatMul` in the profile). Same
        weights, same results (to float rounding); other backends, quantized or LoRA layers and
        layers without a bias keep `Dense.call`.
        """

        def call(self, inputs, training=None):
            if (keras.backend.backend() != "tensorflow" or self.bias is None or self.quantization_mode
                    or self.lora_enabled or len(inputs.shape) < 2):
                return super().call(inputs, training=training)
            import tensorflow as tf

            shape = tf.shape(inputs)
            flat = tf.reshape(inputs, [-1, inputs.shape[-1]])
            outputs = tf.nn.bias_add(tf.matmul(flat, self.kernel), self.bias)
            if self.activation is not None:
                outputs = self.activation(outputs)
            return tf.reshape(outputs, tf.concat([shape[:-1], [self.units]], axis=0))

    return FusedBiasDense


_LAYER_NORM_FUSION = {"enabled": True}


@contextlib.contextmanager
def without_layer_norm_fusion():
    """Trace LayerNorms as Keras does inside this block (for TFLite: its kernels are not oneDNN's).

    The fused form only pays where TensorFlow's oneDNN remapper rewrites it, and for dynamic
    shapes it adds a `tf.cond`, which a TFLite file would carry as an `IF` op.

    Example:
    ```python
    with without_layer_norm_fusion():
        concrete = tf.function(model).get_concrete_function(spec)
    ```
    """
    previous = _LAYER_NORM_FUSION["enabled"]
    _LAYER_NORM_FUSION["enabled"] = False
    try:
        yield
    finally:
        _LAYER_NORM_FUSION["enabled"] = previous


# Below this many rows (tokens in the batch) Keras' LayerNorm is faster: oneDNN's fused LayerNorm
# has a fixed cost per call (about 0.15 ms on a 2-core AVX-512 CPU: 355 vs 478 us at 32 rows,
# 582 vs 526 us at 96 rows, 617 vs 445 us at 128, 7.2 vs 2.3 ms at 4,096, for 768 features).
FUSED_LAYER_NORM_MIN_ROWS = 96


@functools.cache
def _fused_layer_norm_class():
    import keras

    class FusedLayerNormalization(keras.layers.LayerNormalization):
        """A `keras.layers.LayerNormalization` that runs as oneDNN's fused LayerNorm at inference.

        TensorFlow's remapper replaces one graph pattern (Reshape, `FusedBatchNormV3` in training
        mode over per-row statistics, Reshape, Mul by gamma, Add of beta: the form Keras 2's
        LayerNormalization had) with one `_MklLayerNorm`; Keras 3 computes LayerNorm as separate
        mean, variance, rsqrt and casts (about 6 % of ALBERT-base's bfloat16 forward on CPU). The
        graph is ordinary TensorFlow ops, so it runs (unfused) wherever TensorFlow runs. Used when
        not training, for float32 and bfloat16, rank-2/3 inputs normalized over the last axis, with
        at least `FUSED_LAYER_NORM_MIN_ROWS` rows (decided while tracing where the shape is
        static, else by a `tf.cond`): training keeps Keras' code (its gradients of gamma and beta
        accumulate in float32).
        """

        def call(self, inputs, training=None):
            rank = len(inputs.shape)
            fusable = (_LAYER_NORM_FUSION["enabled"] and keras.backend.backend() == "tensorflow"
                       and rank in (2, 3) and inputs.shape[-1] is not None
                       and [axis % rank for axis in self.axis] == [rank - 1] and self.center and self.scale
                       and not self.rms_scaling and self.compute_dtype in ("float32", "bfloat16"))
            if (training is not None and training is not False) or not fusable:
                return super().call(inputs)
            import tensorflow as tf

            inputs = tf.cast(inputs, self.compute_dtype)
            rows = inputs.shape[:-1].num_elements()
            if rows is not None:  # static shape: choose while tracing
                return self._fused(inputs) if rows >= FUSED_LAYER_NORM_MIN_ROWS else super().call(inputs)
            dynamic_rows = tf.reduce_prod(tf.shape(inputs)[:-1])
            return tf.cond(dynamic_rows >= FUSED_LAYER_NORM_MIN_ROWS, lambda: self._fused(inputs),
                           lambda: super(FusedLayerNormalization, self).call(inputs))

        def _fused(self, inputs):
            import tensorflow as tf

            # The shape is taken here, not passed in: inside a tf.cond branch a captured shape
            # is opaque to the remapper, which then cannot tell that the output keeps the input's
            # shape and does not fuse.
            shape = tf.shape(inputs)
            # The remapper needs the unit scale and zero offset as `Fill` ops; with static shapes
            # grappler's constant folding would turn them into constants first, so the row count
            # goes through PlaceholderWithDefault, which constant folding leaves alone.
            rows = tf.raw_ops.PlaceholderWithDefault(input=tf.reduce_prod(shape[:-1]), shape=[])
            rows_vector = tf.reshape(rows, [1])
            normalized, _, _ = tf.compat.v1.nn.fused_batch_norm(
                tf.reshape(inputs, tf.stack([1, rows, inputs.shape[-1], 1])),
                tf.fill(rows_vector, tf.constant(1.0, tf.float32)),
                tf.fill(rows_vector, tf.constant(0.0, tf.float32)),
                epsilon=self.epsilon,
                data_format="NCHW",
            )
            normalized = tf.reshape(normalized, shape)
            return normalized * tf.cast(self.gamma, inputs.dtype) + tf.cast(self.beta, inputs.dtype)

    return FusedLayerNormalization


@functools.cache
def _bfloat16_attention_class():
    import keras

    class BFloat16InferenceAttention(keras.layers.MultiHeadAttention):
        """A `keras.layers.MultiHeadAttention` whose bfloat16 inference keeps the scores in bfloat16.

        Keras' dot-product attention casts bfloat16 scores to float32 for the scaling, the mask
        and the softmax, then casts the probabilities back to bfloat16: two casts and three
        float32 passes over the batch x heads x T x S scores. oneDNN's softmax takes bfloat16 and
        accumulates in float32 itself, so the probabilities are the same bfloat16 values (bit for
        bit when the scale 1/sqrt(head size) is a power of two, as for ALBERT's 64-wide heads;
        it is applied to the query, the smaller tensor). Used at inference with a bfloat16
        compute dtype on TensorFlow; training, float32 and everything else keep Keras' code.
        """

        def _compute_attention(self, query, key, value, attention_mask=None, training=None,
                               return_attention_scores=False, use_causal_mask=False):
            import tensorflow as tf

            if (keras.backend.backend() != "tensorflow" or query.dtype != tf.bfloat16 or len(query.shape) != 4
                    or tuple(self._attention_axes) != (1,) or return_attention_scores or use_causal_mask
                    or self._flash_attention or (training is not None and training is not False)
                    or (attention_mask is not None and len(attention_mask.shape) not in (3, 4))):
                return super()._compute_attention(
                    query, key, value, attention_mask=attention_mask, training=training,
                    return_attention_scores=return_attention_scores, use_causal_mask=use_causal_mask)
            scores = tf.einsum(
                "BTNH,BSNH->BNTS", query * tf.cast(self._inverse_sqrt_key_dim, query.dtype), key)
            if attention_mask is not None:
                mask = tf.cast(attention_mask, tf.bool)
                if len(mask.shape) == 3:  # [batch, T, S] -> one mask for every head
                    mask = tf.expand_dims(mask, 1)
                scores = tf.where(mask, scores, tf.constant(0.7 * tf.bfloat16.min, tf.bfloat16))
            return tf.einsum("BNTS,BSNH->BTNH", tf.nn.softmax(scores, axis=-1), value), None

    return BFloat16InferenceAttention


def fuse_layer_norm(layer):
    """Let oneDNN fuse a built `keras.layers.LayerNormalization` at inference (see `FusedLayerNormalization`).

    The layer keeps its object, name and variables. Keras decides when a layer is made whether
    its `call` takes `training`; the fused `call` does (training keeps Keras' own code), so that
    decision is updated here.

    Example:
    ```python
    layer = keras.layers.LayerNormalization(epsilon=1e-12)
    layer.build((None, 8, 32))
    fuse_layer_norm(layer)
    ```
    """
    import inspect

    import keras

    if type(layer) is not keras.layers.LayerNormalization:
        return
    layer.__class__ = _fused_layer_norm_class()
    layer._call_signature = inspect.signature(layer.call)
    layer.call_signature_parameters = list(layer._call_signature.parameters)
    layer._call_has_training_arg = True
    layer._call_has_context_arg = {**layer._call_has_context_arg, "training": True}


def fuse_transformer_block(block):
    """Let oneDNN fuse a built keras-hub `TransformerEncoder` block's matmuls and LayerNorms.

    The block's feed-forward `Dense` layers (keras-hub's `_feedforward_intermediate_dense` and
    `_feedforward_output_dense`) compute as 2-D MatMul + BiasAdd (+ GELU), which oneDNN fuses
    (the attention's `EinsumDense` projections done the same way measured no faster); its two
    LayerNorms run as oneDNN's fused LayerNorm at inference (`fuse_layer_norm`); its attention
    keeps bfloat16 scores in bfloat16 at inference (`BFloat16InferenceAttention`). Every layer
    keeps its object, name and variables; only how it computes changes, so checkpoints and
    weight files are unchanged. Measured per call at ALBERT-base's shape (batch 32 x 128, 2-core
    AVX-512 CPU): feed-forward 140 -> 108 ms in float32, 87 -> 63 ms in bfloat16; LayerNorm
    6.7 -> 1.3 ms in bfloat16, 8.8 -> 2.6 ms in float32 (docs/export.md has the whole forward).

    Example:
    ```python
    block = keras_hub.layers.TransformerEncoder(64, 2)
    block.build((None, 8, 32))
    fuse_transformer_block(block)
    ```
    """
    import keras

    for dense in (block._feedforward_intermediate_dense, block._feedforward_output_dense):
        if type(dense) is keras.layers.Dense:
            dense.__class__ = _fused_dense_class()
    attention = block._self_attention_layer
    if type(attention) is keras.layers.MultiHeadAttention:
        attention.__class__ = _bfloat16_attention_class()
    fuse_layer_norm(block._self_attention_layer_norm)
    fuse_layer_norm(block._feedforward_layer_norm)


def attention_probs_dropout(block):
    """The attention-probability dropout rate of a keras-hub `TransformerEncoder` block."""
    return block._self_attention_layer._dropout_layer.rate


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
