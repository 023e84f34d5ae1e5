"""Classification and regression metrics: plain NumPy functions and Keras metrics for `compile`.

The plain functions score a whole evaluation set at once (what `albert-keras evaluate` and the
GLUE tasks report); the Keras metrics accumulate the same quantities batch by batch, so that
`model.fit(..., validation_data=...)` logs the official metric, also under `tf.distribute`
(every state variable is a sum, which is how Keras aggregates metric variables across replicas).

| GLUE task | official metric | function | Keras metric |
|---|---|---|---|
| CoLA | Matthews correlation | `matthews_corrcoef` | `MatthewsCorrelation` |
| SST-2, MNLI, QNLI, RTE, WNLI | accuracy | `accuracy` | `keras.metrics.SparseCategoricalAccuracy` |
| MRPC, QQP | F1 (positive class 1) and accuracy | `f1` | `F1Score` |
| STS-B | Pearson and Spearman | `pearson`, `spearman` | `PearsonCorrelation`, `SpearmanCorrelation` |

Definitions follow scikit-learn (`accuracy_score`, `f1_score`, `matthews_corrcoef`) and SciPy
(`pearsonr`, `spearmanr` with ties given their average rank), which is what the GLUE reference
code calls; the tests check agreement on random cases.

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


# --------------------------------------------------------------------------------------------
# Plain functions (NumPy).
# --------------------------------------------------------------------------------------------


def _labels(values, name):
    """Class ids from ids or from scores/logits `[N, C]` (argmax), as a 1-D int array."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] > 1:
        array = np.argmax(array, axis=1)
    array = array.reshape(-1) if array.ndim == 2 and array.shape[1] == 1 else array
    if array.ndim != 1:
        raise AlbertInputError(f"{name}: expected class ids [N] or scores [N, C], got shape {np.shape(values)}")
    return array


def _pair(y_true, y_pred):
    y_true = _labels(y_true, "y_true")
    y_pred = _labels(y_pred, "y_pred")
    if y_true.shape[0] != y_pred.shape[0]:
        raise AlbertInputError(
            f"y_true has {y_true.shape[0]} examples but y_pred has {y_pred.shape[0]}"
        )
    if y_true.shape[0] == 0:
        raise AlbertInputError("no examples to score (y_true and y_pred are empty)")
    return y_true, y_pred


def accuracy(y_true, y_pred):
    """The fraction of examples whose predicted class is the gold class.

    Args:
        y_true: gold class ids, `[N]`.
        y_pred: predicted class ids `[N]`, or scores/logits `[N, C]` (their argmax is taken).

    Returns:
        A float in [0, 1].

    Example:
    ```python
    from albert_keras.tasks.metrics import accuracy
    accuracy([0, 1, 1, 0], [0, 1, 0, 0])  # 0.75
    ```
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def _f1_from_counts(tp, fp, fn):
    # F1 = 2TP / (2TP + FP + FN); 0 when the class is neither gold nor predicted, as
    # scikit-learn's default zero_division gives.
    denominator = 2.0 * tp + fp + fn
    return np.where(denominator > 0, 2.0 * tp / np.maximum(denominator, 1e-300), 0.0)


def f1(y_true, y_pred, average="binary", positive_label=1, labels=None):
    """F1 score: of the positive class ("binary") or the unweighted mean over classes ("macro").

    Args:
        y_true: gold class ids, `[N]`.
        y_pred: predicted class ids `[N]`, or scores/logits `[N, C]` (argmax).
        average: `"binary"` (the F1 of `positive_label` against the rest; MRPC and QQP report
            this with label 1) or `"macro"` (mean of per-class F1).
        positive_label: the class scored by `"binary"`.
        labels: the classes `"macro"` averages over; default the classes present in `y_true` or
            `y_pred` (scikit-learn's default).

    Returns:
        A float in [0, 1].

    Example:
    ```python
    from albert_keras.tasks.metrics import f1
    f1([0, 1, 1, 0], [0, 1, 0, 1])                   # 0.5
    f1([0, 1, 2, 2], [0, 2, 2, 2], average="macro")  # (1 + 0 + 0.8) / 3
    ```
    """
    y_true, y_pred = _pair(y_true, y_pred)
    if average == "binary":
        classes = np.asarray([positive_label])
    elif average == "macro":
        classes = np.union1d(y_true, y_pred) if labels is None else np.asarray(list(labels))
    else:
        raise AlbertInputError(f"f1: average must be 'binary' or 'macro', got {average!r}")
    true_hit = y_true[None, :] == classes[:, None]
    pred_hit = y_pred[None, :] == classes[:, None]
    tp = np.sum(true_hit & pred_hit, axis=1)
    fp = np.sum(~true_hit & pred_hit, axis=1)
    fn = np.sum(true_hit & ~pred_hit, axis=1)
    return float(np.mean(_f1_from_counts(tp, fp, fn)))


def _mcc_from_confusion(confusion):
    # The multiclass (R_K) form scikit-learn uses; 2 classes give the usual binary MCC.
    confusion = np.asarray(confusion, np.float64)
    n = confusion.sum()
    true_counts = confusion.sum(axis=1)
    pred_counts = confusion.sum(axis=0)
    cov_true_pred = np.trace(confusion) * n - true_counts @ pred_counts
    cov_pred_pred = n * n - pred_counts @ pred_counts
    cov_true_true = n * n - true_counts @ true_counts
    if cov_pred_pred * cov_true_true == 0:
        return 0.0
    return float(cov_true_pred / np.sqrt(cov_true_true * cov_pred_pred))


def matthews_corrcoef(y_true, y_pred):
    """Matthews correlation coefficient (CoLA's official metric), binary or multiclass.

    Args:
        y_true: gold class ids, `[N]`.
        y_pred: predicted class ids `[N]`, or scores/logits `[N, C]` (argmax).

    Returns:
        A float in [-1, 1]; 0 when every gold or every predicted label is the same class (as
        scikit-learn returns).

    Example:
    ```python
    from albert_keras.tasks.metrics import matthews_corrcoef
    matthews_corrcoef([0, 1, 1, 0], [0, 1, 1, 1])  # 0.577...
    ```
    """
    y_true, y_pred = _pair(y_true, y_pred)
    classes, index = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    n = y_true.shape[0]
    confusion = np.zeros((classes.size, classes.size), np.float64)
    np.add.at(confusion, (index[:n], index[n:]), 1.0)
    return _mcc_from_confusion(confusion)


def _floats(x, y):
    x = np.asarray(x, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    if x.shape != y.shape:
        raise AlbertInputError(f"x has {x.size} values but y has {y.size}")
    if x.size < 2:
        raise AlbertInputError(f"a correlation needs at least 2 values, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise AlbertInputError("a correlation needs finite values (found NaN or infinity)")
    return x, y


def _pearson(x, y):
    xm = x - x.mean()
    ym = y - y.mean()
    denominator = np.sqrt(np.dot(xm, xm) * np.dot(ym, ym))
    if denominator == 0:
        return float("nan")
    # Clipped like SciPy: rounding can push |r| a hair above 1.
    return float(np.clip(np.dot(xm, ym) / denominator, -1.0, 1.0))


def pearson(x, y):
    """Pearson correlation of two sequences of numbers (STS-B's first official metric).

    Args:
        x: predictions (or any values), `[N]` or `[N, 1]`.
        y: gold values, same length.

    Returns:
        A float in [-1, 1]; NaN when either input is constant (as SciPy returns).

    Example:
    ```python
    from albert_keras.tasks.metrics import pearson
    pearson([1.0, 2.0, 3.0], [2.0, 4.0, 7.0])  # 0.993...
    ```
    """
    return _pearson(*_floats(x, y))


def rankdata(values):
    """Ranks 1..N with ties given their average rank (SciPy's `rankdata(method="average")`).

    Args:
        values: a 1-D sequence of numbers.

    Returns:
        A float64 array of ranks.

    Example:
    ```python
    from albert_keras.tasks.metrics import rankdata
    rankdata([10, 20, 10, 30])  # [1.5, 3.0, 1.5, 4.0]
    ```
    """
    values = np.asarray(values).reshape(-1)
    ordered = np.sort(values, kind="stable")
    first = np.searchsorted(ordered, values, side="left")
    last = np.searchsorted(ordered, values, side="right")
    return (first + last + 1) / 2.0


def spearman(x, y):
    """Spearman rank correlation (STS-B's second official metric): Pearson of the average ranks.

    Args:
        x: predictions (or any values), `[N]` or `[N, 1]`.
        y: gold values, same length.

    Returns:
        A float in [-1, 1]; NaN when either input is constant (as SciPy returns).

    Example:
    ```python
    from albert_keras.tasks.metrics import spearman
    spearman([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0])  # 0.8
    ```
    """
    x, y = _floats(x, y)
    return _pearson(rankdata(x), rankdata(y))


# --------------------------------------------------------------------------------------------
# Keras metrics.
# --------------------------------------------------------------------------------------------


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
                    f"{self.name}: y_pred has {y_pred.shape[-1]} scores per example but num_classes is {self.num_classes}"
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
    from albert_keras.tasks.metrics import F1Score
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
    from albert_keras.tasks.metrics import MatthewsCorrelation
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
    from albert_keras.tasks.metrics import PearsonCorrelation
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
    (default 65,536 values: 768 KiB), and `result()` sorts the buffer (it is meant for validation
    sets; STS-B's has 1,500 pairs). Under `tf.distribute` replica r of R writes slots r, r + R,
    r + 2R, ... so that the sum Keras takes over replicas is the union of their values; each
    replica then holds `capacity // R` values. Values beyond that are not stored: `result()` is
    NaN, and reading it eagerly (as `fit` and `evaluate` do at the end of an epoch) raises
    `AlbertInputError` naming the capacity to raise. `sample_weight`: 0 leaves an example out,
    any other weight keeps it (ranks are not weighted).

    Args:
        capacity: the most values kept between resets.
        name: the metric's name in logs (default `"spearman"`).

    Example:
    ```python
    from albert_keras.tasks.metrics import SpearmanCorrelation
    metric = SpearmanCorrelation(capacity=100)
    metric.update_state([1.0, 2.0], [1.0, 3.0])
    metric.update_state([3.0, 4.0], [2.0, 4.0])
    float(metric.result())  # 0.8
    ```
    """

    def __init__(self, capacity=65536, name="spearman", dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        if not isinstance(capacity, int) or capacity < 2:
            raise AlbertInputError(f"SpearmanCorrelation: capacity must be an int >= 2, got {capacity!r}")
        self.capacity = capacity
        self._direction = "up"
        self.predictions = self.add_variable(shape=(capacity,), initializer="zeros", dtype="float32", name="predictions")
        self.targets = self.add_variable(shape=(capacity,), initializer="zeros", dtype="float32", name="targets")
        self.filled = self.add_variable(shape=(capacity,), initializer="zeros", dtype="float32", name="filled")
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
