"""`AlbertPretrainer`: the encoder with its MLM and sentence-order-prediction heads."""

import keras
from keras_hub.layers import MaskedLMHead

from albert_keras.modeling.activations import get_activation
from albert_keras.modeling.base import AlbertEncoderModel
from albert_keras.modeling.encoder import albert_initializer

# The official TFRecord features the model reads; the label features ride along in the same dict.
PRETRAINING_INPUTS = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions")
PRETRAINING_LABELS = ("masked_lm_ids", "masked_lm_weights", "next_sentence_labels")


def _cross_replica_sum(value):
    """Sum over the replicas of the current tf.distribute strategy (identity without one)."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


@keras.saving.register_keras_serializable(package="albert_keras")
class AlbertPretrainer(AlbertEncoderModel):
    """ALBERT with the masked-LM and sentence-order-prediction (SOP) heads, trained with `fit`.

    The MLM head is dense H -> E with the config's activation, LayerNorm (epsilon 1e-12), then a
    decoder tied to the word-embedding table plus an output bias (`keras_hub.layers.MaskedLMHead`),
    computed only at `masked_lm_positions`. The SOP head is a 2-way dense layer on the pooled
    output.

    The model reads batches in the official TFRecord schema: a dict with `input_ids`,
    `input_mask`, `segment_ids`, `masked_lm_positions` and the labels `masked_lm_ids`,
    `masked_lm_weights`, `next_sentence_labels` (the dict `albert_keras.data.pipeline` yields).
    Compile with an optimizer only: the loss is the official one, the MLM cross-entropy weighted by
    `masked_lm_weights` and divided by their sum (plus 1e-5), plus the mean SOP cross-entropy. Under a
    tf.distribute strategy both are normalized by global sums, so any replica count gives the loss
    of one device on the global batch. `fit` reports `masked_lm_accuracy`, `masked_lm_loss`,
    `sentence_order_accuracy` and `sentence_order_loss`.

    Args:
        encoder: an `AlbertEncoder`.

    Outputs: a dict with float32 `mlm_logits` `[batch, predictions, vocab]` and `sop_logits`
    `[batch, 2]`.

    Example:
    ```python
    import numpy as np
    from albert_keras import AlbertConfig, AlbertEncoder, AlbertPretrainer

    config = AlbertConfig(vocab_size=100, embedding_size=8, hidden_size=16,
                          num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    pretrainer = AlbertPretrainer(AlbertEncoder(config))
    batch = {
        "input_ids": np.array([[2, 4, 11, 3, 12, 4, 3, 0]], "int32"),
        "input_mask": np.array([[1, 1, 1, 1, 1, 1, 1, 0]], "int32"),
        "segment_ids": np.array([[0, 0, 0, 0, 1, 1, 1, 0]], "int32"),
        "masked_lm_positions": np.array([[1, 5, 0]], "int32"),
        "masked_lm_ids": np.array([[10, 13, 0]], "int32"),
        "masked_lm_weights": np.array([[1.0, 1.0, 0.0]], "float32"),
        "next_sentence_labels": np.array([1], "int32"),
    }
    pretrainer.compile(optimizer="adam")
    pretrainer.fit(batch, epochs=2, verbose=0)
    ```
    """

    def __init__(self, encoder, **kwargs):
        config = encoder.config
        initializer = albert_initializer(config)
        dtype = encoder.dtype_policy

        # === Layers ===
        self.encoder = encoder
        self.masked_lm_head = MaskedLMHead(
            token_embedding=encoder.token_embedding,
            intermediate_activation=get_activation(config.hidden_act),
            layer_norm_epsilon=1e-12,
            kernel_initializer=initializer,
            dtype=dtype,
            name="masked_lm_head",
        )
        self.sop_head = keras.layers.Dense(
            2, kernel_initializer=initializer, dtype=dtype, name="sop_head"
        )

        # === Functional model ===
        # A list of named inputs (not a dict) lets `fit` pass the whole official-schema dict,
        # labels included: Keras picks the inputs it needs by name.
        inputs = [keras.Input(shape=(None,), dtype="int32", name=name) for name in PRETRAINING_INPUTS]
        input_ids, input_mask, segment_ids, masked_lm_positions = inputs
        encoded = encoder(
            {"token_ids": input_ids, "segment_ids": segment_ids, "padding_mask": input_mask}
        )
        mlm_logits = self.masked_lm_head(encoded["sequence_output"], mask_positions=masked_lm_positions)
        sop_logits = self.sop_head(encoded["pooled_output"])
        outputs = {
            "mlm_logits": keras.ops.cast(mlm_logits, "float32"),
            "sop_logits": keras.ops.cast(sop_logits, "float32"),
        }
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Metrics (the official eval metrics) ===
        self.masked_lm_accuracy = keras.metrics.SparseCategoricalAccuracy(name="masked_lm_accuracy")
        self.masked_lm_loss = keras.metrics.Mean(name="masked_lm_loss")
        self.sentence_order_accuracy = keras.metrics.SparseCategoricalAccuracy(name="sentence_order_accuracy")
        self.sentence_order_loss = keras.metrics.Mean(name="sentence_order_loss")

    # --- loss ---------------------------------------------------------------------------------

    @staticmethod
    def _labels(x):
        missing = [name for name in PRETRAINING_LABELS if name not in x]
        if missing:
            raise ValueError(
                f"AlbertPretrainer: the batch lacks the label feature(s) {', '.join(missing)}; "
                "pass batches in the official TFRecord schema (see albert_keras.data.pipeline)"
            )
        ids = keras.ops.cast(x["masked_lm_ids"], "int32")
        weights = keras.ops.cast(x["masked_lm_weights"], "float32")
        sop = keras.ops.reshape(keras.ops.cast(x["next_sentence_labels"], "int32"), (-1,))
        return ids, weights, sop

    @staticmethod
    def _token_losses(y_pred, ids, sop):
        mlm = keras.losses.sparse_categorical_crossentropy(ids, y_pred["mlm_logits"], from_logits=True)
        sop_losses = keras.losses.sparse_categorical_crossentropy(sop, y_pred["sop_logits"], from_logits=True)
        return mlm, sop_losses

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        ids, weights, sop = self._labels(x)
        mlm, sop_losses = self._token_losses(y_pred, ids, sop)
        # Each replica divides its share by the GLOBAL denominators; the optimizer sums the
        # replicas' gradients, so the update equals one device's on the global batch.
        weight_sum = _cross_replica_sum(keras.ops.sum(weights))
        batch = _cross_replica_sum(keras.ops.cast(keras.ops.shape(sop)[0], "float32"))
        mlm_loss = keras.ops.sum(mlm * weights) / (weight_sum + 1e-5)
        sop_loss = keras.ops.sum(sop_losses) / batch
        total = mlm_loss + sop_loss
        if self.losses:
            total = total + keras.ops.sum(self.losses)
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        ids, weights, sop = self._labels(x)
        mlm, sop_losses = self._token_losses(y_pred, ids, sop)
        self.masked_lm_accuracy.update_state(ids, y_pred["mlm_logits"], sample_weight=weights)
        self.masked_lm_loss.update_state(mlm, sample_weight=weights)
        self.sentence_order_accuracy.update_state(sop, y_pred["sop_logits"])
        self.sentence_order_loss.update_state(sop_losses)
        return self.get_metrics_result()
