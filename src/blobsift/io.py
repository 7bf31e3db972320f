"""Read images of every common format as 2D float32 arrays.

:func:`read_image` returns a 2D float32 array; :func:`open_image` returns a
:class:`LazyImage` that reads only the region it is sliced with (Zarr, memory-mappable NPY
and tiled TIFF are read lazily; other formats are loaded once), for tiled detection of
images larger than memory.

Formats (recognised by content, not by name): TIFF/BigTIFF (tifffile), PNG, JPEG, BMP,
GIF, WebP (Pillow), NPY (numpy), FITS (astropy, the ``fits`` extra) and Zarr / OME-Zarr
directories (zarr, the ``zarr`` extra).

Every file is described by its axes: ``Y`` and ``X`` are the image, a *channel* axis (``C``,
or TIFF samples) is chosen with ``channel=`` (uint8/uint16 RGB(A) colour becomes luminance by
default; the planes of any other "RGB" image, such as a float stack tagged RGB, are pages) and
any other axis of length > 1 (``Z``, ``T``, TIFF pages, ...) is a *page* axis, chosen with
``page=`` (an index into all pages in order, or the projection ``"max"`` or ``"mean"``).
Failures raise :class:`~blobsift.exceptions.ImageReadError` naming the file and the reason.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from blobsift.exceptions import ImageReadError, InvalidInputError

__all__ = ["LazyImage", "open_image", "read_image", "read_wcs"]

#: ITU-R BT.601 luma weights, as Pillow's ``convert("L")``.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_PROJECTIONS = ("max", "mean")
#: Pixel types read as colour when the file says RGB(A); other multi-plane data is a stack.
_COLOUR_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))
_FLOAT32_MAX = float(np.finfo(np.float32).max)

Page = int | str | None


class LazyImage:
    """A 2D float32 view of an image file that reads only what it is sliced with.

    Created by :func:`open_image`. ``image[r0:r1, c0:c1]`` returns a float32 array of that
    region (with the file's channel and page choices applied); ``np.asarray(image)`` or
    :meth:`read` reads it all.

    Attributes
    ----------
    path : pathlib.Path
        The file or directory it reads.
    shape : (int, int)
        (H, W) of the 2D image.
    dtype : numpy.dtype
        Always float32 (the dtype regions are returned in).
    source_dtype : numpy.dtype
        The pixel type stored in the file.
    axes : str
        The axes of the stored array (e.g. ``"ZYX"``, ``"YXS"``).
    """

    ndim = 2

    def __init__(
        self,
        path: Path,
        data: Any,
        axes: str,
        *,
        channel: int | None,
        page: Page,
        rgb: bool,
        resource: Any = None,
    ) -> None:
        self.path = path
        self.axes = axes
        self._data = data
        self._resource = resource  # an open file to close with the image, if any
        self.source_dtype = np.dtype(data.dtype)
        self.dtype = np.dtype(np.float32)
        _check_pixel_type(path, self.source_dtype)
        shape = tuple(int(s) for s in data.shape)
        if len(shape) != len(axes) or "Y" not in axes or "X" not in axes:
            raise ImageReadError(
                f"cannot read image {str(path)!r}: it holds a {len(shape)}D array of shape "
                f"{shape}, not an image with rows and columns."
            )
        self.shape = (shape[axes.index("Y")], shape[axes.index("X")])
        if 0 in shape:
            raise ImageReadError(
                f"cannot read image {str(path)!r}: it is empty (shape {shape}, axes {axes})."
            )
        self._channel_index, self._weights = _choose_channel(path, shape, axes, channel, rgb)
        self._page_index, self._projection = _choose_page(path, shape, axes, page)

    def __repr__(self) -> str:
        return f"LazyImage({str(self.path)!r}, shape={self.shape}, axes={self.axes!r})"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        image = self.read()
        return image if dtype is None else image.astype(dtype)

    def read(self) -> np.ndarray:
        """Read the whole 2D image as float32."""
        return self[:, :]

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key, slice(None))
        if len(key) != 2:
            raise IndexError(f"a LazyImage takes 2 indices (rows, cols); got {len(key)}.")
        squeeze = [isinstance(k, (int, np.integer)) for k in key]
        rows, cols = (
            slice(int(k), int(k) + 1 or None) if isinstance(k, (int, np.integer)) else k
            for k in key
        )
        if not (isinstance(rows, slice) and isinstance(cols, slice)):
            raise IndexError("a LazyImage takes integers or slices, e.g. image[0:256, 0:256].")
        region = self._region(rows, cols)
        if squeeze[0]:
            region = region[0]
        if squeeze[1]:
            region = region[..., 0]
        return region

    def close(self) -> None:
        """Close the underlying file, if one is held open (lazy TIFF)."""
        resource, self._resource = getattr(self, "_resource", None), None
        if resource is not None:
            resource.close()

    def __enter__(self) -> LazyImage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def _region(self, rows: slice, cols: slice) -> np.ndarray:
        index: list[Any] = []
        kept: list[str] = []  # the axes left after indexing, in stored order
        for position, axis in enumerate(self.axes):
            if axis in "YX":
                index.append(rows if axis == "Y" else cols)
                kept.append(axis)
            elif axis == "C":
                index.append(self._channel_index)
                if self._weights is not None:
                    kept.append("C")
            elif position in self._page_index:
                index.append(self._page_index[position])
            else:
                index.append(slice(None))
                kept.append("P")
        try:
            block = np.asarray(self._data[tuple(index)])
        except Exception as error:
            raise ImageReadError(
                f"cannot read image {str(self.path)!r}: reading its pixels failed "
                f"({type(error).__name__}: {error})."
            ) from error
        order = [i for i, a in enumerate(kept) if a == "P"]
        order += [kept.index("Y"), kept.index("X")] + [i for i, a in enumerate(kept) if a == "C"]
        block = np.transpose(block, order)
        if self._weights is not None:
            block = np.tensordot(block.astype(np.float64), self._weights, axes=([-1], [0]))
        if block.ndim > 2:
            pages = block.reshape(-1, *block.shape[-2:])
            if self._projection == "max":
                block = pages.max(axis=0)
            else:
                block = pages.mean(axis=0, dtype=np.float64)
        return _to_float32(self.path, block)


def _check_pixel_type(path: Path, dtype: np.dtype) -> None:
    if dtype.kind == "b":
        return
    if dtype.kind not in "uif":
        raise ImageReadError(
            f"cannot read image {str(path)!r}: its pixel type {dtype} is not real-valued "
            "numbers (complex, text or object arrays are not images)."
        )


def _to_float32(path: Path, block: np.ndarray) -> np.ndarray:
    """Convert to C-contiguous float32; integers of any width never overflow."""
    if block.dtype == np.float32:
        return np.ascontiguousarray(block)
    if block.dtype.kind == "f" and block.dtype.itemsize > 4 and block.size:
        with np.errstate(invalid="ignore"):
            too_big = np.nanmax(np.abs(block), initial=0.0)
        if np.isfinite(too_big) and too_big > _FLOAT32_MAX:
            raise ImageReadError(
                f"cannot read image {str(path)!r}: values up to {too_big:.3g} exceed the "
                "float32 range; rescale the data first."
            )
    return np.ascontiguousarray(block, dtype=np.float32)


def _choose_channel(
    path: Path, shape: tuple[int, ...], axes: str, channel: int | None, rgb: bool
) -> tuple[Any, np.ndarray | None]:
    """Return (index into the channel axis, luminance weights or None)."""
    if "C" not in axes:
        if channel not in (None, 0):
            raise ImageReadError(
                f"cannot read image {str(path)!r} with channel={channel!r}: it has a single "
                "channel; leave channel=None."
            )
        return None, None
    count = shape[axes.index("C")]
    if channel is None:
        if rgb and count in (3, 4):
            return slice(0, 3), np.array(LUMA_WEIGHTS)
        if rgb and count == 2:  # grey + alpha
            return 0, None
        if count == 1:
            return 0, None
        raise ImageReadError(
            f"cannot read image {str(path)!r}: it has {count} channels (axes {axes}, shape "
            f"{shape}); pass channel=0..{count - 1} to choose one."
        )
    if not -count <= channel < count:
        raise ImageReadError(
            f"cannot read image {str(path)!r}: channel={channel} is out of range; it has "
            f"{count} channel(s) (0..{count - 1})."
        )
    return int(channel) % count, None


def _choose_page(
    path: Path, shape: tuple[int, ...], axes: str, page: Page
) -> tuple[dict[int, int], str | None]:
    """Return ({position of a page axis: index}, projection) for axes other than Y, X, C.

    Page axes of length 1 are always indexed at 0; with a projection the others are left
    out of the dict (read whole, then reduced).
    """
    page_axes = [(i, size) for i, (a, size) in enumerate(zip(axes, shape, strict=True))]
    page_axes = [(i, size) for i, size in page_axes if axes[i] not in "YXC"]
    singles = {i: 0 for i, size in page_axes if size == 1}
    multi = [(i, size) for i, size in page_axes if size > 1]
    total = int(np.prod([size for _, size in multi])) if multi else 1
    if isinstance(page, str):
        if page not in _PROJECTIONS:
            raise ImageReadError(
                f"cannot read image {str(path)!r}: page must be an integer or one of "
                f"{list(_PROJECTIONS)}; got {page!r}."
            )
        return singles, page
    if page is None:
        if multi:
            names = "".join(axes[i] for i, _ in multi)
            planes = (
                " Its samples (axis S) are planes, not colour: only uint8/uint16 RGB(A) is "
                "read as colour."
                if "S" in names
                else ""
            )
            raise ImageReadError(
                f"cannot read image {str(path)!r}: it holds {total} pages (axes {axes}, shape "
                f"{shape}; page axes {names}), not one 2D image.{planes} Pass "
                f"page=<0..{total - 1}> for one page, or page='max' / page='mean' for a "
                "projection."
            )
        return singles, None
    if not -total <= page < total:
        raise ImageReadError(
            f"cannot read image {str(path)!r}: page={page} is out of range; it has {total} "
            f"page(s) (0..{total - 1})."
        )
    index = dict(singles)
    if multi:
        position = np.unravel_index(int(page) % total, [size for _, size in multi])
        index.update({i: int(p) for (i, _), p in zip(multi, position, strict=True)})
    return index, None


def _page_letters(count: int) -> str:
    """Letters for ``count`` leading page axes of a bare array."""
    return "TZQ"[-count:] if 0 < count <= 3 else "P" * count


# --------------------------------------------------------------------------------------
# Format readers: each returns (data, axes, rgb, closer)
# --------------------------------------------------------------------------------------
_Opened = tuple[Any, str, bool]


def _fail(path: Path, reason: str, error: BaseException | None = None) -> ImageReadError:
    detail = f" ({type(error).__name__}: {error})" if error is not None else ""
    return ImageReadError(f"cannot read image {str(path)!r}: {reason}{detail}.")


def _open_tiff(path: Path, lazy: bool) -> tuple[Any, str, bool, Any]:
    """Return (data, axes, rgb, open file or None); lazily a zarr view when zarr exists."""
    import tifffile

    tif = None
    try:
        tif = tifffile.TiffFile(path)
        if not tif.series:
            raise _fail(path, "the TIFF file holds no image")
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
        raise _fail(path, "not a readable TIFF file (corrupt or truncated?)", error) from error
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


def _open_pillow(path: Path, page: Page) -> tuple[Any, str, bool, Page]:
    """Read every frame, or only the chosen one (then ``page`` becomes 0)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            frames = getattr(image, "n_frames", 1)
            one = isinstance(page, (int, np.integer)) and not isinstance(page, bool)
            if frames > 1 and one:
                if not -frames <= page < frames:
                    raise _fail(path, f"page={page} is out of range; it has {frames} frames")
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
        raise _fail(path, "not a readable image file (corrupt or truncated?)", error) from error
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


def _open_npy(path: Path) -> _Opened:
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as error:
        raise _fail(path, "the NPY file holds Python objects, not pixel values", error) from error
    except Exception as error:
        raise _fail(path, "not a readable NPY file (corrupt or truncated?)", error) from error
    return data, _guess_axes(data.shape), data.ndim == 3 and data.shape[-1] in (3, 4)


def _guess_axes(shape: tuple[int, ...]) -> str:
    """Axes for a bare array: (..., Y, X), or (Y, X, C) for a small trailing colour axis."""
    ndim = len(shape)
    if ndim < 2:
        return "X" * ndim  # not an image; reported by LazyImage
    if ndim == 3 and shape[-1] in (3, 4) and min(shape[:2]) > 4:
        return "YXC"
    return _page_letters(ndim - 2) + "YX"


def _open_fits(path: Path) -> _Opened:
    try:
        from astropy.io import fits
    except ImportError:
        raise _fail(
            path, "FITS files need astropy; install it with `pip install blobsift[fits]`"
        ) from None
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # non-standard headers are common and harmless
            with fits.open(path, memmap=False) as hdus:
                hdu = _image_hdu(hdus)
                if hdu is None:
                    raise _fail(path, "the FITS file holds no image data (every HDU is empty)")
                data = np.array(hdu.data)
    except ImageReadError:
        raise
    except Exception as error:
        raise _fail(path, "not a readable FITS file (corrupt or truncated?)", error) from error
    if data.dtype.byteorder not in "=|":
        data = data.astype(data.dtype.newbyteorder("="))
    return data, _page_letters(data.ndim - 2) + "YX", False


def _image_hdu(hdus: Any) -> Any | None:
    """The HDU a FITS file's image is read from: the first one holding a 2D+ image."""
    for hdu in hdus:
        if hdu.is_image and hdu.data is not None and hdu.data.ndim >= 2:
            return hdu
    return None


def read_wcs(path: str | os.PathLike[str]) -> Any | None:
    """Return the celestial WCS of a FITS image, or None where it has none.

    The WCS is read from the header of the HDU that :func:`read_image` reads the pixels
    from. Other formats (and FITS files without astropy installed, or without a celestial
    WCS) give None.

    Returns
    -------
    astropy.wcs.WCS or None
        Two pixel axes (x = column, y = row, 0-based as in astropy's ``pixel_to_world``).
    """
    path = Path(path)
    if not path.is_file() or _sniff(path) != "fits":
        return None
    try:
        from astropy.io import fits
        from astropy.wcs import WCS
    except ImportError:
        return None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-standard headers are common and harmless
        with fits.open(path, memmap=False) as hdus:
            hdu = _image_hdu(hdus)
            if hdu is None:
                return None
            wcs = WCS(hdu.header)
    if not wcs.has_celestial:
        return None
    celestial = wcs.celestial
    return celestial if celestial.pixel_n_dim == 2 else None


def _open_zarr(path: Path) -> _Opened:
    try:
        import zarr
    except ImportError:
        raise _fail(
            path, "Zarr images need zarr; install it with `pip install blobsift[zarr]`"
        ) from None
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as error:
        raise _fail(path, "not a readable Zarr store", error) from error
    if isinstance(node, zarr.Array):
        return node, _zarr_array_axes(node), False
    attrs = dict(node.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if multiscales:
        first = multiscales[0]
        array = node[first["datasets"][0]["path"]]
        names = [a["name"] if isinstance(a, dict) else str(a) for a in first.get("axes", [])]
        if len(names) != array.ndim:
            axes = _guess_axes(array.shape)
        else:
            axes = "".join(_OME_AXES.get(name.lower(), "Q") for name in names)
        return array, axes, False
    arrays = list(node.array_keys())
    if len(arrays) == 1:
        array = node[arrays[0]]
        return array, _zarr_array_axes(array), False
    raise _fail(
        path,
        f"the Zarr group holds {len(arrays)} arrays ({arrays[:5]}) and no OME multiscales "
        "metadata; open the array you want (e.g. path/to/group/name)",
    )


_OME_AXES = {"x": "X", "y": "Y", "c": "C", "z": "Z", "t": "T"}


def _zarr_array_axes(array: Any) -> str:
    names = getattr(getattr(array, "metadata", None), "dimension_names", None)
    if not names:
        names = dict(array.attrs).get("_ARRAY_DIMENSIONS")
    if names and len(names) == array.ndim and all(names):
        axes = "".join(_OME_AXES.get(str(n).lower(), "Q") for n in names)
        if "Y" in axes and "X" in axes:
            return axes
    return _guess_axes(array.shape)


def _sniff(path: Path) -> str:
    """Name the format of ``path`` from its first bytes (and extension as a last resort)."""
    if path.is_dir():
        markers = ("zarr.json", ".zarray", ".zgroup", ".zattrs")
        if any((path / marker).exists() for marker in markers) or path.suffix == ".zarr":
            return "zarr"
        raise _fail(path, "it is a directory but not a Zarr store")
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise _fail(path, "the file cannot be opened", error) from error
    if not head:
        raise _fail(path, "the file is empty (0 bytes)")
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
    raise _fail(
        path,
        "its format is not recognised (supported: TIFF, PNG, JPEG, BMP, GIF, WebP, NPY, FITS, "
        "Zarr)",
    )


def open_image(
    path: str | os.PathLike[str], *, channel: int | None = None, page: Page = None
) -> LazyImage:
    """Open an image file as a lazy 2D float32 array.

    Zarr / OME-Zarr stores, NPY files (memory-mapped) and TIFF files (when zarr is
    installed) are read region by region as the result is sliced; other formats are read
    once. Pass the result to :func:`blobsift.detect.detect_blobs` to detect in tiles.

    Parameters
    ----------
    path : str or path-like
        The image file (or Zarr directory).
    channel : int, optional
        Channel to use. Default: luminance (BT.601) for uint8/uint16 RGB(A) colour, the only channel
        otherwise; required when a non-colour image has several channels.
    page : int, "max" or "mean", optional
        For stacks (multi-page TIFF, Z/T axes, animated images): one page by its index
        (in C order over all page axes), or a maximum / mean projection over all pages.
        Required when there is more than one page.

    Returns
    -------
    LazyImage
        Also a context manager: ``with open_image(path) as image: ...`` closes the file
        it may hold open.

    Raises
    ------
    InvalidInputError
        If ``path``, ``channel`` or ``page`` has the wrong type (checked first).
    ImageReadError
        If the file is missing, empty, corrupt, of an unknown format or pixel type, or is a
        stack or multi-channel image without ``page`` / ``channel``.
    """
    return _open(path, channel=channel, page=page, lazy=True)


def _open(
    path: str | os.PathLike[str], *, channel: int | None, page: Page, lazy: bool
) -> LazyImage:
    _check_arguments(path, channel, page)
    path = Path(path)
    if not path.exists():
        raise _fail(path, "the file does not exist")
    kind = _sniff(path)
    resource = None
    if kind == "tiff":
        data, axes, rgb, resource = _open_tiff(path, lazy=lazy)
    elif kind == "pillow":
        data, axes, rgb, page = _open_pillow(path, page)
    elif kind == "npy":
        data, axes, rgb = _open_npy(path)
    elif kind == "fits":
        data, axes, rgb = _open_fits(path)
    else:
        data, axes, rgb = _open_zarr(path)
    if rgb and np.dtype(data.dtype) not in _COLOUR_DTYPES:
        # RGB(A) in name only (e.g. a float stack tifffile tagged RGB): its planes are a
        # stack that needs page= or a projection, unless a channel= picks one plane.
        rgb = False
        if channel is None:
            axes = axes.replace("C", "S")
    try:
        return LazyImage(path, data, axes, channel=channel, page=page, rgb=rgb, resource=resource)
    except Exception:
        if resource is not None:
            resource.close()
        raise


def _check_arguments(path: Any, channel: Any, page: Any) -> None:
    """Refuse arguments of the wrong type before any file is touched."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInputError(
            f"path must be a file path (a str or os.PathLike); got {type(path).__name__} {path!r}."
        )
    if channel is not None and (
        isinstance(channel, bool) or not isinstance(channel, (int, np.integer))
    ):
        raise InvalidInputError(
            f"channel must be an integer index or None; got {type(channel).__name__} {channel!r}."
        )
    if page is not None and (
        isinstance(page, bool) or not isinstance(page, (int, np.integer, str))
    ):
        raise InvalidInputError(
            f"page must be an integer, 'max', 'mean' or None; got {type(page).__name__} {page!r}."
        )


def read_image(
    path: str | os.PathLike[str], channel: int | None = None, page: Page = None
) -> np.ndarray:
    """Read an image file as a 2D float32 array.

    Parameters
    ----------
    path : str or path-like
        A TIFF, PNG, JPEG, BMP, GIF, WebP, NPY or FITS file, or a Zarr / OME-Zarr directory.
        The format is recognised from the content.
    channel : int, optional
        Channel to use. Default: luminance (BT.601 weights) for uint8/uint16 RGB(A)
        colour, the only
        channel otherwise; required when a non-colour image has several channels.
    page : int, "max" or "mean", optional
        For stacks (multi-page TIFF, Z/T axes, animated images): one page by index, or the
        maximum / mean projection over all pages. Required when there is more than one page.

    Returns
    -------
    (H, W) float32 array
        Pixel values as stored (integers converted exactly up to 2**24 and never wrapped).

    Raises
    ------
    InvalidInputError
        If ``path``, ``channel`` or ``page`` has the wrong type (checked first).
    ImageReadError
        With the file name and the reason: missing, empty, corrupt or unknown format, an
        unsupported pixel type, or a stack / multi-channel image without ``page`` /
        ``channel``.

    Examples
    --------
    >>> image = read_image("cells.tif")                 # doctest: +SKIP
    >>> stack_max = read_image("stack.tif", page="max")  # doctest: +SKIP
    """
    with _open(path, channel=channel, page=page, lazy=False) as image:
        return image.read()
