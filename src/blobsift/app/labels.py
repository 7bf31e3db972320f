"""The project's current labels as the labelling app sees them: read from the store only.

The store is the one source of truth. :class:`CurrentLabels` keeps the latest reading and
re-reads it whenever the label log's high-water mark (its newest event id) has moved, so
labels written by other processes (``blobsift import-labels``, a second server, a
notebook) reach the queue and the counts as soon as the app next looks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from blobsift.app.pool import CandidatePool
from blobsift.app.serialised import SerialisedProject
from blobsift.project import Project

__all__ = ["CurrentLabels", "LabelSnapshot"]

T = TypeVar("T")


@dataclass(frozen=True)
class LabelSnapshot:
    """One reading of the current labels.

    Attributes
    ----------
    mark : int
        The newest label event the reading includes (0 before any).
    table : pandas.DataFrame
        ``Project.labels()``.
    of_candidate : (n,) int64 array
        Each pool candidate's label (``Label.UNLABELLED`` where none).
    """

    mark: int
    table: Any
    of_candidate: np.ndarray

    def counts(self) -> dict[int, int]:
        """How many positions carry each label value."""
        values = self.table["label"].value_counts().to_dict() if len(self.table) else {}
        return {int(value): int(count) for value, count in values.items()}


class CurrentLabels:
    """The current labels of a project, re-read from the store when its label log grows.

    Every reading runs on the app's database thread, so it never interleaves with a write
    the app makes there. Writes the app makes go through :meth:`write`, which remembers
    their event ids; events a reading finds beyond those came from elsewhere, and
    ``on_external(count, mark)`` hears of them (the app tells its pages to refresh).

    Parameters
    ----------
    project : SerialisedProject
        The app's project.
    pool : CandidatePool
        The candidates labels are matched to.
    on_external : callable, optional
        ``on_external(count, mark)`` after a reading found ``count`` events written by
        others.
    """

    def __init__(
        self,
        project: SerialisedProject,
        pool: CandidatePool,
        on_external: Callable[[int, int], None] | None = None,
    ) -> None:
        self._project = project
        self._pool = pool
        self._on_external = on_external
        self._mine: set[int] = set()  # touched on the database thread only
        self._snapshot: LabelSnapshot | None = None
        project.call(self._read)

    def current(self) -> LabelSnapshot:
        """The labels now: the last reading, or a new one if the log has moved since."""
        return self._project.call(self._read)

    def write(self, function: Callable[[Project], T], events: Callable[[T], Iterable[int]]) -> T:
        """Run a label write ``function(project)`` on the database thread.

        ``events(result)`` names the label event ids it wrote, so that readings count them
        as the app's own.
        """

        def run(project: Project) -> T:
            result = function(project)
            self._mine.update(events(result))
            return result

        return self._project.call(run)

    def _read(self, project: Project) -> LabelSnapshot:
        old = self._snapshot
        mark = project.last_label_event()  # read first: the table holds at least this
        if old is not None and mark == old.mark:
            return old
        table = project.labels()
        if old is None:
            of_candidate = self._pool.labels_from(table)
        else:  # match anew only the images whose current labels changed
            changed = _events_by_image(old.table) ^ _events_by_image(table)
            images = {image for image, _ in changed}
            of_candidate = self._pool.labels_from(table, old.of_candidate, images)
        self._snapshot = LabelSnapshot(mark, table, of_candidate)
        before = 0 if old is None else old.mark
        own = sum(1 for event in self._mine if before < event <= mark)
        self._mine = {event for event in self._mine if event > mark}
        external = mark - before - own
        if old is not None and external > 0 and self._on_external is not None:
            self._on_external(external, mark)
        return self._snapshot


def _events_by_image(table: Any) -> set[tuple[int, int]]:
    """(image id, event id) of each current label."""
    return set(zip(table["image_id"].tolist(), table["event_id"].tolist(), strict=True))
