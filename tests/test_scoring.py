"""The one scoring step: whole, tiled and lazy images give the same table."""

from __future__ import annotations

import numpy as np
import pytest

from blobsift.crops import extract_crops
from blobsift.detect import DetectSettings, detect_blobs
from blobsift.scoring import PREDICTION_COLUMNS, score_candidates, score_image
from blobsift.simulate import simulate_image


class _Brightness:
    """A stand-in model: each crop's centre against its own median, squashed to (0, 1)."""

    threshold_ = 0.5

    def predict_proba(self, crops):
        centre = crops[:, 28:36, 28:36].mean(axis=(1, 2))
        background = np.median(crops.reshape(len(crops), -1), axis=1)
        positive = 1.0 / (1.0 + np.exp(-(centre - background) / 10.0))
        return np.column_stack([1.0 - positive, positive])


class _Lazy:
    """A 2D array read only by slicing (as zarr is)."""

    def __init__(self, array):
        self._array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = 2

    def __getitem__(self, key):
        return self._array[key]


@pytest.fixture(scope="module")
def picture():
    return simulate_image((300, 340), n_spots=40, seed=3).image


def test_tiled_and_lazy_images_give_the_whole_image_table(picture):
    model = _Brightness()
    whole = score_image(picture, model, name="a")
    assert list(whole.columns) == list(PREDICTION_COLUMNS)
    assert len(whole) > 20
    assert (whole["image"] == "a").all()
    for other in (
        score_image(picture, model, name="a", tile_size=64),
        score_image(_Lazy(picture), model, name="a"),
        score_image(_Lazy(picture), model, name="a", tile_size=100),
    ):
        np.testing.assert_array_equal(other["probability"], whole["probability"])
        # tiled detection may move a sub-pixel position by an ulp, never its pixel
        np.testing.assert_allclose(other[["row", "col"]], whole[["row", "col"]], atol=1e-6)


def test_scores_are_those_of_the_crops_cut_whole(picture):
    model = _Brightness()
    found = detect_blobs(picture, DetectSettings(threshold=5.0))
    expected = model.predict_proba(extract_crops(picture, found))[:, 1]
    np.testing.assert_array_equal(score_candidates(picture, found, model), expected)
    tiled = score_candidates(picture, found, model, tile_size=50)
    np.testing.assert_array_equal(tiled, expected)
    table = score_image(picture, model, DetectSettings(threshold=5.0))
    np.testing.assert_array_equal(table["probability"], expected)
    np.testing.assert_array_equal(table["decision"], (expected >= 0.5).astype(np.int64))


def test_no_candidates_give_an_empty_table():
    flat = np.full((64, 64), 7.0, dtype=np.float32)
    table = score_image(flat, _Brightness(), name="flat")
    assert list(table.columns) == list(PREDICTION_COLUMNS)
    assert len(table) == 0
    assert score_candidates(flat, np.empty((0, 2)), _Brightness()).shape == (0,)


def test_candidates_classified_in_chunks_score_as_in_one_call(picture, monkeypatch):
    import blobsift.scoring as scoring

    class _Counting(_Brightness):
        def __init__(self):
            self.calls = []

        def predict_proba(self, crops):
            self.calls.append(len(crops))
            return super().predict_proba(crops)

    found = detect_blobs(picture, DetectSettings(threshold=5.0))
    expected = _Brightness().predict_proba(extract_crops(picture, found))[:, 1]
    monkeypatch.setattr(scoring, "_CLASSIFY_CHUNK", 7)
    model = _Counting()
    np.testing.assert_array_equal(score_candidates(picture, found, model), expected)
    assert model.calls == [min(7, len(found) - start) for start in range(0, len(found), 7)]
    assert len(model.calls) > 2


def test_the_classify_chunk_is_whole_onnxruntime_batches():
    import inspect

    import blobsift.scoring as scoring
    from blobsift.nn.onnx import OnnxRunner

    # chunks made of whole batches feed the network the batches of one call on all crops
    batch = inspect.signature(OnnxRunner.run).parameters["batch_size"].default
    assert scoring._CLASSIFY_CHUNK % batch == 0


class _TripletBrightness:
    """A stand-in model of (n, 3, 64, 64) crops: the brightness of their third channel."""

    threshold_ = 0.5

    def predict_proba(self, crops):
        assert crops.ndim == 4
        assert crops.shape[1] == 3
        return _Brightness().predict_proba(crops[:, 2])


class _LazyStack(_Lazy):
    """A (C, H, W) stack read only by slicing: ``[k]`` one channel, ``[:, rows, cols]``."""

    def __getitem__(self, key):
        return _Lazy(self._array[key]) if isinstance(key, int) else self._array[key]


@pytest.fixture(scope="module")
def triplet():
    from blobsift.simulate import simulate_difference_image

    simulated = simulate_difference_image((260, 300), seed=4)
    return np.stack([simulated.science, simulated.reference, simulated.difference])


def test_a_stack_is_detected_on_one_channel_and_cut_from_all(triplet):
    model = _TripletBrightness()
    whole = score_image(triplet, model, name="t", detect_channel=2)
    found = detect_blobs(triplet[2], DetectSettings())
    assert len(whole) == len(found) > 20
    np.testing.assert_array_equal(whole[["row", "col"]], np.column_stack([found.row, found.col]))
    expected = model.predict_proba(extract_crops(triplet, found))[:, 1]
    np.testing.assert_array_equal(whole["probability"], expected)
    for other in (
        score_image(triplet, model, name="t", detect_channel=2, tile_size=64),
        score_image(_LazyStack(triplet), model, name="t", detect_channel=2),
        score_image(_LazyStack(triplet), model, name="t", detect_channel=2, tile_size=100),
    ):
        np.testing.assert_array_equal(other["probability"], whole["probability"])
        np.testing.assert_allclose(other[["row", "col"]], whole[["row", "col"]], atol=1e-6)
    tiled = score_candidates(_LazyStack(triplet), found, model, tile_size=50)
    np.testing.assert_array_equal(tiled, expected)


def test_the_detection_channel_is_checked(triplet, picture):
    from blobsift.exceptions import InvalidInputError

    with pytest.raises(InvalidInputError, match=r"detect_channel=0\.\.2"):
        score_image(triplet, _TripletBrightness())
    with pytest.raises(InvalidInputError, match="out of range: the image has 3 channels"):
        score_image(triplet, _TripletBrightness(), detect_channel=3)
    with pytest.raises(InvalidInputError, match="needs a stack"):
        score_image(picture, _Brightness(), detect_channel=0)
