"""Pre-trained encoders kept for reuse: :class:`PretrainedEncoders`.

Self-supervised pre-training of the Phase 1 encoder costs most of a fit and depends only
on the unlabelled crops and the settings, not on the labels. A :class:`PretrainedEncoders`
cache, held by whoever fits repeatedly (a :class:`~blobsift.Sifter`, a project), keeps
the weights by a digest of both, so a later fit on the same candidates skips it. There is
no process-wide cache: what is reused is the cache the caller passes in.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from blobsift.exceptions import InvalidInputError, ModelFileError

__all__ = ["PretrainedEncoders", "pretraining_key"]

_KIND = "pretrained_encoder"
_FILE_KEY_LENGTH = 40

State = dict[str, torch.Tensor]


def pretraining_key(pool: np.ndarray, settings: Any) -> str:
    """The digest that names a pre-trained encoder: its crops and its settings.

    Parameters
    ----------
    pool : ndarray
        The unlabelled crops pre-trained on.
    settings : JSON-serialisable
        Everything else the weights depend on (architecture, steps, seed).

    Returns
    -------
    str
        A SHA-256 hex digest.
    """
    digest = hashlib.sha256(np.ascontiguousarray(pool).tobytes())
    digest.update(json.dumps(settings).encode())
    return digest.hexdigest()


class PretrainedEncoders:
    """Pre-trained encoder weights by :func:`pretraining_key`, in memory and optionally files.

    Parameters
    ----------
    size : int
        Encoders kept in memory; the oldest is dropped first.

    Notes
    -----
    A cache is shared, never copied: ``copy.deepcopy`` (and so ``sklearn.base.clone``)
    returns the same object.
    """

    def __init__(self, size: int = 4) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidInputError(f"size must be an integer >= 1; got {size!r}.")
        self.size = size
        self._states: dict[str, State] = {}

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, key: object) -> bool:
        return key in self._states

    def __repr__(self) -> str:
        return f"PretrainedEncoders(size={self.size}) holding {len(self)}"

    def __deepcopy__(self, memo: dict[int, Any]) -> PretrainedEncoders:
        return self

    def fetch(
        self,
        key: str,
        train: Callable[[], State],
        *,
        folder: str | os.PathLike[str] | None = None,
    ) -> State:
        """Return the weights stored under ``key``, training (and storing) them if absent.

        Parameters
        ----------
        key : str
            From :func:`pretraining_key`.
        train : callable
            ``train() -> state dict``: pre-trains an encoder when the weights are not kept.
        folder : path, optional
            Also look for, and keep, the weights as files there (safetensors), for other
            processes and later runs; a damaged file is retrained and replaced.

        Returns
        -------
        dict of Tensor
        """
        from blobsift.nn.serialize import load_model_file, save_model_file

        if key in self._states:
            return self._states[key]
        path = None if folder is None else Path(folder) / key[:_FILE_KEY_LENGTH]
        state = None
        if path is not None:
            with contextlib.suppress(ModelFileError):
                tensors, config = load_model_file(path)
                state = tensors if config.get("digest") == key else None
        if state is None:
            state = train()
            if path is not None:
                save_model_file(path, state, {"kind": _KIND, "digest": key})
        while len(self._states) >= self.size:
            self._states.pop(next(iter(self._states)))
        self._states[key] = state
        return state
