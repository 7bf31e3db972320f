"""Table files as pandas DataFrames: CSV, TSV and Parquet (a file or a folder of parts).

The one reader of the tables blobsift writes and reads back: candidate lists, label
exports and prediction output (``blobsift predict --output x.csv`` or ``x.parquet``, whose
Parquet output is a folder of ``part-*.parquet`` files). A ``.tsv`` file is read with
tabs, any other text table with commas; the ``image`` column is always text.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["TABLE_SUFFIXES", "read_table", "read_text_table", "table_columns"]

#: The suffixes of the table files :func:`read_table` reads.
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")


def _separator(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def _parquet_parts(path: Path) -> list[Path]:
    return sorted(path.glob("part-*.parquet")) if path.is_dir() else [path]


def read_text_table(path: str | os.PathLike[str]) -> Any:
    """Read a CSV (or ``.tsv``) table; pandas' own errors pass through.

    Parameters
    ----------
    path : str or path-like
        The table file, with a header.

    Returns
    -------
    pandas.DataFrame
        Its columns; ``image`` as text.
    """
    import pandas as pd

    path = Path(path)
    return pd.read_csv(path, sep=_separator(path), dtype={"image": str})


def read_table(path: str | os.PathLike[str]) -> Any:
    """Read a table file: Parquet (a file, or a folder of ``part-*.parquet``) or text.

    Parameters
    ----------
    path : str or path-like
        A ``.parquet`` file or folder, or a CSV / TSV file (see :func:`read_text_table`).

    Returns
    -------
    pandas.DataFrame
        Its rows, the parts of a Parquet folder in the order of their names (no rows and
        no columns for a folder without parts).
    """
    import pandas as pd

    path = Path(path)
    if path.suffix.lower() == ".parquet":
        parts = _parquet_parts(path)
        if not parts:
            return pd.DataFrame()
        return pd.concat([pd.read_parquet(part) for part in parts], ignore_index=True)
    return read_text_table(path)


def table_columns(path: str | os.PathLike[str]) -> set[str]:
    """The column names of a table file, reading only its header (or Parquet schema).

    Parameters
    ----------
    path : str or path-like
        As for :func:`read_table`.

    Returns
    -------
    set of str
        Empty for a Parquet folder without parts.
    """
    import pandas as pd

    path = Path(path)
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        parts = _parquet_parts(path)
        return set(pq.read_schema(parts[0]).names) if parts else set()
    return set(pd.read_csv(path, sep=_separator(path), nrows=0).columns)
