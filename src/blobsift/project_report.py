"""The report of a project's model: an HTML page with PNG figures and a model card.

:func:`write_report` draws, from what a :class:`~blobsift.store.Project` recorded:

- the precision-recall curve of the model on its held-out (out-of-fold) labels, with its
  operating point;
- held-out F1 against the number of labels for every model version of the project, with
  the specification's "Expected Results" ranges (and further F1 curves, e.g. the demo's
  F1 against the truth of new images);
- the phase history: the learning phase of every model version against its labels (and,
  in a table, why it was chosen);
- galleries of held-out false positives and false negatives (most confident first);
- the candidates of one image drawn on it, coloured by the model's decision;
- a model card: what the model was trained on, how well it does (with confidence
  intervals), its threshold and phase decision, and when.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from blobsift._atomic import atomic_write, check_output_file
from blobsift.exceptions import OutputError
from blobsift.metrics import MIN_HELDOUT_POSITIVES, too_few_positives
from blobsift.report import (
    SPEC_EXPECTED_F1,
    draw_spec_ranges,
    plot_crop_gallery,
    pyplot,
    save_figure,
)

__all__ = [
    "TOO_FEW_POSITIVES",
    "format_metric",
    "format_threshold",
    "model_card",
    "plot_detections",
    "plot_f1_history",
    "plot_phase_history",
    "plot_pr_curve",
    "write_overlays",
    "write_report",
]

#: What reports show instead of a held-out estimate from too few positives.
TOO_FEW_POSITIVES = "too few positives to estimate"
#: The held-out metrics that are estimates from the labels' positives.
_ESTIMATES = ("f1", "precision", "recall", "average_precision", "loo_average_precision")
_GALLERY_SIZE = 30
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


def write_report(
    project: Any,
    model: int | None = None,
    *,
    output: str | os.PathLike[str] | None = None,
    image: Any = None,
    f1_curves: Mapping[str, tuple[Sequence[int], Sequence[float]]] | None = None,
    progress: Callable[[str, dict[str, Any]], None] | None = None,
) -> Path:
    """Write the HTML report of a project's model with its PNG figures and model card.

    Parameters
    ----------
    project : Project
        The project.
    model : int, optional
        Model id; default the latest model.
    output : path-like, optional
        Folder of the report; default ``reports/model-<id>/`` in the project.
    image : optional
        The image to draw detections on (id, path or name); default the image with the
        most labels.
    f1_curves : mapping, optional
        Further F1 curves for the F1 figure (see :func:`plot_f1_history`).
    progress : callable, optional
        ``progress("report", {"done", "total", "step"})`` after each figure.

    Returns
    -------
    Path
        The ``index.html`` written (``model_card.json`` lies beside it).
    """
    from blobsift.crops import extract_crops

    record = project.model(model)
    folder = Path(output) if output is not None else project.reports_dir / f"model-{record.id}"
    if folder.exists() and not folder.is_dir():
        raise OutputError(
            f"cannot write the report into {str(folder)!r}: it is a file, and a report is a "
            "folder of files; give a folder path (new or existing), e.g. --output "
            f"{folder.with_suffix('')!s}-report."
        )
    page_path = check_output_file(folder / "index.html", what="the report")
    steps = 6
    done = 0

    def step(name: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress("report", {"done": done, "total": steps, "step": name})

    figures: list[tuple[str, str, str]] = []  # (title, file, caption)
    heldout = project.heldout_scores(record.id)
    labels = heldout["label"].to_numpy(dtype=np.int64)
    scores = heldout["probability"].to_numpy(dtype=np.float64)
    plot_pr_curve(labels, scores, record.threshold, folder / "pr_curve.png")
    figures.append(
        (
            "Precision-recall curve",
            "pr_curve.png",
            f"Out-of-fold scores of the {len(labels)} labels model {record.id} was "
            "trained on; the dot is the chosen threshold.",
        )
    )
    step("pr_curve")

    models = project.models()
    plot_f1_history(models, folder / "f1_vs_labels.png", curves=f1_curves)
    figures.append(
        (
            "F1 against number of labels",
            "f1_vs_labels.png",
            "Out-of-fold F1 of every model version on its own labels (bars: 95% bootstrap "
            f"interval; x: {TOO_FEW_POSITIVES}, fewer than {MIN_HELDOUT_POSITIVES} signal "
            "labels)" + "".join(f"; {name}" for name in f1_curves or {}) + "; grey: the "
            "specification's expected ranges.",
        )
    )
    step("f1_vs_labels")

    plot_phase_history(models, folder / "phase_history.png")
    figures.append(
        (
            "Phase history",
            "phase_history.png",
            "The learning phase of every model version; the table above gives the reasons.",
        )
    )
    step("phase_history")

    decided = scores >= record.threshold
    for name, mask, order in (
        ("false_positives", decided & (labels == 0), -scores),
        ("false_negatives", ~decided & (labels == 1), scores),
    ):
        index = np.flatnonzero(mask)
        index = index[np.argsort(order[index], kind="stable")][:_GALLERY_SIZE]
        crops = np.empty((len(index), 64, 64), dtype=np.float32)
        chosen = heldout.iloc[index]
        for image_id, part in chosen.groupby("image_id", sort=False):
            pixels = project.read_image(int(image_id))
            where = [int(np.flatnonzero(index == i)[0]) for i in part.index]
            crops[where] = extract_crops(pixels, part[["row", "col"]].to_numpy())
        captions = [
            f"{im[:10]} p={p:.2f}"
            for im, p in zip(chosen["image"], chosen["probability"], strict=True)
        ]
        nice = name.replace("_", " ")
        plot_crop_gallery(
            crops,
            captions,
            folder / f"{name}.png",
            title=f"held-out {nice} ({int(mask.sum())} in all)",
        )
        figures.append(
            (
                nice.capitalize(),
                f"{name}.png",
                f"Held-out {nice}, most confident first (up to {_GALLERY_SIZE}).",
            )
        )
        step(name)

    shown = _image_to_draw(project, image)
    if shown is not None:
        from blobsift.classify.sifter import Sifter

        sifter = Sifter.load(record.path)
        found = project.candidates(shown.id)
        pixels = project.read_image(shown)
        probability = (
            sifter.predict_proba(extract_crops(pixels, found[["row", "col"]].to_numpy()))[:, 1]
            if len(found)
            else np.empty(0)
        )
        found = found.assign(decision=(probability >= record.threshold).astype(np.int64))
        plot_detections(
            pixels,
            found,
            folder / "detections.png",
            labels=project.labels(shown.id, include_unsure=False),
            title=f"{shown.name}: {int(found['decision'].sum())} of {len(found)} "
            "candidates predicted signal",
        )
        figures.append(
            (
                "Detections",
                "detections.png",
                f"Candidates of {shown.name}: green predicted signal, red noise; "
                "+ labelled signal, x labelled noise.",
            )
        )
    step("detections")

    card = model_card(project, record)
    card_text = json.dumps(card, indent=2, sort_keys=True)
    atomic_write(
        folder / "model_card.json",
        lambda tmp: tmp.write_text(card_text, encoding="utf-8"),
        what="the card",
    )
    page = _html(card, models, figures)
    return atomic_write(
        page_path, lambda tmp: tmp.write_text(page, encoding="utf-8"), what="the report"
    )


def _image_to_draw(project: Any, image: Any) -> Any:
    if image is not None:
        return project.image(image)
    labels = project.labels(include_unsure=False)
    if len(labels):
        return project.image(int(labels["image_id"].value_counts().index[0]))
    current = project.candidates()
    if len(current):
        return project.image(int(current["image_id"].iloc[0]))
    return None


def model_card(project: Any, record: Any) -> dict[str, Any]:
    """Return the model card of a model version as a JSON-friendly dict."""
    from blobsift import __version__

    heldout = project.heldout_scores(record.id)
    images = sorted(set(heldout["image"])) if len(heldout) else []
    return {
        "model_id": record.id,
        "created_at": record.created_at,
        "file": str(record.path) + ".safetensors / .json",
        "kind": record.kind,
        "phase": record.phase,
        "phase_reason": record.phase_reason,
        "threshold": record.threshold,
        "threshold_rule": record.metrics.get("threshold_rule"),
        "operating_point": _threshold_rule_text(record),
        "trained_on": {
            "labels": record.n_labels,
            "signal": record.n_positive,
            "noise": record.n_labels - record.n_positive,
            "images": images,
            "label_set_hash": record.label_set_hash,
            "labels_changed_since": record.label_set_hash != project.label_set_hash(),
        },
        "metrics": _card_metrics(record.metrics),
        "settings": record.settings,
        "project": str(project.root),
        "blobsift_version": __version__,
    }


def _card_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The model card's metrics: held-out estimates from too few positives left out."""
    if not too_few_positives(metrics.get("n_positive")):
        return metrics
    withheld = {name: None for name in metrics if name.removesuffix("_ci") in _ESTIMATES}
    note = f"{TOO_FEW_POSITIVES}: {metrics['n_positive']} signal, {MIN_HELDOUT_POSITIVES} needed"
    return {**metrics, **withheld, "estimates": note}


def _threshold_rule_text(record: Any) -> str:
    from blobsift.classify.base import describe_threshold_rule

    settings = record.settings
    target = settings.get("target_precision")
    target = settings.get("target_recall") if target is None else target
    return describe_threshold_rule(record.metrics.get("threshold_rule"), target)


def format_threshold(record: Any) -> str:
    """Format a model version's threshold with how it was chosen.

    Parameters
    ----------
    record : ModelRecord
        The model version.

    Returns
    -------
    str
        E.g. ``"0.5000: fixed at 0.5, where a crop is as close to signal as to noise"``.
    """
    return f"{record.threshold:.4f}: {_threshold_rule_text(record)}"


def format_metric(metrics: dict[str, Any], name: str) -> str:
    """Format metric ``name`` with its 95% interval (``name_ci``) when there is one.

    A held-out estimate (F1, precision, recall, average precision) from fewer than
    :data:`~blobsift.metrics.MIN_HELDOUT_POSITIVES` positives (``metrics["n_positive"]``)
    is shown as :data:`TOO_FEW_POSITIVES` instead of a number.
    """
    if name in _ESTIMATES and name in metrics and too_few_positives(metrics.get("n_positive")):
        return f"{TOO_FEW_POSITIVES} ({metrics['n_positive']} signal)"
    value = metrics.get(name)
    if value is None:
        return "-"
    interval = metrics.get(f"{name}_ci")
    text = f"{value:.3f}"
    if interval:
        text += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
    return text


def _heldout_note(metrics: dict[str, Any]) -> str:
    if metrics.get("heldout") != "out-of-fold":
        return "not recorded"
    if metrics.get("threshold_rule") == "fixed":
        return "out-of-fold; the threshold was fixed beforehand, not chosen on them"
    return (
        "out-of-fold; the threshold was chosen on the same scores, so the figures at it are "
        "slightly optimistic"
    )


def _html(card: dict[str, Any], models: list[Any], figures: list[tuple[str, str, str]]) -> str:
    e = html.escape
    metrics = card["metrics"]
    trained = card["trained_on"]
    rows = [
        ("Model", f"#{card['model_id']}, {card['kind']}, created {card['created_at']}"),
        ("Phase", f"{card['phase']}: {card['phase_reason']}"),
        (
            "Trained on",
            f"{trained['labels']} labels ({trained['signal']} signal, "
            f"{trained['noise']} noise) from {len(trained['images'])} image(s)",
        ),
        (
            "Label set",
            trained["label_set_hash"][:16]
            + (
                "... (labels changed since)" if trained["labels_changed_since"] else "... (current)"
            ),
        ),
        ("F1 (95% interval)", format_metric(metrics, "f1")),
        ("Precision", format_metric(metrics, "precision")),
        ("Recall", format_metric(metrics, "recall")),
        ("Average precision", format_metric(metrics, "average_precision")),
        ("Threshold", f"{card['threshold']:.4f}: {card['operating_point']}"),
        (
            "Held-out scores",
            _heldout_note(metrics),
        ),
        ("File", card["file"]),
        ("blobsift", card["blobsift_version"]),
    ]
    card_html = "\n".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows)
    history = "\n".join(
        f"<tr><td>{m.id}</td><td>{e(m.created_at[:19])}</td><td>{m.n_labels}</td>"
        f"<td>{m.n_positive}</td><td>{e(m.phase)}</td><td>{e(m.phase_reason)}</td>"
        f"<td>{e(format_metric(m.metrics, 'f1'))}</td><td>{m.threshold:.3f}</td></tr>"
        for m in models
    )
    pictures = "\n".join(
        f"<figure><h3>{e(t)}</h3><img src='{e(f)}' alt='{e(t)}'><figcaption>{e(c)}"
        "</figcaption></figure>"
        for t, f, c in figures
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>blobsift report: model {card["model_id"]}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; font-size: 14px; }}
th {{ background: #f4f4f4; }}
figure {{ margin: 1.5em 0; }} img {{ max-width: 100%; border: 1px solid #ddd; }}
figcaption {{ color: #555; font-size: 13px; }}
</style></head><body>
<h1>blobsift report — model {card["model_id"]}</h1>
<p>Project <code>{e(card["project"])}</code>.</p>
<h2>Model card</h2>
<table>{card_html}</table>
<h2>Phase history</h2>
<table><tr><th>model</th><th>created (UTC)</th><th>labels</th><th>signal</th><th>phase</th>
<th>reason</th><th>F1 [95% interval]</th><th>threshold</th></tr>
{history}</table>
<h2>Figures</h2>
{pictures}
</body></html>
"""


def write_overlays(
    project: Any,
    predictions: Any,
    folder: str | os.PathLike[str],
    *,
    progress: Callable[[str, dict[str, Any]], None] | None = None,
) -> list[Path]:
    """Draw each image's scored candidates on it (one PNG per image).

    Parameters
    ----------
    project : Project
        The project; images that are not in it are read from their path.
    predictions : pandas.DataFrame
        A prediction table (``image``, ``row``, ``col``, ``sigma``, ``decision``).
    folder : path-like
        Where the PNGs go (``<image file name>.png``).
    progress : callable, optional
        ``progress("overlays", {"done", "total", "image"})`` after each image.

    Returns
    -------
    list of Path
        The PNGs written.
    """
    from blobsift.exceptions import InvalidInputError
    from blobsift.io import read_image

    folder = Path(folder)
    written = []
    groups = list(predictions.groupby("image", sort=False))
    for done, (image, part) in enumerate(groups, start=1):
        try:
            pixels = project.read_image(image)
        except InvalidInputError:  # not a project image: sifted from its path
            pixels = read_image(image)
        name = Path(str(image)).name
        title = f"{name}: {int(part['decision'].sum())} of {len(part)} candidates predicted signal"
        written.append(plot_detections(pixels, part, folder / f"{name}.png", title=title))
        if progress is not None:
            progress("overlays", {"done": done, "total": len(groups), "image": name})
    return written
