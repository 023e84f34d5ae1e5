"""albert-keras: ALBERT for TensorFlow 2 and Keras 3.

Public names are imported lazily, so `import albert_keras` (and the CLI's `--help`) does not pay
for importing TensorFlow until a model, tokenizer or pipeline is used.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "AlbertConfig": "albert_keras.config",
    "PRESETS": "albert_keras.config",
    "AlbertInputError": "albert_keras.errors",
    "AlbertEncoder": "albert_keras.modeling.encoder",
    "AlbertPretrainer": "albert_keras.modeling.pretrainer",
    "AlbertClassifier": "albert_keras.modeling.task_models",
    "AlbertTokenClassifier": "albert_keras.modeling.task_models",
    "AlbertQuestionAnswerer": "albert_keras.modeling.task_models",
    "AlbertMultipleChoice": "albert_keras.modeling.task_models",
    "load_pretrained": "albert_keras.modeling.pretrained",
    "save_pretrained": "albert_keras.modeling.pretrained",
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'albert_keras' has no attribute '{name}'")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
