"""Metric functions against scikit-learn and SciPy on random cases; degenerate cases; bad input."""

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as sk

from albert_keras.errors import AlbertInputError
from albert_keras.tasks import metrics as m


def _random_labels(rng, n, classes):
    y_true = rng.integers(0, classes, n)
    # Predictions that agree more than chance, so correlations are not all near 0.
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, classes, n))
    return y_true, y_pred


def test_classification_functions_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    for trial in range(60):
        classes = 2 + trial % 4
        y_true, y_pred = _random_labels(rng, int(rng.integers(1, 80)), classes)
        assert m.accuracy(y_true, y_pred) == pytest.approx(sk.accuracy_score(y_true, y_pred), abs=1e-12)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn warns on 0/0 and uses 0, as we do
            assert m.f1(y_true, y_pred, average="macro") == pytest.approx(
                sk.f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)
            everything = list(range(classes))
            assert m.f1(y_true, y_pred, average="macro", labels=everything) == pytest.approx(
                sk.f1_score(y_true, y_pred, average="macro", labels=everything, zero_division=0), abs=1e-12)
            for positive in range(classes):
                expected = sk.f1_score(y_true, y_pred, labels=[positive], average="macro", zero_division=0)
                assert m.f1(y_true, y_pred, positive_label=positive) == pytest.approx(expected, abs=1e-12)
            if classes == 2:
                assert m.f1(y_true, y_pred) == pytest.approx(sk.f1_score(y_true, y_pred, zero_division=0), abs=1e-12)
            assert m.matthews_corrcoef(y_true, y_pred) == pytest.approx(sk.matthews_corrcoef(y_true, y_pred), abs=1e-12)


def test_functions_take_scores_and_non_contiguous_labels():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(50, 3))
    y_true = rng.integers(0, 3, 50)
    assert m.accuracy(y_true, scores) == sk.accuracy_score(y_true, scores.argmax(1))
    assert m.accuracy(y_true, scores.argmax(1).astype("float32")[:, None]) == m.accuracy(y_true, scores)
    assert m.matthews_corrcoef(y_true, scores) == pytest.approx(sk.matthews_corrcoef(y_true, scores.argmax(1)))
    labels_true, labels_pred = y_true * 7 - 3, scores.argmax(1) * 7 - 3  # -3, 4, 11
    assert m.f1(labels_true, labels_pred, average="macro") == pytest.approx(
        sk.f1_score(labels_true, labels_pred, average="macro"))
    assert m.matthews_corrcoef(labels_true, labels_pred) == pytest.approx(sk.matthews_corrcoef(labels_true, labels_pred))


def test_degenerate_classification_cases_match_scikit_learn():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for y_true, y_pred in (([0, 0, 0], [0, 0, 0]), ([1, 1], [1, 1]), ([0, 1, 0], [0, 0, 0]), ([0], [1])):
            assert m.matthews_corrcoef(y_true, y_pred) == sk.matthews_corrcoef(y_true, y_pred)
            assert m.f1(y_true, y_pred) == sk.f1_score(y_true, y_pred, zero_division=0)


def test_correlations_agree_with_scipy_including_ties():
    rng = np.random.default_rng(2)
    for trial in range(60):
        n = int(rng.integers(2, 120))
        x = rng.normal(size=n)
        if trial % 2:  # many ties, like STS-B's gold scores in steps of 0.2
            x = np.round(x * 2) / 2
        y = x + rng.normal(size=n) * (0.2 + trial % 3)
        if trial % 3 == 0:
            y = np.round(y)
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        assert m.pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
        assert m.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
        np.testing.assert_array_equal(m.rankdata(y), stats.rankdata(y))
    assert math.isnan(m.pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(m.spearman([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))
    assert m.pearson(np.arange(5.0)[:, None], np.arange(5.0) * 2) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: m.accuracy([0, 1], [0]), "2 examples but y_pred has 1"),
        (lambda: m.accuracy([], []), "no examples"),
        (lambda: m.f1([0, 1], [0, 1], average="micro"), "average must be"),
        (lambda: m.matthews_corrcoef(np.zeros((2, 2, 2)), [0, 1]), "y_true: expected class ids"),
        (lambda: m.f1([0, 1], [0.2, 0.9]), "y_pred: class ids must be whole numbers"),
        (lambda: m.pearson([1.0], [2.0]), "at least 2 values"),
        (lambda: m.spearman([1.0, float("nan")], [1.0, 2.0]), "finite"),
    ],
)
def test_bad_input_is_one_clear_error(call, message):
    with pytest.raises(AlbertInputError, match=message):
        call()


def test_functions_import_numpy_only_and_keras_metrics_lazily():
    code = ("import sys; from albert_keras.tasks import metrics; assert 'tensorflow' not in sys.modules; "
            "metrics.PearsonCorrelation; assert 'tensorflow' in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
