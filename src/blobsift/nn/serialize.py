"""Model files: safetensors weights beside a JSON description. Loading executes no code.

A model saved at ``PATH`` is the pair ``PATH.safetensors`` (tensors only) and
``PATH.json`` (format marker, version, architecture, threshold, metrics, ...). Both are
written to temporary files first and moved into place, so a crash mid-write never leaves
a half-written model under the final name.

The pair is one verified unit (format version 2): the JSON's ``integrity`` entry holds
the sha256 of the weights file and of each ONNX graph stored in it, and loading refuses
a file that does not match. Files of format version 1 carry no such record; their stored
ONNX graphs are dropped on load, so their predictions come from the weights (the graph
is exported from them again when first needed).

Reading a file needs no torch with ``load_model_file(path, arrays=True)`` (numpy arrays
instead of tensors): a process that only predicts from the stored graphs
(:func:`blobsift.classify.graph_model.load_predictor`) never loads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from safetensors import SafetensorError

from blobsift._atomic import atomic_write
from blobsift.exceptions import ModelFileError
from blobsift.nn.runtime import ONNX_KEY

if TYPE_CHECKING:
    import torch

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "INTEGRITY_KEY",
    "load_model_file",
    "load_state_exactly",
    "model_paths",
    "save_model_file",
]

FORMAT = "blobsift-model"
FORMAT_VERSION = 2
#: The JSON entry holding the checksums (see the module docstring).
INTEGRITY_KEY = "integrity"
_SHA256 = re.compile(r"[0-9a-f]{64}")


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
    from safetensors.torch import save

    weights_path, config_path = model_paths(path)
    contiguous = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
    data = save(contiguous)
    integrity = {
        "weights_sha256": _sha256(data),
        "graphs_sha256": {
            name: _sha256(tensor.numpy().tobytes())
            for name, tensor in contiguous.items()
            if _is_graph(name)
        },
    }
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **config,
        INTEGRITY_KEY: integrity,
    }
    text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False)
    atomic_write(weights_path, lambda tmp: tmp.write_bytes(data), what="the model weights")
    atomic_write(
        config_path, lambda tmp: tmp.write_text(text, encoding="utf-8"), what="the model file"
    )
    return weights_path, config_path


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_graph(name: str) -> bool:
    return name == ONNX_KEY or name.endswith("." + ONNX_KEY)


@overload
def load_model_file(
    path: str | os.PathLike[str], *, arrays: Literal[False] = False
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]: ...
@overload
def load_model_file(
    path: str | os.PathLike[str], *, arrays: Literal[True]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]: ...
def load_model_file(
    path: str | os.PathLike[str], *, arrays: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a model file pair written by :func:`save_model_file`.

    Parameters
    ----------
    path : path-like
        Either file of the pair, or their common stem.
    arrays : bool
        Return numpy arrays instead of torch tensors; torch is then not imported.

    Returns
    -------
    tensors : dict
        The tensors, or numpy arrays with ``arrays`` (without ONNX graphs for a format-1
        file, whose graphs are unverified).
    config : dict
        The JSON description, ``integrity`` entry removed.

    Raises
    ------
    ModelFileError
        If a file is missing, is not valid JSON/safetensors, is not a blobsift model, was
        written by a newer format version, or does not match its recorded checksums.
    """
    weights_path, config_path = model_paths(path)
    for file in (config_path, weights_path):
        if not file.is_file():
            raise ModelFileError(f"model file {file} does not exist.")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(
            f"{config_path} is not a valid JSON model description: {error}"
        ) from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{config_path} is not a blobsift model file (no format {FORMAT!r}).")
    version = config.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(
            f"{config_path}: format_version must be a positive integer; got {version!r}."
        )
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{config_path} has model format version {version!r}; this blobsift reads up to "
            f"{FORMAT_VERSION}. Upgrade blobsift to load it."
        )
    try:
        data = weights_path.read_bytes()
    except OSError as error:
        raise ModelFileError(f"{weights_path} cannot be read: {error}") from None
    integrity = config.pop(INTEGRITY_KEY, None)
    if version >= 2:
        graphs = _check_integrity(integrity, config_path)
        if _sha256(data) != integrity["weights_sha256"]:
            raise ModelFileError(
                f"{weights_path} does not match the sha256 recorded in {config_path.name}: "
                "the weights were changed or replaced after saving. Restore both files as "
                "saved, or retrain the model."
            )
    try:
        tensors: dict[str, Any] = _read_tensors(data, arrays)
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"{weights_path} is not a valid safetensors file: {error}") from None
    stored = {name for name in tensors if _is_graph(name)}
    if version < 2:
        return {k: v for k, v in tensors.items() if k not in stored}, config
    if stored != set(graphs):
        raise ModelFileError(
            f"{weights_path} holds ONNX graphs {sorted(stored)} but {config_path.name} "
            f"records {sorted(graphs)}. Restore both files as saved, or retrain the model."
        )
    for name in stored:
        if _sha256(np.asarray(tensors[name]).tobytes()) != graphs[name]:
            raise ModelFileError(
                f"the ONNX graph {name!r} in {weights_path} does not match its sha256 in "
                f"{config_path.name}. Restore both files as saved, or retrain the model."
            )
    return tensors, config


def _read_tensors(data: bytes, arrays: bool) -> dict[str, Any]:
    """The tensors of safetensors ``data``: numpy arrays with ``arrays``, else torch's."""
    if arrays:
        from safetensors.numpy import load as load_arrays

        return load_arrays(data)
    from safetensors.torch import load

    return load(data)


def _check_integrity(integrity: Any, config_path: Path) -> dict[str, str]:
    """Return the recorded graph checksums after checking the ``integrity`` entry's form."""
    graphs = integrity.get("graphs_sha256") if isinstance(integrity, dict) else None
    if (
        not isinstance(integrity, dict)
        or not _SHA256.fullmatch(str(integrity.get("weights_sha256")))
        or not isinstance(graphs, dict)
        or not all(isinstance(v, str) and _SHA256.fullmatch(v) for v in graphs.values())
    ):
        raise ModelFileError(
            f"{config_path}: {INTEGRITY_KEY} must hold weights_sha256 and graphs_sha256 "
            f"(sha256 hex digests); got {integrity!r}. The file is damaged or was edited; "
            "restore it as saved, or retrain the model."
        )
    return graphs


def load_state_exactly(
    module: torch.nn.Module,
    state: dict[str, torch.Tensor],
    prefix: str,
    *,
    may_lack: Collection[str] = (),
) -> None:
    """Load ``state`` into ``module``; its names and shapes must match exactly, values finite.

    Parameters
    ----------
    module : torch.nn.Module
    state : dict
        Tensors by parameter/buffer name.
    prefix : str
        How the tensors are named in the file (for messages: ``prefix.*``).
    may_lack : collection of str
        Names ``state`` may lack (e.g. the last layer of a transferable state).

    Raises
    ------
    ModelFileError
        If a name is missing or unexpected, or a value is NaN/inf.
    RuntimeError
        If a shape differs (``load`` reports it as a ModelFileError).
    """
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [name for name in missing if name not in may_lack]
    if missing or unexpected:
        raise ModelFileError(
            f"the {prefix}.* weights do not match the architecture (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]})."
        )
    import torch

    bad = [name for name, value in state.items() if not torch.isfinite(value).all()]
    if bad:
        raise ModelFileError(f"the {prefix}.* weights hold NaN or inf: {bad[:3]}.")
