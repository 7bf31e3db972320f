"""The work on one image, the same here and on a Dask worker.

:class:`ScoringPlan` says how every image of a run is scored (what to detect, tiles,
threads); :func:`predict_one` opens the image lazily and hands it to the one scoring step,
:func:`blobsift.scoring.score_image` (which reads it whole or tile by tile); a bad image
becomes a failed journal record, never an exception. :func:`model_bytes` gives the bytes
of a model file, what travels to a cluster.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blobsift._validation import check_integer
from blobsift.batch._journal import collect_warnings, journal_record
from blobsift.detect import DetectSettings

__all__ = ["ScoringPlan", "model_bytes", "predict_one"]


@dataclass(frozen=True)
class ScoringPlan:
    """How each image of a run is scored; what travels with every task.

    Parameters
    ----------
    settings : DetectSettings
        What to detect.
    tile_size : int, optional
        Tile side; None reads images up to ``WHOLE_IMAGE_PIXELS`` whole.
    n_threads : int, optional
        Detector threads per image (None: the run decides).
    backend : str
        The detector's filter implementation.
    detect_channel : int, optional
        Images are stacks of aligned channels (:func:`blobsift.io.open_stack`), detected
        on this channel and cut from all of them; None (default): 2D images.
    """

    settings: DetectSettings = field(default_factory=DetectSettings)
    tile_size: int | None = None
    n_threads: int | None = None
    backend: str = "auto"
    detect_channel: int | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any], tile_size: int | None = None) -> ScoringPlan:
        """A plan from keyword options: detection settings and the run's own options.

        The run's own are ``n_threads``, ``backend`` and ``detect_channel``.

        Raises
        ------
        InvalidInputError
            If a name is neither a detection setting nor ``n_threads`` / ``backend`` /
            ``detect_channel``, or a value is out of range.
        """
        options = dict(options)
        n_threads = options.pop("n_threads", None)
        backend = options.pop("backend", "auto")
        channel = options.pop("detect_channel", None)
        if channel is not None:
            channel = check_integer(channel, name="detect_channel", low=0)
        settings = DetectSettings.from_mapping(options)
        return cls(settings, tile_size, n_threads, backend, channel)


def _score_file(path: str, model: Any, plan: ScoringPlan, threads: int) -> Any:
    """Read, detect, crop and classify one image file; return its prediction table."""
    from blobsift.io import open_image, open_stack
    from blobsift.scoring import score_image

    stacked = plan.detect_channel is not None
    with open_stack(path) if stacked else open_image(path) as image:
        return score_image(
            image,
            model,
            plan.settings,
            name=path,
            tile_size=plan.tile_size,
            n_threads=threads,
            backend=plan.backend,
            detect_channel=plan.detect_channel,
        )


def predict_one(
    path: str, model: Any, plan: ScoringPlan, threads: int
) -> tuple[dict[str, Any], Any]:
    """Score one image file; return (journal record, table or None). Never raises for it.

    Parameters
    ----------
    path : str
        The image file.
    model : Sifter
        A fitted classifier.
    plan : ScoringPlan
        What to detect, and how.
    threads : int
        Detector threads for this image.
    """
    start = time.perf_counter()
    frame, error = None, None
    with collect_warnings() as caught:
        try:
            frame = _score_file(path, model, plan, threads)
        except Exception as exc:  # one bad image must not stop the run: record why
            error = f"{type(exc).__name__}: {exc}"
    return journal_record(path, frame, error, time.perf_counter() - start, caught), frame


def model_bytes(model: Any) -> tuple[bytes, bytes]:
    """The (weights, config) bytes of a model file, from a path or a fitted Sifter."""
    from blobsift.nn.serialize import model_paths

    if isinstance(model, (str, os.PathLike)):
        weights, config = model_paths(model)
        return weights.read_bytes(), config.read_bytes()
    with tempfile.TemporaryDirectory(prefix="blobsift-model-") as folder:
        weights, config = model.save(Path(folder) / "model")
        return weights.read_bytes(), config.read_bytes()
