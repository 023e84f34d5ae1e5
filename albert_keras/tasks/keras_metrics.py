"""Keras metrics for `compile(metrics=[...])`: F1, Matthews, Pearson and Spearman, exact over an epoch.

Each equals its function in `albert_keras.tasks.metrics` over everything seen since the last
reset, also under `tf.distribute` (every state variable is a sum, which is how Keras aggregates
metric variables across replicas), and inside XLA-compiled steps (static shapes only). Like the
model, create them inside `strategy.scope()`: their variables are made in `__init__`.
`keras.metrics.SparseCategoricalAccuracy` already is the accuracy the GLUE tasks report.

Why our own Keras metrics where Keras has one of the same name:
- `keras.metrics.F1Score` wants one-hot `y_true` (task datasets carry class ids), turns `y_pred`
  into predictions with `y_pred >= max(y_pred)` AND `|y_pred| > 1e-9` (a logit of exactly 0 that
  is the largest is not a prediction; ties predict several classes), adds epsilons (not exact),
  averages "macro" over every class including ones never seen (scikit-learn averages over the
  labels present), and creates its variables on the first `update_state`.
- `keras.metrics.PearsonCorrelation` is the mean of per-batch correlations, not the correlation of
  the evaluation set, so it changes with the batch size.
- Keras has no Matthews or Spearman correlation.
"""

import numpy as np

import keras
import tensorflow as tf

from albert_keras.errors import AlbertInputError

_PACKAGE = "albert_keras"


def _flat_weights(sample_weight, like):
    if sample_weight is None:
        return tf.ones_like(like)
    weights = tf.cast(tf.convert_to_tensor(sample_weight), like.dtype)
    return tf.broadcast_to(tf.reshape(weights, [-1]), tf.shape(like))


class _ConfusionMatrixMetric(keras.metrics.Metric):
    """A `num_classes x num_classes` confusion matrix (rows gold, columns predicted).

    Counts are float32 so that `sample_weight` can weight them; they are exact up to 2**24 per
    cell. `y_true`: class ids `[B]` or `[B, 1]`. `y_pred`: logits or probabilities `[B, C]`
    (argmax); for two classes also one logit or probability `[B]`/`[B, 1]` (positive when > 0
    with `from_logits`, > 0.5 without); integer `y_pred` are class ids.
    """

    def __init__(self, num_classes, from_logits=True, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if not isinstance(num_classes, int) or num_classes < 2:
            raise AlbertInputError(f"{type(self).__name__}: num_classes must be an int >= 2, got {num_classes!r}")
        self.num_classes = num_classes
        self.from_logits = from_logits
        self.confusion = self.add_variable(
            shape=(num_classes, num_classes), initializer="zeros", dtype="float32", name="confusion"
        )

    def _predicted_ids(self, y_pred):
        y_pred = tf.convert_to_tensor(y_pred)
        if y_pred.dtype.is_integer:
            return tf.reshape(tf.cast(y_pred, tf.int32), [-1])
        if y_pred.shape.rank == 2 and y_pred.shape[-1] not in (None, 1):
            if y_pred.shape[-1] != self.num_classes:
                raise AlbertInputError(
                    f"{self.name}: y_pred has {y_pred.shape[-1]} scores per example "
                    f"but num_classes is {self.num_classes}"
                )
            return tf.argmax(y_pred, axis=-1, output_type=tf.int32)
        scores = tf.reshape(y_pred, [-1])
        if self.num_classes == 2:
            threshold = 0.0 if self.from_logits else 0.5
            return tf.cast(scores > threshold, tf.int32)
        return tf.cast(tf.round(scores), tf.int32)

    def update_state(self, y_true, y_pred, sample_weight=None):
        true_ids = tf.reshape(tf.cast(tf.convert_to_tensor(y_true), tf.int32), [-1])
        pred_ids = self._predicted_ids(y_pred)
        weights = _flat_weights(sample_weight, tf.cast(true_ids, tf.float32))
        # One scatter-add; ids outside [0, num_classes) would be silently dropped by XLA, so they
        # are counted nowhere on purpose: a label list mismatch is caught where labels are read.
        indices = tf.stack([true_ids, pred_ids], axis=1)
        inside = tf.reduce_all((indices >= 0) & (indices < self.num_classes), axis=1)
        indices = tf.where(inside[:, None], indices, tf.zeros_like(indices))
        weights = tf.where(inside, weights, tf.zeros_like(weights))
        self.confusion.assign(tf.tensor_scatter_nd_add(self.confusion, indices, weights))

    def reset_state(self):
        self.confusion.assign(tf.zeros_like(self.confusion))

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "from_logits": self.from_logits})
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class F1Score(_ConfusionMatrixMetric):
    """F1 of one class ("binary") or the mean over classes ("macro"), from a confusion matrix.

    Equals `albert_keras.tasks.metrics.f1` over everything seen since the last reset ("macro"
    averages over the classes seen as gold or predicted, as scikit-learn does).

    Args:
        num_classes: the number of classes (the width of the logits).
        average: `"binary"` or `"macro"`.
        positive_label: the class `"binary"` scores.
        from_logits: for a single binary output, whether it is a logit (threshold 0) or a
            probability (threshold 0.5); `[B, C]` outputs use their argmax either way.
        name: the metric's name in logs (default `"f1"`).

    Example:
    ```python
    import numpy as np
    from albert_keras.tasks.keras_metrics import F1Score
    metric = F1Score(num_classes=2)
    metric.update_state(np.array([0, 1, 1]), np.array([[2.0, -1.0], [0.0, 3.0], [1.0, 0.5]]))
    float(metric.result())  # 0.666...
    ```
    """

    def __init__(self, num_classes, average="binary", positive_label=1, from_logits=True, name="f1", dtype=None):
        if average not in ("binary", "macro"):
            raise AlbertInputError(f"F1Score: average must be 'binary' or 'macro', got {average!r}")
        super().__init__(num_classes, from_logits=from_logits, name=name, dtype=dtype)
        if not 0 <= positive_label < num_classes:
            raise AlbertInputError(f"F1Score: positive_label {positive_label} is not in 0..{num_classes - 1}")
        self.average = average
        self.positive_label = positive_label
        self._direction = "up"

    def result(self):
        confusion = self.confusion
        tp = tf.linalg.diag_part(confusion)
        fp = tf.reduce_sum(confusion, axis=0) - tp
        fn = tf.reduce_sum(confusion, axis=1) - tp
        denominator = 2.0 * tp + fp + fn
        per_class = tf.math.divide_no_nan(2.0 * tp, denominator)
        if self.average == "binary":
            value = per_class[self.positive_label]
        else:
            present = tf.cast(denominator > 0, tf.float32)
            value = tf.math.divide_no_nan(tf.reduce_sum(per_class * present), tf.reduce_sum(present))
        return tf.cast(value, self.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"average": self.average, "positive_label": self.positive_label})
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MatthewsCorrelation(_ConfusionMatrixMetric):
    """Matthews correlation coefficient from a confusion matrix (CoLA's official metric).

    Equals `albert_keras.tasks.metrics.matthews_corrcoef` over everything seen since the last
    reset. The matrix is normalized before the products so that float32 does not lose the
    difference of two large numbers.

    Args:
        num_classes: the number of classes.
        from_logits: see `F1Score`.
        name: the metric's name in logs (default `"matthews_correlation"`).

    Example:
    ```python
    import numpy as np
    from albert_keras.tasks.keras_metrics import MatthewsCorrelation
    metric = MatthewsCorrelation(num_classes=2)
    metric.update_state(np.array([0, 1, 1, 0]), np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]))
    float(metric.result())  # 0.577...
    ```
    """

    def __init__(self, num_classes, from_logits=True, name="matthews_correlation", dtype=None):
        super().__init__(num_classes, from_logits=from_logits, name=name, dtype=dtype)
        self._direction = "up"

    def result(self):
        total = tf.reduce_sum(self.confusion)
        confusion = tf.math.divide_no_nan(self.confusion, total)
        true_share = tf.reduce_sum(confusion, axis=1)
        pred_share = tf.reduce_sum(confusion, axis=0)
        cov_true_pred = tf.linalg.trace(confusion) - tf.reduce_sum(true_share * pred_share)
        cov_pred_pred = 1.0 - tf.reduce_sum(pred_share * pred_share)
        cov_true_true = 1.0 - tf.reduce_sum(true_share * true_share)
        product = cov_pred_pred * cov_true_true
        value = tf.where(product > 0, cov_true_pred / tf.sqrt(tf.maximum(product, 1e-30)), 0.0)
        return tf.cast(value, self.dtype)


def _flat_values(y_true, y_pred, dtype):
    y_true = tf.reshape(tf.cast(tf.convert_to_tensor(y_true), dtype), [-1])
    y_pred = tf.reshape(tf.cast(tf.convert_to_tensor(y_pred), dtype), [-1])
    return y_true, y_pred


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PearsonCorrelation(keras.metrics.Metric):
    """Pearson correlation of everything seen since the last reset, from running sums.

    Equals `albert_keras.tasks.metrics.pearson` on the concatenated batches (unlike
    `keras.metrics.PearsonCorrelation`, the mean of per-batch correlations). The state is six
    sums (n, x, y, xx, yy, xy), so replicas add up under `tf.distribute`. They are float64 by
    default because sum(x*x) - sum(x)**2/n cancels badly in float32 when the mean is large
    compared with the spread (float64 keeps about 16 - 2 * log10(|mean| / spread) digits);
    TPUs have no float64: pass `dtype="float32"` there. `sample_weight`
    weights the sums (0 leaves an example out).

    Args:
        name: the metric's name in logs (default `"pearson"`).
        dtype: the state's and the result's dtype (default float64).

    Example:
    ```python
    from albert_keras.tasks.keras_metrics import PearsonCorrelation
    metric = PearsonCorrelation()
    metric.update_state([1.0, 2.0], [2.0, 4.0])
    metric.update_state([3.0], [7.0])
    float(metric.result())  # 0.993...
    ```
    """

    def __init__(self, name="pearson", dtype="float64"):
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        self.sums = self.add_variable(shape=(6,), initializer="zeros", dtype=self.dtype, name="sums")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y, x = _flat_values(y_true, y_pred, self.dtype)
        w = _flat_weights(sample_weight, x)
        self.sums.assign_add(
            tf.stack(
                [
                    tf.reduce_sum(w),
                    tf.reduce_sum(w * x),
                    tf.reduce_sum(w * y),
                    tf.reduce_sum(w * x * x),
                    tf.reduce_sum(w * y * y),
                    tf.reduce_sum(w * x * y),
                ]
            )
        )

    def result(self):
        n, sx, sy, sxx, syy, sxy = tf.unstack(self.sums)
        n_safe = tf.maximum(n, 1e-12)
        cov = sxy - sx * sy / n_safe
        var_x = tf.maximum(sxx - sx * sx / n_safe, 0.0)
        var_y = tf.maximum(syy - sy * sy / n_safe, 0.0)
        denominator = tf.sqrt(var_x * var_y)
        nan = tf.constant(float("nan"), self.dtype)
        value = tf.where(denominator > 0, cov / tf.where(denominator > 0, denominator, 1.0), nan)
        return tf.clip_by_value(value, -1.0, 1.0)

    def reset_state(self):
        self.sums.assign(tf.zeros_like(self.sums))


def _average_ranks(values, valid):
    """Average ranks (1-based) of `values[valid]`, with static shapes so that XLA compiles it.

    Invalid slots sort last (+inf) and get rank 0; ties share their average rank.
    """
    size = tf.shape(values)[0]
    keys = tf.where(valid, values, tf.constant(np.inf, values.dtype))
    order = tf.argsort(keys, stable=True)
    ordered = tf.gather(keys, order)
    starts = tf.concat([[True], ordered[1:] != ordered[:-1]], axis=0)
    group = tf.cumsum(tf.cast(starts, tf.int32)) - 1
    positions = tf.range(size)
    first = tf.math.unsorted_segment_min(positions, group, size)
    last = tf.math.unsorted_segment_max(positions, group, size)
    ranks_sorted = tf.cast(tf.gather(first, group) + tf.gather(last, group) + 2, values.dtype) / 2.0
    ranks = tf.scatter_nd(order[:, None], ranks_sorted, [size])
    return tf.where(valid, ranks, tf.zeros_like(ranks))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SpearmanCorrelation(keras.metrics.Metric):
    """Spearman rank correlation of everything seen since the last reset (ties: average rank).

    Ranks need every value, so the state is a bounded buffer: three float32 vectors of
    `capacity` entries (predictions, targets, a filled mask), 12 bytes x `capacity` per replica
    (default 16,384 values: 192 KiB; STS-B has 5,749 training and 1,500 validation pairs), and
    every `result()` sorts the whole buffer twice. Keras calls `result()` after every training
    step, so a large capacity slows training steps: size it to the data it will see.
    Under `tf.distribute` replica r of R writes slots r, r + R, r + 2R, ... so that the sum Keras
    takes over replicas is the union of their values; each replica then holds `capacity // R`
    values. Values beyond that are not stored: `result()` is
    NaN, and reading it eagerly (as `fit` and `evaluate` do at the end of an epoch) raises
    `AlbertInputError` naming the capacity to raise. `sample_weight`: 0 leaves an example out,
    any other weight keeps it (ranks are not weighted).

    Args:
        capacity: the most values kept between resets.
        name: the metric's name in logs (default `"spearman"`).

    Example:
    ```python
    from albert_keras.tasks.keras_metrics import SpearmanCorrelation
    metric = SpearmanCorrelation(capacity=100)
    metric.update_state([1.0, 2.0], [1.0, 3.0])
    metric.update_state([3.0, 4.0], [2.0, 4.0])
    float(metric.result())  # 0.8
    ```
    """

    def __init__(self, capacity=16384, name="spearman", dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        if not isinstance(capacity, int) or capacity < 2:
            raise AlbertInputError(f"SpearmanCorrelation: capacity must be an int >= 2, got {capacity!r}")
        self.capacity = capacity
        self._direction = "up"
        buffer = {"shape": (capacity,), "initializer": "zeros", "dtype": "float32"}
        self.predictions = self.add_variable(name="predictions", **buffer)
        self.targets = self.add_variable(name="targets", **buffer)
        self.filled = self.add_variable(name="filled", **buffer)
        # Per replica: values stored so far (its local copy), and values that did not fit.
        self.stored = self.add_variable(shape=(), initializer="zeros", dtype="int32", name="stored")
        self.dropped = self.add_variable(shape=(), initializer="zeros", dtype="int32", name="dropped")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y, x = _flat_values(y_true, y_pred, tf.float32)
        keep = tf.cast(tf.not_equal(_flat_weights(sample_weight, x), 0.0), tf.int32)
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context is not None else 1
        replica = tf.cast(context.replica_id_in_sync_group, tf.int32) if context is not None else 0
        per_replica = self.capacity // replicas
        # Kept values take consecutive local slots k = stored, stored + 1, ...
        local = tf.cast(self.stored, tf.int32) + tf.cumsum(keep) - keep
        fits = keep * tf.cast(local < per_replica, tf.int32)
        slots = replica + replicas * tf.minimum(local, per_replica - 1)
        mask = tf.cast(fits, tf.float32)
        # Scatter-ADD into zeroed slots: a slot is written once, and a value that does not fit
        # adds 0 (no out-of-range index, which XLA would silently drop).
        slots = slots[:, None]
        self.predictions.assign(tf.tensor_scatter_nd_add(self.predictions, slots, x * mask))
        self.targets.assign(tf.tensor_scatter_nd_add(self.targets, slots, y * mask))
        self.filled.assign(tf.tensor_scatter_nd_add(self.filled, slots, mask))
        self.stored.assign_add(tf.reduce_sum(fits))
        self.dropped.assign_add(tf.reduce_sum(keep - fits))

    def result(self):
        dropped = tf.convert_to_tensor(self.dropped)
        if tf.executing_eagerly() and int(dropped) > 0:
            raise AlbertInputError(
                f"{self.name}: more values than SpearmanCorrelation(capacity={self.capacity}) keeps "
                f"({int(dropped)} not stored); pass a larger capacity or score with "
                "albert_keras.tasks.metrics.spearman"
            )
        valid = self.filled > 0.5
        x_ranks = _average_ranks(tf.convert_to_tensor(self.predictions), valid)
        y_ranks = _average_ranks(tf.convert_to_tensor(self.targets), valid)
        w = tf.cast(valid, tf.float32)
        n = tf.maximum(tf.reduce_sum(w), 1.0)
        mean_x = tf.reduce_sum(x_ranks * w) / n
        mean_y = tf.reduce_sum(y_ranks * w) / n
        xm = (x_ranks - mean_x) * w
        ym = (y_ranks - mean_y) * w
        denominator = tf.sqrt(tf.reduce_sum(xm * xm) * tf.reduce_sum(ym * ym))
        nan = tf.constant(float("nan"), tf.float32)
        value = tf.where(denominator > 0, tf.reduce_sum(xm * ym) / tf.where(denominator > 0, denominator, 1.0), nan)
        value = tf.where(dropped > 0, nan, tf.clip_by_value(value, -1.0, 1.0))
        return tf.cast(value, self.dtype)

    def reset_state(self):
        for variable in self.variables:
            variable.assign(tf.zeros_like(variable))

    def get_config(self):
        config = super().get_config()
        config["capacity"] = self.capacity
        return config
