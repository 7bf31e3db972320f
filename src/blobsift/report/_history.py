"""Figures of a project's model versions: precision-recall, F1 and phase history."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from blobsift.metrics import too_few_positives
from blobsift.report._card import TOO_FEW_POSITIVES
from blobsift.report._figures import SPEC_EXPECTED_F1, draw_spec_ranges, pyplot, save_figure

__all__ = ["plot_f1_history", "plot_phase_history", "plot_pr_curve"]

_PHASE_NAMES = {"siamese": "Phase 1: Siamese", "cnn": "Phase 2: CNN"}
#: Marker and colour of each phase, the same in every figure.
_PHASE_STYLE = {"siamese": ("s", "C0"), "cnn": ("o", "C2")}
_OTHER_STYLE = ("^", "C4")
_CURVE_COLOURS = ("C1", "C3", "C5")


def plot_pr_curve(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    path: str | os.PathLike[str],
    *,
    title: str = "Precision-recall on held-out labels",
) -> Path:
    """Draw the precision-recall curve of held-out scores and mark the operating point.

    Parameters
    ----------
    labels : (n,) array of {0, 1}
        Held-out labels.
    scores : (n,) array of float
        Held-out probabilities of signal.
    threshold : float
        The model's decision threshold (its point is marked).
    path : path-like
        Where to write the PNG.
    title : str
        Figure title.

    Returns
    -------
    Path
        The PNG written.
    """
    from blobsift.metrics import average_precision, binary_counts, precision_recall_curve

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if len(labels):
        precision, recall, _ = precision_recall_curve(labels, scores)
        ap = average_precision(labels, scores)
        ax.step(np.r_[recall, 0.0], np.r_[precision, 1.0], where="post", label=f"AP = {ap:.3f}")
        counts = binary_counts(labels, (scores >= threshold).astype(np.int64))
        ax.plot(
            [counts.recall],
            [counts.precision],
            "o",
            color="C3",
            label=f"threshold {threshold:.3f}: P={counts.precision:.2f} R={counts.recall:.2f}",
        )
        ax.axhline(labels.mean(), color="0.6", ls=":", label="chance (share of signal)")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower left", fontsize=8)
    return save_figure(fig, path)


def plot_f1_history(
    models: list[Any],
    path: str | os.PathLike[str],
    *,
    curves: Mapping[str, tuple[Sequence[int], Sequence[float]]] | None = None,
) -> Path:
    """Draw held-out F1 (with its interval) against labels for every model version.

    Each phase has its own marker; the specification's expected F1 ranges are grey bands.
    A model whose labels hold too few positives to estimate F1
    (:data:`~blobsift.metrics.MIN_HELDOUT_POSITIVES`) has no point: a grey x on the axis
    marks it as missing.

    Parameters
    ----------
    models : list of ModelRecord
        The model versions, oldest first.
    path : path-like
        Where to write the PNG.
    curves : mapping, optional
        Further F1 curves to draw, name -> (label counts, F1), e.g. F1 against the ground
        truth of new images.

    Returns
    -------
    Path
        The PNG written.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    draw_spec_ranges(ax)
    unknown = [m for m in models if too_few_positives(m.metrics.get("n_positive"))]
    models = [m for m in models if m not in unknown]
    if unknown:
        ax.plot(
            [m.n_labels for m in unknown],
            [0.02] * len(unknown),
            "x",
            color="0.4",
            label=f"out-of-fold F1: {TOO_FEW_POSITIVES}",
        )
    for phase in sorted({m.phase for m in models}):
        mine = [m for m in models if m.phase == phase]
        x = [m.n_labels for m in mine]
        y = [float(m.metrics.get("f1", np.nan)) for m in mine]
        ci = [m.metrics.get("f1_ci") or [v, v] for m, v in zip(mine, y, strict=True)]
        err = np.array(
            [
                [v - c[0] for c, v in zip(ci, y, strict=True)],
                [c[1] - v for c, v in zip(ci, y, strict=True)],
            ]
        )
        ax.errorbar(
            x,
            y,
            yerr=np.clip(err, 0, None),
            marker=_PHASE_STYLE.get(phase, _OTHER_STYLE)[0],
            color=_PHASE_STYLE.get(phase, _OTHER_STYLE)[1],
            ls="none",
            capsize=3,
            label=f"out-of-fold F1, phase {phase} (95% interval)",
        )
    if models:
        ax.plot(
            [m.n_labels for m in models],
            [m.metrics.get("f1", np.nan) for m in models],
            color="0.4",
            lw=0.8,
            zorder=0,
        )
    for k, (name, (counts, values)) in enumerate((curves or {}).items()):
        colour = _CURVE_COLOURS[k % len(_CURVE_COLOURS)]
        ax.plot(counts, values, marker="D", ms=4, color=colour, label=name)
    _label_axis(ax, [m.n_labels for m in models + unknown])
    ax.set_ylabel("held-out F1")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title("F1 against number of labels (every model version)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def plot_phase_history(models: list[Any], path: str | os.PathLike[str]) -> Path:
    """Draw the phase each model version used against its number of labels.

    Parameters
    ----------
    models : list of ModelRecord
        The model versions, oldest first.
    path : path-like
        Where to write the PNG.

    Returns
    -------
    Path
        The PNG written.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 2.2))
    phases = list(_PHASE_NAMES) + sorted({m.phase for m in models} - set(_PHASE_NAMES))
    x = [m.n_labels for m in models]
    y = [phases.index(m.phase) for m in models]
    ax.plot(x, y, color="0.6", lw=0.8, zorder=0)
    for phase in sorted({m.phase for m in models}):
        mine = [m for m in models if m.phase == phase]
        marker, colour = _PHASE_STYLE.get(phase, _OTHER_STYLE)
        row = [phases.index(phase)] * len(mine)
        ax.plot([m.n_labels for m in mine], row, marker, color=colour, ms=7)
        for m in mine:
            ax.annotate(f"#{m.id}", (m.n_labels, phases.index(phase)), xytext=(0, 7),
                        textcoords="offset points", ha="center", fontsize=7)  # fmt: skip
    ax.set_yticks(range(len(phases)), [_PHASE_NAMES.get(p, p) for p in phases])
    ax.set_ylim(-0.6, len(phases) - 0.4)
    _label_axis(ax, x)
    ax.grid(alpha=0.3)
    ax.set_title("Phase of every model version (#id) by number of labels", fontsize=10)
    return save_figure(fig, path)


def _label_axis(ax: Any, counts: Sequence[int]) -> None:
    """A log axis of label counts, ticked at the specification's counts and at ``counts``."""
    from matplotlib.ticker import NullLocator

    ax.set_xscale("log")
    ticks = sorted(set(SPEC_EXPECTED_F1) | set(counts))
    ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=8)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(min(ticks) / 1.25, max(ticks) * 1.25)
    ax.set_xlabel("labels")
