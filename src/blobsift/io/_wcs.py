"""The celestial WCS of a FITS image: :func:`read_wcs`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from blobsift.io._formats import image_hdu, sniff

__all__ = ["read_wcs"]


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
    if not path.is_file() or sniff(path) != "fits":
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
            hdu = image_hdu(hdus)
            if hdu is None:
                return None
            wcs = WCS(hdu.header)
    if not wcs.has_celestial:
        return None
    celestial = wcs.celestial
    return celestial if celestial.pixel_n_dim == 2 else None
