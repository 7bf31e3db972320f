"""Images of aligned frames read as (C, H, W) stacks: every format, lazily, and the errors."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from blobsift.exceptions import ImageReadError, InvalidInputError
from blobsift.io import LazyImage, LazyStack, open_stack, read_image, read_stack

RNG = np.random.default_rng(15)
STACK = RNG.normal(100, 20, (3, 37, 45)).astype(np.float32)


def _fits():
    return pytest.importorskip("astropy.io.fits")


def _write_tiff(path):
    tifffile.imwrite(path, STACK, photometric="minisblack")  # 3 pages


def _write_tiff_tagged_rgb(path):
    tifffile.imwrite(path, STACK, photometric="rgb", planarconfig="separate")


def _write_npy(path):
    np.save(path, STACK)


def _write_fits_cube(path):
    _fits().PrimaryHDU(STACK).writeto(path)


def _write_fits_hdus(path):
    fits = _fits()
    hdus = [fits.PrimaryHDU(STACK[0])] + [fits.ImageHDU(plane) for plane in STACK[1:]]
    fits.HDUList(hdus).writeto(path)


def _write_ome_zarr(path):
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(str(path), mode="w")
    group.create_array("0", shape=STACK.shape, chunks=(1, 16, 16), dtype="f4")[:] = STACK
    axes = [{"name": "c"}, {"name": "y"}, {"name": "x"}]
    group.attrs["multiscales"] = [{"axes": axes, "datasets": [{"path": "0"}]}]


WRITERS = {
    "a.tif": _write_tiff,
    "planes.tif": _write_tiff_tagged_rgb,
    "a.npy": _write_npy,
    "cube.fits": _write_fits_cube,
    "hdus.fits": _write_fits_hdus,
    "a.zarr": _write_ome_zarr,
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_every_format_round_trips_a_stack(tmp_path, name):
    WRITERS[name](tmp_path / name)
    stack = read_stack(tmp_path / name)
    assert stack.dtype == np.float32
    np.testing.assert_array_equal(stack, STACK)
    with open_stack(tmp_path / name) as lazy:
        assert isinstance(lazy, LazyStack)
        assert lazy.shape == STACK.shape
        assert len(lazy) == 3
        np.testing.assert_array_equal(lazy[:, 5:20, 30:45], STACK[:, 5:20, 30:45])
        plane = lazy[2]
        assert isinstance(plane, LazyImage)
        assert plane.shape == (37, 45)
        np.testing.assert_array_equal(plane[3:9, 1:4], STACK[2, 3:9, 1:4])
        np.testing.assert_array_equal(np.asarray(lazy), STACK)


def test_the_2d_api_is_unchanged_for_stacks(tmp_path):
    _write_tiff(tmp_path / "a.tif")
    with pytest.raises(ImageReadError, match="page"):
        read_image(tmp_path / "a.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif", page=1), STACK[1])
    _write_fits_hdus(tmp_path / "h.fits")  # the 2D reader takes the first image HDU
    np.testing.assert_array_equal(read_image(tmp_path / "h.fits"), STACK[0])


def test_a_2d_image_is_one_channel(tmp_path):
    tifffile.imwrite(tmp_path / "flat.tif", STACK[0], photometric="minisblack")
    np.testing.assert_array_equal(read_stack(tmp_path / "flat.tif"), STACK[:1])


def test_colour_is_three_channels_not_luminance(tmp_path):
    rgb = RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    tifffile.imwrite(tmp_path / "c.tif", rgb, photometric="rgb")
    for name in ("c.png", "c.tif"):
        np.testing.assert_array_equal(read_stack(tmp_path / name), np.moveaxis(rgb, -1, 0))


def test_channels_and_pages_need_a_page(tmp_path):
    hyper = RNG.normal(size=(2, 3, 16, 16)).astype(np.float32)  # Z, C, Y, X
    tifffile.imwrite(tmp_path / "h.tif", hyper, imagej=True, metadata={"axes": "ZCYX"})
    with pytest.raises(ImageReadError, match="page"):
        read_stack(tmp_path / "h.tif")
    np.testing.assert_array_equal(read_stack(tmp_path / "h.tif", page=1), hyper[1])
    np.testing.assert_allclose(read_stack(tmp_path / "h.tif", page="max"), hyper.max(axis=0))


def test_several_axes_of_frames_without_channels_are_refused(tmp_path):
    np.save(tmp_path / "4d.npy", np.zeros((2, 3, 16, 16), np.float32))
    with pytest.raises(ImageReadError, match="channel axis"):
        read_stack(tmp_path / "4d.npy")


def test_fits_hdus_of_other_shapes_are_refused(tmp_path):
    fits = _fits()
    hdus = [fits.PrimaryHDU(STACK[0]), fits.ImageHDU(STACK[1, :20])]
    fits.HDUList(hdus).writeto(tmp_path / "bad.fits")
    with pytest.raises(ImageReadError, match=r"HDU 0: \(37, 45\), HDU 1: \(20, 45\)"):
        read_stack(tmp_path / "bad.fits")


def test_bad_arguments_and_indices(tmp_path):
    _write_npy(tmp_path / "a.npy")
    with pytest.raises(InvalidInputError, match="page"):
        read_stack(tmp_path / "a.npy", page=1.5)
    with pytest.raises(ImageReadError, match="does not exist"):
        read_stack(tmp_path / "missing.npy")
    with open_stack(tmp_path / "a.npy") as stack:
        with pytest.raises(IndexError, match="out of range"):
            stack[3]
        with pytest.raises(IndexError, match="all channels"):
            stack[0:2, 0:5]
