"""Each image's scored candidates drawn on it, one PNG per image."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from blobsift.report._figures import plot_detections
from blobsift.types import Progress, ProgressEvent

__all__ = ["write_overlays"]


def write_overlays(
    project: Any,
    predictions: Any,
    folder: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
) -> list[Path]:
    """Draw each image's scored candidates on it (one PNG per image).

    A stack is drawn on its detection channel (:meth:`Project.detection_plane`).

    Parameters
    ----------
    project : Project
        The project; images that are not in it are read from their path.
    predictions : pandas.DataFrame
        A prediction table (``image``, ``row``, ``col``, ``sigma``, ``decision``).
    folder : path-like
        Where the PNGs go (``<image file name>.png``).
    progress : callable, optional
        Called with a :class:`~blobsift.types.ProgressEvent` of stage ``"overlays"``
        after each image (``item``: the PNG's image name).

    Returns
    -------
    list of Path
        The PNGs written.
    """
    from blobsift.exceptions import InvalidInputError

    folder = Path(folder)
    written = []
    groups = list(predictions.groupby("image", sort=False))
    for done, (image, part) in enumerate(groups, start=1):
        try:
            pixels = project.read_image(image)
        except InvalidInputError:  # not a project image: sifted from its path
            pixels = project.read_file(image)
        name = Path(str(image)).name
        title = f"{name}: {int(part['decision'].sum())} of {len(part)} candidates predicted signal"
        plane = project.detection_plane(pixels)
        written.append(plot_detections(plane, part, folder / f"{name}.png", title=title))
        if progress is not None:
            progress(ProgressEvent("overlays", done, len(groups), item=name))
    return written
