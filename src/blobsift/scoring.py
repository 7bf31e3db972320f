"""The one read -> detect -> crop -> classify step, for one image.

Everything that scores candidates goes through here: batch prediction (here or on a Dask
cluster), :meth:`blobsift.project.Project.predict`, the report's detection figure and the
labelling app's queue. An image that fits in memory is cut and classified whole; a larger
one (or a lazy array) tile by tile, so memory stays bounded. A stack of aligned channels
(C, H, W) is detected on one channel (``detect_channel``) and cut from all of them.

The model is anything with ``predict_proba(crops) -> (n, 2)`` and ``threshold_``; a model
with a true ``intensity_context_`` also gets ``noise=``, the image's noise level
(:func:`~blobsift.detect.estimate_noise`), for each crop.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from blobsift._validation import CROP_SIZE, check_integer
from blobsift.crops import extract_crops
from blobsift.detect import DEFAULT_TILE, DetectSettings, detect_blobs, estimate_noise
from blobsift.exceptions import InvalidInputError
from blobsift.types import Candidates

__all__ = [
    "PREDICTION_COLUMNS",
    "WHOLE_IMAGE_PIXELS",
    "image_noise",
    "prediction_table",
    "score_candidates",
    "score_image",
]

#: The columns of a prediction table, in order.
PREDICTION_COLUMNS = ("image", "row", "col", "sigma", "score", "probability", "decision")
#: Images up to this many pixels are read, detected and cut whole; larger ones by tiles.
WHOLE_IMAGE_PIXELS = 8192 * 8192
# Crops cut and classified at once: 16 MB of float32 64 x 64 crops, plus the model's window
# and normalisation temporaries (each a few times that). A multiple of onnxruntime's batch
# (256), so that the batches the network sees are the same as for one call on every crop.
_CLASSIFY_CHUNK = 1024


def score_candidates(
    image: Any, candidates: Any, model: Any, *, tile_size: int | None = None
) -> np.ndarray:
    """The model's signal probability for each candidate of one image.

    Parameters
    ----------
    image : (H, W) or (C, H, W) array, or lazy array
        An in-memory array is cut whole (``tile_size`` None); a lazy one (with ``shape``
        and 2D slicing, e.g. :func:`blobsift.io.open_image`, or a stack sliced
        ``[:, rows, cols]``, e.g. :func:`blobsift.io.open_stack`) or any image with
        ``tile_size`` set is cut tile by tile, each tile read once with a margin so that
        every crop is the one :func:`~blobsift.crops.extract_crops` cuts from the whole.
        A stack of channels gives the model (n, C, 64, 64) crops.
    candidates : Candidates, DataFrame or (n, 2) array
        Positions (``row``, ``col``).
    model : estimator
        ``predict_proba(crops) -> (n, 2)``; ``predict_proba(crops, noise=...)`` if its
        ``intensity_context_`` is true: the noise level of the whole image
        (:func:`~blobsift.detect.estimate_noise`, from the same pixels whole or tiled).
    tile_size : int, optional
        Tile side in pixels; default: whole if the image is in memory, else 2048.

    Returns
    -------
    probability : (n,) float64
    """
    rows, cols = _positions(candidates)
    probability = np.empty(rows.size, dtype=np.float64)
    if rows.size == 0:
        return probability
    level = image_noise(image) if getattr(model, "intensity_context_", False) else None

    def classify(crops: np.ndarray) -> np.ndarray:
        if level is None:
            scores: np.ndarray = model.predict_proba(crops)[:, 1]
        else:
            noise = np.broadcast_to(level, (len(crops), *np.shape(level)))
            scores = model.predict_proba(crops, noise=noise)[:, 1]
        return scores

    if tile_size is None and isinstance(image, np.ndarray):
        for start in range(0, rows.size, _CLASSIFY_CHUNK):
            chunk = slice(start, start + _CLASSIFY_CHUNK)
            crops = extract_crops(image, np.column_stack([rows[chunk], cols[chunk]]))
            probability[chunk] = classify(crops)
        return probability
    size = DEFAULT_TILE if tile_size is None else tile_size
    height, width = image.shape[-2:]
    pixel_rows = np.floor(rows + 0.5).astype(np.int64)
    pixel_cols = np.floor(cols + 0.5).astype(np.int64)
    n_across = -(-width // size)
    owner = (np.clip(pixel_rows, 0, height - 1) // size) * n_across + (
        np.clip(pixel_cols, 0, width - 1) // size
    )
    # A window reaching past the image is mirrored at the image edge, as extract_crops
    # does on the whole image: the margin keeps every other window inside the region.
    margin = CROP_SIZE // 2 + 1
    order = np.argsort(owner, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(owner[order]) != 0])
    for members in np.split(order, starts[1:]):
        tile_row, tile_col = divmod(int(owner[members[0]]), n_across)
        r0 = max(tile_row * size - margin, 0)
        r1 = min((tile_row + 1) * size + margin, height)
        c0 = max(tile_col * size - margin, 0)
        c1 = min((tile_col + 1) * size + margin, width)
        stacked = len(image.shape) == 3
        region = np.asarray(image[:, r0:r1, c0:c1] if stacked else image[r0:r1, c0:c1])
        for start in range(0, members.size, _CLASSIFY_CHUNK):
            part = members[start : start + _CLASSIFY_CHUNK]
            centres = np.column_stack([pixel_rows[part] - r0, pixel_cols[part] - c0])
            crops = extract_crops(region, centres.astype(np.float64))
            probability[part] = classify(crops)
        del region
    return probability


def image_noise(image: Any) -> float | np.ndarray:
    """The pixel noise of an image, or of each channel of a (C, H, W) stack.

    The second value of :func:`~blobsift.detect.estimate_noise`, which reads a lazy image
    only in a fixed grid of patches, so the whole and the tiled paths get the same level.

    Returns
    -------
    float, or (C,) float64 array for a stack
    """
    if len(image.shape) == 3:
        return np.array([estimate_noise(image[channel])[1] for channel in range(image.shape[0])])
    return estimate_noise(image)[1]


def prediction_table(name: str, candidates: Any, probability: np.ndarray, threshold: float) -> Any:
    """The prediction table of one image: :data:`PREDICTION_COLUMNS`, one row per candidate.

    ``decision`` is 1 where ``probability >= threshold``.
    """
    import pandas as pd

    columns = {name: _column(candidates, name) for name in ("row", "col", "sigma", "score")}
    return pd.DataFrame(
        {
            "image": name,
            **columns,
            "probability": probability,
            "decision": (probability >= threshold).astype(np.int64),
        },
        columns=list(PREDICTION_COLUMNS),
    )


def score_image(
    image: Any,
    model: Any,
    settings: DetectSettings | None = None,
    *,
    name: str = "",
    tile_size: int | None = None,
    n_threads: int | None = None,
    backend: str = "auto",
    detect_channel: int | None = None,
) -> Any:
    """Detect the candidates of one image and score them: the whole step.

    Parameters
    ----------
    image : (H, W) or (C, H, W) array or lazy array
        An in-memory image, or a lazy one (:func:`blobsift.io.open_image`, or
        :func:`blobsift.io.open_stack` for a stack of channels). A lazy image of up to
        :data:`WHOLE_IMAGE_PIXELS` pixels is read whole when ``tile_size`` is None; a
        larger one is read tile by tile (memory bounded by the tile).
    model : estimator
        ``predict_proba(crops) -> (n, 2)`` and ``threshold_``.
    settings : DetectSettings, optional
        What to detect (default ``DetectSettings()``).
    name : str
        The ``image`` column of the table.
    tile_size : int, optional
        Detect and cut by tiles of this side.
    n_threads : int, optional
        Detector threads (default: the CPUs available).
    backend : {"auto", "opencv", "scipy"}
        The detector's filter implementation (see :func:`~blobsift.detect.detect_blobs`).
    detect_channel : int, optional
        For a stack (C, H, W): the channel candidates are detected on (e.g. the
        difference image of a science/reference/difference triplet); the crops are cut
        from every channel. Required for a stack, refused for a 2D image.

    Returns
    -------
    pandas.DataFrame
        :data:`PREDICTION_COLUMNS`, one row per candidate, in the detector's order.

    Raises
    ------
    InvalidInputError
        If ``detect_channel`` is missing for a stack, given for a 2D image, or out of
        range.
    """
    settings = settings or DetectSettings()
    height, width = image.shape[-2:]
    channel = _detection_channel(image.shape, detect_channel)
    if tile_size is None and height * width <= WHOLE_IMAGE_PIXELS:
        pixels = _read_whole(image)
        plane = pixels if channel is None else pixels[channel]
        found = detect_blobs(plane, settings, n_threads=n_threads, backend=backend)
        probability = score_candidates(pixels, found, model)
    else:
        size = DEFAULT_TILE if tile_size is None else tile_size
        plane = image if channel is None else image[channel]
        found = detect_blobs(plane, settings, tile_size=size, n_threads=n_threads, backend=backend)
        probability = score_candidates(image, found, model, tile_size=size)
    return prediction_table(name, found, probability, float(model.threshold_))


def _detection_channel(shape: tuple[int, ...], detect_channel: Any) -> int | None:
    """The channel to detect on: None for a 2D image, ``detect_channel`` of a stack."""
    if len(shape) == 2:
        if detect_channel is not None:
            raise InvalidInputError(
                f"detect_channel={detect_channel!r} needs a stack of channels (C, H, W); the "
                f"image is 2D {tuple(shape)}. Leave detect_channel=None, or read the image "
                "with read_stack / open_stack."
            )
        return None
    count = int(shape[0])
    if detect_channel is None:
        raise InvalidInputError(
            f"the image is a stack of {count} channels {tuple(shape)}; pass "
            f"detect_channel=0..{count - 1} to say which one candidates are detected on."
        )
    channel = check_integer(detect_channel, name="detect_channel", low=0)
    if channel >= count:
        raise InvalidInputError(
            f"detect_channel={channel} is out of range: the image has {count} channels "
            f"{tuple(shape)}; choose 0..{count - 1}."
        )
    return channel


def _read_whole(image: Any) -> np.ndarray:
    """The pixels of an in-memory image, an opened file (``read()``) or a lazy array."""
    if isinstance(image, np.ndarray):
        return image
    if hasattr(image, "read"):
        pixels: np.ndarray = image.read()
        return pixels
    return np.asarray(image[:, :, :] if len(image.shape) == 3 else image[:, :])


def _column(candidates: Any, name: str) -> np.ndarray:
    """A column of a ``Candidates`` table or a DataFrame, as float64."""
    values = getattr(candidates, name) if isinstance(candidates, Candidates) else candidates[name]
    return np.asarray(values, dtype=np.float64)


def _positions(candidates: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(candidates, Candidates) or hasattr(candidates, "columns"):
        return _column(candidates, "row"), _column(candidates, "col")
    positions = np.asarray(candidates, dtype=np.float64).reshape(-1, 2)
    return positions[:, 0], positions[:, 1]
