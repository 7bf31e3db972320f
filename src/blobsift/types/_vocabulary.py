"""Labels and progress events: the words every layer uses."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from blobsift.exceptions import InvalidInputError
from blobsift.types._numbers import number_from_text


class Label(enum.IntEnum):
    """A person's verdict on a candidate, as stored (the integers are the file format).

    ``UNLABELLED`` marks a candidate nobody has labelled; it is never stored as a label.
    """

    UNLABELLED = -2
    UNSURE = -1
    NOISE = 0
    SIGNAL = 1

    @property
    def word(self) -> str:
        """The label as a person writes it: ``signal``, ``noise``, ``unsure``, ``unlabelled``."""
        return self.name.lower()

    @classmethod
    def words(cls) -> tuple[str, ...]:
        """The words a person may label with (every label but ``unlabelled``)."""
        return tuple(label.word for label in cls.given())

    @classmethod
    def given(cls) -> tuple[Label, ...]:
        """The labels a person can give, in the order of the keys: signal, noise, unsure."""
        return (cls.SIGNAL, cls.NOISE, cls.UNSURE)

    @classmethod
    def from_word(cls, word: str) -> Label:
        """The label a word names (``signal``, ``noise`` or ``unsure``, any case)."""
        text = word.strip().lower()
        for label in cls.given():
            if label.word == text:
                return label
        raise InvalidInputError(f"{word!r} is not a label; use one of {', '.join(cls.words())}.")

    @classmethod
    def parse(cls, value: Any) -> Label | None:
        """The label a table cell holds (1/0/-1 or their words), or None if it holds none.

        Booleans (and the text ``True``) are not labels: ``True`` is not 1 here.
        """
        if isinstance(value, (bool, np.bool_)):
            return None
        if isinstance(value, str):
            text = value.strip().lower()
            if text in cls.words():
                return cls.from_word(text)
            value = number_from_text(text)
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return next((label for label in cls.given() if number == label), None)


@dataclass(frozen=True)
class ProgressEvent(Mapping[str, Any]):
    """How far one stage of a long job has come: what every progress callback receives.

    Parameters
    ----------
    stage : str
        What is being done: ``"add-images"``, ``"detect"``, ``"import-candidates"``,
        ``"label"``, ``"pretrain"``, ``"finetune"``, ``"epoch"``, ``"predict"``,
        ``"report"``, ``"overlays"``, ``"score"``.
    done, total : int
        Units finished so far, out of ``total`` (None where the total is not known).
        The unit belongs to the stage: images, labels, optimiser steps, epochs, figures.
    item : str, optional
        The unit just finished, where it has a name (an image, a figure).
    details : mapping, optional
        What the stage measured or reports, e.g. ``loss``, ``train_loss``, ``val_f1``, ``is_best``,
        ``phase``, ``candidates``, ``status`` or a Dask ``dashboard`` link.

    Notes
    -----
    An event reads like the dictionary the specification's ``callback`` receives:
    ``event["done"]``, ``event["val_f1"]`` (every field, then every detail, is a key).
    """

    stage: str
    done: int
    total: int | None
    item: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def _items(self) -> dict[str, Any]:
        head = {"stage": self.stage, "done": self.done, "total": self.total}
        if self.item is not None:
            head["item"] = self.item
        return {**head, **self.details}

    def __getitem__(self, key: str) -> Any:
        return self._items()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())


#: The one progress callback type: called with a :class:`ProgressEvent`; returns nothing.
Progress = Callable[[ProgressEvent], None]
