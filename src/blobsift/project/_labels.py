"""Labelling: label events checked and placed on positions, undo, the label log."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from blobsift.exceptions import InvalidInputError
from blobsift.positions import PositionIndex
from blobsift.project._images import ImagesMixin
from blobsift.store import ImageRecord, Position, WrittenLabels, default_who
from blobsift.types import Label, Progress

__all__ = ["LabelsMixin", "checked_who", "label_set_hash"]


@dataclass(frozen=True)
class _LabelBatch:
    """Checked label events: image ids, positions, values, and how to name each in errors."""

    image_ids: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    values: list[int | None]
    describe: Callable[[int], str]


class LabelsMixin(ImagesMixin):
    """Label events of a project: append (checked, all or none), undo, read."""

    def add_labels(
        self,
        images: Sequence[Any],
        rows: Sequence[float],
        cols: Sequence[float],
        labels: Sequence[int | None],
        *,
        who: str | None = None,
        source: str = "api",
        session: str | None = None,
        progress: Progress | None = None,
    ) -> list[int]:
        """Append label events, all in one transaction (all or none).

        An event within ``match_radius`` of an already labelled position of the same image
        joins that position and becomes its current label: labelling a position again
        relabels it (the earlier events are kept). Within one call, events that fall on one
        position with different labels are a conflict and are refused; the same label
        twice is accepted.

        Parameters
        ----------
        images : sequence
            The image of each event (id, path or name).
        rows, cols : sequence of float
            Positions, in pixels with the centre of pixel ``[i, j]`` at ``(i, j)``. A
            position must lie on its image, give or take ``match_radius`` (so that the
            sub-pixel fit of a blob on the edge is kept): ``-r <= row <= height - 1 + r``
            and ``-r <= col <= width - 1 + r`` with ``r = match_radius``. Positions within
            half a crop (32 px) of the edge are accepted; their crops are completed by
            mirror reflection, as :func:`blobsift.extract_crops` does for candidates there.
        labels : sequence of int or None
            1 signal, 0 noise, -1 unsure (or the words ``signal``, ``noise``,
            ``unsure``), None to clear the position's label. Booleans are refused.
        who : str, optional
            Who labelled; default the login name.
        source : str
            Where the events came from (``"api"``, ``"import:labels.csv"``, ...).
        session : str, optional
            The client session that labelled (one per browser tab of the labelling app);
            :meth:`undo` with a session undoes only that session's events.
        progress : callable, optional
            Called with a ``ProgressEvent("label", done, total)`` after each block of
            1,000 events.

        Returns
        -------
        list of int
            The new event ids.

        Raises
        ------
        InvalidInputError
            If the lengths differ, an image is unknown, a position is not a finite number
            or lies outside its image, a label is not one of the values above, or two
            events of the call conflict. Nothing is written then.
        """
        n = len(images)
        if not (len(rows) == len(cols) == len(labels) == n):
            raise InvalidInputError(
                f"images, rows, cols and labels must have the same length; got {n}, "
                f"{len(rows)}, {len(cols)} and {len(labels)}."
            )
        batch = self._label_batch(
            images, rows, cols, labels, describe=lambda k: f"label {k} (0-based)"
        )
        written = self._append_labels(
            batch,
            who=checked_who(who),
            source=_text(source, name="source"),
            session=session,
            progress=progress,
        )
        return written.event_ids

    def label(
        self,
        image: Any,
        row: float,
        col: float,
        label: int | None,
        *,
        who: str | None = None,
        source: str = "api",
        session: str | None = None,
    ) -> int:
        """Append one label event; returns its id (see :meth:`add_labels`)."""
        return self.add_labels(
            [image], [row], [col], [label], who=who, source=source, session=session
        )[0]

    def _label_batch(
        self,
        images: Sequence[Any],
        rows: Any,
        cols: Any,
        labels: Sequence[Any],
        *,
        describe: Callable[[int], str],
    ) -> _LabelBatch:
        """Resolve and check label events; ``describe(k)`` names event ``k`` in errors."""
        resolve = self._resolver()
        ids = []
        for k, image in enumerate(images):
            try:
                ids.append(resolve(image).id)
            except InvalidInputError as error:
                raise InvalidInputError(f"{describe(k)}: {error}") from None
        rows_f = _coordinates(rows, name="rows", describe=describe)
        cols_f = _coordinates(cols, name="cols", describe=describe)
        values: list[int | None] = []
        for k, value in enumerate(labels):
            label = Label.parse(value)
            if label is None and value is not None:
                raise InvalidInputError(
                    f"{describe(k)}: label must be 1 (signal), 0 (noise), -1 (unsure) or "
                    f"None (clear), or the word signal/noise/unsure; got {value!r}."
                )
            values.append(None if label is None else int(label))
        batch = _LabelBatch(np.asarray(ids, dtype=np.int64), rows_f, cols_f, values, describe)
        self._check_inside(batch.image_ids, rows_f, cols_f, describe)
        return batch

    def _append_labels(
        self,
        batch: _LabelBatch,
        *,
        who: str,
        source: str,
        session: str | None = None,
        progress: Progress | None = None,
        file: Any = None,
        again: bool = False,
    ) -> WrittenLabels:
        """Write checked label events in one transaction (see :meth:`add_labels`).

        Each event joins the labelled position of its image within ``match_radius``
        (else it starts a new one); a batch that gives one position two labels is refused.
        """

        def place(current: dict[Position, int | None]) -> list[Position]:
            indexes = {int(i): PositionIndex(self.match_radius) for i in batch.image_ids}
            for image_id, r, c in current:
                indexes[image_id].add(r, c)
            keys = []
            for k in range(len(batch.values)):
                image_id = int(batch.image_ids[k])
                index = indexes[image_id]
                position = index.nearest(batch.rows[k], batch.cols[k])
                if position is None:
                    position = (float(batch.rows[k]), float(batch.cols[k]))
                    index.add(*position)
                keys.append((image_id, *position))
            _refuse_conflicts(keys, batch)
            return keys

        return self._store.append_labels(
            batch.image_ids.tolist(),
            batch.values,
            place,
            who=who,
            source=source,
            session=session,
            progress=progress,
            file=file,
            again=again,
        )

    def undo(self, *, who: str | None = None, session: str | None = None) -> int | None:
        """Undo the latest label event (of ``who``, of ``session``, if given) by its reverse.

        The new event restores the position's previous label (or clears it), and carries
        ``session``. Events are never removed. Undo again to undo the event before.

        Returns
        -------
        int or None
            The id of the new event, or None when there is nothing to undo.

        Raises
        ------
        InvalidInputError
            If the position was labelled again (by someone else) after that event.
        """
        return self._store.undo(who=who, session=session)

    def last_label_event(self) -> int:
        """The id of the newest label event (0 before any): it grows with every label write.

        Cheap to ask; readers that cache labels (the labelling app) poll it to see writes
        by other processes.
        """
        return self._store.last_label_event()

    def label_events(self) -> Any:
        """Return the whole label log as a DataFrame (oldest first; the audit trail)."""
        return self._store.label_events()

    def labels(self, image: Any = None, *, include_unsure: bool = True) -> Any:
        """Return the current label of every labelled position (its latest event).

        Positions whose latest event cleared the label are left out.

        Returns
        -------
        pandas.DataFrame
            Columns ``image_id``, ``image`` (name), ``path``, ``row``, ``col``, ``label``,
            ``who``, ``created_at``, ``event_id``; ordered by event id.
        """
        image_id = None if image is None else self.image(image).id
        return self._store.labels(image_id, include_unsure=include_unsure)

    def label_imports(self) -> list[dict[str, Any]]:
        """Return every recorded label import (file, content hash, who, when, events)."""
        return self._store.label_imports()

    def label_set_hash(self) -> str:
        """A SHA-256 naming the current 0/1 label set (image contents, positions, labels)."""
        return label_set_hash(self.labels(include_unsure=False), self.images())


def _coordinates(values: Any, *, name: str, describe: Callable[[int], str]) -> np.ndarray:
    """Positions as a 1D float64 array; non-numbers, NaN and inf are refused by event."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidInputError(f"{name} must be a sequence of numbers; got shape {array.shape}.")
    if array.size and array.dtype.kind not in "iuf":
        for k, value in enumerate(array.tolist()):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidInputError(
                    f"{describe(k)}: {name[:-1]} must be a number; got "
                    f"{type(value).__name__} {value!r}."
                )
    array = array.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise InvalidInputError(
            f"{describe(int(bad[0]))}: {name[:-1]} must be a finite number; got "
            f"{array[bad[0]]!r} ({bad.size} such value(s) in {name})."
        )
    return array


def _refuse_conflicts(keys: list[tuple[int, float, float]], batch: _LabelBatch) -> None:
    """Refuse a batch in which one position gets different labels (all events kept)."""
    first: dict[tuple[int, float, float], int] = {}
    conflicts = []
    for k, key in enumerate(keys):
        seen = first.setdefault(key, k)
        if batch.values[seen] != batch.values[k]:
            conflicts.append((seen, k, key))
    if conflicts:
        shown = "; ".join(
            f"{batch.describe(a)} gives {batch.values[a]} and {batch.describe(b)} gives "
            f"{batch.values[b]} at (row {key[1]:g}, col {key[2]:g})"
            for a, b, key in conflicts[:3]
        )
        raise InvalidInputError(
            f"{len(conflicts)} label(s) conflict with another label of the same position "
            f"(positions within match_radius of each other are one position): {shown}. "
            "Nothing was written; keep one label per position."
        )


def checked_who(who: Any) -> str:
    """The name events are recorded under: ``who``, or the login name when None."""
    if who is None:
        return default_who()
    if not isinstance(who, str) or not who.strip():
        raise InvalidInputError(f"who must be a non-empty name (str); got {who!r}.")
    return who


def _text(value: Any, *, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a str; got {type(value).__name__} {value!r}.")
    return value


def label_set_hash(table: Any, images: list[ImageRecord]) -> str:
    """A SHA-256 naming a 0/1 label table (image contents, positions, labels)."""
    sha = {r.id: r.sha256 for r in images}
    lines = sorted(
        f"{sha[int(i)]} {r:.3f} {c:.3f} {int(y)}"
        for i, r, c, y in zip(
            table["image_id"], table["row"], table["col"], table["label"], strict=True
        )
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
