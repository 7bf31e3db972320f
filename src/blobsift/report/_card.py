"""The model card of a model version, and how reports write its threshold and metrics.

A held-out estimate from fewer than :data:`~blobsift.metrics.MIN_HELDOUT_POSITIVES`
positives is shown as :data:`TOO_FEW_POSITIVES`, never as a number.
"""

from __future__ import annotations

from typing import Any

from blobsift.metrics import MIN_HELDOUT_POSITIVES, too_few_positives

__all__ = ["TOO_FEW_POSITIVES", "format_metric", "format_threshold", "model_card"]

#: What reports show instead of a held-out estimate from too few positives.
TOO_FEW_POSITIVES = "too few positives to estimate"
#: The held-out metrics that are estimates from the labels' positives.
_ESTIMATES = ("f1", "precision", "recall", "average_precision", "loo_average_precision")


def model_card(project: Any, record: Any) -> dict[str, Any]:
    """Return the model card of a model version as a JSON-friendly dict."""
    from blobsift._version import __version__

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
