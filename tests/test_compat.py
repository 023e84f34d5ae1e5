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
# Private names of Keras, keras-hub and TensorFlow objects that albert-keras uses (the list);
# `_library_private_names` adds every private name of the library classes albert-keras builds on.
PRIVATE = ("_self_attention_layer", "_feedforward_intermediate_dense", "_feedforward_output_dense", "_maybe_symbolic_build", "_in_multi_worker_mode", "_get_current_learning_rate",
           "_clip_gradients", "_iterations", "_dropout_layer", "_backend_update_step", "_symbolic_build",
           "_all_reduce_sum_gradients", "_distributed_tf_update_step", "_distribution_strategy", "_distribute_strategy",
           "_self_attention_layer_norm",
           "_feedforward_layer_norm", "_call_has_context_arg", "_call_has_training_arg", "_call_signature",
           "_compute_attention", "_inverse_sqrt_key_dim", "_attention_axes", "_flash_attention",
           "_get_variable_index", "_convert_input_args", "_allow_non_tensor_positional_args")
# albert-keras' own private names that a library class also has, each with where and why it is ours.
OWN_NAMES = {
    ("training/checkpointing.py", "_variables"),  # `Checkpointer` is a plain class: its own variable lists
    ("training/callbacks.py", "_learning_rate"),  # a callback's own method (reads the public `learning_rate`)
    ("training/finetune.py", "_update"),  # the early-stopping callback's own method
}


def _library_private_names():
    """Private names (class attributes and those set on instances) of the library classes used here."""
    import keras_hub

    classes = (keras.layers.Layer, keras.Model, keras.layers.Dense, keras.layers.LayerNormalization,
               keras.layers.MultiHeadAttention, keras.layers.Embedding, keras.optimizers.Optimizer,
               keras.optimizers.schedules.LearningRateSchedule, keras.callbacks.Callback,
               keras.callbacks.CallbackList, keras.callbacks.ProgbarLogger, keras.metrics.Metric,
               keras.losses.Loss, keras_hub.layers.TransformerEncoder, tf.Module, tf.distribute.Strategy,
               tf.distribute.StrategyExtended)
    block = keras_hub.layers.TransformerEncoder(8, 2)
    block.build((None, 3, 4))
    optimizer = keras.optimizers.Optimizer(learning_rate=0.1)
    optimizer.build([keras.Variable([1.0])])
    instances = (block, block._self_attention_layer, block._feedforward_intermediate_dense,
                 block._feedforward_layer_norm, optimizer, keras.callbacks.CallbackList(), keras.Model())
    names = {name for cls in classes for name in dir(cls)} | {name for obj in instances for name in vars(obj)}
    return {name for name in names if name.startswith("_") and not name.startswith("__")} | set(PRIVATE)


def _offenders(source, relative, private):
    """Where `source` reads, sets or overrides (`def`) a library's private name, or imports its internals."""
    offenders = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and (
                (node.attr in private and (relative, node.attr) not in OWN_NAMES) or node.attr == "__internal__"):
            offenders.append(f"{relative}:{node.lineno}: .{node.attr}")
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in private
                and (relative, node.name) not in OWN_NAMES):
            offenders.append(f"{relative}:{node.lineno}: def {node.name}")
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "setattr", "hasattr")
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and node.args[1].value in private):
            offenders.append(f"{relative}:{node.lineno}: {node.func.id}({node.args[1].value!r})")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            if re.match(r"(keras|keras_hub)\.src\b|tensorflow\.python\b", module or ""):
                offenders.append(f"{relative}:{node.lineno}: import {module}")
    return offenders


def test_no_other_module_touches_library_internals():
    private = _library_private_names()
    offenders = []
    for root, _, names in os.walk(PACKAGE):
        for name in names:
            path = os.path.join(root, name)
            if name.endswith(".py") and path != compat.__file__:
                relative = os.path.relpath(path, PACKAGE).replace(os.sep, "/")
                offenders += _offenders(open(path, encoding="utf-8").read(), relative, private)
    assert not offenders, offenders


def test_the_fence_test_sees_attribute_access_overrides_getattr_and_imports():
    private = _library_private_names()
    source = (
        "from keras.src.layers import Layer\n"
        "class Text(keras.layers.Layer):\n"
        "    def __init__(self):\n"
        "        self._convert_input_args = False\n"
        "    def _compute_attention(self):\n"
        "        return getattr(self, '_call_signature'), self._own_state, tf.__internal__\n"
    )
    assert sorted(_offenders(source, "m.py", private)) == [
        "m.py:1: import keras.src.layers", "m.py:4: ._convert_input_args", "m.py:5: def _compute_attention",
        "m.py:6: .__internal__", "m.py:6: getattr('_call_signature')"]


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




def test_untested_versions_warn_only_when_the_environment_allows(monkeypatch):
    monkeypatch.setenv(compat.ALLOW_UNTESTED_ENV, "1")
    with pytest.warns(RuntimeWarning, match=r"keras 3\.16\.0 is outside .*running anyway"):
        messages = compat.check_versions({"keras": "3.16.0", "tensorflow": "2.21.0"})
    assert len(messages) == 1
    monkeypatch.setenv(compat.ALLOW_UNTESTED_ENV, "0")
    with pytest.raises(AlbertInputError, match=r"set ALBERT_KERAS_ALLOW_UNTESTED_VERSIONS=1 to try it"):
        compat.check_versions({"keras": "3.16.0"})
    assert compat.check_versions({"keras": "3.15.0"}, allow_untested=False) == []


def test_replace_layer_class_passes_training_to_the_new_call():
    class TrainingAware(keras.layers.Dense):
        def call(self, inputs, training=None):
            return super().call(inputs) * (2.0 if training else 1.0)

    layer = keras.layers.Dense(3, kernel_initializer="ones")
    layer.build((None, 2))
    paths = [v.path for v in layer.weights]
    compat.replace_layer_class(layer, TrainingAware)
    assert [v.path for v in layer.weights] == paths
    inputs = np.ones((1, 2), "float32")
    # Keras passes `training` only to a call whose recorded signature takes it.
    np.testing.assert_allclose(layer(inputs, training=True).numpy(), 2 * layer(inputs, training=False).numpy())
    with pytest.raises(TypeError, match="not a subclass"):
        compat.replace_layer_class(keras.layers.Dense(1), keras.layers.LayerNormalization)


def test_attention_class_with_uses_the_replacement_or_keras_code():
    rng = np.random.default_rng(4)
    query = rng.normal(size=(2, 5, 8)).astype("float32")
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    expected = layer(query, query).numpy()
    calls = []

    def keras_code(layer, query, key, value, mask, training, scale):
        calls.append(scale)
        return None

    compat.replace_layer_class(layer, compat.attention_class_with(keras_code, "Recording"))
    np.testing.assert_allclose(layer(query, query).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(calls, [0.5])  # 1 / sqrt(key_dim)
    layer(query, query, return_attention_scores=True)  # not the common case: Keras' code without asking
    assert len(calls) == 1


def test_accept_any_call_arguments_passes_strings_through():
    class Length(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            compat.accept_any_call_arguments(self)

        def call(self, texts):
            return tf.strings.length(tf.constant(texts))

    assert Length()(["abc", "de"]).numpy().tolist() == [3, 2]


def test_optimizer_variable_index():
    variables = [keras.Variable(np.zeros(2, "float32")), keras.Variable(np.zeros(3, "float32"))]
    optimizer = keras.optimizers.SGD()
    optimizer.build(variables)
    assert [compat.optimizer_variable_index(optimizer, v) for v in variables] == [0, 1]


def test_device_scope_and_xla_detection_eagerly_and_while_tracing():
    assert compat.device_scope_type() is None
    with tf.device("/CPU:0"):
        assert compat.device_scope_type() == "CPU"
    seen = {}

    def record(name):
        seen[name] = (compat.in_xla_compilation(), compat.device_scope_type())
        return tf.constant(0)

    tf.function(lambda: record("xla"), jit_compile=True)()
    tf.function(lambda: record("plain"))()
    with tf.device("/GPU:0"):  # traced only: placing on a missing GPU is not needed
        tf.function(lambda: record("gpu")).get_concrete_function()
    assert seen == {"xla": (True, None), "plain": (False, None), "gpu": (False, "GPU")}
    assert compat.in_xla_compilation() is False


def test_batch_logs_callback_list_defers_what_keras_would_convert():
    class Seen(keras.callbacks.Callback):
        def __init__(self, defers_logs):
            super().__init__()
            self.defers_logs = defers_logs
            self.types = set()

        def on_train_batch_end(self, batch, logs=None):
            self.types.add(type(logs["loss"]).__name__)

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 2), "float32"), np.ones((4, 1), "float32")
    # What the class exists for: Keras' own list converts every batch's logs before any callback.
    keras_seen = Seen(defers_logs=True)
    model.fit(x, y, batch_size=2, verbose=0, callbacks=[keras_seen])
    assert keras_seen.types == {"float"}
    deferred, plain = Seen(defers_logs=True), Seen(defers_logs=False)
    callbacks = compat.BatchLogsCallbackList([deferred, plain], add_history=True, model=model, epochs=1, steps=2)
    model.fit(x, y, batch_size=2, verbose=0, callbacks=callbacks)
    assert plain.types == {"float"} and deferred.types != {"float"} and len(deferred.types) == 1
