"""The difference-imaging domain of the simulator: physics with known answers."""

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from blobsift import InvalidInputError, Sifter
from blobsift.classify.baselines import BrightnessCut, FeatureForest
from blobsift.detect import detect_blobs
from blobsift.io import read_image
from blobsift.metrics import best_threshold
from blobsift.simulate import (
    DIFFERENCE_DECOY_KINDS,
    DifferenceImage,
    candidate_kinds,
    simulate_crops,
    simulate_difference_image,
    write_simulated_images,
)

#: A small frame of stars only, so every residual belongs to a star.
STARS_ONLY = {"n_transients": 0, "n_stars": 300, "n_cosmic_rays": 0, "n_hot_pixels": 0}


@pytest.fixture(scope="module")
def crops():
    """440 difference crops at 1:10 (40 transients)."""
    return simulate_crops(440, seed=4, domain="difference")


def _robust_level(crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each crop's median and noise level (MAD)."""
    median = np.median(crops, axis=(1, 2))
    mad = 1.4826 * np.median(np.abs(crops - median[:, None, None]), axis=(1, 2))
    return median, mad


def _isolated_stars(sim: DifferenceImage, low: float, high: float) -> pd.DataFrame:
    """Unsaturated stars of science SNR in [low, high], inside, far from saturated ones."""
    objects = sim.objects
    saturated = objects[objects.kind == "saturated_star"]
    inside = objects.row.between(5, sim.difference.shape[0] - 6) & objects.col.between(
        5, sim.difference.shape[1] - 6
    )
    stars = objects[(objects.kind == "star") & objects.snr.between(low, high) & inside]
    far = np.ones(len(stars), dtype=bool)
    for _, bright in saturated.iterrows():
        distance = np.hypot(stars.row - bright.row, stars.col - bright.col).to_numpy()
        far &= distance > 3 * bright.radius
    return stars[far]


def test_frames_have_the_documented_shapes_and_truth():
    sim = simulate_difference_image((128, 160), n_transients=4, seed=1, n_stars=80)
    for image in (sim.science, sim.reference, sim.difference, sim.noise, sim.residual):
        assert image.shape == (128, 160)
        assert image.dtype == np.float32
    assert (sim.noise > 0).all()
    objects = sim.objects
    assert list(objects.columns) == ["row", "col", "flux", "snr", "radius", "kind", "label"]
    assert set(objects.kind) <= {"transient", "star", "saturated_star", "cosmic_ray", "hot_pixel"}
    assert (objects.kind == "transient").sum() == 4
    assert objects.kind.str.contains("star").sum() == 80
    np.testing.assert_array_equal(objects.label, objects.kind == "transient")
    assert objects.label.dtype == np.int64
    assert (objects.flux > 0).all()
    assert sim.conditions["convolved"] in ("science", "reference")


def test_stars_cancel_when_registered_and_leave_dipoles_when_not():
    for seed in (0, 1):
        aligned = simulate_difference_image(
            (256, 256), seed=seed, misregistration=(0, 0), kernel_error=0, **STARS_ONLY
        )
        shifted = simulate_difference_image(
            (256, 256), seed=seed, misregistration=(0.3, 0.3), kernel_error=0, **STARS_ONLY
        )
        # Same field, same seeing: only the shift differs.
        assert aligned.conditions["fwhm_science"] == shifted.conditions["fwhm_science"]
        stars = _isolated_stars(aligned, 5, 30)
        assert len(stars) >= 20
        at = np.round(stars[["row", "col"]].to_numpy()).astype(int)
        left = {}
        for name, sim in (("aligned", aligned), ("shifted", shifted)):
            strength = ndimage.maximum_filter(np.abs(sim.residual) / sim.noise, 7)
            left[name] = np.median(strength[at[:, 0], at[:, 1]])
        # PSF matching leaves stars of 5-30 sigmas well below the noise ...
        assert left["aligned"] < 0.3
        # ... and a 0.3-pixel shift leaves them several times stronger.
        assert left["shifted"] > 2 * left["aligned"]


def test_a_dipole_points_along_the_misregistration():
    sim = simulate_difference_image(
        (256, 256), seed=2, misregistration=(0.3, 0.3), kernel_error=0, **STARS_ONLY
    )
    shift = np.array([sim.conditions["shift_row"], sim.conditions["shift_col"]])
    stars = _isolated_stars(sim, 30, 1000)
    assert len(stars) >= 5
    rows, cols = np.mgrid[-6:7, -6:7]
    agree = []
    for row, col in np.round(stars[["row", "col"]].to_numpy()).astype(int):
        patch = sim.residual[row - 6 : row + 7, col - 6 : col + 7].astype(np.float64)
        if patch.shape != rows.shape:
            continue
        positive, negative = np.clip(patch, 0, None), np.clip(-patch, 0, None)
        assert positive.max() > 0  # both lobes
        assert negative.max() > 0
        lobe = [
            (rows * positive).sum() / positive.sum() - (rows * negative).sum() / negative.sum(),
            (cols * positive).sum() / positive.sum() - (cols * negative).sum() / negative.sum(),
        ]
        agree.append(np.dot(lobe, shift) > 0)
    # The science frame moved by `shift`: its stars' positive lobe lies on that side.
    assert np.mean(agree) >= 0.9


def test_the_difference_is_noise_where_nothing_was_drawn():
    sim = simulate_difference_image((256, 256), seed=3, **STARS_ONLY)
    whitened = (sim.difference - sim.residual) / sim.noise
    assert whitened.std() == pytest.approx(1.0, abs=0.05)
    assert abs(whitened.mean()) < 0.05


def test_transients_are_in_the_science_frame_only():
    sim = simulate_difference_image(
        (256, 256), n_transients=20, seed=5, n_stars=100, transient_snr=(10, 40), hosted_fraction=0
    )
    transients = sim.objects[sim.objects.kind == "transient"]
    at = np.round(transients[["row", "col"]].to_numpy()).astype(int)
    science = sim.science - np.median(sim.science)
    reference = sim.reference - np.median(sim.reference)
    noise = sim.noise[at[:, 0], at[:, 1]]
    assert np.median(science[at[:, 0], at[:, 1]] / noise) > 5
    assert np.median(np.abs(reference[at[:, 0], at[:, 1]]) / noise) < 1.5
    assert np.median(sim.difference[at[:, 0], at[:, 1]] / noise) > 5


@pytest.mark.parametrize(
    ("fwhm_science", "fwhm_reference", "convolved"),
    [((4.0, 4.5), (2.0, 2.5), "reference"), ((2.0, 2.5), (4.0, 4.5), "science")],
)
def test_the_sharper_frame_is_convolved(fwhm_science, fwhm_reference, convolved):
    sim = simulate_difference_image(
        (128, 128),
        n_transients=6,
        seed=6,
        n_stars=50,
        transient_snr=(15, 30),
        hosted_fraction=0,
        fwhm_science=fwhm_science,
        fwhm_reference=fwhm_reference,
    )
    assert sim.conditions["convolved"] == convolved
    assert sim.conditions["kernel_sigma"] > 0.5
    transients = sim.objects[sim.objects.kind == "transient"]
    at = np.round(transients[["row", "col"]].to_numpy()).astype(int)
    assert (sim.difference[at[:, 0], at[:, 1]] > 3 * sim.noise[at[:, 0], at[:, 1]]).all()


def test_the_detector_finds_about_ten_bogus_candidates_per_real_one():
    real = bogus = 0
    for seed in range(3):
        sim = simulate_difference_image(seed=seed)
        found = detect_blobs(sim.difference, threshold=5.0, n_threads=1)
        kinds = candidate_kinds(np.column_stack([found.row, found.col]), sim)
        real += int(np.sum(kinds == "transient"))
        bogus += int(np.sum(kinds != "transient"))
    assert 6 < bogus / real < 15


def test_candidate_kinds_follow_the_truth():
    shape = (100, 100)
    residual = np.zeros(shape, np.float32)
    residual[70, 70], residual[71, 70] = 5.0, -5.0  # a star's dipole
    objects = pd.DataFrame(
        {
            "row": [10.0, 30.0, 50.0, 70.0],
            "col": [10.0, 30.0, 50.0, 70.0],
            "flux": 1.0,
            "snr": 10.0,
            "radius": [2.0, 5.0, 8.0, 0.0],
            "kind": ["transient", "cosmic_ray", "saturated_star", "star"],
            "label": [1, 0, 0, 0],
        }
    )
    zeros = np.zeros(shape, np.float32)
    sim = DifferenceImage(zeros, zeros, zeros, np.ones(shape, np.float32), residual, objects, {})
    positions = [[10.5, 10], [11, 10], [33, 30], [56, 50], [70.5, 71], [90, 10]]
    assert candidate_kinds(positions, sim).tolist() == [
        "transient",
        "noise_peak",  # the transient is taken by the nearer candidate
        "cosmic_ray",
        "bright_star",
        "dipole",
        "noise_peak",
    ]
    assert candidate_kinds(np.zeros((0, 2)), sim).shape == (0,)


def test_crops_have_the_requested_size_ratio_and_kinds(crops):
    assert crops.crops.shape == (440, 64, 64)
    assert crops.crops.dtype == np.float32
    assert crops.triplets.shape == (440, 3, 64, 64)
    assert crops.triplets.dtype == np.float32
    np.testing.assert_array_equal(crops.triplets[:, 2], crops.crops)
    assert crops.labels.dtype == np.int64
    assert crops.labels.sum() == 40
    np.testing.assert_array_equal(crops.labels, crops.kinds == "transient")
    assert set(crops.kinds) <= {"transient", "noise_peak", *DIFFERENCE_DECOY_KINDS}
    counts = pd.Series(crops.kinds).value_counts()
    assert counts.index[0] == "dipole"  # subtraction residuals dominate the bogus
    assert {"cosmic_ray", "hot_pixel", "bright_star"} <= set(counts.index)


def test_transients_are_positive_at_the_centre_of_their_crop(crops):
    median, mad = _robust_level(crops.crops)
    centre = crops.crops[:, 31:34, 31:34].mean(axis=(1, 2)) - median
    transient = crops.kinds == "transient"
    assert (centre[transient] > 0).all()
    assert np.median(centre[transient] / mad[transient]) > 3


def test_dipoles_have_a_negative_lobe(crops):
    median, mad = _robust_level(crops.crops)
    lobe = crops.crops[:, 27:38, 27:38].min(axis=(1, 2)) - median
    has_lobe = lobe < -3 * mad
    assert np.mean(has_lobe[crops.kinds == "dipole"]) > 0.75
    assert np.mean(has_lobe[crops.kinds == "transient"]) < 0.4


def test_the_science_and_reference_crops_show_the_same_field(crops):
    science, reference = crops.triplets[:, 0], crops.triplets[:, 1]
    # Dipoles sit on stars: bright in both frames. Transients are new: in the science only.
    dipole, transient = crops.kinds == "dipole", crops.kinds == "transient"
    ref_centre = reference[:, 30:35, 30:35].mean(axis=(1, 2)) - np.median(reference, axis=(1, 2))
    sci_centre = science[:, 30:35, 30:35].mean(axis=(1, 2)) - np.median(science, axis=(1, 2))
    assert np.median(ref_centre[dipole]) > 5 * max(np.median(ref_centre[transient]), 1.0)
    assert np.median(sci_centre[transient]) > 0


def test_a_forest_learns_what_a_brightness_cut_cannot(crops):
    train, test = slice(0, 220), slice(220, None)
    forest = FeatureForest(random_state=0, n_jobs=1).fit(crops.crops[train], crops.labels[train])
    cut = BrightnessCut().fit(crops.crops[train], crops.labels[train])
    forest_f1 = best_threshold(crops.labels[test], forest.decision_function(crops.crops[test])).f1
    cut_f1 = best_threshold(crops.labels[test], cut.decision_function(crops.crops[test])).f1
    # Bright bogus (residuals, cosmic rays, hot pixels) defeat a contrast cut, not shape.
    assert forest_f1 > 0.6
    assert forest_f1 > cut_f1 + 0.2


def test_sifter_takes_difference_crops_as_they_are(crops):
    sifter = Sifter(phase="cnn", random_state=0, epochs=1).fit(
        crops.crops[:110], crops.labels[:110]
    )
    probabilities = sifter.predict_proba(crops.crops[110:150])
    assert probabilities.shape == (40, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_same_seed_same_crops_other_seed_other_crops():
    a = simulate_crops(33, seed=7, domain="difference")
    b = simulate_crops(33, seed=7, domain="difference")
    c = simulate_crops(33, seed=8, domain="difference")
    for field in ("crops", "labels", "kinds", "triplets"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.crops, c.crops)


def test_zero_crops_and_bad_arguments():
    empty = simulate_crops(0, seed=0, domain="difference")
    assert empty.crops.shape == (0, 64, 64)
    assert empty.triplets.shape == (0, 3, 64, 64)
    assert empty.labels.shape == empty.kinds.shape == (0,)
    with pytest.raises(InvalidInputError, match="domain"):
        simulate_crops(10, domain="radio")
    with pytest.raises(InvalidInputError, match="noise_peak_share applies to domain='spots'"):
        simulate_crops(10, domain="difference", noise_peak_share=0.5)
    with pytest.raises(InvalidInputError, match="n_stars"):
        simulate_difference_image(n_stars=-1)
    with pytest.raises(InvalidInputError, match="fwhm_science"):
        simulate_difference_image(fwhm_science=(4.0, 2.0))
    with pytest.raises(InvalidInputError, match=r"sky must be a \(low, high\) pair"):
        simulate_difference_image(sky=500.0)


def test_spots_stay_the_default_domain():
    default = simulate_crops(22, seed=1)
    spots = simulate_crops(22, seed=1, domain="spots", noise_peak_share=0.6)
    np.testing.assert_array_equal(default.crops, spots.crops)
    np.testing.assert_array_equal(default.kinds, spots.kinds)
    assert default.triplets is None


def test_written_difference_images_hold_what_the_simulator_draws(tmp_path):
    options = {"shape": (48, 56), "n_transients": 2, "n_stars": 15}
    truth = write_simulated_images(tmp_path, 2, seed=7, prefix="d", domain="difference", **options)
    assert list(truth) == [tmp_path / "d0.tif", tmp_path / "d1.tif"]
    for k, (path, objects) in enumerate(truth.items()):
        expected = simulate_difference_image(seed=7 + k, **options)
        np.testing.assert_array_equal(read_image(path), expected.difference)
        pd.testing.assert_frame_equal(objects, expected.objects)
