"""`compat`: the one module that reaches below Keras, keras-hub and TensorFlow's public APIs."""

import ast
import configparser
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from albert_keras import compat
from albert_keras.errors import AlbertInputError

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "albert_keras")
# Private names of Keras, keras-hub and TensorFlow objects that albert-keras uses (the list).
PRIVATE = ("_self_attention_layer", "_feedforward_intermediate_dense", "_feedforward_output_dense", "_maybe_symbolic_build", "_in_multi_worker_mode", "_get_current_learning_rate",
           "_clip_gradients", "_iterations", "_dropout_layer", "_backend_update_step", "_symbolic_build",
           "_all_reduce_sum_gradients", "_distributed_tf_update_step", "_distribution_strategy", "_distribute_strategy",
           "_self_attention_layer_norm",
           "_feedforward_layer_norm", "_call_has_context_arg", "_call_has_training_arg", "_call_signature",
           "_compute_attention", "_inverse_sqrt_key_dim", "_attention_axes", "_flash_attention")


def test_no_other_module_touches_library_internals():
    offenders = []
    for root, _, names in os.walk(PACKAGE):
        for name in names:
            path = os.path.join(root, name)
            if not name.endswith(".py") or path == compat.__file__:
                continue
            tree = ast.parse(open(path, encoding="utf-8").read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and (node.attr in PRIVATE or node.attr == "__internal__"):
                    offenders.append(f"{os.path.relpath(path, PACKAGE)}:{node.lineno}: .{node.attr}")
                if isinstance(node, ast.FunctionDef) and node.name in PRIVATE:
                    offenders.append(f"{os.path.relpath(path, PACKAGE)}:{node.lineno}: def {node.name}")
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                    if re.match(r"(keras|keras_hub)\.src\b|tensorflow\.python\b", module or ""):
                        offenders.append(f"{os.path.relpath(path, PACKAGE)}:{node.lineno}: import {module}")
    assert not offenders, offenders


def test_version_check_names_the_package_and_matches_setup_cfg():
    compat.check_versions({"keras": "3.15.1", "keras-hub": "0.32.0", "tensorflow": "2.21.0"})
    with pytest.raises(AlbertInputError, match=r'keras 3\.16\.0 is outside .*pip install "keras>=3\.15,<3\.16"'):
        compat.check_versions({"keras": "3.16.0"})
    with pytest.raises(AlbertInputError, match=r"keras-hub 0\.31\.2 is outside"):
        compat.check_versions({"keras-hub": "0.31.2"})
    setup = configparser.ConfigParser()
    setup.read(os.path.join(os.path.dirname(PACKAGE), "setup.cfg"))
    pins = {}
    for line in setup["options"]["install_requires"].strip().splitlines():
        match = re.match(r"\s*([A-Za-z0-9_-]+)>=([\d.]+),<([\d.]+)", line)
        if match:
            pins[match.group(1)] = (match.group(2), match.group(3))
    for package, low, high in compat.TESTED_VERSIONS:
        assert pins[package] == (".".join(map(str, low)), ".".join(map(str, high))), package


def test_attention_dropout_accessors():
    from keras_hub.layers import TransformerEncoder

    block = TransformerEncoder(16, 2, dropout=0.1)
    block.build((None, 4, 8))
    compat.set_attention_probs_dropout(block, 0.0)
    assert compat.attention_probs_dropout(block) == 0.0
    x = np.random.default_rng(0).normal(size=(2, 4, 8)).astype("float32")
    # With the attention dropout off, training mode differs from inference only by residual dropout.
    assert np.isfinite(np.asarray(block(x, training=True))).all()


def test_strategy_accessors():
    assert compat.in_multi_worker_mode(tf.distribute.get_strategy()) is False
    assert compat.in_multi_worker_mode(object()) is False


def test_summed_gradient_clipping_clips_the_sum_once():
    class ClippedSGD(compat.SummedGradientClippingMixin, keras.optimizers.SGD):
        pass

    variable = keras.Variable(np.zeros(2, "float32"))
    optimizer = ClippedSGD(learning_rate=1.0, global_clipnorm=1.0)
    optimizer.build([variable])
    optimizer.apply([np.array([3.0, 4.0], "float32")], [variable])
    np.testing.assert_allclose(variable.numpy(), [-0.6, -0.8], rtol=1e-6)  # norm 5 -> 1


def keras_hub_block(width=16, dtype=None):
    from keras_hub.layers import TransformerEncoder

    return TransformerEncoder(2 * width, 2, activation=lambda x: keras.activations.gelu(x, approximate=True),
                              dtype=dtype)


def _gelu_block():
    return keras_hub_block(16)


def test_fused_block_keeps_weights_and_outputs_and_fuses_its_matmuls_in_the_graph():
    from albert_keras.compat import fuse_transformer_block

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

    # The graph TensorFlow's remapper sees: 2-D MatMul + BiasAdd (+ GELU), which it fuses into one
    # oneDNN op (benchmarks/encoder_profile.py shows `_MklNativeFusedMatMul`).
    def bias_adds_on_matmuls(block):
        function = tf.function(lambda x: block(x)).get_concrete_function(tf.TensorSpec((None, 7, 16)))
        nodes = {node.name: node for node in function.graph.as_graph_def().node}
        producer = lambda node: nodes[node.input[0].split(":")[0].lstrip("^")]
        return sum(node.op == "BiasAdd" and producer(node).op == "MatMul" for node in nodes.values())

    # Keras' Dense on 3-D input reshapes between the matmul and the bias add, which blocks the fusion.
    assert (bias_adds_on_matmuls(plain), bias_adds_on_matmuls(fused)) == (0, 2)


def _ran_op_types(function, *args):
    from tests.scripts import load_script

    profile = load_script(os.path.join(os.path.dirname(PACKAGE), "benchmarks", "encoder_profile.py"))
    return profile.ran_op_types(function, *args)


def _graph_ops(function, *specs):
    """Op types in `function`'s graph and in the functions it calls (`tf.cond` branches)."""
    graph_def = function.get_concrete_function(*specs).graph.as_graph_def()
    return {node.op for node in graph_def.node} | {
        node.op for library_function in graph_def.library.function for node in library_function.node_def}


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_fused_layer_norm_matches_keras_and_runs_as_onednn_layer_norm(policy):
    from albert_keras.compat import FUSED_LAYER_NORM_MIN_ROWS
    from albert_keras.compat import fuse_layer_norm
    from albert_keras.compat import fuse_transformer_block

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
    from albert_keras.compat import fuse_transformer_block

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
    from albert_keras.compat import _bfloat16_attention_class

    rng = np.random.default_rng(3)
    plain = keras.layers.MultiHeadAttention(num_heads=2, key_dim=16, dtype="mixed_bfloat16")
    fused = keras.layers.MultiHeadAttention(num_heads=2, key_dim=16, dtype="mixed_bfloat16")
    query = tf.cast(rng.normal(size=(3, 5, 32)).astype("float32"), tf.bfloat16)
    mask = np.tril(np.ones((5, 5), bool))[None].repeat(3, axis=0)
    plain(query, query)
    fused(query, query)
    fused.set_weights(plain.get_weights())
    fused.__class__ = _bfloat16_attention_class()
    expected = plain(query, query, attention_mask=mask).numpy()
    np.testing.assert_array_equal(fused(query, query, attention_mask=mask).numpy(), expected)
