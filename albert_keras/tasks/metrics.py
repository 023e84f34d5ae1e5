"""Classification and regression metrics: plain NumPy functions and Keras metrics for `compile`.

The plain functions (NumPy only) score a whole evaluation set at once (what `albert-keras
evaluate` and the GLUE tasks report); the Keras metrics accumulate the same quantities batch by batch, so that
`model.fit(..., validation_data=...)` logs the official metric, also under `tf.distribute`
(every state variable is a sum, which is how Keras aggregates metric variables across replicas).
The Keras metrics are defined in `albert_keras.tasks.keras_metrics` and importable from here.

| GLUE task | official metric | function | Keras metric |
|---|---|---|---|
| CoLA | Matthews correlation | `matthews_corrcoef` | `MatthewsCorrelation` |
| SST-2, MNLI, QNLI, RTE, WNLI | accuracy | `accuracy` | `keras.metrics.SparseCategoricalAccuracy` |
| MRPC, QQP | F1 (positive class 1) and accuracy | `f1` | `F1Score` |
| STS-B | Pearson and Spearman | `pearson`, `spearman` | `PearsonCorrelation`, `SpearmanCorrelation` |

Definitions follow scikit-learn (`accuracy_score`, `f1_score`, `matthews_corrcoef`) and SciPy
(`pearsonr`, `spearmanr` with ties given their average rank), which is what the GLUE reference
code calls; the tests check agreement on random cases.
"""

import numpy as np

from albert_keras.errors import AlbertInputError
from albert_keras.lazy import lazy_exports

# The Keras metrics live in `keras_metrics` so that the functions import NumPy only.
__getattr__, __dir__ = lazy_exports(__name__, {
    name: "albert_keras.tasks.keras_metrics"
    for name in ("F1Score", "MatthewsCorrelation", "PearsonCorrelation", "SpearmanCorrelation")
})


def _labels(values, name):
    """Class ids from ids or from scores/logits `[N, C]` (argmax), as a 1-D int array."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] > 1:
        array = np.argmax(array, axis=1)
    array = array.reshape(-1) if array.ndim == 2 and array.shape[1] == 1 else array
    if array.ndim != 1:
        raise AlbertInputError(f"{name}: expected class ids [N] or scores [N, C], got shape {np.shape(values)}")
    if array.dtype.kind == "f":
        # One float per example is ambiguous (a probability? a logit?); only whole numbers pass.
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise AlbertInputError(
                f"{name}: class ids must be whole numbers (got {array[array != np.round(array)][:1]}); "
                "threshold one score per example into class ids first"
            )
        array = array.astype(np.int64)
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
