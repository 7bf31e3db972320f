"""Phase 2 predicting with one network: the refit member alone, against the ensemble."""

from __future__ import annotations

import numpy as np
import pytest

from blobsift.classify.cnn import CNNClassifier
from blobsift.metrics import best_threshold, precision_recall_f1

FAST = {"epochs": 6, "n_folds": 3, "random_state": 0}


def _faint_spots(n, seed):
    """Noise crops; a fifth carry a faint spot (peak 4 noise sd) at the centre."""
    rng = np.random.default_rng(seed)
    crops = rng.normal(100.0, 5.0, size=(n, 64, 64)).astype(np.float32)
    rows, cols = np.mgrid[0:64, 0:64]
    spot = 20.0 * np.exp(-((rows - 32) ** 2 + (cols - 32) ** 2) / (2 * 1.5**2))
    labels = (rng.random(n) < 0.2).astype(np.int64)
    crops[labels == 1] += spot.astype(np.float32)
    return crops, labels


@pytest.fixture(scope="module")
def fitted():
    train, test = _faint_spots(200, 51), _faint_spots(400, 52)
    ensemble = CNNClassifier(refit=True, **FAST).fit(*train)
    single = CNNClassifier(predict_with="refit", **FAST).fit(*train)
    return ensemble, single, test


@pytest.mark.slow
def test_the_single_network_is_the_ensembles_refit_member(fitted):
    ensemble, single, _ = fitted
    assert single.cv_metrics_["n_members"] == 1
    assert ensemble.cv_metrics_["n_members"] == FAST["n_folds"] + 1
    # the same folds, epochs and threshold: only the prediction differs
    assert single.threshold_ == ensemble.threshold_
    alone = ensemble.members_[-1].state_dict()
    for name, value in single.members_[0].state_dict().items():
        assert np.array_equal(value.numpy(), alone[name].numpy()), name


@pytest.mark.slow
def test_the_single_network_agrees_with_the_ensemble(fitted, tmp_path):
    ensemble, single, (crops, labels) = fitted
    p_ensemble, p_single = (m.predict_proba(crops)[:, 1] for m in (ensemble, single))
    # Stated tolerance: held-out F1 (each at its threshold) and best-F1 within 0.05, and
    # the two agree on at least 95% of the crops.
    f1 = [precision_recall_f1(labels, m.predict(crops))["f1"] for m in (ensemble, single)]
    best = [best_threshold(labels, p).f1 for p in (p_ensemble, p_single)]
    assert min(best) >= 0.8, best  # both learnt the problem
    assert abs(f1[0] - f1[1]) <= 0.05, f1
    assert abs(best[0] - best[1]) <= 0.05, best
    assert np.mean(single.predict(crops) == ensemble.predict(crops)) >= 0.95
    single.save(tmp_path / "one")
    loaded = CNNClassifier.load(tmp_path / "one")
    assert np.allclose(loaded.predict_proba(crops)[:, 1], p_single, atol=1e-5)
