"""Running a list of images: checks first, then here or on a cluster, into a sink.

:func:`predict_images` is the public entry point; :func:`check_run` and
:func:`run_images` are the two halves that :meth:`blobsift.project.Project.predict` uses for
images outside a project (it has its own sink and ordering).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from blobsift.batch._sink import MemorySink, PredictionSink
from blobsift.batch._work import ScoringPlan
from blobsift.detect import MIN_TILE
from blobsift.exceptions import InvalidInputError
from blobsift.types import Progress, ProgressEvent

__all__ = ["check_run", "predict_images", "run_images"]

Report = Callable[[dict[str, Any], Any], None]


def _check_scheduler(scheduler: Any) -> None:
    """Refuse a scheduler of the wrong kind before any output is touched."""
    if scheduler is None:
        return
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        raise InvalidInputError(
            "scheduler= needs dask.distributed; install it with `pip install blobsift[dask]`."
        )
    if not (
        isinstance(scheduler, str)
        or hasattr(scheduler, "scheduler_address")  # a cluster object
        or hasattr(scheduler, "submit")  # a Client
    ):
        raise InvalidInputError(
            "scheduler must be None (run here), a scheduler address such as "
            "'tcp://10.0.0.5:8786', a distributed.Client or a cluster object; got "
            f"{type(scheduler).__name__}."
        )


def _check_tile_size(tile_size: Any) -> int | None:
    if tile_size is None:
        return None
    if isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)):
        raise InvalidInputError(
            f"tile_size must be an integer >= {MIN_TILE} or None; got {tile_size!r}."
        )
    if tile_size < MIN_TILE:
        raise InvalidInputError(f"tile_size must be at least {MIN_TILE} pixels; got {tile_size}.")
    return int(tile_size)


def check_run(
    model: Any,
    scheduler: Any,
    detect_settings: Mapping[str, Any],
    tile_size: int | None = None,
) -> tuple[Any, ScoringPlan]:
    """Check a run's arguments before any output is touched.

    Parameters
    ----------
    model : Sifter or path-like
        A fitted classifier, or the path of a saved one (loaded for prediction only, by
        :func:`~blobsift.classify.graph_model.load_predictor`: from its exported graph,
        without torch, where the file carries one).
    scheduler : None, str, distributed.Client or cluster
        Where to run (see :func:`predict_images`).
    detect_settings : mapping
        Detection settings by name, and optionally ``n_threads``, ``backend`` and
        ``detect_channel``.
    tile_size : int, optional
        Tile side (at least :data:`blobsift.detect.MIN_TILE`).

    Returns
    -------
    model : CropScorer
        The model: ``model`` itself, or the one loaded from its file.
    plan : ScoringPlan
        How each image is to be scored.

    Raises
    ------
    InvalidInputError
        If a setting is unknown or out of range, or the scheduler, tile size or model
        is not valid (a model of crops of C > 1 channels needs ``detect_channel``).
    """
    plan = ScoringPlan.from_options(detect_settings, _check_tile_size(tile_size))
    _check_scheduler(scheduler)
    local_model = model
    if isinstance(model, (str, os.PathLike)):
        from blobsift.classify.graph_model import load_predictor

        local_model = load_predictor(model)
    if not hasattr(local_model, "predict_proba") or not hasattr(local_model, "threshold_"):
        raise InvalidInputError(
            f"model must be a fitted Sifter (or the path of a saved one); got "
            f"{type(model).__name__}."
        )
    channels = int(getattr(local_model, "n_channels_", 1))
    if channels != 1 and plan.detect_channel is None:
        raise InvalidInputError(
            f"the model was trained on crops of {channels} channels, so its images are stacks "
            f"of {channels} aligned channels: pass detect_channel=<the channel to detect on> "
            "(on the command line, --detect-channel)."
        )
    return local_model, plan


def run_images(
    todo: list[str],
    model: Any,
    plan: ScoringPlan,
    report: Report,
    *,
    scheduler: Any = None,
    source: Any = None,
    progress: Progress | None = None,
    total: int | None = None,
    done: int = 0,
) -> None:
    """Score each image of ``todo`` here or on a cluster; ``report(record, frame)`` for each.

    Parameters
    ----------
    todo : list of str
        The image files.
    model : Sifter
        The loaded model (from :func:`check_run`).
    plan : ScoringPlan
        How to score (from :func:`check_run`).
    report : callable
        ``report(journal_record, table_or_None)``, in this thread, as each image finishes.
    scheduler : optional
        None runs here, on every core; otherwise a Dask scheduler (see
        :func:`predict_images`).
    source : Sifter or path-like, optional
        What travels to the cluster: the model file, or by default the model itself.
    progress : callable, optional
        On a cluster, first called with the dashboard link (``details["dashboard"]``).
    total, done : int
        Images in the whole run, and done before ``todo`` (for that first event).
    """
    if scheduler is None:
        from blobsift.batch._local import run_here

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        run_here(todo, model, plan, cores, report)
        return
    from blobsift.batch._dask import run_on_cluster

    plan = replace(plan, n_threads=int(plan.n_threads or 1))
    total = len(todo) + done if total is None else total
    run_on_cluster(
        scheduler, todo, model if source is None else source, plan, report, progress, total, done
    )


def predict_images(
    paths: Iterable[str | os.PathLike[str]],
    model: Any,
    scheduler: Any = None,
    *,
    output: str | os.PathLike[str] | None = None,
    resume: bool = True,
    tile_size: int | None = None,
    progress: Progress | None = None,
    **detect_settings: Any,
) -> Any:
    """Detect and classify the candidates of each image file.

    Parameters
    ----------
    paths : iterable of path-like
        Image files (any format :func:`blobsift.read_image` reads).
    model : Sifter or path-like
        A fitted classifier, or the path of a saved :class:`~blobsift.Sifter`.
    scheduler : None, str, distributed.Client or cluster
        None (default): run in this process, with detection and inference on every core.
        Otherwise a Dask ``distributed`` scheduler address (``"tcp://host:8786"``), a
        ``Client`` or a cluster object (``LocalCluster``, a dask-jobqueue or Kubernetes
        cluster): each image is one task; the model is sent once to each worker. On a
        worker each task uses one core unless ``n_threads`` is given.
    output : path-like, optional
        Write the rows to this CSV file, or to a folder of Parquet parts for a path ending
        in ``.parquet``: each finished image's rows are appended to ``OUTPUT.partial``,
        renamed to ``OUTPUT`` when the run completes (the final name is whole or absent).
        The journal ``OUTPUT.status.jsonl`` beside it records each finished image
        (:data:`STATUS_COLUMNS`: status, candidates, error, seconds, host, warnings).
    resume : bool
        With ``output``: skip the images the journal records as done (failed ones are
        tried again). False starts the output afresh.
    tile_size : int, optional
        Process images in tiles of this side (pixels), reading only one tile (plus a halo)
        at a time. Default: images above :data:`WHOLE_IMAGE_PIXELS` pixels in tiles of
        2048, smaller ones whole. The result does not depend on it.
    progress : callable, optional
        Called with a :class:`~blobsift.types.ProgressEvent` of stage ``"predict"`` after
        each image (``done``, ``total``, ``item`` the image, ``details["status"]``); on a
        cluster first with ``details["dashboard"]``, the dashboard link.
    **detect_settings
        :class:`~blobsift.detect.DetectSettings` by name (``threshold``, ``sigma_min``,
        ...), ``n_threads`` / ``backend`` of :func:`blobsift.detect_blobs`, and
        ``detect_channel``: the images are stacks of aligned channels
        (:func:`blobsift.io.open_stack`), detected on this channel and cut from every
        channel (for a model trained on crops of C channels).

    Returns
    -------
    pandas.DataFrame
        Columns ``image`` (the path as given), ``row``, ``col``, ``sigma``, ``score``,
        ``probability`` (of signal) and ``decision`` (1 where ``probability`` reaches the
        model's threshold), by image and descending detector score within an image (with
        ``output``: everything in it, resumed images included). ``frame.attrs["failed"]``
        maps each image that failed to its reason, ``frame.attrs["warnings"]`` each image
        whose processing raised warnings to their text.

    Raises
    ------
    InvalidInputError
        If ``model`` is not a fitted Sifter (or its file), a detection setting is unknown,
        or ``scheduler`` or ``tile_size`` is not valid (checked before ``output`` is
        touched). Problems with single images never raise: they are recorded.
    OutputError
        If ``output`` cannot be written (a folder where a CSV file is meant, a folder
        that is not writable); checked before any image is processed.

    Examples
    --------
    >>> frame = predict_images(["a.tif", "b.tif"], "models/model-3")  # doctest: +SKIP
    >>> frame = predict_images(
    ...     paths, "models/model-3", scheduler="tcp://10.0.0.5:8786", output="out.parquet"
    ... )  # doctest: +SKIP
    """
    local_model, plan = check_run(model, scheduler, detect_settings, tile_size)
    names = list(dict.fromkeys(str(p) for p in paths))  # each image once
    sink: PredictionSink | MemorySink = (
        MemorySink() if output is None else PredictionSink(Path(output), resume=resume)
    )
    finished = sink.done()
    todo = [name for name in names if name not in finished]
    total, done = len(names), len(names) - len(todo)

    def report(record: dict[str, Any], frame: Any) -> None:
        nonlocal done
        sink.add(record, frame)
        done += 1
        if progress is not None:
            status = {"status": record["status"]}
            progress(ProgressEvent("predict", done, total, item=record["image"], details=status))

    try:
        source = model if isinstance(model, (str, os.PathLike)) else local_model
        run_images(
            todo,
            local_model,
            plan,
            report,
            scheduler=scheduler,
            source=source,
            progress=progress,
            total=total,
            done=done,
        )
    except BaseException:
        sink.flush()  # what finished stays in the partial output, for a resume
        raise
    sink.commit()
    frame = sink.read()
    # Images in the order given (finished images arrive in any order), rows as detected.
    rank = frame["image"].map({name: i for i, name in enumerate(names)})
    order = np.argsort(rank.fillna(len(names)).to_numpy(), kind="stable")
    frame = frame.iloc[order].reset_index(drop=True)
    latest = {r["image"]: r for r in sink.records}
    frame.attrs["failed"] = {
        image: r["error"] for image, r in latest.items() if r["status"] == "failed"
    }
    frame.attrs["warnings"] = {
        image: r["warnings"] for image, r in latest.items() if r.get("warnings")
    }
    return frame
