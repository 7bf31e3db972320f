"""``Candidates``: the small, immutable table of candidate positions."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from blobsift._atomic import atomic_write
from blobsift.exceptions import InvalidInputError
from blobsift.types._numbers import column_numbers

COLUMNS = ("row", "col", "sigma", "score")


def _float_column(values: Any, name: str, n: int | None) -> np.ndarray:
    """Return ``values`` as a read-only 1D float64 array of length ``n`` (if given)."""
    if values is None:
        length = 0 if n is None else n
        array = np.full(length, np.nan)
    else:
        try:
            array = np.array(values, dtype=np.float64, copy=True)
        except (TypeError, ValueError) as error:
            raise InvalidInputError(
                f"Candidates column {name!r} must hold numbers; got {type(values).__name__} "
                f"that cannot be converted ({error})."
            ) from None
        if array.ndim == 0:
            array = np.full(0 if n is None else n, float(array))
    if array.ndim != 1:
        raise InvalidInputError(
            f"Candidates column {name!r} must be one-dimensional; got shape {array.shape}."
        )
    if n is not None and array.shape[0] != n:
        raise InvalidInputError(
            f"Candidates columns must have the same length; {name!r} has {array.shape[0]} "
            f"values but 'row' has {n}."
        )
    array.setflags(write=False)
    return array


def _image_column(values: Any, n: int) -> np.ndarray | None:
    """Return image names as a read-only array of str, or None."""
    if values is None:
        return None
    if isinstance(values, (str, os.PathLike)):
        array = np.full(n, os.fspath(values), dtype=object)
    else:
        array = np.asarray(values, dtype=object)
        if array.ndim != 1 or array.shape[0] != n:
            raise InvalidInputError(
                f"Candidates column 'image' must be a string or a sequence of {n} strings; "
                f"got shape {array.shape}."
            )
        array = np.array([os.fspath(v) if isinstance(v, os.PathLike) else str(v) for v in array])
        array = array.astype(object)
    array.setflags(write=False)
    return array


class Candidates:
    """An immutable table of candidate positions (one row per candidate).

    Parameters
    ----------
    row, col : array-like of float
        Sub-pixel positions; must be finite.
    sigma : array-like of float, optional
        Blob widths in pixels (NaN where unknown). Defaults to NaN.
    score : array-like of float, optional
        Detector scores, larger is stronger (NaN where unknown). Defaults to NaN.
    image : str or sequence of str, optional
        The image each candidate comes from (for lists that span several images).

    Attributes
    ----------
    row, col, sigma, score : (n,) float64 arrays
        The columns, read-only.
    image : (n,) object array of str or None
        The image column, read-only, or None for a single-image list.

    Examples
    --------
    >>> c = Candidates(row=[10.2, 40.0], col=[5.5, 7.25], score=[9.0, 4.5])
    >>> len(c)
    2
    >>> c.to_pandas().columns.tolist()
    ['row', 'col', 'sigma', 'score']
    """

    __slots__ = ("_col", "_image", "_row", "_score", "_sigma")

    # Set once in __init__ through object.__setattr__ (the class refuses normal assignment).
    _row: np.ndarray
    _col: np.ndarray
    _sigma: np.ndarray
    _score: np.ndarray
    _image: np.ndarray | None

    def __init__(
        self,
        row: Any,
        col: Any,
        sigma: Any = None,
        score: Any = None,
        image: Any = None,
    ) -> None:
        row_array = _float_column(row, "row", None)
        n = row_array.shape[0]
        col_array = _float_column(col, "col", n)
        if not (np.isfinite(row_array).all() and np.isfinite(col_array).all()):
            bad = np.flatnonzero(~(np.isfinite(row_array) & np.isfinite(col_array)))
            raise InvalidInputError(
                f"Candidates positions must be finite; rows {bad[:5].tolist()} hold NaN or "
                "inf in 'row' or 'col'. Drop them first."
            )
        object.__setattr__(self, "_row", row_array)
        object.__setattr__(self, "_col", col_array)
        object.__setattr__(self, "_sigma", _float_column(sigma, "sigma", n))
        object.__setattr__(self, "_score", _float_column(score, "score", n))
        object.__setattr__(self, "_image", _image_column(image, n))

    # -- immutability -------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Candidates is immutable; build a new one instead.")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Candidates is immutable; build a new one instead.")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickle (and copy) through the constructor, which validates and freezes again.
        return (Candidates, (self._row, self._col, self._sigma, self._score, self._image))

    # -- columns --------------------------------------------------------------------------
    @property
    def row(self) -> np.ndarray:
        """(n,) float64: sub-pixel row of each candidate."""
        return self._row

    @property
    def col(self) -> np.ndarray:
        """(n,) float64: sub-pixel column of each candidate."""
        return self._col

    @property
    def sigma(self) -> np.ndarray:
        """(n,) float64: blob width in pixels (NaN where unknown)."""
        return self._sigma

    @property
    def score(self) -> np.ndarray:
        """(n,) float64: detector score, larger is stronger (NaN where unknown)."""
        return self._score

    @property
    def image(self) -> np.ndarray | None:
        """(n,) object array of str naming each candidate's image, or None."""
        return self._image

    @property
    def columns(self) -> list[str]:
        """The column names, ``image`` first when present."""
        return (["image"] if self._image is not None else []) + list(COLUMNS)

    @property
    def positions(self) -> np.ndarray:
        """(n, 2) float64 array of (row, col)."""
        return np.column_stack([self._row, self._col])

    def __len__(self) -> int:
        return int(self._row.shape[0])

    def __repr__(self) -> str:
        images = "" if self._image is None else f", images={len(set(self._image.tolist()))}"
        return f"Candidates(n={len(self)}{images})"

    def __getitem__(self, index: Any) -> Candidates:
        """Select rows by slice, integer array or boolean mask; returns ``Candidates``."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        elif not isinstance(index, slice):
            index = np.asarray(index)
            if index.dtype == bool and index.shape != (len(self),):
                raise InvalidInputError(
                    f"a boolean mask must have shape ({len(self)},); got {index.shape}."
                )
        return Candidates(
            self._row[index],
            self._col[index],
            self._sigma[index],
            self._score[index],
            None if self._image is None else self._image[index],
        )

    def equals(self, other: object) -> bool:
        """Return True if ``other`` holds the same columns with the same values.

        NaN equals NaN here, so a table read back from CSV equals the one written.
        """
        if not isinstance(other, Candidates) or len(other) != len(self):
            return False
        if (self._image is None) != (other._image is None):
            return False
        if (
            self._image is not None
            and other._image is not None
            and not np.array_equal(self._image, other._image)
        ):
            return False
        return all(
            np.array_equal(getattr(self, name), getattr(other, name), equal_nan=True)
            for name in COLUMNS
        )

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def empty(cls, *, with_image: bool = False) -> Candidates:
        """Return a table with no rows (and an empty ``image`` column if asked)."""
        return cls(np.empty(0), np.empty(0), image=[] if with_image else None)

    def with_image(self, image: str | os.PathLike[str]) -> Candidates:
        """Return a copy whose ``image`` column names ``image`` for every row."""
        return Candidates(self._row, self._col, self._sigma, self._score, image)

    def sort_by_score(self) -> Candidates:
        """Return a copy ordered by descending score (NaN last, ties keep their order)."""
        score = np.where(np.isnan(self._score), -np.inf, self._score)
        return self[np.argsort(-score, kind="stable")]

    @classmethod
    def concat(
        cls,
        parts: Iterable[Candidates],
        *,
        images: Sequence[str | os.PathLike[str]] | None = None,
    ) -> Candidates:
        """Stack several tables into one, in order.

        Parameters
        ----------
        parts : iterable of Candidates
            The tables to join. Either all or none of them may have an ``image`` column.
        images : sequence of str, optional
            One image name per part; sets (or replaces) each part's ``image`` column.

        Returns
        -------
        Candidates
            The joined table; an empty table when ``parts`` is empty.
        """
        parts = list(parts)
        for position, part in enumerate(parts):
            if not isinstance(part, Candidates):
                raise InvalidInputError(
                    f"Candidates.concat takes Candidates tables; item {position} is "
                    f"{type(part).__name__}."
                )
        if images is not None:
            if len(images) != len(parts):
                raise InvalidInputError(
                    f"images must name one image per part; got {len(images)} names for "
                    f"{len(parts)} parts."
                )
            parts = [part.with_image(name) for part, name in zip(parts, images, strict=True)]
        if not parts:
            return cls.empty()
        has_image = {part.image is not None for part in parts}
        if len(has_image) > 1:
            raise InvalidInputError(
                "cannot join candidate tables with and without an 'image' column; pass "
                "images=[...] or call .with_image(name) on each part first."
            )
        columns = {
            name: np.concatenate([getattr(part, name) for part in parts]) for name in COLUMNS
        }
        image = np.concatenate([part.image for part in parts]) if has_image == {True} else None
        return cls(image=image, **columns)

    # -- pandas -------------------------------------------------------------------------
    def to_pandas(self) -> Any:
        """Return a ``pandas.DataFrame`` with columns [image,] row, col, sigma, score."""
        import pandas as pd

        data: dict[str, Any] = {}
        if self._image is not None:
            data["image"] = self._image.astype(object)
        for name in COLUMNS:
            data[name] = getattr(self, name).copy()
        return pd.DataFrame(data, columns=self.columns)

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the table to a CSV file with a header; returns the path.

        Floats are written with enough digits to read back exactly
        (:func:`blobsift.io.read_candidates`). The file is whole or not written at all.
        """
        table = self.to_pandas()
        write = partial(table.to_csv, index=False, float_format="%.17g")
        return atomic_write(path, write, what="the candidate CSV")

    @classmethod
    def from_pandas(cls, frame: Any, *, columns: Mapping[str, str] | None = None) -> Candidates:
        """Build a table from a DataFrame with columns row, col and optional sigma, score, image.

        Parameters
        ----------
        frame : pandas.DataFrame
            The table. Other columns are ignored.
        columns : mapping, optional
            Renames applied first, e.g. ``{"y": "row", "x": "col"}`` for a detector that
            writes x/y (check that its origin is the pixel centre, as here).

        Returns
        -------
        Candidates
        """
        if columns:
            frame = frame.rename(columns=dict(columns))
        missing = [name for name in ("row", "col") if name not in frame.columns]
        if missing:
            hint = ""
            if {"x", "y"} <= set(frame.columns):
                hint = ' The table has x/y: pass columns={"y": "row", "x": "col"}.'
            raise InvalidInputError(
                f"a candidate table needs columns 'row' and 'col'; missing {missing} "
                f"(found {list(frame.columns)}).{hint}"
            )
        values: dict[str, Any] = {}
        for name in COLUMNS:
            if name not in frame.columns:
                values[name] = None
                continue
            column = frame[name]
            if column.dtype.kind in "iuf":
                cells = column.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                cells = column.to_numpy(dtype=object, na_value=None)
            numbers, bad = column_numbers(cells)
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                raise InvalidInputError(
                    f"column {name!r} must hold numbers; row {first + 1} (CSV line "
                    f"{first + 2}) has {column.iloc[first]!r} ({int(bad.sum())} such row(s))."
                )
            values[name] = numbers
        bad = ~(np.isfinite(values["row"]) & np.isfinite(values["col"]))
        if bad.any():
            raise InvalidInputError(
                f"row/col must be finite numbers; {int(bad.sum())} row(s) are empty, NaN or "
                f"inf (first rows: {(np.flatnonzero(bad)[:5] + 1).tolist()}, counted from 1 "
                "after the header)."
            )
        image = None
        if "image" in frame.columns:
            if frame["image"].isna().any():
                raise InvalidInputError("column 'image' has empty cells; name every row's image.")
            image = frame["image"].astype(str).to_numpy(dtype=object)
        return cls(image=image, **values)
