import warnings

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from blobsift.detect import (
    CandidateBudgetWarning,
    NonFinitePixelWarning,
    detect_blobs,
    estimate_noise,
)
from blobsift.exceptions import InvalidInputError
from blobsift.types import Candidates

try:
    import cv2  # noqa: F401

    HAVE_OPENCV = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_OPENCV = False


def draw_spots(shape, positions, sigmas, amplitude, offset, noise, seed):
    """Gaussian spots at known sub-pixel positions on a flat background with white noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    image = np.full(shape, float(offset))
    for (row, col), sigma in zip(positions, sigmas, strict=True):
        image += amplitude * np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * sigma**2))
    return image + rng.normal(0, noise, shape)


def grid_positions(shape, spacing, seed, margin=16):
    rng = np.random.default_rng(seed)
    rows = np.arange(margin, shape[0] - margin + 1, spacing)
    cols = np.arange(margin, shape[1] - margin + 1, spacing)
    grid = np.array([(r, c) for r in rows for c in cols], dtype=float)
    return grid + rng.uniform(-0.5, 0.5, grid.shape)


BRIGHTNESS = {
    # offset, spot amplitude, noise: the same signal-to-noise ratio at different levels
    "dim": (100.0, 45.0, 3.0),
    "bright": (20000.0, 15000.0, 1000.0),
}


@pytest.mark.parametrize("brightness", list(BRIGHTNESS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.uint32, np.int32])
def test_spots_at_known_positions_are_found_within_half_a_pixel(dtype, brightness):
    shape = (160, 192)
    positions = grid_positions(shape, 32, seed=1)
    sigmas = np.resize([1.0, 1.5, 2.2, 3.0], len(positions))
    offset, amplitude, noise = BRIGHTNESS[brightness]
    image = draw_spots(shape, positions, sigmas, amplitude, offset, noise, seed=2)
    if np.dtype(dtype).kind in "iu":
        image = np.round(image)
    image = image.astype(dtype)

    found = detect_blobs(image, threshold=8.0)

    assert len(found) == len(positions)  # no extra candidates at this threshold
    distance, nearest = cKDTree(found.positions).query(positions)
    assert distance.max() < 0.5
    assert distance.mean() < 0.15
    np.testing.assert_allclose(found.sigma[nearest], sigmas, rtol=0.25)
    assert np.all(np.diff(found.score) <= 0)  # ordered by descending score


def test_score_is_invariant_to_gain_and_offset():
    positions = grid_positions((128, 128), 24, seed=3)
    image = draw_spots((128, 128), positions, np.full(len(positions), 1.6), 12.0, 50.0, 2.0, 4)
    base = detect_blobs(image.astype(np.float32), threshold=3.0)
    scaled = detect_blobs((image * 37.0 + 5000.0).astype(np.float64), threshold=3.0)
    assert len(base) == len(scaled) > len(positions)  # includes noise peaks, all the same
    np.testing.assert_allclose(scaled.positions, base.positions, atol=1e-3)
    np.testing.assert_allclose(scaled.score, base.score, rtol=1e-3)


def test_half_pixel_centre_gives_one_candidate():
    # A spot centred between four pixels makes a symmetric plateau of equal responses.
    rows, cols = np.mgrid[0:40, 0:40]
    image = 100 * np.exp(-((rows - 19.5) ** 2 + (cols - 20.5) ** 2) / (2 * 1.5**2))
    found = detect_blobs(image + 10, threshold=5.0)
    assert len(found) == 1
    assert abs(found.row[0] - 19.5) < 0.1
    assert abs(found.col[0] - 20.5) < 0.1


def test_noiseless_image_with_spots():
    image = np.zeros((64, 64), np.float32)
    image[20, 30] = image[45, 10] = 1.0
    image = ndimage.gaussian_filter(image, 1.5)
    found = detect_blobs(image, threshold=5.0)
    assert len(found) >= 2
    distance, _ = cKDTree(found.positions[:2]).query([[20, 30], [45, 10]])
    assert distance.max() < 0.5


def test_estimate_noise_is_robust_to_spots_and_background():
    rng = np.random.default_rng(5)
    rows, cols = np.mgrid[0:600, 0:700]
    image = 1000 + 0.5 * rows + 0.2 * cols + rng.normal(0, 7.0, rows.shape)
    image[::25, ::25] += 5000  # hot pixels
    background, noise = estimate_noise(image)
    assert noise == pytest.approx(7.0, rel=0.05)
    assert 1000 < background < 1000 + 0.5 * 600 + 0.2 * 700
    assert estimate_noise(np.full((50, 50), 3.0)) == (3.0, 0.0)
    quantised = np.round(rng.normal(10, 0.3, (100, 100)))
    assert estimate_noise(quantised)[1] > 0


# -- bad input ---------------------------------------------------------------------------------
def test_constant_image_gives_nothing_and_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for value in (0.0, 7.5, 65535):
            found = detect_blobs(np.full((300, 300), value, np.float32))
            assert isinstance(found, Candidates)
            assert len(found) == 0


def test_non_finite_pixels_are_masked_and_reported():
    shape = (96, 96)
    positions = np.array([[30.3, 30.6], [60.0, 70.2], [70.0, 20.0]])
    image = draw_spots(shape, positions, [1.5, 1.5, 1.5], 60.0, 100.0, 2.0, seed=6)
    image = image.astype(np.float32)
    image[5:15, 40:60] = np.nan
    image[60, 64] = np.inf
    image[80, 80] = -np.inf
    with pytest.warns(NonFinitePixelWarning, match="202 NaN/inf"):
        found = detect_blobs(image, threshold=8.0)
    assert np.isfinite(found.score).all()
    assert np.isfinite(found.positions).all()
    distance, _ = cKDTree(found.positions).query(positions)
    assert distance.max() < 0.5
    pixels = np.floor(found.positions + 0.5).astype(int)
    assert np.isfinite(image[pixels[:, 0], pixels[:, 1]]).all()


def test_all_nan_image_is_reported_and_empty():
    with pytest.warns(NonFinitePixelWarning):
        assert len(detect_blobs(np.full((20, 20), np.nan))) == 0


@pytest.mark.parametrize("shape", [(1, 1), (1, 40), (2, 2), (3, 5), (7, 7), (20, 3)])
def test_tiny_images(shape):
    rng = np.random.default_rng(7)
    image = rng.normal(0, 1, shape)
    image[shape[0] // 2, shape[1] // 2] += 50
    found = detect_blobs(image, threshold=3.0)
    assert isinstance(found, Candidates)
    assert np.all((found.row >= -0.5) & (found.row <= shape[0] - 0.5))
    assert np.all((found.col >= -0.5) & (found.col <= shape[1] - 0.5))


def test_empty_image():
    assert len(detect_blobs(np.zeros((0, 10)))) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sigma_min": 0.0}, "sigma_min"),
        ({"sigma_min": -1.0}, "sigma_min"),
        ({"sigma_max": -2.0}, "sigma_max"),
        ({"sigma_min": 3.0, "sigma_max": 2.0}, "sigma_max must be >= sigma_min"),
        ({"threshold": np.nan}, "threshold"),
        ({"min_distance": 0}, "min_distance"),
        ({"min_distance": 1.5}, "min_distance"),
        ({"border": -1}, "border"),
        ({"max_candidates": -5}, "max_candidates"),
        ({"tile_size": 4}, "tile_size"),
        ({"n_threads": 0}, "n_threads"),
        ({"backend": "cuda"}, "backend"),
    ],
)
def test_bad_parameters_raise(kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        detect_blobs(np.zeros((32, 32)), **kwargs)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((3, 8, 8)), "2D"),
        (np.zeros(10), "2D"),
        (np.zeros((8, 8), np.complex64), r"np\.abs"),
        (np.array([["a", "b"]]), "real numbers"),
    ],
)
def test_bad_images_raise(image, message):
    with pytest.raises(InvalidInputError, match=message):
        detect_blobs(image)


def test_budget_caps_and_says_so():
    noise = np.random.default_rng(8).normal(0, 1, (256, 256)).astype(np.float32)
    everything = detect_blobs(noise, threshold=0.0)
    assert len(everything) > 1000
    with pytest.warns(CandidateBudgetWarning, match=f"{len(everything)} peaks"):
        capped = detect_blobs(noise, threshold=0.0, max_candidates=100)
    assert len(capped) == 100
    assert capped.equals(everything[:100])  # the strongest ones


def test_min_distance_and_border():
    positions = np.array([[30.0, 30.0], [30.0, 34.0], [3.0, 50.0]])
    image = draw_spots((64, 64), positions, [1.0, 1.0, 1.0], 100.0, 0.0, 1.0, seed=9)
    image[30, 30] += 20  # make the first spot the stronger of the close pair
    one_scale = {"threshold": 10.0, "sigma_min": 1.0, "sigma_max": 1.0}
    assert len(detect_blobs(image, **one_scale)) == 3
    apart = detect_blobs(image, min_distance=5, **one_scale)
    assert len(apart) == 2
    assert np.abs(apart.positions - [30, 30]).sum(axis=1).min() < 0.5
    inner = detect_blobs(image, border=5, **one_scale)
    assert len(inner) == 2
    assert inner.row.min() > 5


# -- tiles ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def busy_image():
    from blobsift import simulate

    return simulate.simulate_image((300, 340), n_spots=60, seed=10).image


def _same(a, b, *, position_atol=2e-3, score_rtol=1e-4):
    """The same candidates, up to float32 rounding (which can swap near-equal scores)."""
    assert len(a) == len(b)
    distance, match = cKDTree(b.positions).query(a.positions)
    assert np.unique(match).size == len(a)
    assert distance.max() <= position_atol
    np.testing.assert_allclose(a.score, b.score[match], rtol=score_rtol)
    np.testing.assert_allclose(a.sigma, b.sigma[match], rtol=1e-3)


@pytest.mark.parametrize(("tile_size", "n_threads"), [(64, 1), (100, 2), (37, 3)])
def test_tiled_equals_whole(busy_image, tile_size, n_threads):
    whole = detect_blobs(busy_image, threshold=3.0, n_threads=1, tile_size=4096)
    assert len(whole) > 150
    tiled = detect_blobs(busy_image, threshold=3.0, n_threads=n_threads, tile_size=tile_size)
    _same(tiled, whole)


def test_tiled_budget_equals_whole_budget(busy_image):
    with pytest.warns(CandidateBudgetWarning):
        whole = detect_blobs(busy_image, threshold=2.0, max_candidates=150, tile_size=4096)
    with pytest.warns(CandidateBudgetWarning):
        tiled = detect_blobs(busy_image, threshold=2.0, max_candidates=150, tile_size=50)
    _same(tiled, whole)


def test_lazy_image_is_read_in_tiles(tmp_path, busy_image):
    from blobsift.io import open_image

    np.save(tmp_path / "big.npy", busy_image.astype(np.uint16))
    lazy = open_image(tmp_path / "big.npy")
    whole = detect_blobs(busy_image.astype(np.uint16), threshold=3.0)
    _same(detect_blobs(lazy, threshold=3.0, tile_size=64), whole)


@pytest.mark.skipif(not HAVE_OPENCV, reason="OpenCV is not installed")
def test_scipy_backend_matches_opencv(busy_image):
    image = busy_image[:150, :170]
    fast = detect_blobs(image, threshold=4.0, backend="opencv")
    slow = detect_blobs(image, threshold=4.0, backend="scipy")
    _same(fast, slow)


# -- fast paths ----------------------------------------------------------------------------------
def test_window_max_over_points_by_kd_tree_equals_the_dense_window_max(monkeypatch):
    from blobsift.detect import _filters, _peaks

    rng = np.random.default_rng(12)
    shape = (60, 80)
    points = (rng.integers(0, 60, 400), rng.integers(0, 80, 400))  # duplicates and edges
    values = rng.normal(size=400).astype(np.float32)
    queries = (rng.integers(-3, 63, 300), rng.integers(-3, 83, 300))  # clipped into the array
    results = []
    for share in (1.0, -1.0):  # all sparse (KD-tree), all dense (window maximum)
        monkeypatch.setattr(_peaks, "SPARSE_SHARE", share)
        for at in (queries, None):  # other pixels, the points themselves
            results.append(
                _peaks._window_max_at(points, values, 2, shape, _filters._window_max_scipy, at)
            )
    np.testing.assert_array_equal(results[0], results[2])
    np.testing.assert_array_equal(results[1], results[3])
    assert np.isinf(results[0]).any()  # queries with no point near, and many with some
    assert np.isfinite(results[0]).sum() > 200


def test_detection_by_kd_tree_checks_equals_the_dense_checks(busy_image, monkeypatch):
    from blobsift.detect import _peaks

    monkeypatch.setattr(_peaks, "SPARSE_SHARE", 1.0)  # every check by KD-tree
    sparse = detect_blobs(busy_image, threshold=2.0)
    monkeypatch.setattr(_peaks, "SPARSE_SHARE", -1.0)  # every check by window maxima
    dense = detect_blobs(busy_image, threshold=2.0)
    assert len(sparse) > 300
    assert sparse.equals(dense)  # exactly the same candidates, bit for bit


@pytest.mark.parametrize("block", [3, 4, 8])
def test_block_means_by_strided_sums(block):
    from blobsift.detect._local import _block_means

    values = np.random.default_rng(13).normal(5, 1, (67, 45)).astype(np.float32)
    edges = (np.arange(0, 67, block), np.arange(0, 45, block))
    expected = np.add.reduceat(np.add.reduceat(values.astype(np.float64), edges[0], 0), edges[1], 1)
    expected /= np.outer(np.diff([*edges[0], 67]), np.diff([*edges[1], 45]))  # partial blocks
    np.testing.assert_allclose(_block_means(values, block), expected, rtol=1e-6)


# -- the built-in simulator ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def simulated():
    from blobsift import simulate

    return [simulate.simulate_image((512, 512), n_spots=100, seed=seed) for seed in (0, 1)]


def test_recall_on_the_simulator_at_a_budget_of_three_per_spot(simulated):
    for sim in simulated:
        spots = sim.objects[sim.objects["label"] == 1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CandidateBudgetWarning)
            found = detect_blobs(sim.image, max_candidates=3 * len(spots))
        distance, _ = cKDTree(found.positions).query(spots[["row", "col"]].to_numpy())
        hit = distance <= 2.0
        # Spots reach down to the detection limit (peak SNR 1.5), so not all can be found.
        assert hit.mean() >= 0.8
        assert hit[spots["snr"].to_numpy() >= 8].mean() >= 0.9


def test_candidates_above_a_high_threshold_sit_on_simulated_objects(simulated):
    for sim in simulated:
        found = detect_blobs(sim.image, threshold=8.0)
        assert len(found) > 150
        on_object = ndimage.binary_dilation(sim.footprint, iterations=2)
        pixels = np.floor(found.positions + 0.5).astype(int)
        assert on_object[pixels[:, 0], pixels[:, 1]].mean() >= 0.97


def test_default_threshold_gives_at_most_six_candidates_per_plain_spot(simulated):
    # Measured: 4.0 and 4.1 per spot (10.0 and 10.3 at threshold 2.2).
    for sim in simulated:
        spots = sim.objects[sim.objects["label"] == 1]
        assert len(detect_blobs(sim.image)) / len(spots) <= 6


def test_default_threshold_passes_few_peaks_of_pure_noise():
    # Measured: 813 per megapixel (5,157 at threshold 2.2).
    noise = np.random.default_rng(11).normal(0, 1, (512, 512)).astype(np.float32)
    assert len(detect_blobs(noise)) / (noise.size / 1e6) <= 1200


def test_one_threshold_fits_images_of_different_brightness(simulated):
    sim = simulated[0]
    base = detect_blobs(sim.image, threshold=6.0)
    brighter = detect_blobs(sim.image * 20.0 + 3000.0, threshold=6.0)
    _same(brighter, base)
