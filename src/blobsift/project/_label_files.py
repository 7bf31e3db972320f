"""Label files: a CSV of ``image,row,col,label`` read (checked, replay-safe) and written."""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from blobsift._atomic import atomic_write
from blobsift.exceptions import InvalidInputError
from blobsift.project._base import as_path
from blobsift.project._labels import LabelsMixin, checked_who
from blobsift.store import AlreadyImportedWarning, LabelConflictWarning
from blobsift.types import Progress, column_numbers

__all__ = ["LabelFilesMixin"]

_LABEL_COLUMNS = ("image", "row", "col", "label")


class LabelFilesMixin(LabelsMixin):
    """Importing and exporting label CSV files."""

    def import_labels(
        self,
        path: str | os.PathLike[str],
        *,
        who: str | None = None,
        progress: Progress | None = None,
        again: bool = False,
    ) -> int:
        """Import a label CSV with columns ``image,row,col,label`` (one transaction).

        ``image`` is the path or file name as added; ``label`` is 1 (signal), 0 (noise) or
        -1 (unsure), or the word signal, noise or unsure (any case); nothing else (not
        ``True``, not ``2``, not empty). Every row is checked before anything is written:
        a row whose position lies outside its image (see :meth:`add_labels`), or two rows
        that give one position different labels, refuse the whole file, naming the file's
        line numbers. Blank lines are skipped.

        A position that the project already labels differently takes the file's label (the
        earlier events are kept in the log); a :class:`LabelConflictWarning` counts such
        positions.

        The file's content hash is recorded with its events, so the same file imported
        again (say after an interrupted run whose import had committed) is recognised and
        not applied twice: nothing is written, an :class:`AlreadyImportedWarning` names
        the earlier import, and the result is 0. Pass ``again=True`` to apply it anyway.

        Returns
        -------
        int
            The number of label events added (0 for a file already imported).

        Raises
        ------
        InvalidInputError
            If the file is missing or not a CSV table, lacks a column, or a row is invalid.
        """
        path = as_path(path, name="path")
        who = checked_who(who)
        if not path.is_file():
            raise InvalidInputError(f"label file {str(path)!r} does not exist or is not a file.")
        content = path.read_bytes()  # hashed and parsed from the same bytes
        digest = hashlib.sha256(content).hexdigest()
        earlier = None if again else self._store.earlier_import(digest)
        if earlier is None:
            frame, lines = _read_label_table(path, content)
            batch = self._label_batch(
                frame["image"].tolist(),
                frame["row"].to_numpy(),
                frame["col"].to_numpy(),
                frame["label"].tolist(),
                describe=lambda k: f"{path.name} line {lines[k]}",
            )
            written = self._append_labels(
                batch,
                who=who,
                source=f"import:{path.name}",
                progress=progress,
                file=(digest, path),
                again=again,
            )
            earlier = written.already_imported
        if earlier is not None:
            warnings.warn(
                f"label file {str(path)!r} was already imported (same content as "
                f"{earlier['file']!r}, imported by {earlier['who']} at {earlier['created_at']}"
                f" as {earlier['n_events']} events); nothing was applied again. Pass "
                "again=True (`import-labels --again`) to apply it once more.",
                AlreadyImportedWarning,
                stacklevel=2,
            )
            return 0
        if written.relabelled:
            warnings.warn(
                f"{written.relabelled} position(s) already had another label; the labels of "
                f"{path.name!r} replace them (the earlier events are kept in the label log, "
                "so the old labels can be restored).",
                LabelConflictWarning,
                stacklevel=2,
            )
        return len(written.event_ids)

    def export_labels(self, path: str | os.PathLike[str], *, include_unsure: bool = False) -> int:
        """Write the current labels to a CSV with columns ``image,row,col,label``.

        ``image`` is the file name where names are unique in the project, else the path.

        Returns
        -------
        int
            The number of rows written.
        """
        frame = self.labels(include_unsure=include_unsure)
        names = [r.name for r in self.images()]
        unique = len(set(names)) == len(names)
        out = frame.assign(image=frame["image"] if unique else frame["path"])
        out = out[["image", "row", "col", "label"]]
        write = partial(out.to_csv, index=False, float_format="%.17g")
        atomic_write(path, write, what="the label CSV")
        return len(out)


def _read_label_table(path: Path, content: bytes) -> tuple[Any, list[int]]:
    """The rows of a label CSV (image, row, col as numbers, label as text) and their lines.

    ``content`` holds the file's bytes; ``path`` names it in errors.

    Blank lines are skipped; the line numbers are those of the file (the header is line
    1), assuming no cell spans lines.
    """
    import pandas as pd

    try:
        frame = pd.read_csv(
            io.BytesIO(content),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InvalidInputError(
            f"label file {str(path)!r} is not a CSV table with the columns image,row,col,"
            f"label ({type(error).__name__})."
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in _LABEL_COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"label file {str(path)!r} lacks column(s) {missing}; it needs image,row,col,"
            f"label (found {list(frame.columns)})."
        )
    frame = frame.loc[:, ~frame.columns.duplicated()].fillna("").astype(str)
    frame = frame.apply(lambda column: column.str.strip())
    frame = frame[(frame != "").any(axis=1)]
    lines = (frame.index.to_numpy() + 2).tolist()
    cells = frame[list(_LABEL_COLUMNS)]
    empty = np.flatnonzero((cells == "").any(axis=1).to_numpy())
    if empty.size:
        raise InvalidInputError(
            f"label file {str(path)!r} has empty cells on line(s) "
            f"{[lines[k] for k in empty[:5]]}; fill or remove them."
        )
    out = cells.reset_index(drop=True)
    for name in ("row", "col"):
        numbers, _ = column_numbers(out[name].to_numpy(dtype=object))
        bad = np.flatnonzero(~np.isfinite(numbers))
        if bad.size:
            raise InvalidInputError(
                f"label file {str(path)!r}: {name} must be a finite number; line "
                f"{lines[bad[0]]} has {out[name].iloc[bad[0]]!r} ({bad.size} such line(s))."
            )
        out[name] = numbers
    return out, lines
