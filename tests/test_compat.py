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
           "_all_reduce_sum_gradients", "_distributed_tf_update_step", "_distribution_strategy", "_distribute_strategy")


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


def test_fused_feedforward_keeps_weights_and_outputs_and_fuses_in_the_graph():
    import keras
    import numpy as np
    import tensorflow as tf
    from keras_hub.layers import TransformerEncoder

    from albert_keras.compat import fuse_feedforward

    inputs = np.random.default_rng(0).normal(size=(2, 7, 16)).astype("float32")
    plain = TransformerEncoder(32, 2, activation=lambda x: keras.activations.gelu(x, approximate=True))
    fused = TransformerEncoder(32, 2, activation=lambda x: keras.activations.gelu(x, approximate=True))
    plain.build((None, 7, 16))
    fused.build((None, 7, 16))
    fused.set_weights(plain.get_weights())
    paths = [v.path for v in fused.weights]
    fuse_feedforward(fused)
    assert type(fused._feedforward_intermediate_dense).__name__ == "FusedBiasDense"
    assert [v.path for v in fused.weights] == paths  # same variables, same checkpoint names
    np.testing.assert_allclose(fused(inputs).numpy(), plain(inputs).numpy(), atol=1e-5)

    # The graph TensorFlow's remapper sees: 2-D MatMul + BiasAdd (+ GELU), which it fuses into one
    # oneDNN op (benchmarks/encoder_profile.py shows `_MklNativeFusedMatMul`).
    def bias_adds_on_matmuls(block):
        function = tf.function(lambda x: block(x)).get_concrete_function(tf.TensorSpec((None, 7, 16)))
        nodes = {node.name: node for node in function.graph.as_graph_def().node}
        producer = lambda node: nodes[node.input[0].split(":")[0].lstrip("^")]
        return sum(node.op == "BiasAdd" and producer(node).op == "MatMul" for node in nodes.values())

    # Keras' Dense reshapes between the matmul and the bias add on 3-D input, which blocks the fusion.
    assert (bias_adds_on_matmuls(plain), bias_adds_on_matmuls(fused)) == (0, 2)
