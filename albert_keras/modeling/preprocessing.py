"""Raw text in `fit`, `evaluate` and `predict`: the preprocessor a task model carries.

As in keras-hub's `Task`, the model graph itself takes token ids; a task model built with
`from_pretrained(dir)` holds an `AlbertTextPreprocessor` (the directory's vocabulary, its
casing, a sequence length) and maps it over the input pipeline whenever `fit`, `evaluate` or
`predict` receive strings. Token dicts pass through unchanged, so every earlier use still works.

Input forms (`x`):
- single texts: a list / numpy array / `tf.data` element of strings `[B]`;
- pairs: a tuple `(texts_a, texts_b)`;
- multiple choice: a tuple `(contexts, choices)` with `choices` a list of lists `[B, C]`.
"""

import keras
import numpy as np

from albert_keras.compat import accept_any_call_arguments
from albert_keras.errors import AlbertInputError
from albert_keras.tokenization.vocabulary import DEFAULT_SEQUENCE_LENGTH
from albert_keras.tokenization.layer import AlbertTokenizer

TEXT = "text"
MULTIPLE_CHOICE = "multiple_choice"
MODES = (TEXT, MULTIPLE_CHOICE)


@keras.saving.register_keras_serializable(package="albert_keras")
class AlbertTextPreprocessor(keras.layers.Layer):
    """Strings (single, pairs, or context + choices) to a task model's packed int32 inputs.

    Args:
        tokenizer: an `AlbertTokenizer` (its `sequence_length` is the packed length).
        mode: `"text"` (one text or a pair `(a, b)` per example) or `"multiple_choice"`
            (`(contexts [B], choices [B, C])`, packed as `[CLS] context [SEP] choice [SEP]`).
        **kwargs: `keras.layers.Layer` arguments.

    Returns (call): dict of int32 `token_ids`, `segment_ids`, `padding_mask`, `[B, T]` (or
    `[B, C, T]` for multiple choice).

    Example:
    ```python
    from albert_keras.tokenization import AlbertTokenizer
    preprocessor = AlbertTextPreprocessor(AlbertTokenizer("spiece.model", sequence_length=32))
    preprocessor(["a fine film."])["token_ids"].shape  # (1, 32)
    choices = AlbertTextPreprocessor(preprocessor.tokenizer, mode="multiple_choice")
    choices((["Pick a colour."], [["red", "blue"]]))["token_ids"].shape  # (1, 2, 32)
    ```
    """

    def __init__(self, tokenizer, mode=TEXT, **kwargs):
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        accept_any_call_arguments(self)
        self.tokenizer = tokenizer
        self.mode = mode
        self.built = True

    @property
    def sequence_length(self):
        return self.tokenizer.sequence_length

    def call(self, inputs):
        import tensorflow as tf

        if self.mode == TEXT:
            return self.tokenizer(inputs)
        contexts, choices = inputs
        contexts = tf.convert_to_tensor(contexts, tf.string)
        choices = tf.convert_to_tensor(choices, tf.string)
        batch, num_choices = tf.shape(choices)[0], tf.shape(choices)[1]
        repeated = tf.reshape(tf.repeat(tf.expand_dims(contexts, 1), num_choices, axis=1), [-1])
        flat = self.tokenizer((repeated, tf.reshape(choices, [-1])))
        length = self.sequence_length if self.tokenizer.pad_to_sequence_length else -1
        return {key: tf.reshape(value, [batch, num_choices, length]) for key, value in flat.items()}

    def get_config(self):
        config = super().get_config()
        config.update({"tokenizer": keras.saving.serialize_keras_object(self.tokenizer), "mode": self.mode})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        return cls(**config)


def preprocessor_from_directory(directory, mode=TEXT, sequence_length=None, max_positions=None):
    """The `AlbertTextPreprocessor` of a pretrained directory, or None if it has no vocabulary.

    `sequence_length` defaults to the directory's `tokenizer.json`, else
    `DEFAULT_SEQUENCE_LENGTH` (128), capped at the model's `max_positions`.

    Example:
    ```python
    preprocessor = preprocessor_from_directory("runs/quickstart/pretrain/pretrained", sequence_length=64)
    ```
    """
    from albert_keras.tokenization.vocabulary import load_vocabulary
    from albert_keras.tokenization.vocabulary import read_tokenizer_settings
    from albert_keras.tokenization.vocabulary import vocabulary_path

    if vocabulary_path(directory) is None:
        return None
    vocabulary = load_vocabulary(directory)
    length = sequence_length or read_tokenizer_settings(directory).get("sequence_length") or DEFAULT_SEQUENCE_LENGTH
    if max_positions:
        if sequence_length and sequence_length > max_positions:
            raise AlbertInputError(
                f"{directory}: sequence_length {sequence_length} exceeds the model's max_position_embeddings "
                f"{max_positions}"
            )
        length = min(length, max_positions)
    return AlbertTextPreprocessor(AlbertTokenizer(vocabulary, sequence_length=length, name="tokenizer"), mode=mode,
                                  name="preprocessor")


# ---------------------------------------------------------------------------- input detection


def _is_text_array(value):
    if isinstance(value, str):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind in ("U", "S", "O")
    if isinstance(value, list):
        first = value[0] if value else ""
        return isinstance(first, (str, bytes)) or (isinstance(first, list) and (not first or isinstance(first[0], str)))
    return _is_string_tensor(value)


def _is_string_tensor(value):
    dtype = getattr(value, "dtype", None)
    return dtype is not None and getattr(dtype, "name", str(dtype)) == "string"


def is_raw_text(x):
    """Whether `x` is raw text (strings, a pair or context/choices tuple of them), not token ids.

    Example:
    ```python
    is_raw_text(["a film"]), is_raw_text((["q"], ["c"])), is_raw_text({"token_ids": ids})
    # (True, True, False)
    ```
    """
    if isinstance(x, dict) or x is None:
        return False
    if isinstance(x, tuple):
        return len(x) == 2 and all(_is_text_array(part) for part in x)
    return _is_text_array(x)


def _dataset_has_text(dataset):
    spec = dataset.element_spec
    x_spec = spec[0] if isinstance(spec, tuple) and not _is_text_spec(spec) else spec
    return _is_text_spec(x_spec)


def _is_text_spec(spec):
    import tensorflow as tf

    leaves = tf.nest.flatten(spec)
    return bool(leaves) and all(getattr(leaf, "dtype", None) == tf.string for leaf in leaves)


def _to_array(value, what):
    if isinstance(value, np.ndarray) or _is_string_tensor(value):
        return value
    if isinstance(value, str):
        return np.array([value], dtype=object)
    if isinstance(value, list) and value and isinstance(value[0], (list, tuple)):
        counts = {len(row) for row in value}
        if len(counts) > 1:
            raise AlbertInputError(f"{what}: every example needs the same number of choices, got {sorted(counts)}")
    return np.array(value, dtype=object)


def _encode_targets(y, labels):
    """Label names (strings) to their indices in `labels`; anything else unchanged."""
    if y is None or labels is None:
        return y
    values = np.asarray(y, dtype=object) if isinstance(y, (list, tuple)) else y
    if isinstance(values, np.ndarray) and values.dtype.kind in ("U", "S", "O") and values.size and isinstance(
        values.flat[0], str
    ):
        index = {str(label): i for i, label in enumerate(labels)}
        unknown = [str(v) for v in values.flat if str(v) not in index]
        if unknown:
            raise AlbertInputError(f"y: label {unknown[0]!r} is not one of the model's labels {list(labels)}")
        return np.array([index[str(v)] for v in values.flat], dtype="int32").reshape(values.shape)
    return y


class PreprocessorSlot:
    """A model's `preprocessor` attribute, held outside Keras' layer tracking (as keras-hub removes
    its preprocessor from `layers`), so weights files are the same with and without one; the
    model's config (and so a `.keras` file) carries it.

    Example:
    ```python
    model.preprocessor = preprocessor_from_directory("runs/sentiment")
    model.preprocessor.tokenizer.sequence_length  # 128
    ```
    """

    # Why past Keras: an ordinary assignment of a layer is tracked (its variables join the model's
    # weights and weights file), and once the model is built Keras' tracker is locked and refuses a
    # new layer outright; Keras has no public "untracked attribute", so the slot writes the instance
    # dictionary itself (keras-hub's task models also keep their preprocessor out of `layers`).
    @property
    def preprocessor(self):
        return self.__dict__.get("_preprocessor")

    def __setattr__(self, name, value):
        if name == "preprocessor":
            object.__setattr__(self, "_preprocessor", value)  # see above: past Keras' tracker
            return
        super().__setattr__(name, value)

    # Untracked, the preprocessor is not in the layer graph, so the config carries it: a `.keras`
    # file then reloads a model that still takes raw text.
    def get_config(self):
        config = super().get_config()
        if self.preprocessor is not None:
            config["preprocessor"] = keras.saving.serialize_keras_object(self.preprocessor)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        preprocessor = config.pop("preprocessor", None)
        model = super().from_config(config)
        if preprocessor is not None:
            model.preprocessor = keras.saving.deserialize_keras_object(preprocessor)
        return model


class TextTaskMixin(PreprocessorSlot):
    """`fit`, `evaluate` and `predict` that accept raw text when the model has a preprocessor.

    Mixed into the task models before `keras.Model`. The preprocessor is held outside Keras'
    layer tracking (as keras-hub removes its preprocessor from `layers`), so weights files are
    the same with and without one.

    Example:
    ```python
    model = AlbertClassifier.from_pretrained("pretrained_dir", labels=["negative", "positive"])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(["a fine film.", "a dull film."], ["positive", "negative"], batch_size=2, epochs=1)
    model.predict(["what a fine film."])  # logits [1, 2]
    ```
    """

    preprocessor_mode = TEXT

    def _require_preprocessor(self):
        if self.preprocessor is None:
            source = getattr(self, "_pretrained_source", None)  # pretrained.SOURCE_ATTRIBUTE
            where = f"{source}: no vocabulary" if source else f"{self.name}: no preprocessor"
            raise AlbertInputError(
                f"{where}; raw text needs the model's vocabulary (build the model with from_pretrained on a "
                "directory holding spiece.model or vocab.txt, or pass token dicts)"
            )
        return self.preprocessor

    def preprocess_samples(self, x, y=None, sample_weight=None):
        """Tokenize `x` (a batch of strings, pairs or context/choices) for the model graph."""
        x = self._require_preprocessor()(x)
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def text_dataset(self, x, y=None, sample_weight=None, batch_size=None, shuffle=False, seed=None):
        """Batched, tokenized `tf.data.Dataset` from raw text (arrays) or a dataset of strings."""
        import tensorflow as tf

        self._require_preprocessor()  # here, not inside the dataset's traced map (clear error)
        if isinstance(x, tf.data.Dataset):
            dataset = x
        else:
            if isinstance(x, tuple):
                x = tuple(_to_array(part, "x") for part in x)
            else:
                x = _to_array(x, "x")
            y = _encode_targets(y, getattr(self, "labels", None))
            if y is not None and _is_text_array(y):
                raise AlbertInputError(f"y: string labels need a model with labels=[...] ({self.name} has none)")
            parts = tuple(part for part in (x, y, sample_weight) if part is not None)
            dataset = tf.data.Dataset.from_tensor_slices(parts if len(parts) > 1 else parts[0])
            if shuffle:
                dataset = dataset.shuffle(10000, seed=seed, reshuffle_each_iteration=True)
            dataset = dataset.batch(batch_size or 32)

        # An element that is all strings is `x` alone (a text, a pair, or context + choices):
        # datasets carry labels as numbers. Anything else is `(x, y)` or `(x, y, sample_weight)`.
        spec = dataset.element_spec
        x_only = not isinstance(spec, tuple) or _is_text_spec(spec)

        def preprocess(*element):
            if x_only:
                return self.preprocess_samples(element if len(element) > 1 else element[0])
            return self.preprocess_samples(*element)

        return dataset.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def _convert(self, x, y, sample_weight, batch_size, shuffle=False):
        import tensorflow as tf

        if isinstance(x, tf.data.Dataset):
            if _dataset_has_text(x):
                return self.text_dataset(x), None, None, None
            return x, y, sample_weight, batch_size
        if is_raw_text(x):
            return self.text_dataset(x, y, sample_weight, batch_size, shuffle=shuffle), None, None, None
        return x, y, sample_weight, batch_size

    def _convert_validation(self, validation_data, batch_size):
        import tensorflow as tf

        if validation_data is None or isinstance(validation_data, tf.data.Dataset):
            return self._convert(validation_data, None, None, None)[0] if validation_data is not None else None
        if isinstance(validation_data, tuple) and len(validation_data) in (2, 3) and is_raw_text(validation_data[0]):
            return self.text_dataset(*validation_data, batch_size=batch_size)
        return validation_data

    def fit(self, x=None, y=None, batch_size=None, epochs=1, sample_weight=None, validation_data=None,
            shuffle=True, **kwargs):
        converted, y, sample_weight, batch = self._convert(x, y, sample_weight, batch_size, shuffle=shuffle)
        validation_data = self._convert_validation(validation_data, batch_size)
        if converted is not x:
            shuffle = False  # shuffled by `text_dataset` before batching
        return super().fit(x=converted, y=y, batch_size=batch, epochs=epochs, sample_weight=sample_weight,
                           validation_data=validation_data, shuffle=shuffle, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        x, y, sample_weight, batch = self._convert(x, y, sample_weight, batch_size)
        return super().evaluate(x=x, y=y, batch_size=batch, sample_weight=sample_weight, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        x, _, _, batch = self._convert(x, None, None, batch_size)
        return super().predict(x, batch_size=batch, **kwargs)
