"""Numbers written as text in table cells."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

#: A number written as text: ASCII decimal notation (``12``, ``-0.5``, ``1e3``) or
#: nan / inf. Unicode digits, underscores, hex and the words True / False are not numbers.
_NUMBER_TEXT = re.compile(
    r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:nan|inf|infinity)",
    re.ASCII | re.IGNORECASE,
)


def number_from_text(text: str) -> float | None:
    """The number a table cell spells (see ``_NUMBER_TEXT``; spaces around are ignored).

    Returns None when the text is not a number.
    """
    text = text.strip()
    return float(text) if _NUMBER_TEXT.fullmatch(text) else None


def column_numbers(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """A table column as float64, and a mask of the cells that are not numbers.

    Numbers stay as they are; text is read by :func:`number_from_text`; empty cells,
    None and NaN become NaN. Booleans (a column of True/False) are not numbers.
    """
    array = np.asarray(values)
    if array.dtype.kind in "iuf":
        return array.astype(np.float64), np.zeros(array.shape, dtype=bool)
    out = np.full(array.shape, np.nan)
    bad = np.zeros(array.shape, dtype=bool)
    for k, value in enumerate(array.tolist()):
        if isinstance(value, bool):
            bad[k] = True
        elif isinstance(value, (int, float)):
            out[k] = value
        elif isinstance(value, str):
            number = number_from_text(value) if value.strip() else np.nan
            bad[k] = number is None
            out[k] = np.nan if number is None else number
        elif value is not None:
            bad[k] = True
    return out, bad
