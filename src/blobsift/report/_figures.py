"""Pictures of results rendered to PNG: learning curves, crop galleries, detections.

Also the shared plumbing of every figure: :func:`pyplot` (the Agg backend),
:func:`save_figure` (atomic PNG) and the specification's expected F1 ranges.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from blobsift._atomic import atomic_write

__all__ = [
    "SPEC_EXPECTED_F1",
    "draw_spec_ranges",
    "plot_crop_gallery",
    "plot_detections",
    "plot_learning_curve",
    "pyplot",
    "save_figure",
]

#: The specification's "Expected Results": labels -> (low, high) F1.
SPEC_EXPECTED_F1: dict[int, tuple[float, float]] = {
    100: (0.82, 0.88),
    250: (0.88, 0.93),
    500: (0.92, 0.96),
    1000: (0.95, 0.98),
}


def pyplot() -> Any:
    """Return ``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG (creating the folder; whole or not at all) and close it."""
    try:
        fig.tight_layout()
        return atomic_write(path, partial(fig.savefig, dpi=dpi, format="png"), what="the figure")
    finally:
        pyplot().close(fig)


def draw_spec_ranges(ax: Any) -> None:
    """Shade the specification's expected F1 range at each label count on ``ax``."""
    for labels, (low, high) in SPEC_EXPECTED_F1.items():
        ax.fill_between([labels * 0.9, labels * 1.1], low, high, color="0.85", lw=0)
    ax.plot([], [], color="0.85", lw=8, label="specification: expected F1")


def plot_learning_curve(
    curves: dict[str, tuple[Sequence[int], Sequence[float]]],
    path: str | os.PathLike[str],
    *,
    title: str = "F1 against number of labels",
) -> Path:
    """Draw F1 against labels for each named curve, with the specification's ranges.

    Parameters
    ----------
    curves : dict
        Name -> (label counts, F1 values).
    path : path-like
        Where to write the PNG.

    Returns
    -------
    Path
        The PNG written.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    draw_spec_ranges(ax)
    for name, (counts, values) in curves.items():
        ax.plot(counts, values, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("labels")
    ax.set_ylabel("F1 on held-out crops")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="lower right")
    return save_figure(fig, path, dpi=110)


def plot_crop_gallery(
    crops: np.ndarray,
    captions: Sequence[str],
    path: str | os.PathLike[str],
    *,
    columns: int = 10,
    title: str = "",
) -> Path:
    """Draw crops in a grid, each contrast-stretched on its own (1st-99.5th percentile).

    Ticks on the crop edges point at its centre, the candidate the label belongs to.
    Crops of C channels, (n, C, h, w), show their channels side by side (each stretched
    on its own), and fewer crops share a row.

    Returns
    -------
    Path
        The PNG written.
    """
    plt = pyplot()
    crops = np.asarray(crops)
    channels = crops.shape[1] if crops.ndim == 4 else 1
    n = max(len(crops), 1)
    columns = min(max(1, columns // channels), n)
    rows = int(np.ceil(n / columns))
    side = 1.3 if channels == 1 else 1.1  # inches per crop; a caption fits above a strip
    fig, axes = plt.subplots(
        rows, columns, figsize=(side * columns * channels, 1.45 * rows + 0.4), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, crop, caption in zip(axes.flat, crops, captions, strict=False):
        planes = [crop] if crop.ndim == 2 else list(crop)
        size = crop.shape[-1]
        stretched = []
        for plane in planes:
            low, high = np.percentile(plane, [1, 99.5])
            stretched.append(np.clip((plane - low) / max(high - low, 1e-6), 0.0, 1.0))
        ax.imshow(np.hstack(stretched), cmap="gray", vmin=0.0, vmax=1.0)
        centre = (crop.shape[-2] - 1) / 2
        for offset in range(0, size * len(planes), size):
            across = offset + centre
            for start, stop in ((-0.5, size * 0.12), (size - 0.5, size * 0.88)):
                ax.plot([offset + start, offset + stop], [centre, centre], color="#ffcc00", lw=1.2)
                ax.plot([across, across], [start, stop], color="#ffcc00", lw=1.2)
        ax.set_title(caption, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=90)


def plot_detections(
    image: np.ndarray,
    predictions: Any,
    path: str | os.PathLike[str],
    *,
    labels: Any = None,
    title: str = "",
) -> Path:
    """Draw candidates on an image: circles by decision, labelled positions marked.

    Parameters
    ----------
    image : (H, W) array
        The image (contrast-stretched for display, 1st-99.8th percentile).
    predictions : pandas.DataFrame
        ``row``, ``col``, ``sigma`` and ``decision`` of each candidate.
    path : path-like
        Where to write the PNG.
    labels : pandas.DataFrame, optional
        ``row``, ``col``, ``label`` of labelled positions (signal ``+``, noise ``x``).
    title : str
        Figure title.

    Returns
    -------
    Path
        The PNG written.
    """
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Circle

    plt = pyplot()
    height, width = image.shape
    scale = 7.0 / max(height, width)
    fig, ax = plt.subplots(figsize=(max(width * scale, 3) + 0.5, max(height * scale, 3) + 0.6))
    low, high = np.percentile(image, [1, 99.8])
    ax.imshow(image, cmap="gray", vmin=low, vmax=max(high, low + 1e-6))
    circles = [
        Circle((col, row), 2 * (sigma if np.isfinite(sigma) else 1.5))
        for row, col, sigma in zip(
            predictions["row"], predictions["col"], predictions["sigma"], strict=True
        )
    ]
    colours = np.where(predictions["decision"].to_numpy(dtype=bool), "#33dd33", "#ff5050")
    # one collection, not a patch per candidate: thousands of patches take seconds each
    ax.add_collection(PatchCollection(circles, facecolors="none", edgecolors=colours, lw=0.8))
    if labels is not None and len(labels):
        signal = labels[labels["label"] == 1]
        noise = labels[labels["label"] == 0]
        ax.plot(signal["col"], signal["row"], "+", color="cyan", ms=5, mew=0.8)
        ax.plot(noise["col"], noise["row"], "x", color="orange", ms=4, mew=0.8)
    ax.plot([], [], "o", mfc="none", mec="#33dd33", label="predicted signal")
    ax.plot([], [], "o", mfc="none", mec="#ff5050", label="predicted noise")
    if labels is not None and len(labels):
        ax.plot([], [], "+", color="cyan", label="labelled signal")
        ax.plot([], [], "x", color="orange", label="labelled noise")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.7)
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path, dpi=120)
