"""Model files: safetensors weights beside a JSON description. Loading executes no code.

A model saved at ``PATH`` is the pair ``PATH.safetensors`` (tensors only) and
``PATH.json`` (format marker, version, architecture, threshold, metrics, ...). Both are
written to temporary files first and moved into place, so a crash mid-write never leaves
a half-written model under the final name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from blobsift._atomic import atomic_write
from blobsift.exceptions import ModelFileError

__all__ = ["FORMAT", "FORMAT_VERSION", "load_model_file", "model_paths", "save_model_file"]

FORMAT = "blobsift-model"
FORMAT_VERSION = 1


def model_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Return the (weights, config) paths of a model saved at ``path``.

    ``path`` may name either file or their common stem.
    """
    path = Path(path)
    if path.suffix in {".safetensors", ".json"}:
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def save_model_file(
    path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], config: dict[str, Any]
) -> tuple[Path, Path]:
    """Write ``tensors`` and the JSON-able ``config`` as a model file pair.

    Returns
    -------
    (Path, Path)
        The weights and config paths written.
    """
    weights_path, config_path = model_paths(path)
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, **config}
    text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False)
    contiguous = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
    atomic_write(
        weights_path, lambda tmp: save_file(contiguous, str(tmp)), what="the model weights"
    )
    atomic_write(
        config_path, lambda tmp: tmp.write_text(text, encoding="utf-8"), what="the model file"
    )
    return weights_path, config_path


def load_model_file(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a model file pair written by :func:`save_model_file`.

    Raises
    ------
    ModelFileError
        If a file is missing, is not valid JSON/safetensors, is not a blobsift model, or was
        written by a newer format version.
    """
    weights_path, config_path = model_paths(path)
    for file in (config_path, weights_path):
        if not file.is_file():
            raise ModelFileError(f"model file {file} does not exist.")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(
            f"{config_path} is not a valid JSON model description: {error}"
        ) from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{config_path} is not a blobsift model file (no format {FORMAT!r}).")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{config_path} has model format version {version!r}; this blobsift reads up to "
            f"{FORMAT_VERSION}. Upgrade blobsift to load it."
        )
    try:
        tensors = load_file(weights_path)
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"{weights_path} is not a valid safetensors file: {error}") from None
    return tensors, config
