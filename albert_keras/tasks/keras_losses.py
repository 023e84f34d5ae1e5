"""Keras losses of the fine-tuning tasks (kept apart from the task modules, which the CLI imports
for their flags and which must not import Keras or TensorFlow at module level)."""

import keras


@keras.saving.register_keras_serializable(package="albert_keras")
class SmoothedTokenCrossentropy(keras.losses.Loss):
    """Cross-entropy of target pieces with label smoothing (Szegedy et al., 2016), from logits.

    The target distribution is `1 - smoothing` on the true piece plus `smoothing / V` on every
    piece: loss = `(1 - smoothing) * -log p(y) + smoothing * mean(-log p)`. Computed from the
    log-softmax directly because Keras' sparse cross-entropy has no smoothing and a one-hot
    target of the whole vocabulary per piece would be built only to be summed. The mean is over
    the pieces with weight 1 (`sample_weight` is the target's padding mask).

    Args:
        label_smoothing: the smoothing mass, in [0, 1).
        **kwargs: `keras.losses.Loss` arguments.

    Example:
    ```python
    loss = SmoothedTokenCrossentropy(0.1)
    loss(np.array([[1, 2]]), np.zeros((1, 2, 5)), sample_weight=np.array([[1.0, 0.0]]))
    ```
    """

    def __init__(self, label_smoothing=0.1, name="smoothed_token_crossentropy", **kwargs):
        kwargs.setdefault("reduction", "mean_with_sample_weight")
        super().__init__(name=name, **kwargs)
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        ops = keras.ops
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        true = ops.take_along_axis(log_probs, ops.expand_dims(ops.cast(y_true, "int32"), -1), axis=-1)[..., 0]
        return -(1.0 - self.label_smoothing) * true - self.label_smoothing * ops.mean(log_probs, axis=-1)

    def get_config(self):
        config = super().get_config()
        config["label_smoothing"] = self.label_smoothing
        return config
