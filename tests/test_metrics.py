import numpy as np
import pytest
from sklearn import metrics as sk

from blobsift.metrics import (
    average_precision,
    best_threshold,
    binary_counts,
    precision_recall_curve,
    precision_recall_f1,
)


def _case(seed, n=200, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.15).astype(int)
    scores = rng.random(n) + 0.6 * y
    if ties:
        scores = np.round(scores, 1)
    return y, scores


@pytest.mark.parametrize("seed", range(5))
def test_precision_recall_f1_match_sklearn(seed):
    y, scores = _case(seed)
    pred = scores >= 0.7
    ours = precision_recall_f1(y, pred)
    assert ours["precision"] == pytest.approx(sk.precision_score(y, pred, zero_division=0))
    assert ours["recall"] == pytest.approx(sk.recall_score(y, pred, zero_division=0))
    assert ours["f1"] == pytest.approx(sk.f1_score(y, pred, zero_division=0))


def test_no_predicted_positive_gives_zero_not_nan():
    counts = binary_counts([1, 0, 1], [0, 0, 0])
    assert (counts.precision, counts.recall, counts.f1) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(("seed", "ties"), [(0, False), (1, True), (2, True)])
def test_pr_curve_and_average_precision_match_sklearn(seed, ties):
    y, scores = _case(seed, ties=ties)
    precision, recall, thresholds = precision_recall_curve(y, scores)
    sk_p, sk_r, sk_t = sk.precision_recall_curve(y, scores)
    np.testing.assert_allclose(thresholds, sk_t)
    np.testing.assert_allclose(precision, sk_p[:-1])
    np.testing.assert_allclose(recall, sk_r[:-1])
    assert average_precision(y, scores) == pytest.approx(sk.average_precision_score(y, scores))


@pytest.mark.parametrize("seed", range(4))
def test_best_threshold_reaches_the_best_f1_on_the_curve(seed):
    y, scores = _case(seed)
    point = best_threshold(y, scores)
    f1_at = sk.f1_score(y, scores >= point.threshold)
    sk_p, sk_r, _ = sk.precision_recall_curve(y, scores)
    best_possible = np.max(2 * sk_p * sk_r / np.maximum(sk_p + sk_r, 1e-12))
    assert f1_at == pytest.approx(best_possible)
    assert point.f1 == pytest.approx(f1_at)


def test_target_precision_and_recall_are_met():
    y, scores = _case(7, n=2000)
    high_precision = best_threshold(y, scores, target_precision=0.9)
    assert sk.precision_score(y, scores >= high_precision.threshold) >= 0.9
    high_recall = best_threshold(y, scores, target_recall=0.95)
    assert sk.recall_score(y, scores >= high_recall.threshold) >= 0.95
    sk_p, sk_r, _ = sk.precision_recall_curve(y, scores)
    assert high_precision.recall == pytest.approx(sk_r[sk_p >= 0.9].max())
    assert high_recall.precision == pytest.approx(sk_p[sk_r >= 0.95].max())


def test_threshold_sits_between_scores():
    point = best_threshold([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert 0.2 < point.threshold < 0.8
    assert point.f1 == 1.0


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="labels but"):
        precision_recall_curve([0, 1], [0.1, 0.2, 0.3])
