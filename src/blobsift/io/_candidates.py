"""Candidate lists as CSV files: :func:`read_candidates` (written by :meth:`Candidates.to_csv`).

The files are plain tables with a header: ``row``, ``col``, ``sigma``, ``score`` and
optionally ``image`` (see :class:`blobsift.types.Candidates`). Files made by other
detectors are read too (with renamed columns, in any order, TSV by extension).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from blobsift.exceptions import InvalidInputError
from blobsift.io._tables import read_text_table
from blobsift.types import Candidates

__all__ = ["read_candidates"]


def read_candidates(
    path: str | os.PathLike[str],
    *,
    columns: Mapping[str, str] | None = None,
    image: str | os.PathLike[str] | None = None,
) -> Candidates:
    """Read a candidate list from a CSV file (ours, or one made by another detector).

    Parameters
    ----------
    path : str or path-like
        A CSV file with a header holding ``row`` and ``col`` and optionally ``image``,
        ``sigma`` and ``score`` (in any order; other columns are ignored). A TSV file
        (``.tsv``) is read with tabs.
    columns : mapping, optional
        Renames applied first, e.g. ``{"y": "row", "x": "col"}``.
    image : str, optional
        Set the ``image`` column for every row (for a single-image list without one).

    Returns
    -------
    Candidates

    Raises
    ------
    InvalidInputError
        If the file is missing, is not a table, lacks row/col, or holds non-numeric or
        empty positions.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"candidate file {str(path)!r} does not exist or is not a file.")
    try:
        frame = read_text_table(path)
    except pd.errors.EmptyDataError:
        raise InvalidInputError(
            f"candidate file {str(path)!r} is empty; it needs a header with row,col."
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InvalidInputError(
            f"candidate file {str(path)!r} is not a readable CSV table ({error})."
        ) from None
    try:
        candidates = Candidates.from_pandas(frame, columns=columns)
    except InvalidInputError as error:
        raise InvalidInputError(f"{str(path)!r}: {error}") from None
    return candidates if image is None else candidates.with_image(image)
