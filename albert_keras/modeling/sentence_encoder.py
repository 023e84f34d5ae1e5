"""`AlbertSentenceEncoder`: the encoder with mean pooling, trained contrastively (SimCSE).

Unsupervised SimCSE (Gao et al., 2021) passes each sentence through the encoder twice with dropout
as the only noise; the two embeddings of a sentence are a positive pair and the other sentences of
the batch are negatives (InfoNCE with a temperature). Supervised SimCSE uses given pairs (anchor,
positive) and optionally a hard negative per anchor. Both are one loss here: a batch holds `G`
texts per example, `[anchor, positive(, negative)]`, and each anchor must pick its own positive out
of every other example's positives and negatives.
"""

import keras

from albert_keras.modeling.base import AlbertEncoderModel
from albert_keras.modeling.preprocessing import PreprocessorSlot

FEATURES = ("token_ids", "segment_ids", "padding_mask")
DEFAULT_TEMPERATURE = 0.05


def masked_mean_l2(sequence_output, padding_mask):
    """The L2-normalized mean of `sequence_output` over the positions where `padding_mask` is 1.

    The same computation as the exported `sentence_embedding` signature output
    (`albert_keras.export.signatures`), in Keras ops so it trains inside a Keras model.

    Example:
    ```python
    import numpy as np
    masked_mean_l2(np.ones((1, 3, 4), "float32"), np.array([[1, 1, 0]]))  # [[0.5, 0.5, 0.5, 0.5]]
    ```
    """
    ops = keras.ops
    mask = ops.expand_dims(ops.cast(padding_mask, sequence_output.dtype), 2)
    total = ops.sum(sequence_output * mask, axis=1)
    mean = total / ops.maximum(ops.sum(mask, axis=1), 1.0)
    return mean / ops.sqrt(ops.maximum(ops.sum(mean * mean, axis=-1, keepdims=True), 1e-24))


@keras.saving.register_keras_serializable(package="albert_keras")
class AlbertSentenceEncoder(PreprocessorSlot, AlbertEncoderModel):
    """An `AlbertEncoder` whose `sentence_embedding` output is trained for similarity (SimCSE).

    The embedding is the mean of the last layer over real tokens, L2-normalized (what the exported
    `sentence_embedding` signature serves, so a trained model exports like an encoder).

    Training data: `fit` reads dicts of int32 `token_ids`, `segment_ids`, `padding_mask` shaped
    `[B, G, T]`: `G` texts per example, the anchor first, then its positive (and, for `G = 3`, a
    hard negative). Unsupervised SimCSE puts the same sentence in both places: dropout makes the
    two passes differ. The loss is InfoNCE: for anchor `i`, softmax over the cosine similarities
    to all `B x (G - 1)` candidates of the batch, divided by `temperature`, with its own positive
    as the target. `fit` reports `loss` and `contrastive_accuracy` (how often the own positive
    wins).

    Args:
        encoder: an `AlbertEncoder` (with dropout: it is the unsupervised method's only noise).
        temperature: the InfoNCE temperature (SimCSE: 0.05).

    Inputs (call): dict of int32 `[B, T]` features. Outputs: dict with `sequence_output`,
    `pooled_output` (as the encoder's) and `sentence_embedding` `[B, H]`.

    Example:
    ```python
    import numpy as np
    from albert_keras import AlbertConfig, AlbertEncoder
    from albert_keras.modeling.sentence_encoder import AlbertSentenceEncoder

    config = AlbertConfig(vocab_size=100, embedding_size=8, hidden_size=16, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=32)
    model = AlbertSentenceEncoder(AlbertEncoder(config))
    ids = np.array([[[2, 10, 11, 3], [2, 10, 11, 3]], [[2, 12, 3, 0], [2, 12, 3, 0]]], "int32")
    x = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": (ids > 0).astype("int32")}
    model.compile(optimizer="adam")
    model.fit(x, batch_size=2, epochs=1, verbose=0)
    model({k: v[:, 0] for k, v in x.items()})["sentence_embedding"].shape  # (2, 16)
    ```
    """

    def __init__(self, encoder, temperature=DEFAULT_TEMPERATURE, **kwargs):
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.encoder = encoder
        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in FEATURES}
        encoded = encoder(inputs)
        outputs = {
            "sequence_output": encoded["sequence_output"],
            "pooled_output": encoded["pooled_output"],
            "sentence_embedding": masked_mean_l2(encoded["sequence_output"], inputs["padding_mask"]),
        }
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # The loss never reaches the pooler: frozen, it keeps its pretrained weights and the
        # optimizer does not warn about variables without gradients.
        encoder.pooled_dense.trainable = False
        self.temperature = float(temperature)
        self._arguments = {"temperature": self.temperature}
        self.contrastive_accuracy = keras.metrics.SparseCategoricalAccuracy(name="contrastive_accuracy")

    # --- preprocessor (held outside Keras' tracking, so weights files do not depend on it) -----

    @property
    def tokenizer(self):
        """The `AlbertTokenizer` set by `from_pretrained`: the same object as `preprocessor` (the one
        attribute name for a model's text preprocessing; None when built from an encoder)."""
        return self.preprocessor

    @classmethod
    def from_pretrained(cls, directory, dtype=None, sequence_length=None, **arguments):
        """Build from a pretrained directory, with its tokenizer (vocabulary, tokenizer.json).

        Args:
            directory: any pretrained directory (a pretrainer's, an encoder's, this class's).
            dtype: optional dtype policy.
            sequence_length: packed length for text input (default: the directory's
                tokenizer.json, else 128, capped at the model's positions).
            **arguments: `temperature`.

        Example:
        ```python
        model = AlbertSentenceEncoder.from_pretrained("runs/quickstart/pretrain/pretrained")
        model.encode(["a sentence.", "another one."]).shape  # (2, H)
        ```
        """
        from albert_keras.tokenization.vocabulary import DEFAULT_SEQUENCE_LENGTH
        from albert_keras.tokenization.vocabulary import load_vocabulary
        from albert_keras.tokenization.vocabulary import read_tokenizer_settings
        from albert_keras.tokenization.vocabulary import vocabulary_path

        model = super().from_pretrained(directory, dtype=dtype, **arguments)
        if vocabulary_path(directory) is not None:
            settings = read_tokenizer_settings(directory)
            limit = model.encoder.config.max_position_embeddings
            length = min(sequence_length or settings["sequence_length"] or DEFAULT_SEQUENCE_LENGTH, limit)
            from albert_keras.tokenization.layer import AlbertTokenizer

            model.preprocessor = AlbertTokenizer(load_vocabulary(directory), sequence_length=length,
                                                 pad_to_sequence_length=False)
        return model

    def _require_tokenizer(self):
        if self.tokenizer is None:
            from albert_keras.errors import AlbertInputError

            raise AlbertInputError(
                f"{self.name}: no tokenizer; build it with AlbertSentenceEncoder.from_pretrained(dir) on a "
                "directory holding a vocabulary (spiece.model or vocab.txt), or pass token ids"
            )
        return self.tokenizer

    def tokenize_groups(self, texts):
        """`[B, G]` strings -> `[B, G, T]` features (the training input), in-graph.

        Example:
        ```python
        x = model.tokenize_groups(tf.constant([["a dog.", "a dog."], ["a cat.", "a cat."]]))
        ```
        """
        import tensorflow as tf

        tokenizer = self._require_tokenizer()
        texts = tf.convert_to_tensor(texts, tf.string)
        batch, groups = tf.shape(texts)[0], tf.shape(texts)[1]
        flat = tokenizer(tf.reshape(texts, [-1]))
        return {key: tf.reshape(value, [batch, groups, -1]) for key, value in flat.items()}

    def encode(self, texts, batch_size=64):
        """Sentence embeddings (numpy `[N, H]`, L2-normalized) of a list of strings.

        Plain batches in input order; `albert_keras.representations.embed` adds length bucketing,
        precision choice and progress for large inputs.

        Example:
        ```python
        model.encode(["a sentence."]).shape  # (1, H)
        ```
        """
        import numpy as np
        import tensorflow as tf

        tokenizer = self._require_tokenizer()
        parts = []
        for start in range(0, len(texts), batch_size):
            features = tokenizer(tf.constant(list(texts[start : start + batch_size])))
            parts.append(np.asarray(self(features, training=False)["sentence_embedding"]))
        width = self.encoder.config.hidden_size
        return np.concatenate(parts) if parts else np.zeros([0, width], np.float32)

    # --- training ------------------------------------------------------------------------------

    @staticmethod
    def _flatten_groups(data):
        """`[B, G, T]` features -> `[B * G, T]` and the targets: anchor `b`'s positive index."""
        import tensorflow as tf

        x = data[0] if isinstance(data, tuple) else data
        token_ids = x["token_ids"]
        message = (
            "AlbertSentenceEncoder.fit: features must be [batch, texts per example, tokens] "
            f"(anchor, positive[, negative]); got shape {token_ids.shape}"
        )
        # `fit` may retrace with relaxed shapes (rank unknown), so the rank is also checked in-graph.
        rank = token_ids.shape.rank if hasattr(token_ids.shape, "rank") else len(token_ids.shape)
        if rank is not None and rank != 3:
            raise ValueError(message)
        checks = [] if rank is not None else [tf.debugging.assert_rank(token_ids, 3, message=message)]
        with tf.control_dependencies(checks):
            shape = tf.shape(token_ids)
        batch, groups = shape[0], shape[1]
        flat = {name: tf.reshape(x[name], tf.stack([-1, shape[-1]])) for name in FEATURES}
        # Candidates are every example's texts after the anchor, in order; anchor b's positive is
        # the first of its own, at b * (G - 1).
        targets = tf.range(batch, dtype=tf.int32) * (groups - 1)
        return flat, targets

    def _logits(self, y, y_pred):
        ops = keras.ops
        embeddings = ops.cast(y_pred["sentence_embedding"], "float32")
        batch = ops.shape(y)[0]
        width = ops.shape(embeddings)[-1]
        grouped = ops.reshape(embeddings, (batch, -1, width))
        anchors = grouped[:, 0]
        candidates = ops.reshape(grouped[:, 1:], (-1, width))
        return ops.matmul(anchors, ops.transpose(candidates)) / self.temperature

    def train_step(self, data):
        return super().train_step(self._flatten_groups(data))

    def test_step(self, data):
        return super().test_step(self._flatten_groups(data))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        losses = keras.losses.sparse_categorical_crossentropy(y, self._logits(y, y_pred), from_logits=True)
        total = keras.ops.mean(losses)
        if self.losses:
            total = total + keras.ops.sum(self.losses)
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        self.contrastive_accuracy.update_state(y, self._logits(y, y_pred))
        return self.get_metrics_result()
