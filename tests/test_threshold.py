import numpy as np
import pytest

from blobsift.classify.cnn import CNNClassifier
from blobsift.metrics import best_threshold


def _scores(n_pos, n_neg=200, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    scores = np.r_[rng.uniform(0.8, 0.99, n_pos), rng.uniform(0.0, 0.3, n_neg)]
    return labels, scores


@pytest.mark.parametrize("n_pos", [2, 9, 100])
def test_threshold_of_few_positives_is_shrunk_towards_one_half(n_pos):
    labels, scores = _scores(n_pos)
    raw = best_threshold(labels, scores).threshold
    chosen, rule = CNNClassifier()._choose_threshold(labels, scores)
    assert rule == "best_f1"
    weight = n_pos / (n_pos + 5)
    assert chosen.threshold == pytest.approx(weight * raw + (1 - weight) * 0.5)
    # The reported point is what the held-out scores give at the chosen threshold.
    assert chosen.recall == pytest.approx(np.mean(scores[labels == 1] >= chosen.threshold))


def test_more_positives_trust_the_held_out_threshold_more():
    gaps = []
    for n_pos in (2, 9, 100):
        labels, scores = _scores(n_pos)
        raw = best_threshold(labels, scores).threshold
        gaps.append(abs(CNNClassifier()._choose_threshold(labels, scores)[0].threshold - raw))
    assert gaps[0] > gaps[1] > gaps[2]


def test_a_target_precision_is_not_shrunk():
    labels, scores = _scores(3)
    model = CNNClassifier(target_precision=0.9)
    expected = best_threshold(labels, scores, target_precision=0.9).threshold
    chosen, rule = model._choose_threshold(labels, scores)
    assert chosen.threshold == expected
    assert rule in ("target_precision", "target_missed")
