"""`modeling/fusion.py`: the encoder's CPU fusions equal Keras' layers, fuse where TensorFlow's oneDNN
remapper can, and `fuse="auto"` decides per call (CPU inference only)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from albert_keras import compat
from albert_keras.errors import AlbertInputError
from albert_keras.modeling import fusion
from albert_keras.modeling.encoder import AlbertEncoder
from tests.modeling.conftest import encoder_batch, tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def keras_hub_block(width=16, dtype=None):
    from keras_hub.layers import TransformerEncoder

    return TransformerEncoder(2 * width, 2, activation=lambda x: keras.activations.gelu(x, approximate=True),
                              dtype=dtype)


def _gelu_block():
    return keras_hub_block(16)


def test_fused_block_keeps_weights_and_outputs_and_fuses_its_matmuls_in_the_graph():
    from albert_keras.modeling.fusion import fuse_transformer_block

    inputs = np.random.default_rng(0).normal(size=(2, 7, 16)).astype("float32")
    plain, fused = _gelu_block(), _gelu_block()
    plain.build((None, 7, 16))
    fused.build((None, 7, 16))
    fused.set_weights(plain.get_weights())
    paths = [v.path for v in fused.weights]
    fuse_transformer_block(fused)
    assert type(fused._feedforward_intermediate_dense).__name__ == "FusedBiasDense"
    assert type(fused._self_attention_layer).__name__ == "BFloat16InferenceAttention"
    assert type(fused._feedforward_layer_norm).__name__ == "FusedLayerNormalization"
    assert [v.path for v in fused.weights] == paths  # same variables, same checkpoint names
    for training in (False, True):  # dropout is 0: training only changes the LayerNorm's code path
        np.testing.assert_allclose(fused(inputs, training=training).numpy(), plain(inputs).numpy(), atol=1e-5)

    # Keras' Dense on 3-D input reshapes between the matmul and the bias add, which blocks the fusion.
    assert (bias_adds_on_matmuls(plain, (None, 7, 16)), bias_adds_on_matmuls(fused, (None, 7, 16))) == (0, 2)


def bias_adds_on_matmuls(layer, shape, dtype=tf.float32, training=None, jit_compile=None, device=None):
    """BiasAdds fed by a MatMul in the traced graph: the 2-D pattern oneDNN's remapper fuses (with a GELU)."""
    function = tf.function(lambda x: layer(x, training=training), jit_compile=jit_compile)
    with tf.device(device) if device else _no_scope():
        graph_def = function.get_concrete_function(tf.TensorSpec(shape, dtype)).graph.as_graph_def()
    nodes = {node.name: node for node in graph_def.node}
    producer = lambda node: nodes[node.input[0].split(":")[0].lstrip("^")]
    return sum(node.op == "BiasAdd" and producer(node).op == "MatMul" for node in nodes.values())


def _no_scope():
    import contextlib

    return contextlib.nullcontext()


def _ran_op_types(function, *args):
    from tests.scripts import load_script

    profile = load_script(os.path.join(ROOT, "benchmarks", "encoder_profile.py"))
    return profile.ran_op_types(function, *args)


def _graph_ops(function, *specs):
    """Op types in `function`'s graph and in the functions it calls (`tf.cond` branches)."""
    graph_def = function.get_concrete_function(*specs).graph.as_graph_def()
    return {node.op for node in graph_def.node} | {
        node.op for library_function in graph_def.library.function for node in library_function.node_def}


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_fused_layer_norm_matches_keras_and_runs_as_onednn_layer_norm(policy):
    from albert_keras.modeling.fusion import FUSED_LAYER_NORM_MIN_ROWS
    from albert_keras.modeling.fusion import fuse_layer_norm
    from albert_keras.modeling.fusion import fuse_transformer_block

    rng = np.random.default_rng(1)
    plain = keras.layers.LayerNormalization(epsilon=1e-12, dtype=policy)
    fused = keras.layers.LayerNormalization(epsilon=1e-12, dtype=policy)
    plain.build((None, None, 24))
    fused.build((None, None, 24))
    plain.set_weights([rng.uniform(0.5, 1.5, 24).astype("float32"), rng.normal(size=24).astype("float32")])
    fused.set_weights(plain.get_weights())
    fuse_layer_norm(fused)
    dtype = plain.compute_dtype
    tolerance = 1e-5 if policy == "float32" else 0.05  # bfloat16 keeps 8 bits: 2 ulp at |x| < 8
    large = tf.cast(rng.normal(2.0, 3.0, (8, 16, 24)).astype("float32"), dtype)  # 128 rows: fused
    small = large[:2, :5]  # 10 rows: Keras' code is faster there
    assert 10 < FUSED_LAYER_NORM_MIN_ROWS <= 128
    inference = tf.function(lambda x: fused(x, training=False))
    dynamic = tf.function(lambda x: fused(x, training=False), input_signature=[tf.TensorSpec((None, None, 24), dtype)])
    for inputs in (large, tf.reshape(large, (128, 24)), small):
        expected = tf.cast(plain(inputs), tf.float32).numpy()
        for function in (inference, dynamic) if len(inputs.shape) == 3 else (inference,):
            actual = function(inputs)
            assert actual.dtype == dtype
            np.testing.assert_allclose(tf.cast(actual, tf.float32).numpy(), expected, atol=tolerance)

    # Static shapes choose while tracing; dynamic ones by a tf.cond; training runs Keras' own code
    # (float32 statistics and gradients).
    static_ops = lambda inputs, training: _graph_ops(
        tf.function(lambda x: fused(x, training=training)), tf.TensorSpec(inputs.shape, dtype))
    assert "FusedBatchNormV3" in static_ops(large, False)
    assert "FusedBatchNormV3" not in static_ops(small, False) | static_ops(large, True)
    assert "FusedBatchNormV3" in _graph_ops(dynamic)
    # Keras passes the outer call's `training` down to the fused layer inside a block.
    block = keras_hub_block(24, policy)
    block.build((None, 16, 24))
    fuse_transformer_block(block)
    block_ops = lambda training: _graph_ops(
        tf.function(lambda x: block(x, training=training)), tf.TensorSpec(large.shape, dtype))
    assert "FusedBatchNormV3" in block_ops(False) and "FusedBatchNormV3" not in block_ops(True)
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0":
        # With static shapes too: grappler must not fold the fill the remapper matches.
        assert "_MklLayerNorm" in _ran_op_types(inference, large)
        assert "_MklLayerNorm" in _ran_op_types(dynamic, large)


def test_bfloat16_inference_attention_gives_keras_probabilities_without_float32_scores():
    from albert_keras.modeling.fusion import fuse_transformer_block

    rng = np.random.default_rng(2)
    blocks = {}
    for width in (16, 32):  # 2 heads of 8 (scale 1/sqrt(8): rounded) and of 16 (scale 1/4: exact)
        plain, fused = (keras_hub_block(width, "mixed_bfloat16") for _ in range(2))
        plain.build((None, 6, width))
        fused.build((None, 6, width))
        fused.set_weights(plain.get_weights())
        fuse_transformer_block(fused)
        blocks[width] = plain, fused
    padding_mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], "int32")
    for width, (plain, fused) in blocks.items():
        inputs = tf.cast(rng.normal(size=(2, 6, width)).astype("float32"), tf.bfloat16)
        expected = tf.cast(plain(inputs, padding_mask=padding_mask), tf.float32).numpy()
        actual = tf.cast(fused(inputs, padding_mask=padding_mask), tf.float32).numpy()
        # What differs is the fused LayerNorm's and matmuls' rounding: about one bfloat16 ulp.
        np.testing.assert_allclose(actual, expected, atol=0.07, rtol=0.02)

        def ops(training, block=fused, width=width):
            function = tf.function(lambda x, m: block(x, padding_mask=m, training=training))
            graph = function.get_concrete_function(
                tf.TensorSpec((None, 6, width), tf.bfloat16), tf.TensorSpec((None, 6), tf.int32)).graph
            return [(node.op, node.attr["T"].type) for node in graph.as_graph_def().node if node.op == "Softmax"]

        assert ops(False) == [("Softmax", tf.bfloat16.as_datatype_enum)]
        assert ops(True) == [("Softmax", tf.float32.as_datatype_enum)]  # training: Keras' float32 softmax


def test_bfloat16_inference_attention_is_exact_where_the_scale_is_a_power_of_two():

    rng = np.random.default_rng(3)
    plain = keras.layers.MultiHeadAttention(num_heads=2, key_dim=16, dtype="mixed_bfloat16")
    fused = keras.layers.MultiHeadAttention(num_heads=2, key_dim=16, dtype="mixed_bfloat16")
    query = tf.cast(rng.normal(size=(3, 5, 32)).astype("float32"), tf.bfloat16)
    mask = np.tril(np.ones((5, 5), bool))[None].repeat(3, axis=0)
    plain(query, query)
    fused(query, query)
    fused.set_weights(plain.get_weights())
    compat.replace_layer_class(fused, fusion.bfloat16_inference_attention_class())
    expected = plain(query, query, attention_mask=mask).numpy()
    np.testing.assert_array_equal(fused(query, query, attention_mask=mask).numpy(), expected)


# The pooler's Dense takes the 2-D first-token slice: a MatMul + BiasAdd in Keras' own form.
POOLER = 1


def _encoder_graph_ops(encoder, batch=8, length=16, **trace):
    """Op types of the encoder's traced graph (and its `tf.cond` branches), the fused MatMul+BiasAdd count."""
    inputs = {name: tf.TensorSpec((batch, length), tf.int32) for name in ("token_ids", "segment_ids", "padding_mask")}
    training, jit_compile, device = trace.get("training"), trace.get("jit_compile"), trace.get("device")
    function = tf.function(lambda x: encoder(x, training=training), jit_compile=jit_compile)
    with tf.device(device) if device else _no_scope():
        graph_def = function.get_concrete_function(inputs).graph.as_graph_def()
    nodes = {node.name: node for node in graph_def.node}
    producer = lambda node: nodes[node.input[0].split(":")[0].lstrip("^")]
    fused_matmuls = sum(node.op == "BiasAdd" and producer(node).op == "MatMul" for node in nodes.values())
    ops = {node.op for node in graph_def.node} | {
        node.op for function in graph_def.library.function for node in function.node_def}
    return ops, fused_matmuls


def _all_sublayers(encoder):
    layers = list(encoder.layers)
    for group in encoder.transformer_layers:
        for block in group:
            parts = compat.transformer_block_layers(block)
            layers += [*parts["feedforward_dense"], parts["attention"], *parts["layer_norms"]]
    return layers


def test_encoder_without_fusions_swaps_no_class_and_matches_the_fused_encoder():
    keras.utils.set_random_seed(5)
    fused = AlbertEncoder(tiny_config())
    plain = AlbertEncoder(tiny_config(), fuse=False)
    # Same variables, same names: weights load across both ways.
    assert [v.path for v in plain.weights] == [v.path for v in fused.weights]
    plain.set_weights(fused.get_weights())
    for layer in _all_sublayers(plain):
        assert type(layer).__module__.split(".")[0] in ("keras", "keras_hub"), type(layer)
    swapped = {type(layer).__name__ for layer in _all_sublayers(fused)}
    assert {"FusedBiasDense", "FusedLayerNormalization", "BFloat16InferenceAttention"} <= swapped
    batch = encoder_batch(batch=8, length=16, pad_from=12)  # 128 rows: the LayerNorm fuses too
    run = tf.function(lambda model, x: model(x, training=False)["sequence_output"])
    np.testing.assert_allclose(run(fused, batch).numpy(), run(plain, batch).numpy(), atol=2e-5)
    assert "FusedBatchNormV3" in _encoder_graph_ops(fused)[0]
    plain_ops, plain_matmuls = _encoder_graph_ops(plain)
    assert "FusedBatchNormV3" not in plain_ops and plain_matmuls == POOLER


def test_auto_fuses_cpu_inference_only():
    encoder = AlbertEncoder(tiny_config())
    blocks = tiny_config().num_hidden_layers * tiny_config().inner_group_num
    inference_ops, inference_matmuls = _encoder_graph_ops(encoder, training=False)
    assert "FusedBatchNormV3" in inference_ops and inference_matmuls == POOLER + 2 * blocks
    # Training, XLA and a GPU placement each get Keras' own code (decided while tracing).
    for trace in ({"training": True}, {"jit_compile": True}, {"device": "/GPU:0"}):
        ops, matmuls = _encoder_graph_ops(encoder, **trace)
        assert "FusedBatchNormV3" not in ops and matmuls == POOLER, trace


def test_fuse_true_also_fuses_training_matmuls_but_not_its_layer_norms():
    encoder = AlbertEncoder(tiny_config(), fuse=True)
    blocks = tiny_config().num_hidden_layers * tiny_config().inner_group_num
    ops, matmuls = _encoder_graph_ops(encoder, training=True)
    assert matmuls == POOLER + 2 * blocks and "FusedBatchNormV3" not in ops
    ops, matmuls = _encoder_graph_ops(encoder, device="/GPU:0")
    assert matmuls == POOLER + 2 * blocks and "FusedBatchNormV3" in ops


def test_fuse_option_is_checked_and_saved_in_the_config():
    for fuse in ("auto", True, False):
        encoder = AlbertEncoder(tiny_config(), fuse=fuse)
        assert encoder.get_config()["fuse"] == fuse
        assert AlbertEncoder.from_config(encoder.get_config()).fuse == fuse
    with pytest.raises(AlbertInputError, match='fuse must be "auto", True or False'):
        AlbertEncoder(tiny_config(), fuse="yes")


def test_fusion_applies_decisions():
    assert fusion.fusion_applies("auto", None) and fusion.fusion_applies("auto", False)
    assert not fusion.fusion_applies("auto", True)
    assert fusion.fusion_applies(True, True) and not fusion.fusion_applies(True, True, inference_only=True)
    assert not fusion.fusion_applies(False, None)
    with tf.device("/GPU:0"):
        assert not fusion.fusion_applies("auto", None) and fusion.fusion_applies(True, None)
    with tf.device("/CPU:0"):
        assert fusion.runs_on_cpu()


def test_tflite_tracing_keeps_keras_layer_norm():
    layer = keras.layers.LayerNormalization(epsilon=1e-12)
    layer.build((None, 16, 24))
    fusion.fuse_layer_norm(layer)
    trace = lambda: _graph_ops(tf.function(lambda x: layer(x, training=False)), tf.TensorSpec((8, 16, 24)))
    assert "FusedBatchNormV3" in trace()
    with fusion.without_layer_norm_fusion():
        assert "FusedBatchNormV3" not in trace()
    assert "FusedBatchNormV3" in trace()
