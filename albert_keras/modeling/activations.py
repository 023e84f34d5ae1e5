"""The activations an `albert_config.json` may name, mapped to Keras functions.

The names are `config.KNOWN_ACTIVATIONS` (the config validates `hidden_act` without importing
Keras); this module gives each its function, and fails at import if one has none.
"""

import keras

from albert_keras.config import KNOWN_ACTIVATIONS
from albert_keras.errors import AlbertInputError


@keras.saving.register_keras_serializable(package="albert_keras")
def gelu_approximate(x):
    """GELU in its tanh approximation: what the official code computes for `"gelu"`."""
    return keras.activations.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package="albert_keras")
def gelu_exact(x):
    """GELU with the exact erf form (Hugging Face's `"gelu"`)."""
    return keras.activations.gelu(x, approximate=False)


_FUNCTIONS = {
    "gelu": gelu_approximate,
    "gelu_new": gelu_approximate,
    "gelu_exact": gelu_exact,
    "relu": keras.activations.relu,
    "tanh": keras.activations.tanh,
    "linear": keras.activations.linear,
}
if set(_FUNCTIONS) != set(KNOWN_ACTIVATIONS):
    raise ImportError(f"activations: config.KNOWN_ACTIVATIONS {KNOWN_ACTIVATIONS} and the functions here disagree")
_ACTIVATIONS = {name: _FUNCTIONS[name] for name in KNOWN_ACTIVATIONS}


def get_activation(name):
    """The Keras activation for a config's `hidden_act`.

    Args:
        name: one of `"gelu"` (tanh approximation, as in the official code), `"gelu_new"` (the
            same), `"gelu_exact"` (erf), `"relu"`, `"tanh"`, `"linear"`.

    Example:
    ```python
    get_activation("gelu")(keras.ops.ones((2,)))
    ```
    """
    if name not in _ACTIVATIONS:
        raise AlbertInputError(f"hidden_act: unknown activation {name!r}; known: {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]
