"""What the labelling app's routes share: the project, its candidates, labels, events, training.

:class:`AppState` lives in ``app.state.web``; the routers reach it through
:func:`app_state`.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request

from blobsift.app._models import GridItem
from blobsift.app.labels import CurrentLabels
from blobsift.app.pool import CandidatePool
from blobsift.app.serialised import SerialisedProject
from blobsift.app.training import EventHub, TrainingJob
from blobsift.exceptions import InvalidInputError, ModelFileError, ProjectError
from blobsift.project import Project
from blobsift.store import ModelRecord
from blobsift.types import Label

__all__ = ["AppState", "State", "app_state"]

_NEIGHBOURS = 6


class AppState:
    """Everything the routes share: the serialised project, candidates, events, training.

    Labels are read from the store only (:attr:`labels`); the pool holds candidates and
    model scores, never labels.

    Parameters
    ----------
    root : Path
        The project folder.
    who : str
        The author of every label the app writes.
    train_options : dict
        Keyword arguments of :meth:`Project.train`.
    seed : int
        Seed of the queue orders.
    stream_seconds : float
        How long one event stream stays open.
    """

    def __init__(
        self,
        root: Path,
        who: str,
        train_options: dict[str, Any],
        seed: int,
        stream_seconds: float,
    ) -> None:
        self.root = root
        self.session = secrets.token_hex(6)
        self.who = who
        self.seed = seed
        self.stream_seconds = stream_seconds
        self.project = SerialisedProject(root)
        self.pool = self.project.call(CandidatePool.load)
        #: channels of every crop (shown side by side); 1 for 2D images
        self.channels: int = self.project.call(lambda p: p.n_channels) or 1
        self.hub = EventHub()
        self.labels = CurrentLabels(self.project, self.pool, self._labelled_elsewhere)
        self.job = TrainingJob(root, self.hub, self._after_training, train_options)
        self.models: list[ModelRecord] = self.project.call(lambda p: p.models())
        self._gallery: dict[int, tuple[Any, Any]] = {}
        self.problem: str | None = None
        if self.models:
            latest = self.models[-1]
            try:
                sifter = self.project.call(lambda p: p.load_model(latest.id))
            except (ProjectError, ModelFileError) as error:  # label on, without scores
                self.problem = f"the latest model cannot be loaded: {error}"
            else:
                self.pool.set_scores(self.pool.score_all(sifter), latest.threshold, latest.id)

    def _after_training(self, project: Project, record: ModelRecord) -> None:
        sifter = project.load_model(record.id)
        self.pool.set_scores(self.pool.score_all(sifter), record.threshold, record.id)
        self.models = project.models()

    def _labelled_elsewhere(self, count: int, mark: int) -> None:
        self.hub.publish("labels", {"external": count, "label_event_id": mark})

    # -- labels -------------------------------------------------------------------------
    def session_of(self, session: str | None) -> str:
        """A client's session id: its own, or the server's for a client that sends none."""
        return session or self.session

    def write_labels(self, items: list[GridItem], source: str, session: str | None) -> list[int]:
        """Write labels of pool candidates in one transaction; returns their event ids."""
        rows = [self.pool.index(item.id) for item in items]
        values = [int(Label.from_word(item.label)) for item in items]
        pool = self.pool
        events = self.labels.write(
            lambda p: p.add_labels(
                [int(pool.image_id[k]) for k in rows],
                [float(pool.row[k]) for k in rows],
                [float(pool.col[k]) for k in rows],
                values,
                who=self.who,
                source=source,
                session=self.session_of(session),
            ),
            events=lambda ids: ids,
        )
        for item, event in zip(items, events, strict=True):
            self.hub.publish("label", {"id": item.id, "label": item.label, "event_id": event})
        return events

    def label_position(self, event_id: int) -> tuple[int, float, float]:
        """(image id, row, col) of a current label, by its event id."""
        table = self.labels.current().table
        found = table[table["event_id"] == event_id]
        if not len(found):
            raise InvalidInputError(f"no current label with event id {event_id}.")
        first = found.iloc[0]
        return int(first["image_id"]), float(first["row"]), float(first["col"])

    def label_rows(self, table: Any) -> list[dict[str, Any]]:
        """JSON rows for current labels with their candidate and model score, in order."""
        pool = self.pool
        proba = pool.proba
        rows = []
        for image_id, image, row, col, label, who, when, event in zip(
            table["image_id"].tolist(),
            table["image"].tolist(),
            table["row"].tolist(),
            table["col"].tolist(),
            table["label"].tolist(),
            table["who"].tolist(),
            table["created_at"].tolist(),
            table["event_id"].tolist(),
            strict=True,
        ):
            k = pool.find(int(image_id), row, col)
            rows.append(
                {
                    "event_id": int(event),
                    "id": None if k is None else pool.ids[k],
                    "image": image,
                    "row": row,
                    "col": col,
                    "label": Label(int(label)).word,
                    "who": who,
                    "created_at": when,
                    "proba": None if k is None or proba is None else float(proba[k]),
                    "src": f"/api/label-crop/{int(event)}.png",
                }
            )
        return rows

    # -- model gallery ------------------------------------------------------------------
    def gallery(self) -> tuple[ModelRecord, Any, Any] | None:
        """(record, sifter, held-out table) of the latest Phase 1 (siamese) model."""
        siamese = [record for record in self.models if record.phase == "siamese"]
        if not siamese:
            return None
        record = siamese[-1]
        if record.id not in self._gallery:  # keep the latest gallery only
            try:
                loaded = self.project.call(
                    lambda p: (p.load_model(record.id), p.heldout_scores(record.id))
                )
            except (ProjectError, ModelFileError) as error:
                self.problem = f"the Phase 1 gallery cannot be loaded: {error}"
                return None
            self._gallery = {record.id: loaded}
        sifter, heldout = self._gallery[record.id]
        return record, sifter, heldout

    def neighbours(self, k: int) -> list[dict[str, Any]]:
        """The latest Phase 1 model's nearest labelled crops to candidate ``k``."""
        found = self.gallery()
        if found is None:
            return []
        record, sifter, heldout = found
        similarity, index = sifter.kneighbors(self.pool.crop(k)[None], _NEIGHBOURS)
        out = []
        for sim, row in zip(similarity[0].tolist(), index[0].tolist(), strict=True):
            if row >= len(heldout):  # gallery crops added after training have no record
                continue
            out.append(
                {
                    "similarity": float(sim),
                    "label": Label(int(heldout["label"].iloc[row])).word,
                    "src": f"/api/gallery/{record.id}/{int(row)}.png",
                }
            )
        return out


async def app_state(request: Request) -> AppState:
    """The shared state of the app serving ``request`` (a FastAPI dependency)."""
    return request.app.state.web


#: A route parameter that receives the app's :class:`AppState`.
State = Annotated[AppState, Depends(app_state)]
