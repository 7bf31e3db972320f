import numpy as np
import pytest

from blobsift.classify.baselines import BrightnessCut, FeatureForest, centre_contrast
from blobsift.exceptions import SingleClassError
from blobsift.metrics import best_threshold, precision_recall_f1
from blobsift.simulate import simulate_crops


@pytest.fixture(scope="module")
def data():
    return simulate_crops(300, seed=3), simulate_crops(600, seed=4)


def test_centre_contrast_is_in_raw_units():
    crops = np.full((2, 64, 64), 10.0, dtype=np.float32)
    crops[0, 31:34, 31:34] = 40.0
    np.testing.assert_allclose(centre_contrast(crops), [30.0, 0.0])
    # Raw units: a gain scales the contrast, an offset does not change it.
    np.testing.assert_allclose(centre_contrast(3 * crops + 5), [90.0, 0.0])
    assert centre_contrast(np.zeros((0, 64, 64))).shape == (0,)


def _spots(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise crops; positives have a centre 6 noise sigmas bright, negatives a faint one."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.2).astype(int)
    crops = rng.normal(100.0, 5.0, size=(n, 64, 64)).astype(np.float32)
    crops[:, 31:34, 31:34] += np.where(labels, 30.0, 5.0)[:, None, None]
    return crops, labels


def test_brightness_cut_is_the_f1_best_cut_on_the_labels():
    crops, labels = _spots(200, seed=0)
    cut = BrightnessCut().fit(crops, labels)
    expected = best_threshold(labels, centre_contrast(crops))
    assert cut.threshold_ == pytest.approx(expected.threshold)
    assert 5.0 < cut.threshold_ < 30.0
    test_crops, test_labels = _spots(500, seed=1)
    assert precision_recall_f1(test_labels, cut.predict(test_crops))["f1"] > 0.95


def test_forest_ranks_better_than_chance(data):
    train, test = data
    forest = FeatureForest(random_state=0, n_jobs=1).fit(train.crops, train.labels)
    scores = forest.decision_function(test.crops)
    assert scores.shape == (len(test.crops),)
    assert best_threshold(test.labels, scores).f1 > 0.6
    assert set(np.unique(forest.predict(test.crops))) <= {0, 1}


@pytest.mark.parametrize("baseline", [BrightnessCut(), FeatureForest(n_jobs=1)])
def test_one_class_is_refused(baseline):
    crops = np.random.default_rng(0).normal(size=(10, 64, 64)).astype(np.float32)
    with pytest.raises(SingleClassError):
        baseline.fit(crops, np.zeros(10, dtype=int))
