"""The user's alternative for ``throughput.py``: sep detection + one specification CNN.

``sep`` (Source Extractor as a library) estimates the background and extracts sources; the
crops are cut by blobsift's :func:`~blobsift.crops.extract_crops`, normalised by
:func:`~blobsift.crops.normalise_crops`, and scored by the specification's
``SignalClassifier`` (78 MFLOP per 64 x 64 crop) exported to ONNX and run by onnxruntime, as
in ``benchmarks/inference.py``. ``sep`` is optional (the ``bench`` dependency group).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from blobsift.crops import extract_crops, normalise_crops
from blobsift.io import open_image

ROW_NAME = "sep + 1 CNN (78 MFLOP, onnxruntime)"


def sep_available() -> bool:
    """Whether ``sep`` can be imported."""
    try:
        import sep  # noqa: F401
    except ImportError:
        return False
    return True


def _sep_positions(data: np.ndarray, threshold: float) -> np.ndarray:
    """(row, col) of the sources sep extracts at ``threshold`` x the background RMS."""
    import sep

    background = sep.Background(data)
    found = sep.extract(data - background, threshold, err=background.globalrms)
    return np.column_stack([found["y"], found["x"]])


def sep_threshold(data: np.ndarray, target: int) -> float:
    """A sep threshold (in background sigmas) giving about ``target`` sources (bisected)."""
    import sep

    sep.set_extract_pixstack(10**7)
    sep.set_sub_object_limit(10**5)
    low, high = 0.5, 50.0
    for _ in range(14):
        middle = float(np.sqrt(low * high))
        count = len(_sep_positions(data, middle))
        if abs(count - target) <= 0.02 * target:
            return middle
        low, high = (middle, high) if count > target else (low, middle)
    return float(np.sqrt(low * high))


def sep_pipeline(threads: int) -> Callable[[str, float], dict[str, Any]]:
    """The whole path for one image file on ``threads`` onnxruntime threads.

    Returns a function ``(path, threshold) -> dict`` timing read, sep background +
    extraction, cropping, normalising and the CNN together (``seconds``), read + sep
    (``sep``) and crops + CNN (``cnn``), with the ``candidates`` count.
    """
    import time

    from blobsift import SignalClassifier
    from blobsift.nn.onnx import OnnxRunner, export_onnx

    runner = OnnxRunner(export_onnx(SignalClassifier().eval(), 64), threads=threads)

    def run(path: str, threshold: float) -> dict[str, Any]:
        start = time.perf_counter()
        with open_image(path) as image:
            data = np.require(image.read(), np.float32, ["C", "W"])  # sep needs writable
        positions = _sep_positions(data, threshold)
        found = time.perf_counter()
        crops = extract_crops(data, positions)
        scores = runner.run(normalise_crops(crops))
        end = time.perf_counter()
        assert len(scores) == len(positions)
        return {
            "seconds": end - start,
            "sep": found - start,
            "cnn": end - found,
            "candidates": len(positions),
        }

    return run
