import numpy as np
import pytest

from blobsift.crops import extract_crops
from blobsift.exceptions import InvalidInputError
from blobsift.types import Candidates


def _ramp(shape=(100, 120)):
    """An image whose every pixel value is unique: value = row * 1000 + col."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (rows * 1000 + cols).astype(np.float64)


@pytest.mark.parametrize(
    "candidates",
    [Candidates.empty(), np.empty((0, 2)), Candidates.empty(with_image=True)],
    ids=["Candidates", "array", "with-image"],
)
def test_empty_in_empty_out(candidates):
    crops = extract_crops(np.zeros((50, 50)), candidates)
    assert crops.shape == (0, 64, 64)
    assert crops.dtype == np.float32


def test_empty_candidates_on_an_empty_image_is_fine():
    assert extract_crops(np.zeros((0, 0)), np.empty((0, 2)), size=8).shape == (0, 8, 8)


@pytest.mark.parametrize(
    ("row", "col", "pixel"),
    [
        (50.0, 60.0, (50, 60)),
        (50.4, 60.49, (50, 60)),
        (50.6, 59.51, (51, 60)),
        (49.5, 10.5, (50, 11)),
    ],
)
def test_nearest_pixel_lands_at_the_centre(row, col, pixel):
    image = _ramp()
    crops = extract_crops(image, Candidates(row=[row], col=[col]), size=64)
    assert crops[0, 32, 32] == image[pixel]
    # The whole window is the image shifted so the pixel sits at (32, 32).
    np.testing.assert_array_equal(crops[0, 32, 30:35], image[pixel[0], pixel[1] - 2 : pixel[1] + 3])


@pytest.mark.parametrize("size", [5, 8, 64])
def test_interior_crop_matches_a_slice(size):
    image = _ramp((200, 200))
    crops = extract_crops(image, np.array([[100.0, 90.0]]), size=size)
    half = size // 2
    np.testing.assert_array_equal(
        crops[0], image[100 - half : 100 - half + size, 90 - half : 90 - half + size]
    )


def test_border_windows_are_mirror_reflected_without_repeating_the_edge():
    image = _ramp((40, 50))
    positions = np.array([[0.0, 0.0], [39.0, 49.0], [3.0, 47.0], [20.0, 1.0]])
    crops = extract_crops(image, positions, size=16)
    padded = np.pad(image, 16, mode="reflect")  # numpy "reflect" = d c b | a b c d
    for crop, (row, col) in zip(crops, positions.astype(int), strict=True):
        expected = padded[row + 16 - 8 : row + 16 + 8, col + 16 - 8 : col + 16 + 8]
        np.testing.assert_array_equal(crop, expected)


def test_image_smaller_than_a_crop_is_reflected_repeatedly():
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    crops = extract_crops(image, np.array([[1.0, 2.0]]), size=64)
    assert crops.shape == (1, 64, 64)
    assert crops[0, 32, 32] == image[1, 2]
    assert set(np.unique(crops).tolist()) <= set(image.ravel().tolist())
    # Reflection has period 2 * (length - 1) along each axis.
    np.testing.assert_array_equal(crops[0, :, 10], crops[0, :, 16])
    single = extract_crops(np.array([[7.0]]), np.array([[0.0, 0.0]]), size=4)
    np.testing.assert_array_equal(single, np.full((1, 4, 4), 7.0, np.float32))


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.uint16, np.uint32, np.int16, np.float32, np.float64, bool]
)
def test_any_real_dtype_gives_float32_with_the_same_values(dtype):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 2 if dtype is bool else 200, size=(70, 70)).astype(dtype)
    crops = extract_crops(image, np.array([[35.0, 35.0], [2.0, 68.0]]), size=32)
    assert crops.dtype == np.float32
    np.testing.assert_array_equal(crops[0], image[19:51, 19:51].astype(np.float32))


def test_large_uint32_values_do_not_wrap():
    image = np.full((10, 10), 2**32 - 1, dtype=np.uint32)
    crops = extract_crops(image, np.array([[5.0, 5.0]]), size=4)
    assert np.all(crops == np.float32(2**32 - 1))


def test_order_follows_candidates():
    image = _ramp()
    crops = extract_crops(image, Candidates(row=[10, 80, 40], col=[5, 100, 60]), size=8)
    assert [c[4, 4] for c in crops] == [image[10, 5], image[80, 100], image[40, 60]]


def test_bad_input_raises_clear_errors():
    with pytest.raises(InvalidInputError, match="2D"):
        extract_crops(np.zeros((2, 3, 10, 10)), np.zeros((1, 2)))
    with pytest.raises(InvalidInputError, match="shape"):
        extract_crops(np.zeros((10, 10)), np.zeros(3))
    with pytest.raises(InvalidInputError, match="finite"):
        extract_crops(np.zeros((10, 10)), np.array([[np.nan, 1.0]]))
    with pytest.raises(InvalidInputError, match="size"):
        extract_crops(np.zeros((10, 10)), np.zeros((1, 2)), size=0)


def test_a_stack_gives_crops_of_every_channel_at_the_same_positions():
    image = _ramp()
    stack = np.stack([image, -image, 2 * image])
    positions = np.array([[50.2, 60.7], [1.0, 118.0], [99.0, 0.4]])  # inside, two borders
    crops = extract_crops(stack, positions, size=16)
    assert crops.shape == (3, 3, 16, 16)
    assert crops.dtype == np.float32
    for channel, factor in enumerate((1, -1, 2)):
        np.testing.assert_array_equal(
            crops[:, channel], factor * extract_crops(image, positions, 16)
        )
    assert extract_crops(stack, np.empty((0, 2))).shape == (0, 3, 64, 64)


def test_crops_for_cuts_stacks_and_refuses_mixed_channels():
    import pandas as pd

    from blobsift.crops import crops_for

    image = _ramp()
    images = {"a": np.stack([image, image + 1]), "b": np.stack([image + 2, image + 3])}
    table = pd.DataFrame({"image": ["b", "a", "b"], "row": [10.0, 20, 30], "col": [5.0, 6, 7]})
    crops = crops_for(table, images.__getitem__, image_column="image", size=8)
    assert crops.shape == (3, 2, 8, 8)
    np.testing.assert_array_equal(crops[1], extract_crops(images["a"], [[20.0, 6]], 8)[0])
    np.testing.assert_array_equal(crops[2], extract_crops(images["b"], [[30.0, 7]], 8)[0])
    images["b"] = image
    with pytest.raises(InvalidInputError, match="channels"):
        crops_for(table, images.__getitem__, image_column="image", size=8)
