import numpy as np
import pytest

from blobsift import InvalidInputError
from blobsift.simulate import BACKGROUNDS, simulate_cells_image, simulate_image


@pytest.fixture(scope="module")
def cells():
    return simulate_cells_image((256, 256), n_spots=80, seed=3)


def test_spots_and_their_truth(cells):
    spots = cells.objects[cells.objects.label == 1]
    assert len(spots) == 80
    assert (spots.kind == "spot").all()
    assert set(spots.context) == {"free", "nucleus", "cluster"}
    assert cells.image.shape == (256, 256)
    assert cells.image.dtype == np.float32
    # Bright spots stand out of their local background at their true position.
    bright = spots[spots.snr > 10]
    rows, cols = np.round(bright.row).astype(int), np.round(bright.col).astype(int)
    excess = (cells.image[rows, cols] - cells.background[rows, cols]) / cells.noise[rows, cols]
    assert np.median(excess) > 5


def test_background_has_nuclei_tissue_edges_and_saturation(cells):
    n_nuclei = int(cells.nuclei.max())
    assert n_nuclei == (cells.objects.kind == "nucleus").sum() >= 5
    inside = cells.nuclei > 0
    assert 0.02 < inside.mean() < 0.5
    # Nuclei are bright structures: well above the rest of the tissue.
    rest = cells.tissue & ~inside & ~cells.saturated
    assert np.median(cells.background[inside]) > np.median(cells.background[rest]) + 0.5 * (
        np.median(cells.background[rest]) - 100
    )
    # Nuclei are 10-40 px across: no label covers less than a 5 px disc or more than 45 px.
    areas = np.bincount(cells.nuclei.ravel())[1:]
    assert areas[areas > 0].max() < np.pi * 23**2
    # The tissue covers part of the field; off it the background is darker (an edge).
    assert 0.4 < cells.tissue.mean() < 0.95
    assert np.median(cells.background[~cells.tissue]) < np.median(cells.background[rest])
    # Some pixels are clipped at the full well, and nothing lies above it.
    assert cells.saturated.any()
    assert cells.image.max() == pytest.approx(cells.saturation)
    assert (cells.image[cells.saturated] == cells.image.max()).all()


def test_spots_sit_on_nuclei_and_in_dense_clusters(cells):
    spots = cells.objects[cells.objects.label == 1]
    rows, cols = np.round(spots.row).astype(int), np.round(spots.col).astype(int)
    on_nucleus = cells.nuclei[rows.clip(0, 255), cols.clip(0, 255)] > 0
    assert on_nucleus[(spots.context == "nucleus").to_numpy()].mean() > 0.9
    clustered = spots[spots.context == "cluster"][["row", "col"]].to_numpy()
    distance = np.hypot(*(clustered[:, None] - clustered[None]).transpose(2, 0, 1))
    np.fill_diagonal(distance, np.inf)
    assert np.median(distance.min(axis=1)) < 4
    # No spot sits in a saturated region.
    assert not cells.saturated[rows.clip(0, 255), cols.clip(0, 255)].any()


def test_seeded_and_other_outputs_unchanged():
    a = simulate_cells_image((96, 96), n_spots=10, seed=5)
    b = simulate_cells_image((96, 96), n_spots=10, seed=5)
    c = simulate_cells_image((96, 96), n_spots=10, seed=6)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.objects.equals(b.objects)
    assert not np.array_equal(a.image, c.image)
    # The spots domain is untouched by the new mode.
    plain = simulate_image((64, 64), n_spots=3, seed=7)
    assert plain.objects.columns.tolist() == ["row", "col", "sigma", "snr", "kind", "label"]
    assert BACKGROUNDS == ("cells",)


def test_bad_arguments_are_refused():
    with pytest.raises(InvalidInputError, match="background"):
        simulate_cells_image((64, 64), background="sky")
    with pytest.raises(InvalidInputError, match="nucleus_share"):
        simulate_cells_image((64, 64), nucleus_share=0.8, cluster_share=0.5)
