import numpy as np
import pytest
import tifffile
from PIL import Image

from blobsift.exceptions import ImageReadError
from blobsift.io import LUMA_WEIGHTS, LazyImage, open_image, read_image

RNG = np.random.default_rng(20240601)


def _image(dtype, shape=(23, 31)):
    if np.dtype(dtype).kind == "f":
        return RNG.normal(100, 20, shape).astype(dtype)
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


def _luminance(rgb):
    return rgb[..., :3].astype(np.float64) @ np.array(LUMA_WEIGHTS)


# -- TIFF ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dtype", [np.uint8, np.uint16, np.uint32, np.int16, np.int32, np.float32, np.float64]
)
def test_tiff_round_trip(tmp_path, dtype):
    data = _image(dtype)
    tifffile.imwrite(tmp_path / "a.tif", data)
    image = read_image(tmp_path / "a.tif")
    assert image.dtype == np.float32
    assert image.shape == data.shape
    np.testing.assert_array_equal(image, data.astype(np.float32))


def test_uint32_extremes_do_not_wrap(tmp_path):
    data = np.array([[0, 1], [2**31, 2**32 - 1]], dtype=np.uint32)
    tifffile.imwrite(tmp_path / "big.tif", data)
    image = read_image(tmp_path / "big.tif")
    assert image.min() == 0
    assert image[1, 1] == np.float32(4294967295.0)
    assert image[1, 0] == np.float32(2**31)


def test_multipage_tiff_needs_a_page(tmp_path):
    stack = _image(np.uint16, (4, 12, 10))
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, photometric="minisblack")
    with pytest.raises(ImageReadError, match="4 pages") as info:
        read_image(path)
    assert "stack.tif" in str(info.value)
    assert "page=" in str(info.value)
    np.testing.assert_array_equal(read_image(path, page=2), stack[2])
    np.testing.assert_array_equal(read_image(path, page=-1), stack[3])
    np.testing.assert_array_equal(read_image(path, page="max"), stack.max(axis=0))
    np.testing.assert_allclose(read_image(path, page="mean"), stack.mean(axis=0), rtol=1e-6)
    with pytest.raises(ImageReadError, match="out of range"):
        read_image(path, page=4)
    with pytest.raises(ImageReadError, match="'max', 'mean'"):
        read_image(path, page="median")


def test_mean_projection_of_uint16_does_not_overflow(tmp_path):
    stack = np.full((3, 4, 4), 65535, dtype=np.uint16)
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")
    np.testing.assert_array_equal(read_image(tmp_path / "s.tif", page="mean"), 65535.0)


def test_rgb_tiff_gives_luminance_or_a_channel(tmp_path):
    rgb = _image(np.uint8, (9, 11, 3))
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    np.testing.assert_allclose(read_image(tmp_path / "rgb.tif"), _luminance(rgb), rtol=1e-6)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.tif", channel=2), rgb[..., 2])


def test_hyperstack_needs_channel_and_page(tmp_path):
    data = _image(np.uint16, (2, 3, 8, 9))  # Z, C, Y, X
    path = tmp_path / "zc.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZCYX"})
    with pytest.raises(ImageReadError, match="3 channels"):
        read_image(path, page=0)
    with pytest.raises(ImageReadError, match="2 pages"):
        read_image(path, channel=1)
    np.testing.assert_array_equal(read_image(path, channel=1, page=1), data[1, 1])
    np.testing.assert_array_equal(read_image(path, channel=2, page="max"), data[:, 2].max(0))
    with pytest.raises(ImageReadError, match="out of range"):
        read_image(path, channel=3, page=0)


def test_tiled_tiff_reads_lazily_by_region(tmp_path):
    data = _image(np.uint16, (3, 96, 80))
    path = tmp_path / "tiled.tif"
    tifffile.imwrite(path, data, tile=(32, 32), compression="zlib", photometric="minisblack")
    lazy = open_image(path, page=1)
    assert isinstance(lazy, LazyImage)
    assert lazy.shape == (96, 80)
    assert lazy.dtype == np.float32
    np.testing.assert_array_equal(lazy[40:70, 5:37], data[1, 40:70, 5:37])
    np.testing.assert_array_equal(lazy[7, 3:6], data[1, 7, 3:6])
    np.testing.assert_array_equal(np.asarray(lazy), data[1])


# -- Pillow formats -------------------------------------------------------------------------
def test_png_grey_8_and_16_bit(tmp_path):
    grey = _image(np.uint8)
    Image.fromarray(grey).save(tmp_path / "g8.png")
    np.testing.assert_array_equal(read_image(tmp_path / "g8.png"), grey)
    deep = _image(np.uint16)
    Image.fromarray(deep).save(tmp_path / "g16.png")
    np.testing.assert_array_equal(read_image(tmp_path / "g16.png"), deep)


def test_png_colour_is_luminance_unless_a_channel_is_chosen(tmp_path):
    rgba = _image(np.uint8, (12, 14, 4))
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "c.png")
    image = read_image(tmp_path / "c.png")
    np.testing.assert_allclose(image, _luminance(rgba), rtol=1e-6)  # alpha is ignored
    np.testing.assert_array_equal(read_image(tmp_path / "c.png", channel=0), rgba[..., 0])
    np.testing.assert_array_equal(read_image(tmp_path / "c.png", channel=3), rgba[..., 3])
    with pytest.raises(ImageReadError, match="channel=4 is out of range"):
        read_image(tmp_path / "c.png", channel=4)


def test_jpeg_matches_pillows_decoding(tmp_path):
    rgb = _image(np.uint8, (16, 16, 3))
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=95)
    decoded = np.asarray(Image.open(tmp_path / "c.jpg"))
    np.testing.assert_allclose(read_image(tmp_path / "c.jpg"), _luminance(decoded), rtol=1e-6)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "g.jpeg")
    np.testing.assert_array_equal(
        read_image(tmp_path / "g.jpeg"), np.asarray(Image.open(tmp_path / "g.jpeg"))
    )


def test_animated_gif_pages(tmp_path):
    frames = [np.full((6, 7), value, np.uint8) for value in (10, 200, 60)]
    images = [Image.fromarray(f).convert("P") for f in frames]
    images[0].save(tmp_path / "a.gif", save_all=True, append_images=images[1:])
    with pytest.raises(ImageReadError, match="3 pages"):
        read_image(tmp_path / "a.gif")
    assert read_image(tmp_path / "a.gif", page=1)[0, 0] == pytest.approx(200, abs=1)
    assert read_image(tmp_path / "a.gif", page="max")[0, 0] == pytest.approx(200, abs=1)


# -- NPY -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.uint32, bool])
def test_npy_round_trip(tmp_path, dtype):
    data = RNG.integers(0, 2, (10, 12)).astype(bool) if dtype is bool else _image(dtype)
    np.save(tmp_path / "a.npy", data)
    np.testing.assert_array_equal(read_image(tmp_path / "a.npy"), data.astype(np.float32))


def test_npy_stack_and_colour(tmp_path):
    stack = _image(np.float32, (5, 10, 12))
    np.save(tmp_path / "s.npy", stack)
    with pytest.raises(ImageReadError, match="5 pages"):
        read_image(tmp_path / "s.npy")
    np.testing.assert_array_equal(read_image(tmp_path / "s.npy", page=4), stack[4])
    rgb = _image(np.uint8, (10, 12, 3))
    np.save(tmp_path / "rgb.npy", rgb)
    np.testing.assert_allclose(read_image(tmp_path / "rgb.npy"), _luminance(rgb), rtol=1e-6)


def test_npy_is_memory_mapped_when_opened_lazily(tmp_path):
    data = _image(np.float64, (64, 64))
    np.save(tmp_path / "m.npy", data)
    lazy = open_image(tmp_path / "m.npy")
    assert isinstance(lazy._data, np.memmap)
    np.testing.assert_array_equal(lazy[10:20, 30:40], data[10:20, 30:40].astype(np.float32))


# -- FITS ------------------------------------------------------------------------------------
def test_fits_round_trip(tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    data = _image(np.float32)
    fits.PrimaryHDU(data).writeto(tmp_path / "a.fits")
    np.testing.assert_array_equal(read_image(tmp_path / "a.fits"), data)
    unsigned = _image(np.uint16)  # stored as int16 + BZERO
    fits.PrimaryHDU(unsigned).writeto(tmp_path / "u.fits")
    np.testing.assert_array_equal(read_image(tmp_path / "u.fits"), unsigned)


def test_fits_image_extension_and_cube(tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    cube = _image(np.int32, (3, 8, 9))
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(cube)]).writeto(tmp_path / "c.fits")
    with pytest.raises(ImageReadError, match="3 pages"):
        read_image(tmp_path / "c.fits")
    np.testing.assert_array_equal(
        read_image(tmp_path / "c.fits", page=2), cube[2].astype(np.float32)
    )
    fits.PrimaryHDU().writeto(tmp_path / "none.fits")
    with pytest.raises(ImageReadError, match="no image data"):
        read_image(tmp_path / "none.fits")


# -- Zarr ------------------------------------------------------------------------------------
def test_zarr_array(tmp_path):
    zarr = pytest.importorskip("zarr")
    data = _image(np.uint16, (40, 50))
    array = zarr.create_array(
        str(tmp_path / "a.zarr"), shape=data.shape, chunks=(16, 16), dtype="uint16"
    )
    array[:] = data
    np.testing.assert_array_equal(read_image(tmp_path / "a.zarr"), data)


def test_ome_zarr_channels_pages_and_lazy_regions(tmp_path):
    zarr = pytest.importorskip("zarr")
    data = _image(np.uint16, (2, 3, 48, 40))  # c, z, y, x
    group = zarr.open_group(str(tmp_path / "ome.zarr"), mode="w")
    level = group.create_array("0", shape=data.shape, chunks=(1, 1, 16, 16), dtype="uint16")
    level[:] = data
    axes = [
        {"name": n, "type": t}
        for n, t in zip("czyx", ["channel", "space", "space", "space"], strict=True)
    ]
    group.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [{"axes": axes, "datasets": [{"path": "0"}]}],
    }
    path = tmp_path / "ome.zarr"
    with pytest.raises(ImageReadError, match="2 channels"):
        read_image(path, page=0)
    np.testing.assert_array_equal(read_image(path, channel=1, page=2), data[1, 2])
    lazy = open_image(path, channel=0, page="max")
    assert lazy.shape == (48, 40)
    np.testing.assert_array_equal(lazy[10:30, 3:20], data[0, :, 10:30, 3:20].max(axis=0))


# -- errors ----------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="does not exist") as info:
        read_image(tmp_path / "nope.tif")
    assert "nope.tif" in str(info.value)
    assert isinstance(info.value, OSError)


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        read_image(tmp_path / "empty.png")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bad.tif", b"II*\x00" + b"\xff" * 64),
        ("bad.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 10),
        ("bad.npy", b"\x93NUMPY\x01\x00" + b"junk"),
    ],
)
def test_corrupt_files(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ImageReadError, match="corrupt") as info:
        read_image(tmp_path / name)
    assert name in str(info.value)


def test_truncated_tiff(tmp_path):
    tifffile.imwrite(tmp_path / "t.tif", _image(np.uint16, (64, 64)))
    full = (tmp_path / "t.tif").read_bytes()
    (tmp_path / "t.tif").write_bytes(full[: len(full) // 3])
    with pytest.raises(ImageReadError, match=r"t\.tif"):
        read_image(tmp_path / "t.tif")


def test_unknown_format_and_plain_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageReadError, match="not recognised"):
        read_image(tmp_path / "notes.txt")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ImageReadError, match="directory"):
        read_image(tmp_path / "folder")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros((0, 5)), "empty"),
        (np.zeros(7), "not an image"),
        (np.zeros((4, 4), np.complex64), "not real-valued"),
        (np.array([["a", "b"], ["c", "d"]]), "not real-valued"),
        (np.full((3, 3), 1e300), "float32 range"),
    ],
    ids=["empty", "1d", "complex", "text", "too-big"],
)
def test_wrong_content_in_npy(tmp_path, data, message):
    np.save(tmp_path / "x.npy", data)
    with pytest.raises(ImageReadError, match=message):
        read_image(tmp_path / "x.npy")


def test_object_npy_is_refused_without_unpickling(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ImageReadError, match="Python objects"):
        read_image(tmp_path / "o.npy")


def test_channel_on_a_grey_image_is_an_error(tmp_path):
    np.save(tmp_path / "g.npy", np.zeros((5, 5)))
    np.testing.assert_array_equal(read_image(tmp_path / "g.npy", channel=0), 0)
    with pytest.raises(ImageReadError, match="single channel"):
        read_image(tmp_path / "g.npy", channel=1)
