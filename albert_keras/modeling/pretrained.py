"""The pretrained directory: the one format every stage reads and writes.

```
my_model/
  albert_config.json   official config keys
  encoder.weights.h5   the encoder's weights (always)
  model.json           {"class": "AlbertClassifier", "arguments": {"num_classes": 3, ...},
                        "trained_steps": 1200}  (the optimizer's updates, when the model had any)
  model.weights.h5     the whole model's weights (absent for a bare encoder)
  spiece.model         the vocabulary, when there is one: a SentencePiece model,
   or vocab.txt        or a WordPiece vocabulary (the Chinese models)
  tokenizer.json       how to tokenize: {"kind": "sentencepiece", "lowercase": true, "sequence_length": 128}
```

Any model class can start from any directory: `AlbertClassifier.from_pretrained(dir)` on a
pretrainer's directory loads the encoder and starts a fresh classification head; on a
classifier's directory it loads the head too, whatever the weightless arguments (dropout, labels)
given. A head whose weights cannot load (another class, another number of classes) starts fresh
with a warning that names it.

Settings travel: `save_pretrained` writes the vocabulary and `tokenizer.json` from the model's
preprocessor when it has one, else from the directory the model was loaded from, so
`from_pretrained(a)` then `save_pretrained(b)` keeps the tokenizer, its casing and the labels.
"""

import hashlib
import json
import logging
import os

from albert_keras.errors import AlbertInputError
from albert_keras.io_utils import atomic_directory
from albert_keras.tokenization.vocabulary import DEFAULT_TOKENIZER_SETTINGS  # noqa: F401 (re-exported)
from albert_keras.tokenization.vocabulary import SPM_FILE
from albert_keras.tokenization.vocabulary import TOKENIZER_FILE
from albert_keras.tokenization.vocabulary import WORDPIECE_FILE
from albert_keras.tokenization.vocabulary import load_vocabulary
from albert_keras.tokenization.vocabulary import read_tokenizer_settings  # noqa: F401 (re-exported)
from albert_keras.tokenization.vocabulary import vocabulary_path
from albert_keras.tokenization.vocabulary import write_tokenizer_settings

CONFIG_FILE = "albert_config.json"
ENCODER_WEIGHTS_FILE = "encoder.weights.h5"
MODEL_FILE = "model.json"
MODEL_WEIGHTS_FILE = "model.weights.h5"
# The files that define a pretrained directory's model, in fingerprint order.
FINGERPRINT_FILES = (
    CONFIG_FILE, MODEL_FILE, ENCODER_WEIGHTS_FILE, MODEL_WEIGHTS_FILE, SPM_FILE, WORDPIECE_FILE, TOKENIZER_FILE
)
# Where `load_model_class` records the directory a model came from (a plain string attribute).
SOURCE_ATTRIBUTE = "_pretrained_source"
# Where `load_model_class` records whether a task model's head came from the directory (True) or is fresh.
HEAD_ATTRIBUTE = "_pretrained_head_restored"
# Task classes whose head a directory may hold.
TASK_CLASSES = ("AlbertClassifier", "AlbertTokenClassifier", "AlbertQuestionAnswerer", "AlbertMultipleChoice",
                "AlbertIntentSlotTagger")

logger = logging.getLogger("albert_keras.modeling")


# The model classes a directory may hold, by class name. Each `PretrainedMixin` subclass registers
# itself when its module is imported (`albert_keras.modeling` imports them all), so this module, which
# the model modules import, never imports them back.
_PRETRAINED_CLASSES = {}


def _model_classes():
    return dict(_PRETRAINED_CLASSES)


def _preprocessor_tokenizer(model):
    """The `AlbertTokenizer` a model carries (a task model's or a sentence encoder's preprocessor), or None."""
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is None:
        return None
    tokenizer = getattr(preprocessor, "tokenizer", preprocessor)
    return tokenizer if getattr(tokenizer, "vocabulary", None) is not None else None


def source_directory(model):
    """The pretrained directory `model` (or its encoder) was loaded from, or None.

    Example:
    ```python
    source_directory(AlbertClassifier.from_pretrained("runs/sentiment"))  # "runs/sentiment"
    ```
    """
    for candidate in (model, getattr(model, "encoder", None)):
        if candidate is not None:
            source = getattr(candidate, SOURCE_ATTRIBUTE, None)
            if source:
                return source
    return None


def _remember_source(model, directory):
    # An ordinary attribute: Keras' tracker keeps variables, layers and metrics, and a string is none of them.
    setattr(model, SOURCE_ATTRIBUTE, os.fspath(directory))


def _tokenizer_assets(model, directory, vocabulary, tokenizer_settings):
    """`(Vocabulary or None, settings or None)` to write: explicit > preprocessor > source > existing."""
    tokenizer = _preprocessor_tokenizer(model)
    source = source_directory(model)
    places = [d for d in (source, directory) if d is not None and os.path.isdir(d)]
    if vocabulary is not None:
        vocabulary = load_vocabulary(vocabulary, lowercase=(tokenizer_settings or {}).get("lowercase"))
    elif tokenizer is not None:
        vocabulary = tokenizer.vocabulary
    else:
        found = next((d for d in places if vocabulary_path(d)), None)
        vocabulary = load_vocabulary(found) if found else None
    if tokenizer_settings is None:
        if tokenizer is not None:
            tokenizer_settings = {"lowercase": bool(tokenizer.lowercase), "sequence_length": int(tokenizer.sequence_length)}
        else:
            found = next((d for d in places if os.path.isfile(os.path.join(d, TOKENIZER_FILE))), None)
            tokenizer_settings = read_tokenizer_settings(found) if found else None
    if vocabulary is not None and tokenizer_settings is None:
        tokenizer_settings = vocabulary.settings()  # the kind and casing always travel with the file
    if vocabulary is not None and tokenizer_settings is not None:
        vocabulary = vocabulary.with_casing(tokenizer_settings.get("lowercase"))
        tokenizer_settings = {**tokenizer_settings, "kind": vocabulary.kind}
    if source is not None and vocabulary is None and not os.path.isdir(source):
        logger.warning("%s: the directory this model was loaded from is gone; no vocabulary is written", source)
    return vocabulary, tokenizer_settings


def save_pretrained(model, directory, vocabulary=None, overwrite=True, tokenizer_settings=None, spm_model=None):
    """Write `model` (an encoder, pretrainer or task model) as a pretrained directory.

    The directory is written under a temporary name and renamed when complete. The tokenizer
    (`spiece.model` or `vocab.txt`, and `tokenizer.json`) comes from, in this order: the arguments, the model's
    preprocessor, the directory the model was loaded from, the directory being replaced.

    Args:
        model: an `AlbertEncoder` or a model with an `.encoder` (pretrainer, task models).
        directory: the output directory.
        vocabulary: optional vocabulary to write (anything `load_vocabulary` takes: a `Vocabulary`,
            a path to `spiece.model` / `vocab.txt`, or bytes).
        overwrite: replace an existing directory.
        tokenizer_settings: `{"lowercase": bool, "sequence_length": int or None}` written as
            `tokenizer.json` (with the vocabulary's kind).
        spm_model: the former name of `vocabulary`.

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
    vocabulary, tokenizer_settings = _tokenizer_assets(
        model, directory, vocabulary if vocabulary is not None else spm_model, tokenizer_settings
    )
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        encoder.config.to_json_file(os.path.join(tmp, CONFIG_FILE))
        encoder.save_weights(os.path.join(tmp, ENCODER_WEIGHTS_FILE))
        description = {"class": class_name, "arguments": {} if is_encoder else model.pretrained_arguments()}
        steps = trained_steps(model)
        if steps:
            description["trained_steps"] = steps
        with open(os.path.join(tmp, MODEL_FILE), "w") as f:
            json.dump(description, f, indent=2, sort_keys=True)
        if not is_encoder:
            model.save_weights(os.path.join(tmp, MODEL_WEIGHTS_FILE))
        if vocabulary is not None:
            vocabulary.save(tmp)
        if tokenizer_settings is not None:
            write_tokenizer_settings(tmp, tokenizer_settings)
    return directory


def trained_steps(model):
    """The updates `model`'s optimizer has made (this run's, or since the restored checkpoint's
    start), or None for a model never compiled: what `save_pretrained` records as evidence of training.

    Example:
    ```python
    trained_steps(encoder)  # None: built, never compiled
    ```
    """
    optimizer = getattr(model, "optimizer", None)
    iterations = getattr(optimizer, "iterations", None)
    if iterations is None:
        return None
    import keras

    return int(keras.ops.convert_to_numpy(iterations))


def untrained_weights(directory):
    """Why `directory` holds no trained weights, or None when it holds trained ones (or cannot tell).

    A directory whose `model.json` records `trained_steps` (written by `save_pretrained` after
    training) is trained. Otherwise (a fresh model saved as it was built, a directory from
    elsewhere) its `encoder.weights.h5` is read: it is untrained when at least one array is exactly
    all ones (a LayerNorm gamma) and every array is exactly all ones, exactly all zeros (betas,
    biases), or spread like the initializer (mean within 0.25 x `initializer_range` of 0, standard
    deviation 0.5 to 1.5 x `initializer_range`). One training step moves every gamma off 1, so
    any trained or converted model fails the rule at its first LayerNorm; arrays are read smallest
    first, so a trained one is judged after reading a few vectors.

    Example:
    ```python
    untrained_weights("runs/base/pretrained")  # None
    ```
    """
    import h5py
    import numpy as np

    directory = os.fspath(directory)
    model_file = os.path.join(directory, MODEL_FILE)
    if os.path.isfile(model_file):
        with open(model_file) as f:
            if (json.load(f) or {}).get("trained_steps"):
                return None
    with open(os.path.join(directory, CONFIG_FILE)) as f:
        initializer_range = float(json.load(f).get("initializer_range", 0.02))
    datasets = []
    with h5py.File(os.path.join(directory, ENCODER_WEIGHTS_FILE), "r") as weights:
        weights.visititems(lambda name, item: datasets.append(item) if isinstance(item, h5py.Dataset) else None)
        ones = drawn = 0
        for dataset in sorted(datasets, key=lambda item: item.size):
            values = np.asarray(dataset[()], np.float64)
            if not values.size:
                continue
            if np.all(values == 1.0):
                ones += 1
            elif not np.all(values == 0.0):
                if not (abs(values.mean()) <= 0.25 * initializer_range
                        and 0.5 * initializer_range <= values.std() <= 1.5 * initializer_range):
                    return None
                drawn += 1
    if not ones:
        return None
    return (f"every LayerNorm gamma in {ENCODER_WEIGHTS_FILE} is exactly 1, every beta and bias exactly 0, and its "
            f"{drawn} other arrays are spread like the initializer (std about initializer_range "
            f"{initializer_range:g}): weights as built, never trained")


def file_sha256(path):
    """Hex sha256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pretrained_fingerprint(directory):
    """What identifies a pretrained directory's model: sha256 of each defining file and of all.

    The files are `FINGERPRINT_FILES` that exist (config, model description, weights, tokenizer),
    so the same directory copied anywhere has the same fingerprint.

    Returns:
        `{"sha256": hex digest over the files' names and digests, "files": {name: hex digest}}`.

    Example:
    ```python
    pretrained_fingerprint("runs/sentiment")["sha256"]
    ```
    """
    directory = _check_directory(directory)
    files = {}
    for name in FINGERPRINT_FILES:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            files[name] = file_sha256(path)
    total = hashlib.sha256("".join(f"{name}\0{digest}\n" for name, digest in files.items()).encode())
    return {"sha256": total.hexdigest(), "files": files}


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
    """The path of the directory's vocabulary file (either kind), or None: `vocabulary_path`."""
    return vocabulary_path(directory)


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

    directory = _check_directory(directory)
    config = AlbertConfig.from_json_file(os.path.join(directory, CONFIG_FILE))
    encoder = _PRETRAINED_CLASSES["AlbertEncoder"](config, **encoder_kwargs)
    _load_weights(encoder, os.path.join(directory, ENCODER_WEIGHTS_FILE))
    _remember_source(encoder, directory)
    return encoder


def load_encoder_weights(encoder, directory):
    """Load a pretrained directory's `encoder.weights.h5` into `encoder` (what `AlbertEncoder(dir)` does).

    Raises:
        AlbertInputError: the directory has no encoder weights, or they do not fit.

    Example:
    ```python
    encoder = AlbertEncoder("runs/quickstart/pretrain/pretrained")  # config and weights
    ```
    """
    directory = os.fspath(directory)
    path = os.path.join(directory, ENCODER_WEIGHTS_FILE)
    if not os.path.isfile(path):
        raise AlbertInputError(
            f"{directory}: no {ENCODER_WEIGHTS_FILE} to load; for a fresh encoder with this config pass "
            f"AlbertConfig.from_json_file('{os.path.join(directory, CONFIG_FILE)}')"
        )
    _load_weights(encoder, path)
    _remember_source(encoder, directory)


def _load_weights(model, path):
    from albert_keras.modeling.fusion import load_weights_any_fuse

    try:
        load_weights_any_fuse(model, path)
    except (ValueError, OSError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AlbertInputError(f"{path}: weights do not fit the model ({message})") from None


def _shape_differences(saved, model):
    """`"name [saved shape] vs [wanted shape]"` for each weight whose shape differs."""
    if len(saved.weights) != len(model.weights):
        return [f"{len(saved.weights)} saved weights vs {len(model.weights)}"]
    return [
        f"{b.path} {list(a.shape)} saved, {list(b.shape)} wanted"
        for a, b in zip(saved.weights, model.weights)
        if tuple(a.shape) != tuple(b.shape)
    ]


def load_model_class(cls, directory, dtype=None, **arguments):
    """Build `cls` from a pretrained directory; see `PretrainedMixin.from_pretrained`.

    The saved head loads whenever its weights fit: arguments that change no weight shape
    (dropout, labels) never decide it. A saved head that cannot load is a warning naming it.
    """
    directory = _check_directory(directory)
    description = read_model_description(directory)
    encoder_kwargs = {"dtype": dtype} if dtype is not None else {}
    if cls.__name__ == "AlbertEncoder":
        return load_encoder(directory, **arguments, **encoder_kwargs)
    encoder = load_encoder(directory, **encoder_kwargs)
    saved_class, saved_arguments = description["class"], dict(description["arguments"])
    weights = os.path.join(directory, MODEL_WEIGHTS_FILE)
    if saved_class != cls.__name__ or not os.path.isfile(weights):
        if saved_class in TASK_CLASSES and saved_class != cls.__name__:
            logger.warning(
                "%s: holds an %s; its head is not used by %s, which starts a fresh head", directory, saved_class,
                cls.__name__,
            )
        model = cls(encoder, **arguments)
        _remember_source(model, directory)
        setattr(model, HEAD_ATTRIBUTE, False)
        return model
    if "num_classes" in arguments and "labels" not in arguments and "labels" in saved_arguments:
        if len(saved_arguments["labels"]) != arguments["num_classes"]:
            saved_labels = saved_arguments.pop("labels")
            logger.warning("%s: num_classes=%s drops the saved labels %s", directory, arguments["num_classes"],
                           saved_labels)
    merged = {**saved_arguments, **arguments}
    model = cls(encoder, **merged)
    restored = True
    if merged == description["arguments"]:
        _load_weights(model, weights)
    else:
        # Load into a model built exactly as saved, then copy what fits: only shapes decide.
        saved = cls(encoder, **description["arguments"])
        _load_weights(saved, weights)
        differences = _shape_differences(saved, model)
        restored = not differences
        if differences:
            logger.warning(
                "%s: the saved %s head does not fit %s (%s); it starts fresh", directory, saved_class,
                ", ".join(f"{k}={v!r}" for k, v in sorted(arguments.items())), "; ".join(differences),
            )
        else:
            for source, target in zip(saved.weights, model.weights):
                if source is not target:
                    target.assign(source)
    _remember_source(model, directory)
    setattr(model, HEAD_ATTRIBUTE, restored)
    return model


def load_pretrained(directory, dtype=None):
    """Rebuild the model saved in a pretrained directory (its class, arguments, weights and tokenizer).

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
    # The class's own `from_pretrained`, so that a model which takes raw text gets the directory's
    # tokenizer here too (as `AlbertClassifier.from_pretrained(directory)` gives it).
    return classes[description["class"]].from_pretrained(directory, dtype=dtype)


class PretrainedMixin:
    """Adds `save_pretrained(dir)` and `from_pretrained(dir)` to the ALBERT model classes.

    A subclass whose name does not start with `_` is a class a pretrained directory may hold.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _PRETRAINED_CLASSES[cls.__name__] = cls

    def save_pretrained(self, directory, vocabulary=None, overwrite=True, tokenizer_settings=None, spm_model=None):
        """Write this model as a pretrained directory; see `albert_keras.save_pretrained`."""
        return save_pretrained(
            self, directory, vocabulary=vocabulary if vocabulary is not None else spm_model, overwrite=overwrite,
            tokenizer_settings=tokenizer_settings,
        )

    @classmethod
    def from_pretrained(cls, directory, dtype=None, **arguments):
        """Build this class from a pretrained directory.

        The encoder's weights always load. The head loads when the directory holds the same class
        and its weights fit the arguments given (`dropout`, `labels` never prevent it); a saved head
        that does not fit starts fresh, with a warning naming it.

        Args:
            directory: a pretrained directory.
            dtype: optional dtype policy.
            **arguments: the class's own arguments, e.g. `num_classes=3` for `AlbertClassifier`.
        """
        return load_model_class(cls, directory, dtype=dtype, **arguments)
