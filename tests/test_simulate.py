import numpy as np
import pandas as pd
import pytest

from blobsift import InvalidInputError
from blobsift.io import read_image
from blobsift.simulate import (
    DECOY_KINDS,
    simulate_crops,
    simulate_image,
    truth_labels,
    write_simulated_images,
)


def test_image_and_truth_are_consistent():
    sim = simulate_image((256, 300), n_spots=30, seed=1)
    assert sim.image.shape == (256, 300)
    assert sim.image.dtype == np.float32
    spots = sim.objects[sim.objects.kind == "spot"]
    assert len(spots) == 30
    assert set(sim.objects.kind) <= {"spot", *DECOY_KINDS}
    assert (sim.objects.label == (sim.objects.kind == "spot")).all()
    # Bright spots stand out of the noise at their true position.
    bright = spots[spots.snr > 10]
    rows, cols = np.round(bright.row).astype(int), np.round(bright.col).astype(int)
    excess = (sim.image[rows, cols] - sim.background[rows, cols]) / sim.noise[rows, cols]
    assert np.median(excess) > 5


def test_noise_matches_the_stated_level_away_from_objects():
    sim = simulate_image((256, 256), n_spots=5, seed=2)
    free = ~sim.footprint
    residual = (sim.image - sim.background)[free] / sim.noise[free]
    assert residual.std() == pytest.approx(1.0, abs=0.05)


def test_same_seed_same_image_other_seed_other_image():
    a = simulate_image((64, 64), n_spots=3, seed=7).image
    b = simulate_image((64, 64), n_spots=3, seed=7).image
    c = simulate_image((64, 64), n_spots=3, seed=8).image
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_crops_have_the_requested_size_ratio_and_kinds():
    data = simulate_crops(550, seed=3)
    assert data.crops.shape == (550, 64, 64)
    assert data.labels.sum() == 50
    assert set(data.kinds) == {"spot", "noise_peak", *DECOY_KINDS}
    np.testing.assert_array_equal(data.labels, data.kinds == "spot")


def test_signal_crops_are_brighter_at_the_centre():
    data = simulate_crops(440, seed=4)
    centre = data.crops[:, 30:35, 30:35].mean(axis=(1, 2)) - np.median(data.crops, axis=(1, 2))
    spots = centre[data.kinds == "spot"]
    peaks = centre[data.kinds == "noise_peak"]
    assert np.median(spots) > 2 * np.median(peaks)


def test_zero_crops_and_bad_arguments():
    assert simulate_crops(0, seed=0).crops.shape == (0, 64, 64)
    with pytest.raises(InvalidInputError, match="positive_fraction"):
        simulate_crops(10, positive_fraction=1.5)
    with pytest.raises(InvalidInputError, match="n_spots"):
        simulate_image(n_spots=-1)


def test_written_images_hold_what_simulate_image_draws(tmp_path):
    truth = write_simulated_images(tmp_path, 2, seed=7, prefix="a", shape=(40, 50), n_spots=3)
    assert list(truth) == [tmp_path / "a0.tif", tmp_path / "a1.tif"]
    for k, (path, objects) in enumerate(truth.items()):
        expected = simulate_image((40, 50), n_spots=3, seed=7 + k)
        np.testing.assert_array_equal(read_image(path), expected.image)
        pd.testing.assert_frame_equal(objects, expected.objects)


def test_truth_labels_pair_candidates_with_objects_one_to_one():
    objects = {
        "a": pd.DataFrame({"row": [10.0, 30.0], "col": [10.0, 30.0], "label": [1, 0]}),
        "b": pd.DataFrame({"row": [5.0], "col": [5.0], "label": [1]}),
    }
    candidates = pd.DataFrame(
        {
            "image": ["b", "a", "a", "a", "a", "b"],
            "row": [5.5, 10.5, 11.0, 30.0, 50.0, 20.0],
            "col": [5.0, 10.0, 10.0, 31.0, 50.0, 20.0],
        },
        index=[9, 3, 7, 1, 0, 2],
    )
    # b's spot; a's spot (the nearer of two candidates); a's decoy; nothing near; nothing.
    assert truth_labels(candidates, objects).tolist() == [1, 1, 0, 0, 0, 0]
    assert truth_labels(candidates, objects, radius=0.4).tolist() == [0] * 6
