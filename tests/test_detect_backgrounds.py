"""The detector on realistic backgrounds: local background, local noise, spots on nuclei."""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial import cKDTree

from blobsift.detect import CandidateBudgetWarning, detect_blobs, estimate_noise
from blobsift.detect._filters import _median_scipy, _upsample_numpy
from blobsift.detect._local import local_background, local_spread
from blobsift.positions import match_positions
from blobsift.simulate import simulate_cells_image

FILTERS = SimpleNamespace(median=_median_scipy, upsample=_upsample_numpy)


@pytest.fixture(scope="module")
def cells():
    return [simulate_cells_image((512, 512), n_spots=100, seed=seed) for seed in (0, 1)]


def _spots(sim):
    spots = sim.objects[sim.objects["label"] == 1]
    return spots[["row", "col"]].to_numpy(float), spots["context"].to_numpy()


def test_spots_on_nuclei_are_found(cells):
    # The previous detector (one global noise, strict cross-scale maxima) found about 20 %
    # of the spots on nuclei at this budget; a median-filter + LoG baseline about 90 %.
    for sim in cells:
        truth, context = _spots(sim)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CandidateBudgetWarning)
            found = detect_blobs(sim.image, threshold=1.5, max_candidates=3 * len(truth))
        _, matched = match_positions(found.positions, truth, 2.0)
        hit = np.zeros(len(truth), dtype=bool)
        hit[matched] = True
        assert hit[context == "nucleus"].mean() >= 0.75
        assert hit[context == "free"].mean() >= 0.85


def test_default_threshold_gives_few_candidates_per_spot_on_cells_and_keeps_recall(cells):
    # Measured: 3.0 and 3.8 candidates per spot (8.6 and 10.1 at threshold 2.2); recall
    # 0.72 and 0.75 (0.73 and 0.77 at 2.2).
    for sim in cells:
        truth, _ = _spots(sim)
        found = detect_blobs(sim.image)
        assert 2 <= len(found) / len(truth) <= 6
        recall = len(match_positions(found.positions, truth, 2.0)[0]) / len(truth)
        lower = detect_blobs(sim.image, threshold=2.2)
        recall_lower = len(match_positions(lower.positions, truth, 2.0)[0]) / len(truth)
        assert recall >= recall_lower - 0.05


def _noise_doubling_in_the_right_half():
    image = np.random.default_rng(4).normal(0, 1, (256, 512)).astype(np.float32)
    image[:, 256:] *= 2
    return image


def test_local_noise_map_follows_noise_that_doubles_in_one_half():
    image = _noise_doubling_in_the_right_half()
    _, noise = estimate_noise(image)  # between the two halves' noise
    assert 1.1 < noise < 1.8
    spread = local_spread(image / np.float32(noise), 8, FILTERS) * noise
    np.testing.assert_allclose(np.median(spread[:, 300:]), 2.0, rtol=0.05)
    assert spread[:, 300:].min() > 1.6
    # Never below the global estimate: the quieter half keeps the global noise.
    np.testing.assert_allclose(spread[:, :220], noise, rtol=1e-6)


def test_noise_peaks_do_not_crowd_the_noisier_half():
    # With one global noise estimate the noisier half gave 135 candidates, the other none.
    found = detect_blobs(_noise_doubling_in_the_right_half(), threshold=4.0)
    assert (found.col >= 256).sum() <= 30


def _blob_with_spots(background_amplitude):
    rows, cols = np.mgrid[0:256, 0:256]
    smooth = 100 + background_amplitude * np.exp(-((rows - 128) ** 2 + (cols - 128) ** 2) / 800)
    angles = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    positions = np.array(
        [[128, 128]] + [[128 + 20 * np.sin(a), 128 + 20 * np.cos(a)] for a in angles]
    )
    spots = np.zeros((256, 256))
    for row, col in positions:
        spots += 30 * np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * 1.5**2))
    noise = np.random.default_rng(3).normal(0, 3, (256, 256))
    return smooth, spots, (smooth + spots + noise).astype(np.float32), positions


def test_background_follows_a_large_smooth_blob():
    smooth, spots, image, _ = _blob_with_spots(400.0)
    error = (local_background(image, FILTERS) - smooth)[spots < 1]
    assert abs(np.median(error)) < 1.0  # 1/3 of the pixel noise
    assert np.abs(error).max() < 0.06 * 400


def test_spots_on_a_large_smooth_blob_are_found():
    # The previous detector found 1 of these 7 spots: the blob out-peaked them.
    _, _, on_blob, positions = _blob_with_spots(400.0)
    _, _, flat, _ = _blob_with_spots(0.0)
    found, reference = detect_blobs(on_blob, threshold=5.0), detect_blobs(flat, threshold=5.0)
    distance, index = cKDTree(found.positions).query(positions)
    assert distance.max() < 0.5
    assert len(found) == len(positions)  # nothing else: the blob itself is not a candidate
    distance, reference_index = cKDTree(reference.positions).query(positions)
    assert distance.max() < 0.5
    ratio = found.score[index] / reference.score[reference_index]
    assert np.all(ratio > 0.45)
