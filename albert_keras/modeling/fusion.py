"""CPU fusions for the encoder's blocks: the same weights, computed in forms oneDNN fuses.

TensorFlow's oneDNN graph rewrites ("remapper") fuse a few op patterns into one CPU kernel. Keras 3
writes three of ALBERT's hot spots in other forms, so on CPU they run unfused:

- the feed-forward `Dense` layers on 3-D inputs reshape between the matmul and the bias add, so
  MatMul + BiasAdd + GELU never meet (`FusedBiasDense` computes in 2-D: one `_MklNativeFusedMatMul`);
- LayerNorm is separate mean, variance, rsqrt and casts (`FusedLayerNormalization` writes the one
  pattern the remapper turns into `_MklLayerNorm`);
- bfloat16 attention casts its scores to float32 for the mask and softmax and back
  (`bfloat16_inference_attention` keeps them in bfloat16; oneDNN's softmax accumulates in float32).

Measured per call at ALBERT-base's shape (batch 32 x 128, 2-core AVX-512 CPU): feed-forward 140 ->
108 ms in float32, 87 -> 63 ms in bfloat16; LayerNorm 6.7 -> 1.3 ms in bfloat16, 8.8 -> 2.6 ms in
float32 (docs/export.md has the whole forward). None of them pays under XLA (XLA-CPU compiles its
own kernels and bypasses oneDNN) or on GPU/TPU, where they were never measured, and in training the
feed-forward form measured no faster (docs/finetune.md: 11.74 s/step before it, 12.96 after).

`AlbertEncoder(fuse=...)` chooses: `False` leaves every Keras / keras-hub layer as it is; `"auto"`
(the default) and `True` give the layers listed above these classes (same objects, names and
variables: checkpoints and weight files are unchanged either way), and each such layer decides on
every call (see `fusion_applies`).
"""

import contextlib
import functools

import keras
import tensorflow as tf

from albert_keras import compat
from albert_keras.errors import AlbertInputError

FUSE_CHOICES = ("auto", True, False)

# Below this many rows (tokens in the batch) Keras' LayerNorm is faster: oneDNN's fused LayerNorm
# has a fixed cost per call (about 0.15 ms on a 2-core AVX-512 CPU: 355 vs 478 us at 32 rows,
# 582 vs 526 us at 96 rows, 617 vs 445 us at 128, 7.2 vs 2.3 ms at 4,096, for 768 features).
FUSED_LAYER_NORM_MIN_ROWS = 96

_LAYER_NORM_FUSION = {"enabled": True}


def check_fuse(fuse):
    """Return `fuse` if it is `"auto"`, True or False, else raise `AlbertInputError`.

    Example:
    ```python
    check_fuse("auto")  # "auto"
    ```
    """
    if not any(fuse is choice or (isinstance(choice, str) and fuse == choice) for choice in FUSE_CHOICES):
        raise AlbertInputError(f'fuse must be "auto", True or False, got {fuse!r}')
    return fuse


def _is_training(training):
    return training is not None and training is not False


@functools.cache  # the visible devices are fixed once TensorFlow's runtime has started
def _accelerator_visible():
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def runs_on_cpu():
    """Whether ops made here run on the CPU: from an enclosing `tf.device` scope, else the machine.

    Without a scope TensorFlow places ops on a GPU or TPU when it sees one, and under a
    `TPUStrategy` on the TPU.

    Example:
    ```python
    with tf.device("/GPU:0"):
        runs_on_cpu()  # False, on any machine
    ```
    """
    scope = compat.device_scope_type()
    if scope:
        return scope == "CPU"
    if isinstance(tf.distribute.get_strategy(), tf.distribute.TPUStrategy):
        return False
    return not _accelerator_visible()


def fusion_applies(fuse, training, inference_only=False):
    """Whether a fused layer computes its fused form in this call.

    `"auto"` decides on every call (eagerly, or once per trace inside a `tf.function`): fused only
    when not training, not traced for XLA (`jit_compile=True`: XLA-CPU does not run oneDNN's
    fused kernels) and placed on the CPU (`runs_on_cpu`), which is where the forms were measured.
    `True` fuses wherever the layer runs, training included; the LayerNorm and attention forms
    (`inference_only`) still run Keras' code in training, where Keras keeps float32 statistics
    and gradients. `False` never fuses.

    Args:
        fuse: `"auto"`, True or False.
        training: the `training` argument of the layer's call.
        inference_only: the fused form is for inference only.

    Example:
    ```python
    fusion_applies("auto", training=True)  # False
    ```
    """
    if fuse is False or (inference_only and _is_training(training)):
        return False
    if fuse is True:
        return True
    return not _is_training(training) and not compat.in_xla_compilation() and runs_on_cpu()


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


# Registered so that a model holding one (a block fused by `fuse_transformer_block` outside an
# `AlbertEncoder`, whose own config rebuilds its layers) reloads from a `.keras` file.
@keras.saving.register_keras_serializable(package="albert_keras")
class FusedBiasDense(keras.layers.Dense):
    """A `keras.layers.Dense` whose TensorFlow graph is a 2-D `MatMul` + `BiasAdd` + activation.

    Keras' `Dense` on a 3-D input reshapes between the matmul and the bias add, a pattern
    TensorFlow's oneDNN remapper does not fuse; flattened to 2-D first, the matmul, bias and GELU
    run as one fused oneDNN matmul (`_MklNativeFusedMatMul` in the profile). Same weights, same
    results (to float rounding). Made by `fuse_transformer_block`, not directly; where
    `fusion_applies` says no, and for other backends, quantized or LoRA layers and layers without
    a bias, it is Keras' `Dense`.
    """

    def call(self, inputs, training=None):
        if (not fusion_applies(getattr(self, "fuse_mode", "auto"), training)
                or keras.backend.backend() != "tensorflow" or self.bias is None or self.quantization_mode
                or self.lora_enabled or len(inputs.shape) < 2):
            return super().call(inputs)
        shape = tf.shape(inputs)
        flat = tf.reshape(inputs, [-1, inputs.shape[-1]])
        outputs = tf.nn.bias_add(tf.matmul(flat, self.kernel), self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return tf.reshape(outputs, tf.concat([shape[:-1], [self.units]], axis=0))


@keras.saving.register_keras_serializable(package="albert_keras")
class FusedLayerNormalization(keras.layers.LayerNormalization):
    """A `keras.layers.LayerNormalization` that runs as oneDNN's fused LayerNorm at inference.

    TensorFlow's remapper replaces one graph pattern (Reshape, `FusedBatchNormV3` in training
    mode over per-row statistics, Reshape, Mul by gamma, Add of beta: the form Keras 2's
    LayerNormalization had) with one `_MklLayerNorm`; Keras 3 computes LayerNorm as separate
    mean, variance, rsqrt and casts (about 6 % of ALBERT-base's bfloat16 forward on CPU). The
    graph is ordinary TensorFlow ops, so it runs (unfused) wherever TensorFlow runs. Used where
    `fusion_applies` (never in training), for float32 and bfloat16, rank-2/3 inputs normalized
    over the last axis, with at least `FUSED_LAYER_NORM_MIN_ROWS` rows (decided while tracing
    where the shape is static, else by a `tf.cond`). Made by `fuse_layer_norm`, not directly.
    """

    def call(self, inputs, training=None):
        rank = len(inputs.shape)
        fusable = (_LAYER_NORM_FUSION["enabled"] and keras.backend.backend() == "tensorflow"
                   and rank in (2, 3) and inputs.shape[-1] is not None
                   and [axis % rank for axis in self.axis] == [rank - 1] and self.center and self.scale
                   and not self.rms_scaling and self.compute_dtype in ("float32", "bfloat16"))
        if not fusable or not fusion_applies(getattr(self, "fuse_mode", "auto"), training, inference_only=True):
            return super().call(inputs)
        inputs = tf.cast(inputs, self.compute_dtype)
        rows = inputs.shape[:-1].num_elements()
        if rows is not None:  # static shape: choose while tracing
            return self._fused(inputs) if rows >= FUSED_LAYER_NORM_MIN_ROWS else super().call(inputs)
        dynamic_rows = tf.reduce_prod(tf.shape(inputs)[:-1])
        return tf.cond(dynamic_rows >= FUSED_LAYER_NORM_MIN_ROWS, lambda: self._fused(inputs),
                       lambda: super(FusedLayerNormalization, self).call(inputs))

    def _fused(self, inputs):
        # The shape is taken here, not passed in: inside a tf.cond branch a captured shape is
        # opaque to the remapper, which then cannot tell that the output keeps the input's shape
        # and does not fuse.
        shape = tf.shape(inputs)
        # The remapper needs the unit scale and zero offset as `Fill` ops; with static shapes
        # grappler's constant folding would turn them into constants first, so the row count goes
        # through PlaceholderWithDefault, which constant folding leaves alone.
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


def _bfloat16_attention(layer, query, key, value, attention_mask, training, scale):
    """Dot-product attention with bfloat16 scores (None: Keras' code for this call).

    Keras' dot-product attention casts bfloat16 scores to float32 for the scaling, the mask and the
    softmax, then casts the probabilities back to bfloat16: two casts and three float32 passes over
    the batch x heads x T x S scores. oneDNN's softmax takes bfloat16 and accumulates in float32
    itself, so the probabilities are the same bfloat16 values (bit for bit when the scale
    1/sqrt(head size) is a power of two, as for ALBERT's 64-wide heads; it is applied to the query,
    the smaller tensor). Used where `fusion_applies` (never in training) with a bfloat16 compute
    dtype on TensorFlow.
    """
    if (keras.backend.backend() != "tensorflow" or query.dtype != tf.bfloat16 or len(query.shape) != 4
            or (attention_mask is not None and len(attention_mask.shape) not in (3, 4))
            or not fusion_applies(getattr(layer, "fuse_mode", "auto"), training, inference_only=True)):
        return None
    scores = tf.einsum("BTNH,BSNH->BNTS", query * tf.cast(scale, query.dtype), key)
    if attention_mask is not None:
        mask = tf.cast(attention_mask, tf.bool)
        if len(mask.shape) == 3:  # [batch, T, S] -> one mask for every head
            mask = tf.expand_dims(mask, 1)
        scores = tf.where(mask, scores, tf.constant(0.7 * tf.bfloat16.min, tf.bfloat16))
    return tf.einsum("BNTS,BSNH->BTNH", tf.nn.softmax(scores, axis=-1), value)


def bfloat16_inference_attention_class():
    """The `keras.layers.MultiHeadAttention` subclass whose bfloat16 inference keeps scores in bfloat16.

    Example:
    ```python
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=64, dtype="mixed_bfloat16")
    ```
    """
    return compat.attention_class_with(_bfloat16_attention, "BFloat16InferenceAttention")


def _swap(layer, base, cls, fuse):
    if type(layer) is base:  # a layer someone else already changed keeps its class
        compat.replace_layer_class(layer, cls)
    if isinstance(layer, cls):
        layer.fuse_mode = fuse


def fuse_layer_norm(layer, fuse="auto"):
    """Let oneDNN fuse a built `keras.layers.LayerNormalization` at inference (`FusedLayerNormalization`).

    The layer keeps its object, name and variables; with `fuse=False` it is left as it is.

    Args:
        layer: a `keras.layers.LayerNormalization` (other classes are left alone).
        fuse: `"auto"`, True or False (see `fusion_applies`).

    Example:
    ```python
    layer = keras.layers.LayerNormalization(epsilon=1e-12)
    layer.build((None, 8, 32))
    fuse_layer_norm(layer)
    ```
    """
    if check_fuse(fuse) is not False:
        _swap(layer, keras.layers.LayerNormalization, FusedLayerNormalization, fuse)


def _model_layers(model):
    """The layers of `model` and of the models inside it: the ones weight files address by class name."""
    for layer in getattr(model, "layers", ()):
        yield layer
        if isinstance(layer, keras.Model):
            yield from _model_layers(layer)


def load_weights_any_fuse(model, path):
    """`model.load_weights(path)` for a `.weights.h5` file written with either `fuse` setting.

    Keras addresses the top-level layers of a functional model in weight files by class name
    (`layer_normalization` vs `fused_layer_normalization`), so a file written by an encoder with
    `fuse=False` would not load into one with fusions, nor the reverse, although the variables are
    the same. When the file's naming differs from the model's, the model's top-level LayerNorms
    take the other class while loading, then their own again.

    Example:
    ```python
    encoder = AlbertEncoder(config)  # fuse="auto"
    load_weights_any_fuse(encoder, "unfused/encoder.weights.h5")
    ```
    """
    import h5py

    with h5py.File(path, "r") as weights:
        names = []
        weights.visit(names.append)
    file_fused = any(name.rsplit("/", 1)[-1].startswith("fused_layer_normalization") for name in names)
    flipped = []
    for layer in _model_layers(model):
        if type(layer) is FusedLayerNormalization and not file_fused:
            flipped.append((layer, keras.layers.LayerNormalization, FusedLayerNormalization))
        elif type(layer) is keras.layers.LayerNormalization and file_fused:
            flipped.append((layer, FusedLayerNormalization, keras.layers.LayerNormalization))
    for layer, other, _ in flipped:
        compat.replace_layer_class(layer, other)
    try:
        model.load_weights(path)
    finally:
        for layer, _, own in flipped:
            compat.replace_layer_class(layer, own)


def fuse_transformer_block(block, fuse="auto"):
    """Let oneDNN fuse a built keras-hub `TransformerEncoder` block's matmuls and LayerNorms.

    The block's feed-forward `Dense` layers become `FusedBiasDense` (the attention's `EinsumDense`
    projections done the same way measured no faster), its two LayerNorms
    `FusedLayerNormalization`, its attention `bfloat16_inference_attention_class()`. Every layer
    keeps its object, name and variables; only how it computes changes, so checkpoints and weight
    files are unchanged. With `fuse=False` nothing changes.

    Args:
        block: a built `keras_hub.layers.TransformerEncoder`.
        fuse: `"auto"`, True or False (see `fusion_applies`).

    Example:
    ```python
    block = keras_hub.layers.TransformerEncoder(64, 2)
    block.build((None, 8, 32))
    fuse_transformer_block(block)
    ```
    """
    if check_fuse(fuse) is False:
        return
    layers = compat.transformer_block_layers(block)
    for dense in layers["feedforward_dense"]:
        _swap(dense, keras.layers.Dense, FusedBiasDense, fuse)
    _swap(layers["attention"], keras.layers.MultiHeadAttention, bfloat16_inference_attention_class(), fuse)
    for layer_norm in layers["layer_norms"]:
        fuse_layer_norm(layer_norm, fuse)
