"""Sift many images: read → detect → crop → classify, image by image.

:func:`predict_images` is the library's entry point for images that are not (or need not
be) in a project; :meth:`blobsift.Project.predict` uses it for images outside the project.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from blobsift.exceptions import InvalidInputError

__all__ = ["COLUMNS", "predict_images", "write_predictions"]

#: Columns of a prediction table, in order.
COLUMNS = ("image", "row", "col", "sigma", "score", "probability", "decision")


def predict_images(
    paths: Iterable[str | os.PathLike[str]],
    model: Any,
    scheduler: Any = None,
    *,
    progress: Callable[[str, dict[str, Any]], None] | None = None,
    **detect_settings: Any,
) -> Any:
    """Detect and classify the candidates of each image file.

    Parameters
    ----------
    paths : iterable of path-like
        Image files (any format :func:`blobsift.read_image` reads).
    model : Sifter or path-like
        A fitted classifier, or the path of a saved :class:`~blobsift.Sifter`.
    scheduler : None
        Reserved for running on a Dask cluster; only local execution (None) is available
        so far.
    progress : callable, optional
        ``progress("predict", {"done", "total", "image"})`` after each image.
    **detect_settings
        :func:`blobsift.detect_blobs` parameters (``threshold``, ``sigma_min``, ...).

    Returns
    -------
    pandas.DataFrame
        Columns ``image`` (the path as given), ``row``, ``col``, ``sigma``, ``score``,
        ``probability`` (of signal) and ``decision`` (1 where ``probability`` reaches the
        model's threshold), ordered by image and descending detector score.
    """
    import pandas as pd

    from blobsift.crops import extract_crops
    from blobsift.detect import detect_blobs
    from blobsift.io import read_image

    if scheduler is not None:
        raise InvalidInputError(
            "scheduler: only local execution (scheduler=None) is available in this version."
        )
    if isinstance(model, (str, os.PathLike)):
        from blobsift.classify.sifter import Sifter

        model = Sifter.load(model)
    if not hasattr(model, "predict_proba") or not hasattr(model, "threshold_"):
        raise InvalidInputError(
            f"model must be a fitted Sifter (or the path of a saved one); got "
            f"{type(model).__name__}."
        )
    paths = [Path(p) for p in paths]
    parts = []
    for done, path in enumerate(paths, start=1):
        image = read_image(path)
        found = detect_blobs(image, **detect_settings)
        probability = model.predict_proba(extract_crops(image, found))[:, 1]
        parts.append(
            pd.DataFrame(
                {
                    "image": str(path),
                    "row": found.row,
                    "col": found.col,
                    "sigma": found.sigma,
                    "score": found.score,
                    "probability": probability,
                    "decision": (probability >= model.threshold_).astype(np.int64),
                }
            )
        )
        if progress is not None:
            progress("predict", {"done": done, "total": len(paths), "image": str(path)})
    if not parts:
        return _empty()
    return pd.concat(parts, ignore_index=True)[list(COLUMNS)]


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
        The files written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = frame[list(COLUMNS)]
    frame.to_csv(path, index=False, float_format="%.9g")
    written = [path]
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return written
    parquet = path.with_suffix(".parquet")
    frame.to_parquet(parquet, index=False)
    written.append(parquet)
    return written
