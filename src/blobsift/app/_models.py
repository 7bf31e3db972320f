"""The request bodies of the labelling app's API (pydantic models).

Label words come from :meth:`blobsift.types.Label.words`: ``signal``, ``noise``,
``unsure``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from blobsift.active import ORDERS
from blobsift.types import Label

__all__ = ["GridItem", "LabelIn", "LabelsIn", "QueueIn", "RelabelIn", "UndoIn", "Word"]

if TYPE_CHECKING:
    # The Literals below are built from the vocabulary at run time, which mypy cannot
    # follow; to it they are strings (pydantic checks the words).
    Word = str
    Order = str
else:
    #: A label word the API accepts (one of ``Label.words()``).
    Word = Literal[Label.words()]
    #: A queue order the API accepts (one of :data:`blobsift.active.ORDERS`).
    Order = Literal[ORDERS]
#: A browser tab's session id (the page makes a random one per tab).
_SESSION = Field(default=None, pattern=r"^[A-Za-z0-9_-]{8,64}$")


class GridItem(BaseModel):
    """One label of one candidate."""

    id: str = Field(max_length=40)
    label: Word


class LabelIn(GridItem):
    """One label of one candidate, from a client session."""

    session: str | None = _SESSION


class LabelsIn(BaseModel):
    """Labels of a page of candidates (the grid view), written in one transaction."""

    items: list[GridItem] = Field(min_length=1, max_length=200)
    session: str | None = _SESSION


class RelabelIn(BaseModel):
    """A new label for a labelled position, named by its current label event."""

    event_id: int
    label: Word
    session: str | None = _SESSION


class UndoIn(BaseModel):
    """Which session's latest label to undo."""

    session: str | None = _SESSION


class QueueIn(BaseModel):
    """What the page asks of the queue."""

    order: Order = ORDERS[0]
    n: int = Field(default=10, ge=1, le=100)
    exclude: list[str] = Field(default_factory=list, max_length=400)
