"""The one test helper every ALBERT layer and model goes through (issue 22).

`run_layer_test` checks a layer: its config survives `get_config` -> JSON -> `from_config`
unchanged, the rebuilt layer with the weights copied computes the same outputs, and a functional
model wrapping it saves to a `.keras` file and reloads with the same outputs.

`run_model_test` checks a model on the inputs its users give it (raw strings where the model
carries a preprocessor): the config round trip, a `.keras` file reloaded with
`keras.saving.load_model`, and the pretrained directory reloaded with both `load_pretrained` and
the class's own `from_pretrained`; each reloaded model must answer the same inputs with the same
outputs, and be the same class.

Example:
```python
def test_classifier(tmp_path, text_init_dir):
    model = AlbertClassifier.from_pretrained(text_init_dir, labels=["no", "yes"])
    run_model_test(model, ["a fine film.", "a dull one."], tmp_path)
```
"""

import json

import keras
import numpy as np


def predict_outputs(model, inputs):
    """The default way a model is asked: `predict` on raw text (through the model's preprocessor),
    a plain inference call on a dict of arrays (the same numbers, without tracing a predict function)."""
    if isinstance(inputs, dict):
        return model(inputs, training=False)
    return model.predict(inputs, verbose=0)


def assert_same_outputs(got, want, atol, what):
    """Every leaf of `got` equals `want`'s: strings exactly, numbers within `atol`."""
    got_leaves, want_leaves = keras.tree.flatten(got), keras.tree.flatten(want)
    assert len(got_leaves) == len(want_leaves), f"{what}: {len(got_leaves)} outputs, expected {len(want_leaves)}"
    if isinstance(got, dict) and isinstance(want, dict):
        assert sorted(got) == sorted(want), f"{what}: output names {sorted(got)} != {sorted(want)}"
    for index, (a, b) in enumerate(zip(got_leaves, want_leaves)):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, f"{what}: output {index} has shape {a.shape}, expected {b.shape}"
        if a.dtype.kind in "OSU" or b.dtype.kind in "OSU":
            np.testing.assert_array_equal(a, b, err_msg=f"{what}: output {index}")
        else:
            np.testing.assert_allclose(a, b, atol=atol, rtol=0, err_msg=f"{what}: output {index}")


def json_config(config, what):
    """`config` after a trip through JSON text (what a `.keras` file stores); fails if it is not JSON."""
    try:
        text = json.dumps(config, sort_keys=True)
    except TypeError as error:
        raise AssertionError(f"{what}: get_config() is not JSON ({error})") from None
    return json.loads(text)


def _symbolic_inputs(data):
    """`keras.Input`s shaped like one batch of `data` (a tensor, an array, or a dict or tuple of them)."""
    def make(value, name=None):
        value = np.asarray(value) if not hasattr(value, "dtype") else value
        dtype = "string" if getattr(value.dtype, "kind", None) in ("O", "S", "U") else str(
            getattr(value.dtype, "name", value.dtype))
        return keras.Input(shape=tuple(value.shape[1:]), dtype=dtype, name=name)

    if isinstance(data, dict):
        return {name: make(value, name) for name, value in data.items()}
    if isinstance(data, tuple):
        return tuple(make(value) for value in data)
    return make(data)


def run_layer_test(layer_cls, init_kwargs, input_data, tmp_path, expected_output_shape=None, atol=1e-6):
    """Build `layer_cls(**init_kwargs)`, call it on `input_data`, and check its config and `.keras` trips.

    Args:
        layer_cls: the layer class.
        init_kwargs: its constructor arguments.
        input_data: one batch (an array, a string array, or a dict of arrays).
        tmp_path: a folder for the `.keras` file.
        expected_output_shape: optional shape (or structure of shapes) the outputs must have.
        atol: tolerance on every numeric output.

    Returns:
        The built layer.
    """
    name = layer_cls.__name__
    layer = layer_cls(**init_kwargs)
    outputs = layer(input_data)
    if expected_output_shape is not None:
        shapes = keras.tree.map_structure(lambda t: tuple(t.shape), outputs)
        assert shapes == expected_output_shape, f"{name}: output shape {shapes}, expected {expected_output_shape}"

    # get_config -> JSON -> from_config: the same config, and with the weights copied the same outputs.
    config = json_config(layer.get_config(), name)
    clone = layer_cls.from_config(config)
    assert json_config(clone.get_config(), name) == config, f"{name}: from_config(get_config()) changes the config"
    clone(input_data)
    assert len(clone.weights) == len(layer.weights), f"{name}: {len(clone.weights)} weights after from_config"
    clone.set_weights(layer.get_weights())
    assert_same_outputs(clone(input_data), outputs, atol, f"{name} from_config")

    # A functional model around the layer, through a .keras file.
    inputs = _symbolic_inputs(input_data)
    model = keras.Model(inputs, layer(inputs))
    path = tmp_path / f"{name}_layer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert_same_outputs(loaded(input_data), outputs, atol, f"{name} .keras")
    return layer


def run_model_test(model, inputs, tmp_path, predict=predict_outputs, atol=1e-5, pretrained_arguments=None):
    """Check that `model` survives its config, a `.keras` file and a pretrained directory.

    Args:
        model: an ALBERT model (encoder, pretrainer, task model, sentence encoder, seq2seq).
        inputs: what users give it: raw strings (or pairs, or contexts with choices) when it
            carries a preprocessor, else a dict of token arrays.
        tmp_path: a folder for the files.
        predict: `predict(model, inputs)` -> outputs compared after each reload (default
            `model.predict`; e.g. `lambda m, x: m.encode(x)` for a sentence encoder).
        atol: tolerance on numeric outputs.
        pretrained_arguments: arguments a pretrained directory does not record (an encoder's
            `output_encoder_outputs`, `fuse`), given to `from_pretrained`; with them,
            `load_pretrained` (which cannot take them) is not checked.

    Returns:
        `{"config": clone, "keras": loaded, "load_pretrained": ..., "from_pretrained": ...}`: the
        reloaded models, for checks a test adds.
    """
    from albert_keras.modeling.pretrained import load_pretrained

    cls, name = type(model), type(model).__name__
    want = predict(model, inputs)
    reloaded = {}

    config = json_config(model.get_config(), name)
    clone = cls.from_config(config)
    assert json_config(clone.get_config(), name) == config, f"{name}: from_config(get_config()) changes the config"
    assert len(clone.weights) == len(model.weights), f"{name}: {len(clone.weights)} weights after from_config"
    clone.set_weights(model.get_weights())
    reloaded["config"] = clone

    path = tmp_path / f"{name}.keras"
    model.save(path)
    reloaded["keras"] = keras.saving.load_model(path)

    directory = model.save_pretrained(tmp_path / f"{name}_pretrained")
    if not pretrained_arguments:
        reloaded["load_pretrained"] = load_pretrained(directory)
    reloaded["from_pretrained"] = cls.from_pretrained(directory, **(pretrained_arguments or {}))

    for how, again in reloaded.items():
        assert type(again) is cls, f"{name} {how}: reloaded as {type(again).__name__}"
        assert_same_outputs(predict(again, inputs), want, atol, f"{name} {how}")
    return reloaded
