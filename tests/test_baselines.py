import numpy as np
import pytest
from scipy import ndimage

from blobsift.classify.baselines import (
    SCALES,
    BrightnessCut,
    FeatureForest,
    centre_contrast,
    centre_features,
)
from blobsift.crops import normalise_crops
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


def _features_by_whole_filters(crops: np.ndarray) -> np.ndarray:
    """centre_features' definition, each filter run over the whole crop by scipy.ndimage."""
    x = normalise_crops(crops)[:, 0].astype(np.float64)
    c = x.shape[-1] // 2
    centre = (slice(None), slice(c - 1, c + 2), slice(c - 1, c + 2))
    features = [x[centre].mean(axis=(1, 2)), x[:, c, c], x.std(axis=(1, 2))]
    for s in SCALES:
        features.append(ndimage.gaussian_filter(x, s, axes=(1, 2))[:, c, c])
        features.append(ndimage.gaussian_laplace(x, s, axes=(1, 2))[:, c, c] * s**2)
        # (not gaussian_gradient_magnitude: with axes=(1, 2) it smooths across the batch)
        gr, gc = (ndimage.gaussian_filter(x, s, order=o, axes=(1, 2)) for o in ((1, 0), (0, 1)))
        features.append(np.sqrt(gr**2 + gc**2)[centre].mean(axis=(1, 2)))
        for filtered in (
            [ndimage.gaussian_filter(x, s, order=o, axes=(1, 2)) for o in ((2, 0), (0, 2), (1, 1))],
            [ndimage.gaussian_filter(p, s, axes=(1, 2)) for p in (gr * gr, gc * gc, gr * gc)],
        ):
            rr, cc, rc = (f[:, c, c] for f in filtered)
            root = np.sqrt(((rr - cc) / 2) ** 2 + rc**2)
            features += [(rr + cc) / 2 + root, (rr + cc) / 2 - root]
    return np.column_stack(features)


def test_centre_features_equal_the_whole_crop_filters_they_stand_for():
    crops = simulate_crops(40, seed=5).crops
    fast = centre_features(crops)
    assert fast.shape == (40, 3 + 7 * len(SCALES))
    np.testing.assert_allclose(fast, _features_by_whole_filters(crops), rtol=1e-4, atol=1e-4)
