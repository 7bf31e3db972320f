"""Sift many images: read → detect → crop → classify, image by image, here or on a cluster.

:func:`predict_images` is the library's entry point for images that are not (or need not
be) in a project; :meth:`blobsift.Project.predict` uses it for images outside the project.

* **Where.** By default every image is processed in this process, one after the other, with
  detection and inference using every core. With ``scheduler=`` (a ``distributed``
  scheduler address, ``Client`` or cluster object) each image is one task on that Dask
  cluster. The model travels once per worker (a worker plugin carrying the model file's
  bytes, loaded once when the worker starts or joins), never with each task. blobsift
  schedules nothing itself: start the cluster with ``dask-jobqueue``, ``dask-kubernetes``,
  ``dask scheduler`` / ``dask worker`` or ``distributed.LocalCluster``.
* **Failures.** An image that cannot be read or used is recorded as failed, with its
  reason, and the run goes on. A worker that dies is replaced by Dask and its images are
  run again elsewhere; each image is recorded once.
* **Output and resume.** With ``output=`` the rows of each finished image are appended, as
  images finish, to the sibling ``OUTPUT.partial`` (a CSV file, or for a ``.parquet`` path a
  folder of Parquet parts), and a journal beside it (``OUTPUT.status.jsonl``) records every
  finished image, with the warnings raised while it was processed. When the run completes
  the partial output is flushed to disk and renamed to ``OUTPUT`` in one step, so the file
  under the final name is always whole (or absent). Running again with the same output
  resumes: finished images are skipped, rows of images that were cut off half-written are
  dropped, failed images are tried again.
* **Large images.** Images above :data:`WHOLE_IMAGE_PIXELS` (or any image when
  ``tile_size`` is given) are never read whole: detection and cropping go tile by tile
  through :func:`blobsift.io.open_image` (lazy for Zarr, NPY and TIFF), so memory is bounded
  by the tile size. Each candidate belongs to the one tile holding its pixel, so
  candidates in the overlaps are not duplicated, and the result equals the whole-image one.

dask and distributed are imported only when a scheduler is given.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from blobsift._atomic import atomic_write, check_output_file, publish
from blobsift._validation import CROP_SIZE
from blobsift.exceptions import InvalidInputError

__all__ = ["COLUMNS", "STATUS_COLUMNS", "WHOLE_IMAGE_PIXELS", "predict_images", "write_predictions"]

#: Columns of a prediction table, in order.
COLUMNS = ("image", "row", "col", "sigma", "score", "probability", "decision")
#: Fields of a journal record (one per finished image) in ``OUTPUT.status.jsonl``.
STATUS_COLUMNS = ("image", "status", "n_candidates", "error", "seconds", "worker", "warnings")
#: Images with more pixels than this are processed in tiles (8192 x 8192, 256 MB float32).
WHOLE_IMAGE_PIXELS = 8192 * 8192
_DEFAULT_TILE = 2048
_CLASSIFY_CHUNK = 4096  # crops classified at once in tiled mode (64 MB of float32)
_PARQUET_FLUSH_IMAGES = 64  # a Parquet part holds at most this many images ...
_PARQUET_FLUSH_ROWS = 200_000  # ... or about this many rows

Progress = Callable[[str, dict[str, Any]], None]


# --------------------------------------------------------------------------------------
# One image
# --------------------------------------------------------------------------------------
def _tiled_probability(image: Any, found: Any, model: Any, tile_size: int) -> np.ndarray:
    """Classify the candidates of a lazy image tile by tile (bounded memory)."""
    from blobsift.crops import extract_crops

    probability = np.empty(len(found), dtype=np.float64)
    if len(found) == 0:
        return probability
    height, width = image.shape
    rows = np.floor(np.asarray(found.row) + 0.5).astype(np.int64)
    cols = np.floor(np.asarray(found.col) + 0.5).astype(np.int64)
    n_across = -(-width // tile_size)
    owner = (np.clip(rows, 0, height - 1) // tile_size) * n_across + (
        np.clip(cols, 0, width - 1) // tile_size
    )
    # A window reaching past the image is mirrored at the image edge, as extract_crops
    # does on the whole image: the margin keeps every other window inside the region.
    margin = CROP_SIZE // 2 + 1
    order = np.argsort(owner, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(owner[order]) != 0])
    for members in np.split(order, starts[1:]):
        tile = int(owner[members[0]])
        tile_row, tile_col = divmod(tile, n_across)
        r0 = max(tile_row * tile_size - margin, 0)
        r1 = min((tile_row + 1) * tile_size + margin, height)
        c0 = max(tile_col * tile_size - margin, 0)
        c1 = min((tile_col + 1) * tile_size + margin, width)
        region = image[r0:r1, c0:c1]
        for start in range(0, members.size, _CLASSIFY_CHUNK):
            chunk = members[start : start + _CLASSIFY_CHUNK]
            centres = np.column_stack([rows[chunk] - r0, cols[chunk] - c0]).astype(np.float64)
            crops = extract_crops(region, centres)
            probability[chunk] = model.predict_proba(crops)[:, 1]
        del region
    return probability


def _score_image(
    path: str, model: Any, settings: dict[str, Any], tile_size: int | None, threads: int
) -> Any:
    """Read, detect, crop and classify one image; return its prediction table."""
    import pandas as pd

    from blobsift.crops import extract_crops
    from blobsift.detect import detect_blobs
    from blobsift.io import open_image

    settings = {"n_threads": threads, **settings}
    with open_image(path) as image:
        height, width = image.shape
        if tile_size is None and height * width <= WHOLE_IMAGE_PIXELS:
            pixels = image.read()
            found = detect_blobs(pixels, **settings)
            probability = model.predict_proba(extract_crops(pixels, found))[:, 1]
            del pixels
        else:
            size = _DEFAULT_TILE if tile_size is None else tile_size
            found = detect_blobs(image, tile_size=size, **settings)
            probability = _tiled_probability(image, found, model, size)
    return pd.DataFrame(
        {
            "image": path,
            "row": found.row,
            "col": found.col,
            "sigma": found.sigma,
            "score": found.score,
            "probability": probability,
            "decision": (probability >= model.threshold_).astype(np.int64),
        }
    )


_image_warnings = threading.local()  # .caught: the list of the image this thread works on
_router_lock = threading.Lock()
_router_users = 0
_shown_before: Any = None  # warnings.showwarning as it was before the router


def _route_warning(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """Send a warning to the image this thread works on, or show it as before."""
    caught = getattr(_image_warnings, "caught", None)
    if caught is None:
        _shown_before(message, category, filename, lineno, file, line)
    else:
        caught.append(f"{category.__name__}: {message}")


@contextlib.contextmanager
def _collect_warnings() -> Iterator[list[str]]:
    """Collect, as text, the warnings shown while this thread works on one image.

    The warning filters decide as always (an ``"error"`` filter still raises); what would
    be shown goes to the list instead, for the image's journal record. Threads working on
    other images collect their own; warnings of other threads are shown as before.
    """
    global _router_users, _shown_before
    with _router_lock:
        if _router_users == 0:
            _shown_before = warnings.showwarning
            warnings.showwarning = _route_warning
        _router_users += 1
    _image_warnings.caught = caught = []
    try:
        yield caught
    finally:
        _image_warnings.caught = None
        with _router_lock:
            _router_users -= 1
            if _router_users == 0 and warnings.showwarning is _route_warning:
                warnings.showwarning = _shown_before


def _journal_record(
    image: str, frame: Any, error: str | None, seconds: float | None, caught: list[str]
) -> dict[str, Any]:
    """One image's journal record (the fields of :data:`STATUS_COLUMNS`)."""
    return {
        "image": image,
        "status": "failed" if frame is None else "done",
        "n_candidates": 0 if frame is None else len(frame),
        "error": error,
        "seconds": None if seconds is None else round(seconds, 4),
        "worker": None if seconds is None else socket.gethostname(),
        "warnings": caught,
    }


def _predict_one(
    path: str, model: Any, settings: dict[str, Any], tile_size: int | None, threads: int
) -> tuple[dict[str, Any], Any]:
    """Return (journal record, table or None); never raises for a bad image."""
    start = time.perf_counter()
    frame, error = None, None
    with _collect_warnings() as caught:
        try:
            frame = _score_image(path, model, settings, tile_size, threads)
        except Exception as exc:  # one bad image must not stop the run: record why
            error = f"{type(exc).__name__}: {exc}"
    return _journal_record(path, frame, error, time.perf_counter() - start, caught), frame


# --------------------------------------------------------------------------------------
# Output: a CSV file or a folder of Parquet parts, and a journal of finished images
# --------------------------------------------------------------------------------------
def _status_path(output: Path) -> Path:
    return output.with_name(output.name + ".status.jsonl")


def _append(path: Path, data: bytes) -> int:
    """Append ``data`` durably; return the file's new size."""
    with open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
        return handle.tell()


class _Sink:
    """Append finished images to ``OUTPUT.partial``; publish it as ``OUTPUT`` when complete.

    The journal ``OUTPUT.status.jsonl`` makes the output resumable: an interrupted run
    continues its partial output; a completed one is copied to a new partial output (CSV)
    or linked part by part (Parquet) when more images are added to it.
    """

    def __init__(self, output: Path, resume: bool) -> None:
        self.output = output
        self.parquet = output.suffix.lower() == ".parquet"
        self.partial = output.with_name(output.name + ".partial")
        self.journal = _status_path(output)
        if not self.parquet:
            check_output_file(output, what="the prediction CSV")
        check_output_file(self.journal, what="the prediction journal")
        self.records: list[dict[str, Any]] = []
        self._buffer: list[tuple[dict[str, Any], Any]] = []
        self._parts = 0
        output.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.journal.exists():
            self.records = self._read_journal()
        else:
            self.journal.write_bytes(b"")
        self._repair()
        self._started = self.partial.exists()

    def _read_journal(self) -> list[dict[str, Any]]:
        records = []
        with open(self.journal, "rb") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    break  # a line cut off by an interruption, and anything after it
                if not line.endswith(b"\n"):
                    break
                records.append(record)
        lines = b"".join(json.dumps(r).encode() + b"\n" for r in records)
        atomic_write(self.journal, lambda tmp: tmp.write_bytes(lines), what="the journal")
        return records

    def _forget(self) -> None:
        """Start afresh: no records, and no partial output of an earlier run."""
        self.records = []
        self.journal.write_bytes(b"")
        if self.partial.is_dir():
            shutil.rmtree(self.partial)
        else:
            self.partial.unlink(missing_ok=True)

    def _repair(self) -> None:
        """Drop rows written after the last journal record (an image cut off half-way)."""
        if not self.records:
            self._forget()
            return
        if self.parquet:
            kept = {r.get("part") for r in self.records} - {None}
            if not (self.partial.is_dir() or self.output.is_dir()):
                self._forget()  # the output was removed by hand: start afresh
                return
            if self.partial.is_dir():
                for part in self.partial.glob("part-*.parquet"):
                    if part.name not in kept:
                        part.unlink()
            self._parts = 1 + max((int(p[5:11]) for p in kept), default=-1)
            return
        end = max(r.get("offset", 0) for r in self.records)
        source = self.partial if self.partial.exists() else self.output
        size = source.stat().st_size if source.is_file() else 0
        if end == 0 or size < end:  # an output shortened or removed by hand: start afresh
            self._forget()
        elif source == self.partial:
            with open(self.partial, "r+b") as handle:
                handle.truncate(end)

    def _start(self) -> None:
        """Create the partial output: empty, or continuing the published one."""
        self._started = True
        if self.parquet:
            self.partial.mkdir()
            for part in {r.get("part") for r in self.records} - {None}:
                try:
                    os.link(self.output / part, self.partial / part)  # parts never change
                except OSError:
                    shutil.copyfile(self.output / part, self.partial / part)
        elif self.records:
            end = max(r.get("offset", 0) for r in self.records)
            shutil.copyfile(self.output, self.partial)
            with open(self.partial, "r+b") as handle:
                handle.truncate(end)
        else:
            _append(self.partial, (",".join(COLUMNS) + "\n").encode())

    def done(self) -> set[str]:
        """Images recorded as done (failed ones are tried again)."""
        return {r["image"] for r in self.records if r["status"] == "done"}

    def add(self, record: dict[str, Any], frame: Any) -> None:
        if not self._started:
            self._start()
        if self.parquet:
            self._buffer.append((record, frame))
            rows = sum(0 if f is None else len(f) for _, f in self._buffer)
            if len(self._buffer) >= _PARQUET_FLUSH_IMAGES or rows >= _PARQUET_FLUSH_ROWS:
                self.flush()
            return
        if frame is not None and len(frame):
            text = frame[list(COLUMNS)].to_csv(header=False, index=False)
            record = {**record, "offset": _append(self.partial, text.encode())}
        else:
            record = {**record, "offset": self.partial.stat().st_size}
        self._log([record])

    def flush(self) -> None:
        if not self._buffer:
            return
        import pandas as pd

        frames = [f for _, f in self._buffer if f is not None and len(f)]
        part = None
        if frames:
            part = f"part-{self._parts:06d}.parquet"
            table = pd.concat(frames, ignore_index=True)[list(COLUMNS)]
            atomic_write(
                self.partial / part, partial(table.to_parquet, index=False), what="a Parquet part"
            )
            self._parts += 1
        self._log(
            [{**r, "part": part if f is not None and len(f) else None} for r, f in self._buffer]
        )
        self._buffer.clear()

    def commit(self) -> None:
        """Publish the complete output under its final name (in one rename)."""
        self.flush()
        if not self._started and not self.records:
            self._start()  # an empty run still leaves an (empty) output
        if not self._started:
            return  # every image was already in the published output
        if not self.parquet:
            publish(self.partial, self.output)
        else:
            _publish_folder(self.partial, self.output)
        self._started = False

    def _log(self, records: list[dict[str, Any]]) -> None:
        self.records.extend(records)
        _append(self.journal, b"".join(json.dumps(r).encode() + b"\n" for r in records))

    def read(self) -> Any:
        import pandas as pd

        if self.parquet:
            parts = sorted(self.output.glob("part-*.parquet"))
            if not parts:
                return _empty()
            return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
        frame = pd.read_csv(self.output, dtype={"image": str})
        return _empty() if frame.empty else frame.astype({"decision": np.int64})


def _publish_folder(folder: Path, target: Path) -> None:
    """Move a complete folder to ``target``, replacing what is there (absent in between)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.urandom(4).hex()}")
        os.replace(target, old)
    os.replace(folder, target)
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()


class _MemorySink:
    """Keep every table in memory (no ``output``)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.frames: list[Any] = []

    def done(self) -> set[str]:
        return set()

    def add(self, record: dict[str, Any], frame: Any) -> None:
        self.records.append(record)
        if frame is not None and len(frame):
            self.frames.append(frame)

    def flush(self) -> None:
        pass

    def commit(self) -> None:
        pass

    def read(self) -> Any:
        import pandas as pd

        if not self.frames:
            return _empty()
        return pd.concat(self.frames, ignore_index=True)[list(COLUMNS)]


# --------------------------------------------------------------------------------------
# Running: here, or on a Dask cluster with the model sent once per worker
# --------------------------------------------------------------------------------------
def _model_bytes(model: Any) -> tuple[bytes, bytes]:
    """The (weights, config) bytes of a model file, from a path or a fitted Sifter."""
    from blobsift.nn.serialize import model_paths

    if isinstance(model, (str, os.PathLike)):
        weights, config = model_paths(model)
        return weights.read_bytes(), config.read_bytes()
    with tempfile.TemporaryDirectory(prefix="blobsift-model-") as folder:
        weights, config = model.save(Path(folder) / "model")
        return weights.read_bytes(), config.read_bytes()


def _run_here(
    todo: list[str],
    model: Any,
    settings: dict[str, Any],
    tile_size: int | None,
    threads: int | None,
    cores: int,
    report: Callable[[dict[str, Any], Any], None],
) -> None:
    """Process images in this process: one per core at a time, in threads.

    Reading, filtering and inference release the GIL, so ``cores`` images in flight keep
    every core busy, also through the single-threaded steps of each image. At most
    ``2 x cores`` images are in flight, so memory stays bounded on long lists.
    """
    if cores <= 1 or len(todo) <= 1:
        for name in todo:
            report(*_predict_one(name, model, settings, tile_size, threads or cores))
        return
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    pending: set[Any] = set()
    queue = iter(todo)
    with ThreadPoolExecutor(max_workers=cores, thread_name_prefix="blobsift") as pool:
        try:
            while True:
                for name in queue:
                    pending.add(
                        pool.submit(_predict_one, name, model, settings, tile_size, threads or 1)
                    )
                    if len(pending) >= 2 * cores:
                        break
                if not pending:
                    return
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    report(*future.result())
        finally:
            for future in pending:
                future.cancel()


def _check_detect_settings(settings: dict[str, Any]) -> None:
    import inspect

    from blobsift.detect import detect_blobs

    valid = sorted(
        name
        for name, parameter in inspect.signature(detect_blobs).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "tile_size"
    )
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise InvalidInputError(
            f"unknown detection setting(s) {unknown}; valid: {valid} (and tile_size)."
        )


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
        raise InvalidInputError(f"tile_size must be an integer >= 256 or None; got {tile_size!r}.")
    if tile_size < 256:
        raise InvalidInputError(
            f"tile_size must be at least 256 pixels (4 crop widths); got {tile_size}."
        )
    return int(tile_size)


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
        ``progress("predict", {"done", "total", "image", "status"})`` after each image;
        on a cluster first ``progress("predict", {"done", "total", "dashboard"})`` with
        the dashboard link.
    **detect_settings
        :func:`blobsift.detect_blobs` parameters (``threshold``, ``sigma_min``, ...).

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
    tile_size = _check_tile_size(tile_size)
    local_model = _check_run(model, scheduler, detect_settings)
    names = [str(p) for p in paths]
    names = list(dict.fromkeys(names))  # each image once
    sink: _Sink | _MemorySink = (
        _MemorySink() if output is None else _Sink(Path(output), resume=resume)
    )
    finished = sink.done()
    todo = [name for name in names if name not in finished]
    total, done = len(names), len(names) - len(todo)

    def report(record: dict[str, Any], frame: Any) -> None:
        nonlocal done
        sink.add(record, frame)
        done += 1
        if progress is not None:
            progress(
                "predict",
                {
                    "done": done,
                    "total": total,
                    "image": record["image"],
                    "status": record["status"],
                },
            )

    try:
        source = model if isinstance(model, (str, os.PathLike)) else local_model
        _sift(
            todo,
            local_model,
            source,
            scheduler,
            detect_settings,
            tile_size,
            report,
            progress,
            total,
            done,
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


def _check_run(model: Any, scheduler: Any, detect_settings: dict[str, Any]) -> Any:
    """Check a run's arguments before any output is touched; return the loaded model."""
    _check_detect_settings(detect_settings)
    _check_scheduler(scheduler)
    local_model = model
    if isinstance(model, (str, os.PathLike)):
        from blobsift.classify.sifter import Sifter

        local_model = Sifter.load(model)
    if not hasattr(local_model, "predict_proba") or not hasattr(local_model, "threshold_"):
        raise InvalidInputError(
            f"model must be a fitted Sifter (or the path of a saved one); got "
            f"{type(model).__name__}."
        )
    return local_model


def _sift(
    todo: list[str],
    model: Any,
    source: Any,
    scheduler: Any,
    detect_settings: dict[str, Any],
    tile_size: int | None,
    report: Callable[[dict[str, Any], Any], None],
    progress: Progress | None,
    total: int,
    done: int,
) -> None:
    """Process ``todo`` here or on the cluster; ``report(record, frame)`` per finished image.

    ``model`` is the loaded model; ``source`` what travels to a cluster (its file or itself).
    """
    settings = dict(detect_settings)
    if scheduler is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        threads = settings.pop("n_threads", None)
        _run_here(todo, model, settings, tile_size, threads, cores, report)
        return
    from blobsift._batch_dask import run_on_cluster

    threads = int(settings.pop("n_threads", None) or 1)
    run_on_cluster(
        scheduler, todo, source, settings, tile_size, threads, report, progress, total, done
    )


def _empty() -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "image": pd.Series(dtype=object),
            "row": pd.Series(dtype=float),
            "col": pd.Series(dtype=float),
            "sigma": pd.Series(dtype=float),
            "score": pd.Series(dtype=float),
            "probability": pd.Series(dtype=float),
            "decision": pd.Series(dtype=np.int64),
        }
    )


def write_predictions(frame: Any, path: str | os.PathLike[str]) -> list[Path]:
    """Write a prediction table as CSV and, when pyarrow is installed, Parquet beside it.

    Parameters
    ----------
    frame : pandas.DataFrame
        A table with :data:`COLUMNS`.
    path : path-like
        The CSV file; the Parquet file gets the same name with ``.parquet``.

    Returns
    -------
    list of Path
        The files written, each whole or not at all (written beside, then renamed).

    Raises
    ------
    OutputError
        If a file cannot be written there; nothing is left behind.
    """
    path = Path(path)
    parquet = _parquet_beside(path)
    frame = frame[list(COLUMNS)]
    write_csv = partial(frame.to_csv, index=False, float_format="%.9g")
    written = [atomic_write(path, write_csv, what="the prediction CSV")]
    if parquet is not None:
        write_parquet = partial(frame.to_parquet, index=False)
        written.append(atomic_write(parquet, write_parquet, what="the prediction Parquet file"))
    return written


def _parquet_beside(csv: Path) -> Path | None:
    """The Parquet file beside a prediction CSV (None without pyarrow), both checked."""
    check_output_file(csv, what="the prediction CSV")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return None
    parquet = csv.with_suffix(".parquet")
    if parquet == csv:
        raise InvalidInputError(
            f"the prediction CSV {str(csv)!r} ends in .parquet, the name of the Parquet file "
            "written beside it; give a .csv path (e.g. predictions.csv)."
        )
    return check_output_file(parquet, what="the prediction Parquet file")
