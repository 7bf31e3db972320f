"""Comparing embeddings with a gallery of labelled ones: neighbours and class scores."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from blobsift._validation import check_integer
from blobsift.exceptions import InvalidInputError, ModelFileError

__all__ = ["checked_gallery", "gallery_scores", "leave_one_out_scores", "nearest_neighbours"]

_UNIT_NORM_TOLERANCE = 1e-3  # gallery embeddings are L2-normalised by the encoder


def _check_similarity(similarity: np.ndarray, gallery_labels: np.ndarray) -> None:
    if similarity.ndim != 2 or similarity.shape[1] != gallery_labels.shape[0]:
        raise InvalidInputError(
            f"similarity must have shape (n, {gallery_labels.shape[0]}) for a gallery of "
            f"{gallery_labels.shape[0]}; got {similarity.shape}."
        )


def gallery_scores(
    similarity: np.ndarray,
    gallery_labels: np.ndarray,
    *,
    k: int = 5,
    temperature: float = 0.1,
) -> np.ndarray:
    """Probability of signal from the similarities to a labelled gallery.

    For each class the ``k`` most similar gallery members (or as many as the smaller class
    has) give a kernel density ``mean(exp((s - 1) / temperature))``; the score is the
    signal density over the sum of both. Taking the same number of neighbours from each
    class makes the score blind to the class ratio of the gallery: with 3 signal and 30
    noise labels a plain majority vote of the nearest neighbours would almost never say
    signal.

    Parameters
    ----------
    similarity : ndarray of shape (n, g)
        Cosine similarities of n queries to the g gallery embeddings.
    gallery_labels : ndarray of shape (g,)
        0/1 labels of the gallery, both classes present.
    k : int
        Neighbours per class.
    temperature : float
        Kernel width on the similarity scale.

    Returns
    -------
    ndarray of shape (n,)
        Scores in (0, 1); 0.5 where both classes are equally close.
    """
    gallery_labels = np.asarray(gallery_labels)
    similarity = np.asarray(similarity, dtype=np.float64)
    _check_similarity(similarity, gallery_labels)
    members = [similarity[:, gallery_labels == value] for value in (0, 1)]
    for value, part in enumerate(members):
        if part.shape[1] == 0:
            raise InvalidInputError(f"the gallery has no crops of class {value}.")
    count = min(k, *(part.shape[1] for part in members))
    densities = []
    for part in members:
        top = -np.partition(-part, count - 1, axis=1)[:, :count]
        densities.append(np.exp((top - 1.0) / temperature).mean(axis=1))
    noise, signal = densities
    return signal / (signal + noise)


def nearest_neighbours(similarity: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar gallery members of each query, most similar first.

    Parameters
    ----------
    similarity : ndarray of shape (n, g)
    k : int
        Neighbours to return; at most g.

    Returns
    -------
    similarities : ndarray of shape (n, k)
    indices : ndarray of shape (n, k)
        Gallery indices.
    """
    similarity = np.asarray(similarity)
    if similarity.ndim != 2:
        raise InvalidInputError(f"similarity must be 2D; got shape {similarity.shape}.")
    gallery = similarity.shape[1]
    check_integer(k, name="k", low=1)
    if k > gallery:
        raise InvalidInputError(f"k must lie in [1, {gallery}] (the gallery size); got {k}.")
    part = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(similarity, part, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    indices = np.take_along_axis(part, order, axis=1)
    return np.take_along_axis(similarity, indices, axis=1), indices


def leave_one_out_scores(
    embeddings: np.ndarray, labels: np.ndarray, *, k: int = 5, temperature: float = 0.1
) -> np.ndarray:
    """Score every gallery member against the rest of the gallery (:func:`gallery_scores`).

    Parameters
    ----------
    embeddings : ndarray of shape (g, d)
        Unit-length gallery embeddings.
    labels : ndarray of shape (g,)
        Their 0/1 labels; each class needs at least 2 members.
    k, temperature
        As for :func:`gallery_scores`.

    Returns
    -------
    ndarray of shape (g,)
    """
    labels = np.asarray(labels)
    similarity = np.asarray(embeddings, dtype=np.float64) @ np.asarray(embeddings).T
    rest = np.ones(len(labels), dtype=bool)
    scores = np.empty(len(labels))
    for i in range(len(labels)):
        rest[i] = False
        scores[i] = gallery_scores(
            similarity[i : i + 1, rest], labels[rest], k=k, temperature=temperature
        )[0]
        rest[i] = True
    return scores


def checked_gallery(
    tensors: Mapping[str, Any], embedding_dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """The gallery stored in a model file, checked.

    Parameters
    ----------
    tensors : mapping
        The file's tensors; ``gallery_embeddings`` (g, embedding_dim) and
        ``gallery_labels`` (g,) are read (torch tensors or numpy arrays).
    embedding_dim : int

    Returns
    -------
    embeddings : ndarray of shape (g, embedding_dim)
        Finite and of unit length (as the encoder makes them).
    labels : ndarray of shape (g,), int64
        0/1, both classes present.

    Raises
    ------
    ModelFileError
        Naming what is missing or wrong.
    """
    for name in ("gallery_embeddings", "gallery_labels"):
        if name not in tensors:
            raise ModelFileError(f"the tensor {name} is missing.")
    embeddings = np.asarray(tensors["gallery_embeddings"])
    labels = np.asarray(tensors["gallery_labels"])
    if embeddings.dtype.kind != "f" or embeddings.shape != (len(labels), embedding_dim):
        raise ModelFileError(
            f"gallery_embeddings must be floats of shape ({len(labels)}, {embedding_dim}) for "
            f"{len(labels)} labels; got {embeddings.dtype} {embeddings.shape}."
        )
    if not np.isfinite(embeddings).all():
        raise ModelFileError("gallery_embeddings hold NaN or inf.")
    norms = np.linalg.norm(embeddings.astype(np.float64), axis=1)
    if not np.allclose(norms, 1.0, atol=_UNIT_NORM_TOLERANCE):
        raise ModelFileError(
            "gallery_embeddings must have unit length, as the encoder makes them; got lengths "
            f"{norms.min():.3g} to {norms.max():.3g}."
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or set(np.unique(labels)) != {0, 1}:
        raise ModelFileError(
            "gallery_labels must be a vector of 0/1 integers holding both classes; got "
            f"{labels.dtype} {labels.shape} with values {np.unique(labels)[:5].tolist()}."
        )
    return embeddings, labels.astype(np.int64)
