"""The shared vocabulary of every layer: candidates, labels and progress.

- :class:`Candidates`: the small, immutable table of candidate positions.
- :class:`Label`: a person's verdict on a candidate (and ``UNLABELLED`` where none).
- :class:`ProgressEvent` and :data:`Progress`: the one progress callback of the library.

A candidate list is what a blob detector hands to the classifier: one row per candidate,
with columns ``row``, ``col`` (sub-pixel, float64), ``sigma`` (blob width in pixels; NaN if
unknown) and ``score`` (detector strength; NaN if unknown), and optionally ``image`` (the
image each candidate belongs to, as a string) when one list covers several images.

Coordinates are (row, col) with the centre of pixel ``[i, j]`` at ``(i, j)``. Candidate
files are written by :meth:`Candidates.to_csv` and read by
:func:`blobsift.io.read_candidates`.

This package is a bottom layer: it imports nothing of blobsift but
:mod:`blobsift.exceptions` and :mod:`blobsift._atomic` (whole-or-nothing files).

Modules: ``_candidates`` (:class:`Candidates`), ``_vocabulary`` (:class:`Label`,
:class:`ProgressEvent`, :data:`Progress`) and ``_numbers`` (numbers written as text).
"""

from blobsift.types._candidates import COLUMNS, Candidates
from blobsift.types._numbers import column_numbers, number_from_text
from blobsift.types._vocabulary import Label, Progress, ProgressEvent

__all__ = [
    "COLUMNS",
    "Candidates",
    "Label",
    "Progress",
    "ProgressEvent",
    "column_numbers",
    "number_from_text",
]
