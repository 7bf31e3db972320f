"""Format readers: recognise a file by its first bytes and open its stored array.

:func:`sniff` names the format; each ``open_*`` reader returns the stored array (lazy where
the format allows), its axes as letters (``Y``, ``X``, ``C`` channel, others pages) and
whether the file says it is RGB(A). Failures are :class:`~blobsift.exceptions.ImageReadError`
naming the file and the reason (:func:`fail`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from blobsift.exceptions import ImageReadError
from blobsift.io._lazy import Page

__all__ = [
    "fail",
    "image_hdu",
    "open_fits",
    "open_npy",
    "open_pillow",
    "open_tiff",
    "open_zarr",
    "sniff",
]


def _page_letters(count: int) -> str:
    """Letters for ``count`` leading page axes of a bare array."""
    return "TZQ"[-count:] if 0 < count <= 3 else "P" * count


# --------------------------------------------------------------------------------------
# Format readers: each returns (data, axes, rgb, closer)
# --------------------------------------------------------------------------------------
_Opened = tuple[Any, str, bool]


def fail(path: Path, reason: str, error: BaseException | None = None) -> ImageReadError:
    detail = f" ({type(error).__name__}: {error})" if error is not None else ""
    return ImageReadError(f"cannot read image {str(path)!r}: {reason}{detail}.")


def open_tiff(path: Path, lazy: bool) -> tuple[Any, str, bool, Any]:
    """Return (data, axes, rgb, open file or None); lazily a zarr view when zarr exists."""
    import tifffile

    tif = None
    try:
        tif = tifffile.TiffFile(path)
        if not tif.series:
            raise fail(path, "the TIFF file holds no image")
        series = tif.series[0]
        axes = series.axes
        rgb = tif.pages.first.photometric == tifffile.PHOTOMETRIC.RGB
        data = _tiff_as_zarr(series) if lazy else None
        if data is None:
            data = series.asarray()
            tif.close()
            tif = None
    except Exception as error:
        if tif is not None:
            tif.close()
        if isinstance(error, ImageReadError):
            raise
        raise fail(path, "not a readable TIFF file (corrupt or truncated?)", error) from error
    # tifffile axes: S = samples (colour if RGB), C = channel, Y/X = image; others are pages.
    axes = axes.replace("S", "C")
    if axes.count("C") > 1:  # channels and samples: samples become a page axis
        first = axes.index("C")
        axes = axes[:first] + "Q" + axes[first + 1 :]
    return data, axes, rgb, tif


def _tiff_as_zarr(series: Any) -> Any | None:
    """A lazy zarr view of a TIFF series, or None where zarr is missing or it cannot."""
    try:
        import zarr
    except ImportError:
        return None
    try:
        return zarr.open(series.aszarr(), mode="r")
    except Exception:
        return None


def open_pillow(path: Path, page: Page) -> tuple[Any, str, bool, Page]:
    """Read every frame, or only the chosen one (then ``page`` becomes 0)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            frames = getattr(image, "n_frames", 1)
            if frames > 1 and isinstance(page, (int, np.integer)) and not isinstance(page, bool):
                if not -frames <= page < frames:
                    raise fail(path, f"page={page} is out of range; it has {frames} frames")
                image.seek(int(page) % frames)
                arrays, page = [_pillow_array(image)], 0
            else:
                arrays = []
                for index in range(frames):
                    image.seek(index)
                    arrays.append(_pillow_array(image))
    except ImageReadError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise fail(path, "not a readable image file (corrupt or truncated?)", error) from error
    data = np.stack(arrays)
    rgb = data.ndim == 4
    return data, ("QYXC" if rgb else "QYX"), rgb, page


def _pillow_array(image: Any) -> np.ndarray:
    mode = image.mode
    if mode in ("P", "PA"):
        image = image.convert("RGBA" if "transparency" in image.info or mode == "PA" else "RGB")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    elif mode == "1":
        image = image.convert("L")
    return np.asarray(image)


def open_npy(path: Path) -> _Opened:
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as error:
        raise fail(path, "the NPY file holds Python objects, not pixel values", error) from error
    except Exception as error:
        raise fail(path, "not a readable NPY file (corrupt or truncated?)", error) from error
    return data, _guess_axes(data.shape), data.ndim == 3 and data.shape[-1] in (3, 4)


def _guess_axes(shape: tuple[int, ...]) -> str:
    """Axes for a bare array: (..., Y, X), or (Y, X, C) for a small trailing colour axis."""
    ndim = len(shape)
    if ndim < 2:
        return "X" * ndim  # not an image; reported by LazyImage
    if ndim == 3 and shape[-1] in (3, 4) and min(shape[:2]) > 4:
        return "YXC"
    return _page_letters(ndim - 2) + "YX"


def open_fits(path: Path, *, frames: bool = False) -> _Opened:
    """The first image HDU; with ``frames``, also every further 2D one, stacked as ``C``.

    A file of several 2D image HDUs of one shape (science, reference, difference, ...)
    is then a (C, H, W) stack; HDUs of other shapes are refused, naming them.
    """
    try:
        from astropy.io import fits
    except ImportError:
        raise fail(
            path, "FITS files need astropy; install it with `pip install blobsift[fits]`"
        ) from None
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # non-standard headers are common and harmless
            with fits.open(path, memmap=False) as hdus:
                hdu = image_hdu(hdus)
                if hdu is None:
                    raise fail(path, "the FITS file holds no image data (every HDU is empty)")
                planes = _fits_frames(path, hdus) if frames and hdu.data.ndim == 2 else []
                data = np.stack(planes) if len(planes) > 1 else np.array(hdu.data)
    except ImageReadError:
        raise
    except Exception as error:
        raise fail(path, "not a readable FITS file (corrupt or truncated?)", error) from error
    if data.dtype.byteorder not in "=|":
        data = data.astype(data.dtype.newbyteorder("="))
    axes = "CYX" if frames and len(planes) > 1 else _page_letters(data.ndim - 2) + "YX"
    return data, axes, False


def _fits_frames(path: Path, hdus: Any) -> list[np.ndarray]:
    """The data of every image HDU holding a 2D image, all of one shape (else refused)."""
    found = [
        (index, np.array(hdu.data))
        for index, hdu in enumerate(hdus)
        if hdu.is_image and hdu.data is not None and hdu.data.ndim >= 2
    ]
    shapes = {plane.shape for _, plane in found}
    if len(shapes) > 1:
        listed = ", ".join(f"HDU {index}: {plane.shape}" for index, plane in found[:6])
        raise fail(
            path,
            f"its image HDUs are not aligned frames of one shape ({listed}); a stack needs "
            "every image HDU of the same 2D shape",
        )
    return [plane for _, plane in found]


def image_hdu(hdus: Any) -> Any | None:
    """The HDU a FITS file's image is read from: the first one holding a 2D+ image."""
    for hdu in hdus:
        if hdu.is_image and hdu.data is not None and hdu.data.ndim >= 2:
            return hdu
    return None


def open_zarr(path: Path) -> _Opened:
    try:
        import zarr
    except ImportError:
        raise fail(
            path, "Zarr images need zarr; install it with `pip install blobsift[zarr]`"
        ) from None
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as error:
        raise fail(path, "not a readable Zarr store", error) from error
    if isinstance(node, zarr.Array):
        return node, _zarr_array_axes(node), False
    dataset = _ome_dataset(path, dict(node.attrs))
    if dataset is not None:
        array_path, names = dataset
        try:
            array = node[array_path]
        except KeyError as error:
            raise fail(path, f"OME multiscales names a missing array {array_path!r}") from error
        if not isinstance(array, zarr.Array):
            raise fail(path, f"OME multiscales dataset {array_path!r} is not an array")
        if len(names) != array.ndim:
            axes = _guess_axes(array.shape)
        else:
            axes = "".join(_OME_AXES.get(name.lower(), "Q") for name in names)
        return array, axes, False
    arrays = list(node.array_keys())
    if len(arrays) == 1:
        array = node[arrays[0]]
        return array, _zarr_array_axes(array), False
    raise fail(
        path,
        f"the Zarr group holds {len(arrays)} arrays ({arrays[:5]}) and no OME multiscales "
        "metadata; open the array you want (e.g. path/to/group/name)",
    )


_OME_AXES = {"x": "X", "y": "Y", "c": "C", "z": "Z", "t": "T"}


def _ome_dataset(path: Path, attrs: Mapping[str, object]) -> tuple[str, list[str]] | None:
    """The full-resolution array of OME multiscales metadata: (its path, the axis names).

    None when ``attrs`` holds no multiscales metadata; malformed metadata fails.
    """
    ome = attrs.get("ome")
    multiscales = attrs.get("multiscales") or (
        ome.get("multiscales") if isinstance(ome, Mapping) else None
    )
    if not multiscales:
        return None
    malformed = fail(path, "malformed OME multiscales metadata")
    if not _is_list(multiscales):
        raise malformed
    first = multiscales[0]
    if not isinstance(first, Mapping):
        raise malformed
    datasets = first.get("datasets")
    if not _is_list(datasets):
        raise malformed
    array_path = datasets[0].get("path") if isinstance(datasets[0], Mapping) else None
    axes = first.get("axes", [])
    if not isinstance(array_path, str) or not isinstance(axes, Sequence):
        raise malformed
    names: list[str] = []
    for axis in axes:
        name = axis.get("name") if isinstance(axis, Mapping) else str(axis)
        if not isinstance(name, str):
            raise malformed
        names.append(name)
    return array_path, names


def _is_list(value: object) -> TypeGuard[Sequence[object]]:
    """True for a non-empty JSON list (a sequence other than a string)."""
    return isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0


def _zarr_array_axes(array: Any) -> str:
    names = getattr(getattr(array, "metadata", None), "dimension_names", None)
    if not names:
        names = dict(array.attrs).get("_ARRAY_DIMENSIONS")
    if names and len(names) == array.ndim and all(names):
        axes = "".join(_OME_AXES.get(str(n).lower(), "Q") for n in names)
        if "Y" in axes and "X" in axes:
            return axes
    return _guess_axes(array.shape)


def sniff(path: Path) -> str:
    """Name the format of ``path`` from its first bytes (and extension as a last resort)."""
    if path.is_dir():
        markers = ("zarr.json", ".zarray", ".zgroup", ".zattrs")
        if any((path / marker).exists() for marker in markers) or path.suffix == ".zarr":
            return "zarr"
        raise fail(path, "it is a directory but not a Zarr store")
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise fail(path, "the file cannot be opened", error) from error
    if not head:
        raise fail(path, "the file is empty (0 bytes)")
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"SIMPLE  ") or (
        head.startswith(b"\x1f\x8b") and ".fit" in "".join(path.suffixes).lower()
    ):
        return "fits"
    pillow_magic = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM")
    if head.startswith(pillow_magic) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "pillow"
    raise fail(
        path,
        "its format is not recognised (supported: TIFF, PNG, JPEG, BMP, GIF, WebP, NPY, FITS, "
        "Zarr)",
    )
