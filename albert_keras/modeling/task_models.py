"""Fine-tuning models: classification/regression, token tagging, extractive QA, multiple choice.

Each is a functional `keras.Model` that takes the encoder's input dict (`token_ids`,
`segment_ids`, `padding_mask`), holds the encoder as `.encoder`, and returns float32 logits, so
`compile(loss=..., metrics=...)` and `fit` work as for any Keras model. The classifier and the
multiple-choice model also take raw text when they carry a preprocessor
(`from_pretrained(dir)` attaches the directory's tokenizer; see `modeling/preprocessing.py`).
"""

import keras

from albert_keras.modeling import preprocessing
from albert_keras.modeling.base import AlbertEncoderModel
from albert_keras.modeling.encoder import albert_initializer

ENCODER_INPUTS = ("token_ids", "segment_ids", "padding_mask")


def _encoder_inputs(extra_shape=()):
    return {
        name: keras.Input(shape=tuple(extra_shape) + (None,), dtype="int32", name=name)
        for name in ENCODER_INPUTS
    }


@keras.saving.register_keras_serializable(package="albert_keras")
class FoldChoices(keras.layers.Layer):
    """Reshapes `[batch, choices, seq]` to `[batch * choices, seq]`.

    A layer rather than an op in the functional graph because the sequence length is only known
    when the model is called.

    Example:
    ```python
    FoldChoices()(np.zeros((2, 4, 7), "int32")).shape  # (8, 7)
    ```
    """

    def call(self, inputs):
        return keras.ops.reshape(inputs, (-1, keras.ops.shape(inputs)[-1]))

    def compute_output_shape(self, input_shape):
        return (None, input_shape[-1])


def _num_classes(num_classes, labels):
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(set(labels)) != len(labels) or not labels:
            raise ValueError(f"labels must be distinct and non-empty, got {labels}")
        if num_classes is not None and int(num_classes) != len(labels):
            raise ValueError(f"num_classes={num_classes} but {len(labels)} labels {labels}")
        return len(labels), labels
    if num_classes is None:
        raise ValueError("give num_classes or labels")
    return int(num_classes), None


class TextTaskModel(preprocessing.TextTaskMixin):
    """Mixin (before the `AlbertEncoderModel` base) for task models that take raw text when they
    carry an `AlbertTextPreprocessor`. A mixin, not a base class: Keras' functional-model class
    injection fails on diamond hierarchies.

    `from_pretrained(dir, sequence_length=...)` attaches the directory's tokenizer
    (its vocabulary + tokenizer.json); `save_pretrained` writes it back; `get_config` (`.keras`)
    serializes it (`PreprocessorSlot`).
    """

    @classmethod
    def from_pretrained(cls, directory, dtype=None, sequence_length=None, **arguments):
        """Build the model from a pretrained directory, with the directory's tokenizer.

        Args:
            directory: a pretrained directory (with a vocabulary for raw text input).
            dtype: optional dtype policy.
            sequence_length: packed length of the preprocessor (default: the directory's
                `tokenizer.json`, else 128).
            **arguments: the class's own arguments (`num_classes`, `labels`, `num_choices`, ...).

        Example:
        ```python
        classifier = AlbertClassifier.from_pretrained("pretrained_dir", labels=["neg", "pos"])
        classifier.predict(["a fine film."])
        ```
        """
        model = super().from_pretrained(directory, dtype=dtype, **arguments)
        model.preprocessor = preprocessing.preprocessor_from_directory(
            directory, mode=cls.preprocessor_mode, sequence_length=sequence_length,
            max_positions=model.encoder.config.max_position_embeddings,
        )
        return model


class _DenseOutputModel(AlbertEncoderModel):
    """Dropout and a dense output layer on one of the encoder's outputs (`output_key`)."""

    output_key = None

    def __init__(self, encoder, num_classes=None, dropout=0.1, labels=None, **kwargs):
        num_classes, labels = _num_classes(num_classes, labels)
        self.encoder = encoder
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=albert_initializer(encoder.config),
            dtype=encoder.dtype_policy,
            name="logits",
        )
        inputs = _encoder_inputs()
        features = encoder(inputs)[self.output_key]
        logits = self.output_dense(self.output_dropout(features))
        super().__init__(inputs=inputs, outputs=keras.ops.cast(logits, "float32"), **kwargs)
        self.num_classes = num_classes
        self.labels = labels
        self._arguments = {"num_classes": num_classes, "dropout": dropout}
        if labels is not None:
            self._arguments["labels"] = list(labels)


@keras.saving.register_keras_serializable(package="albert_keras")
class AlbertClassifier(TextTaskModel, _DenseOutputModel):
    """Sentence (pair) classification or regression on the pooled output.

    Args:
        encoder: an `AlbertEncoder`.
        num_classes: number of classes; `1` makes a regression model (one linear output).
            Defaults to `len(labels)`.
        dropout: dropout on the pooled output before the output layer (the official fine-tuning
            scripts use 0.1).
        labels: optional class names, index order (stored in `model.json`, `.keras` and export;
            `fit` then also accepts them as targets and `predict_labels` returns them).
        preprocessor: optional `AlbertTextPreprocessor`, so `fit`/`evaluate`/`predict` take raw
            strings or `(texts_a, texts_b)` pairs; `from_pretrained` attaches one.

    Outputs: float32 logits `[batch, num_classes]`.

    Example:
    ```python
    import numpy as np
    from albert_keras import AlbertConfig, AlbertEncoder, AlbertClassifier

    config = AlbertConfig(vocab_size=100, embedding_size=8, hidden_size=16,
                          num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    model = AlbertClassifier(AlbertEncoder(config), num_classes=3)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = {"token_ids": np.ones((4, 6), "int32"), "segment_ids": np.zeros((4, 6), "int32"),
         "padding_mask": np.ones((4, 6), "int32")}
    model.fit(x, np.array([0, 1, 2, 1]), verbose=0)

    # From a pretrained directory, on raw text:
    classifier = AlbertClassifier.from_pretrained("pretrained_dir", labels=["negative", "positive"])
    classifier.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    classifier.fit(["a fine film.", "a dull film."], ["positive", "negative"], batch_size=2)
    classifier.predict_labels(["what a fine film."])  # ["positive"]
    ```
    """

    output_key = "pooled_output"

    def __init__(self, encoder, num_classes=None, dropout=0.1, labels=None, preprocessor=None, **kwargs):
        super().__init__(encoder, num_classes=num_classes, dropout=dropout, labels=labels, **kwargs)
        self.preprocessor = preprocessor

    def predict_labels(self, x, batch_size=None, **kwargs):
        """The predicted label names (or class indices without labels; scores for regression).

        Example:
        ```python
        classifier.predict_labels(["a fine film.", "a dull film."])  # ["positive", "negative"]
        ```
        """
        import numpy as np

        logits = self.predict(x, batch_size=batch_size, verbose=kwargs.pop("verbose", 0), **kwargs)
        if self.num_classes == 1:
            return [float(v) for v in logits[:, 0]]
        ids = np.argmax(logits, axis=-1)
        return [self.labels[i] for i in ids] if self.labels else [int(i) for i in ids]


@keras.saving.register_keras_serializable(package="albert_keras")
class AlbertTokenClassifier(_DenseOutputModel):
    """Per-token classification (named entities, tagging) on the sequence output.

    Args:
        encoder: an `AlbertEncoder`.
        num_classes: number of tags.
        dropout: dropout on the sequence output before the output layer.

    Outputs: float32 logits `[batch, seq, num_classes]`.

    Example:
    ```python
    model = AlbertTokenClassifier(AlbertEncoder(config), num_classes=5)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ```
    """

    output_key = "sequence_output"


@keras.saving.register_keras_serializable(package="albert_keras")
class AlbertQuestionAnswerer(AlbertEncoderModel):
    """Extractive question answering (SQuAD): start and end logits for every token.

    The input is `[CLS] question [SEP] context [SEP]`. The `[CLS]` position's logits score "no
    answer" (SQuAD 2.0): predict no answer when `start_logits[:, 0] + end_logits[:, 0]` beats the
    best span. Padded positions get a large negative logit so they are never chosen.

    Args:
        encoder: an `AlbertEncoder`.

    Outputs: a dict with float32 `start_logits` and `end_logits`, each `[batch, seq]`.

    Example:
    ```python
    model = AlbertQuestionAnswerer(AlbertEncoder(config))
    ```
    """

    def __init__(self, encoder, **kwargs):
        self.encoder = encoder
        self.span_dense = keras.layers.Dense(
            2,
            kernel_initializer=albert_initializer(encoder.config),
            dtype=encoder.dtype_policy,
            name="span_logits",
        )
        inputs = _encoder_inputs()
        sequence = encoder(inputs)["sequence_output"]
        logits = keras.ops.cast(self.span_dense(sequence), "float32")
        invalid = (1.0 - keras.ops.cast(inputs["padding_mask"], "float32")) * -1e9
        super().__init__(
            inputs=inputs,
            outputs={"start_logits": logits[..., 0] + invalid, "end_logits": logits[..., 1] + invalid},
            **kwargs,
        )
        self._arguments = {}


@keras.saving.register_keras_serializable(package="albert_keras")
class AlbertMultipleChoice(TextTaskModel, AlbertEncoderModel):
    """Multiple choice (RACE, SWAG): one score per `[CLS] context [SEP] choice [SEP]` sequence.

    Args:
        encoder: an `AlbertEncoder`.
        num_choices: choices per example.
        dropout: dropout on the pooled output.
        preprocessor: optional `AlbertTextPreprocessor` in `"multiple_choice"` mode, so `fit`,
            `evaluate` and `predict` take `(contexts, choices)` with `choices` a list of lists.

    Inputs: the encoder's dict with `[batch, num_choices, seq]` tensors.
    Outputs: float32 logits `[batch, num_choices]`.

    Example:
    ```python
    model = AlbertMultipleChoice(AlbertEncoder(config), num_choices=4)
    # With a preprocessor: model.predict((["Pick a colour."], [["red", "blue", "green", "tea"]]))
    ```
    """

    preprocessor_mode = preprocessing.MULTIPLE_CHOICE

    def __init__(self, encoder, num_choices, dropout=0.1, preprocessor=None, **kwargs):
        self.encoder = encoder
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            1,
            kernel_initializer=albert_initializer(encoder.config),
            dtype=encoder.dtype_policy,
            name="choice_logit",
        )
        inputs = _encoder_inputs(extra_shape=(num_choices,))
        # Fold the choices into the batch so the encoder sees ordinary [batch, seq] inputs.
        fold = FoldChoices(name="fold_choices")
        flat = {name: fold(tensor) for name, tensor in inputs.items()}
        pooled = encoder(flat)["pooled_output"]
        scores = self.output_dense(self.output_dropout(pooled))
        logits = keras.ops.reshape(keras.ops.cast(scores, "float32"), (-1, num_choices))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self.num_choices = num_choices
        self._arguments = {"num_choices": num_choices, "dropout": dropout}
        self.preprocessor = preprocessor
