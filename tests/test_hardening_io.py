"""Hardening of file IO: stacks are never blended as colour, wrong types are refused, and
output files are whole or absent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from blobsift._atomic import atomic_write
from blobsift.exceptions import ImageReadError, InvalidInputError, OutputError
from blobsift.io import LUMA_WEIGHTS, open_image, read_image


def _planes(dtype, shape, seed=0):
    values = np.random.default_rng(seed).uniform(0, 200, size=shape)
    return values.astype(dtype)


def _luminance(rgb):
    return rgb[..., :3].astype(np.float64) @ np.array(LUMA_WEIGHTS)


@pytest.mark.parametrize("shape", [(3, 10, 12), (4, 10, 12), (10, 12, 3), (10, 12, 4)])
def test_a_float_tiff_of_three_or_four_planes_is_a_stack_not_colour(tmp_path, shape):
    data = _planes(np.float32, shape)
    path = tmp_path / "planes.tif"
    separate = shape[0] in (3, 4)
    # What tifffile.imwrite(path, data) writes by default: such data tagged RGB.
    tifffile.imwrite(path, data, photometric="rgb", planarconfig="separate" if separate else None)
    planes = data if separate else np.moveaxis(data, -1, 0)
    with pytest.raises(ImageReadError, match="page=") as info:
        read_image(path)
    message = str(info.value)
    assert "planes.tif" in message
    assert f"{len(planes)} pages" in message
    assert "not colour" in message
    np.testing.assert_array_equal(read_image(path, page=1), planes[1])
    np.testing.assert_array_equal(read_image(path, page="max"), planes.max(axis=0))
    np.testing.assert_allclose(read_image(path, page="mean"), planes.mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(read_image(path, channel=2), planes[2])  # as before
    with open_image(path, page=0) as lazy:
        np.testing.assert_array_equal(lazy[2:5, 3:7], planes[0][2:5, 3:7])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("samples", [3, 4])
def test_an_rgb_tiff_of_uint8_or_uint16_is_colour(tmp_path, dtype, samples):
    rgb = _planes(dtype, (9, 11, samples))
    path = tmp_path / "rgb.tif"
    extra = {"extrasamples": ["unassalpha"]} if samples == 4 else {}
    tifffile.imwrite(path, rgb, photometric="rgb", **extra)
    np.testing.assert_allclose(read_image(path), _luminance(rgb), rtol=1e-6)


def test_a_float_npy_with_three_trailing_planes_is_a_stack(tmp_path):
    data = _planes(np.float64, (10, 12, 3))
    np.save(tmp_path / "f.npy", data)
    with pytest.raises(ImageReadError, match="3 pages"):
        read_image(tmp_path / "f.npy")
    np.testing.assert_allclose(read_image(tmp_path / "f.npy", page=2), data[..., 2], rtol=1e-6)
    colour = _planes(np.uint8, (10, 12, 3))
    np.save(tmp_path / "c.npy", colour)
    np.testing.assert_allclose(read_image(tmp_path / "c.npy"), _luminance(colour), rtol=1e-6)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"path": None}, "path must be a file path"),
        ({"path": 3}, "path must be a file path"),
        ({"path": ["a.tif"]}, "path must be a file path"),
        ({"channel": "1"}, "channel must be an integer"),
        ({"channel": 1.0}, "channel must be an integer"),
        ({"channel": True}, "channel must be an integer"),
        ({"page": 1.5}, "page must be an integer"),
        ({"page": False}, "page must be an integer"),
    ],
    ids=[
        "none",
        "int",
        "list",
        "channel-str",
        "channel-float",
        "channel-bool",
        "page-float",
        "page-bool",
    ],
)
@pytest.mark.parametrize("reader", [read_image, open_image])
def test_wrong_types_are_a_clear_invalid_input_error(tmp_path, reader, arguments, message):
    path = tmp_path / "g.npy"
    np.save(path, np.zeros((6, 6)))
    arguments = {"path": path, **arguments}
    with pytest.raises(InvalidInputError, match=message) as info:
        reader(arguments.pop("path"), **arguments)
    assert "got" in str(info.value)


# -- output files: whole or absent ---------------------------------------------------------
def _half_then(error):
    def write(temporary):
        temporary.write_text("half of the new cont")
        raise error

    return write


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OSError(28, "No space left on device"), OutputError),
        (ValueError("the data could not be written"), ValueError),
    ],
    ids=["disk-full", "writer-bug"],
)
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, error, expected):
    target = tmp_path / "table.csv"
    target.write_text("the old content\n")
    with pytest.raises(expected) as info:
        atomic_write(target, _half_then(error), what="the table")
    if expected is OutputError:
        assert "table.csv" in str(info.value)
        assert "No space left" in str(info.value)
    assert target.read_text() == "the old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_atomic_write_replaces_the_file_and_creates_its_folder(tmp_path):
    target = tmp_path / "new" / "deeper" / "page.html"
    assert atomic_write(target, lambda tmp: tmp.write_text("<p>one</p>")) == target
    atomic_write(target, lambda tmp: tmp.write_text("<p>two</p>"))
    assert target.read_text() == "<p>two</p>"
    assert [p.name for p in target.parent.iterdir()] == ["page.html"]


def test_write_predictions_refuses_a_folder_and_leaves_nothing(tmp_path):
    from blobsift.batch import COLUMNS, write_predictions

    frame = pd.DataFrame({name: [1] for name in COLUMNS})
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        write_predictions(frame, tmp_path / "out.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    assert list((tmp_path / "out.csv").iterdir()) == []
    written = write_predictions(frame, tmp_path / "ok.csv")
    assert pd.read_csv(written[0]).columns.tolist() == list(COLUMNS)


@pytest.mark.parametrize(
    ("multiscales", "message"),
    [
        ({"a": 1}, "malformed OME"),
        ("x", "malformed OME"),
        ([{"datasets": []}], "malformed OME"),
        ([{"datasets": [{"path": "nope"}]}], "missing array 'nope'"),
        ([{"datasets": [{"path": "sub"}]}], "'sub' is not an array"),
    ],
)
def test_malformed_ome_zarr_metadata_is_an_image_read_error(tmp_path, multiscales, message):
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(str(tmp_path / "bad.zarr"), mode="w")
    group.create_array("0", shape=(8, 8), dtype="uint16")
    group.create_group("sub")
    group.attrs["multiscales"] = multiscales
    with pytest.raises(ImageReadError, match=message):
        read_image(tmp_path / "bad.zarr")
