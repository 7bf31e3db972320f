"""Sift many images: read -> detect -> crop -> classify, image by image, here or on a cluster.

:func:`predict_images` is the library's entry point for images that are not (or need not
be) in a project; :meth:`blobsift.project.Project.predict` uses :func:`check_run`,
:func:`run_images` and :class:`PredictionSink` for images outside the project.

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
* **Large images.** Each image goes through the one scoring step,
  :func:`blobsift.scoring.score_image`: images above :data:`WHOLE_IMAGE_PIXELS` (or any
  image when ``tile_size`` is given) are never read whole but tile by tile through
  :func:`blobsift.io.open_image` (lazy for Zarr, NPY and TIFF), so memory is bounded by the
  tile size, and the result equals the whole-image one.

Modules
-------
``_predict``
    :func:`predict_images`, :func:`check_run` and :func:`run_images`.
``_work``
    The work on one image (:class:`ScoringPlan`, :func:`predict_one`), shared by both
    runners.
``_local``
    Running here, one image per core in threads.
``_dask``
    Running on a Dask cluster; the only module importing dask / distributed, imported
    only when a scheduler is given.
``_sink``
    The output (:class:`PredictionSink`, :class:`MemorySink`, :func:`write_predictions`).
``_journal``
    Each image's journal record and the warnings it raised.
"""

from __future__ import annotations

from blobsift.batch._journal import (
    STATUS_COLUMNS,
    collect_warnings,
    failure_record,
    journal_record,
)
from blobsift.batch._predict import check_run, predict_images, run_images
from blobsift.batch._sink import (
    COLUMNS,
    MemorySink,
    PredictionSink,
    empty_predictions,
    parquet_beside,
    write_predictions,
)
from blobsift.batch._work import ScoringPlan, predict_one
from blobsift.scoring import WHOLE_IMAGE_PIXELS

__all__ = [
    "COLUMNS",
    "STATUS_COLUMNS",
    "WHOLE_IMAGE_PIXELS",
    "MemorySink",
    "PredictionSink",
    "ScoringPlan",
    "check_run",
    "collect_warnings",
    "empty_predictions",
    "failure_record",
    "journal_record",
    "parquet_beside",
    "predict_images",
    "predict_one",
    "run_images",
    "write_predictions",
]
