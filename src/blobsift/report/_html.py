"""The report of a project's model: an HTML page with PNG figures and a model card.

:func:`write_report` draws, from what a :class:`~blobsift.project.Project` recorded:

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

Every candidate is scored through :func:`blobsift.scoring.score_candidates` and every
gallery cut by :func:`blobsift.crops.crops_for`, as everywhere else in the library.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from blobsift._atomic import atomic_write, check_output_file
from blobsift.crops import crops_for
from blobsift.exceptions import OutputError
from blobsift.metrics import MIN_HELDOUT_POSITIVES
from blobsift.report._card import TOO_FEW_POSITIVES, format_metric, model_card
from blobsift.report._figures import plot_crop_gallery, plot_detections
from blobsift.report._history import plot_f1_history, plot_phase_history, plot_pr_curve
from blobsift.scoring import score_candidates
from blobsift.types import Progress, ProgressEvent

__all__ = ["write_report"]

_GALLERY_SIZE = 30


def write_report(
    project: Any,
    model: int | None = None,
    *,
    output: str | os.PathLike[str] | None = None,
    image: Any = None,
    f1_curves: Mapping[str, tuple[Sequence[int], Sequence[float]]] | None = None,
    progress: Progress | None = None,
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
        Called with a :class:`~blobsift.types.ProgressEvent` of stage ``"report"`` after
        each figure (``item``: the figure's name).

    Returns
    -------
    Path
        The ``index.html`` written (``model_card.json`` lies beside it).
    """
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
            progress(ProgressEvent("report", done, steps, item=name))

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
        chosen = heldout.iloc[index]
        crops = crops_for(chosen, project.read_image)
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
        probability = score_candidates(pixels, found, sifter)
        found = found.assign(decision=(probability >= record.threshold).astype(np.int64))
        plot_detections(
            project.detection_plane(pixels),
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
    page = _page(card, models, figures)
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


def _heldout_note(metrics: dict[str, Any]) -> str:
    if metrics.get("heldout") != "out-of-fold":
        return "not recorded"
    if metrics.get("threshold_rule") == "fixed":
        return "out-of-fold; the threshold was fixed beforehand, not chosen on them"
    return (
        "out-of-fold; the threshold was chosen on the same scores, so the figures at it are "
        "slightly optimistic"
    )


def _page(card: dict[str, Any], models: list[Any], figures: list[tuple[str, str, str]]) -> str:
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
