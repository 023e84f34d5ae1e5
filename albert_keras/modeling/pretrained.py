"""The pretrained directory: the one format every stage reads and writes.

```
my_model/
  albert_config.json   official config keys
  encoder.weights.h5   the encoder's weights (always)
  model.json           {"class": "AlbertClassifier", "arguments": {"num_classes": 3, ...}}
  model.weights.h5     the whole model's weights (absent for a bare encoder)
  spiece.model         the SentencePiece model, when there is one
  tokenizer.json       how to tokenize for this model: {"lowercase": true, "sequence_length": 128}
```

Any model class can start from any directory: `AlbertClassifier.from_pretrained(dir)` on a
pretrainer's directory loads the encoder and starts a fresh classification head; on a
classifier's directory with the same arguments it loads the head too.
"""

import json
import os
import shutil

from albert_keras.errors import AlbertInputError
from albert_keras.io_utils import atomic_directory

CONFIG_FILE = "albert_config.json"
ENCODER_WEIGHTS_FILE = "encoder.weights.h5"
MODEL_FILE = "model.json"
MODEL_WEIGHTS_FILE = "model.weights.h5"
SPM_FILE = "spiece.model"
TOKENIZER_FILE = "tokenizer.json"
DEFAULT_TOKENIZER_SETTINGS = {"lowercase": True, "sequence_length": None}


def _model_classes():
    from albert_keras.modeling import encoder
    from albert_keras.modeling import pretrainer
    from albert_keras.modeling import task_models

    classes = [
        encoder.AlbertEncoder,
        pretrainer.AlbertPretrainer,
        task_models.AlbertClassifier,
        task_models.AlbertTokenClassifier,
        task_models.AlbertQuestionAnswerer,
        task_models.AlbertMultipleChoice,
    ]
    return {cls.__name__: cls for cls in classes}


def save_pretrained(model, directory, spm_model=None, overwrite=True, tokenizer_settings=None):
    """Write `model` (an encoder, pretrainer or task model) as a pretrained directory.

    The directory is written under a temporary name and renamed when complete.

    Args:
        model: an `AlbertEncoder` or a model with an `.encoder` (pretrainer, task models).
        directory: the output directory.
        spm_model: optional path of the SentencePiece model to copy in as `spiece.model`. When not
            given and `directory` already holds one, it is kept.
        overwrite: replace an existing directory.
        tokenizer_settings: `{"lowercase": bool, "sequence_length": int or None}` written as
            `tokenizer.json`. When not given, the directory's existing settings are kept.

    Example:
    ```python
    encoder = AlbertEncoder(AlbertConfig(vocab_size=100, embedding_size=8, hidden_size=16,
                                         num_hidden_layers=2, num_attention_heads=2,
                                         intermediate_size=32))
    save_pretrained(encoder, "/tmp/tiny_albert")
    same = load_pretrained("/tmp/tiny_albert")
    ```
    """
    classes = _model_classes()
    class_name = type(model).__name__
    if class_name not in classes:
        raise TypeError(f"save_pretrained: unsupported model class {class_name}")
    is_encoder = class_name == "AlbertEncoder"
    encoder = model if is_encoder else model.encoder
    directory = os.fspath(directory)
    previous_spm = os.path.join(directory, SPM_FILE)
    if spm_model is None and os.path.exists(previous_spm):
        spm_model = previous_spm
    if spm_model is not None and not os.path.isfile(spm_model):
        raise AlbertInputError(f"{spm_model}: SentencePiece model not found")
    if tokenizer_settings is None and os.path.isfile(os.path.join(directory, TOKENIZER_FILE)):
        tokenizer_settings = read_tokenizer_settings(directory)
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        encoder.config.to_json_file(os.path.join(tmp, CONFIG_FILE))
        encoder.save_weights(os.path.join(tmp, ENCODER_WEIGHTS_FILE))
        description = {"class": class_name, "arguments": {} if is_encoder else model.pretrained_arguments()}
        with open(os.path.join(tmp, MODEL_FILE), "w") as f:
            json.dump(description, f, indent=2, sort_keys=True)
        if not is_encoder:
            model.save_weights(os.path.join(tmp, MODEL_WEIGHTS_FILE))
        if spm_model is not None:
            shutil.copyfile(spm_model, os.path.join(tmp, SPM_FILE))
        if tokenizer_settings is not None:
            settings = {**DEFAULT_TOKENIZER_SETTINGS, **tokenizer_settings}
            with open(os.path.join(tmp, TOKENIZER_FILE), "w") as f:
                json.dump({key: settings[key] for key in DEFAULT_TOKENIZER_SETTINGS}, f, indent=2, sort_keys=True)
    return directory


def read_tokenizer_settings(directory):
    """The directory's `tokenizer.json` merged over the defaults (lowercase, no sequence length).

    Example:
    ```python
    read_tokenizer_settings("runs/quickstart/pretrain/pretrained")  # {"lowercase": True, ...}
    ```
    """
    path = os.path.join(os.fspath(directory), TOKENIZER_FILE)
    if not os.path.isfile(path):
        return dict(DEFAULT_TOKENIZER_SETTINGS)
    try:
        with open(path) as f:
            settings = json.load(f)
    except (OSError, ValueError) as error:
        raise AlbertInputError(f"{path}: unreadable tokenizer settings ({error})") from None
    if not isinstance(settings, dict):
        raise AlbertInputError(f"{path}: expected a JSON object")
    unknown = sorted(set(settings) - set(DEFAULT_TOKENIZER_SETTINGS))
    if unknown:
        raise AlbertInputError(f"{path}: unknown key {unknown[0]!r}")
    if not isinstance(settings.get("lowercase", True), bool):
        raise AlbertInputError(f"{path}: 'lowercase' must be true or false")
    length = settings.get("sequence_length")
    if length is not None and (not isinstance(length, int) or length < 2):
        raise AlbertInputError(f"{path}: 'sequence_length' must be an integer >= 2 or null")
    return {**DEFAULT_TOKENIZER_SETTINGS, **settings}


def read_model_description(directory):
    """The `model.json` of a pretrained directory (a bare encoder when the file is absent)."""
    path = os.path.join(directory, MODEL_FILE)
    if not os.path.exists(path):
        return {"class": "AlbertEncoder", "arguments": {}}
    try:
        with open(path) as f:
            description = json.load(f)
    except (OSError, ValueError) as error:
        raise AlbertInputError(f"{path}: unreadable model description ({error})") from None
    if not isinstance(description, dict) or "class" not in description:
        raise AlbertInputError(f"{path}: missing key 'class'")
    description.setdefault("arguments", {})
    return description


def spm_model_path(directory):
    """The path of the directory's SentencePiece model, or None."""
    path = os.path.join(os.fspath(directory), SPM_FILE)
    return path if os.path.isfile(path) else None


def _check_directory(directory):
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise AlbertInputError(f"{directory}: pretrained directory not found")
    for name in (CONFIG_FILE, ENCODER_WEIGHTS_FILE):
        if not os.path.isfile(os.path.join(directory, name)):
            raise AlbertInputError(f"{directory}: not a pretrained directory (missing {name})")
    return directory


def load_encoder(directory, **encoder_kwargs):
    """The `AlbertEncoder` of a pretrained directory, with its weights."""
    from albert_keras.config import AlbertConfig
    from albert_keras.modeling.encoder import AlbertEncoder

    directory = _check_directory(directory)
    config = AlbertConfig.from_json_file(os.path.join(directory, CONFIG_FILE))
    encoder = AlbertEncoder(config, **encoder_kwargs)
    _load_weights(encoder, os.path.join(directory, ENCODER_WEIGHTS_FILE))
    return encoder


def _load_weights(model, path):
    try:
        model.load_weights(path)
    except (ValueError, OSError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AlbertInputError(f"{path}: weights do not fit the model ({message})") from None


def load_model_class(cls, directory, dtype=None, **arguments):
    """Build `cls` from a pretrained directory; see `PretrainedMixin.from_pretrained`."""
    directory = _check_directory(directory)
    description = read_model_description(directory)
    encoder_kwargs = {"dtype": dtype} if dtype is not None else {}
    if cls.__name__ == "AlbertEncoder":
        return load_encoder(directory, **arguments, **encoder_kwargs)
    encoder = load_encoder(directory, **encoder_kwargs)
    saved_arguments = description["arguments"]
    same_model = description["class"] == cls.__name__ and all(
        saved_arguments.get(key) == value for key, value in arguments.items()
    )
    if same_model:
        model = cls(encoder, **{**saved_arguments, **arguments})
        weights = os.path.join(directory, MODEL_WEIGHTS_FILE)
        if os.path.isfile(weights):
            _load_weights(model, weights)
        return model
    return cls(encoder, **arguments)


def load_pretrained(directory, dtype=None):
    """Rebuild the model saved in a pretrained directory (its class, arguments and weights).

    Args:
        directory: a directory written by `save_pretrained` (or by `albert-keras convert`).
        dtype: optional dtype policy for the rebuilt model, e.g. `"mixed_bfloat16"`.

    Example:
    ```python
    model = load_pretrained("/tmp/tiny_albert")
    ```
    """
    directory = _check_directory(directory)
    description = read_model_description(directory)
    classes = _model_classes()
    if description["class"] not in classes:
        raise AlbertInputError(
            f"{os.path.join(directory, MODEL_FILE)}: unknown model class {description['class']!r}"
        )
    return load_model_class(classes[description["class"]], directory, dtype=dtype)


class PretrainedMixin:
    """Adds `save_pretrained(dir)` and `from_pretrained(dir)` to the ALBERT model classes."""

    def save_pretrained(self, directory, spm_model=None, overwrite=True):
        """Write this model as a pretrained directory; see `albert_keras.save_pretrained`."""
        return save_pretrained(self, directory, spm_model=spm_model, overwrite=overwrite)

    @classmethod
    def from_pretrained(cls, directory, dtype=None, **arguments):
        """Build this class from a pretrained directory.

        The encoder's weights always load. The rest of the model's weights load when the directory
        holds the same class with the same arguments; otherwise the head starts fresh.

        Args:
            directory: a pretrained directory.
            dtype: optional dtype policy.
            **arguments: the class's own arguments, e.g. `num_classes=3` for `AlbertClassifier`.
        """
        return load_model_class(cls, directory, dtype=dtype, **arguments)
