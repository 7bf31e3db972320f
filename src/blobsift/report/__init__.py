"""Reports of results: PNG figures, a project model's HTML report and model card, overlays.

Modules
-------
``_figures``
    Figures of any result (learning curves, crop galleries, detections on an image) and
    the plumbing every figure shares (:func:`pyplot`, :func:`save_figure`, the
    specification's expected F1 ranges).
``_history``
    Figures of a project's model versions: precision-recall, F1 and phase history.
``_card``
    The model card, and how a threshold and a metric are written
    (:func:`format_threshold`, :func:`format_metric`).
``_html``
    :func:`write_report`: the HTML page with its figures and model card.
``_overlays``
    :func:`write_overlays`: each image's scored candidates drawn on it.
"""

from __future__ import annotations

from blobsift.report._card import TOO_FEW_POSITIVES, format_metric, format_threshold, model_card
from blobsift.report._figures import (
    SPEC_EXPECTED_F1,
    draw_spec_ranges,
    plot_crop_gallery,
    plot_detections,
    plot_learning_curve,
    pyplot,
    save_figure,
)
from blobsift.report._history import plot_f1_history, plot_phase_history, plot_pr_curve
from blobsift.report._html import write_report
from blobsift.report._overlays import write_overlays

__all__ = [
    "SPEC_EXPECTED_F1",
    "TOO_FEW_POSITIVES",
    "draw_spec_ranges",
    "format_metric",
    "format_threshold",
    "model_card",
    "plot_crop_gallery",
    "plot_detections",
    "plot_f1_history",
    "plot_learning_curve",
    "plot_phase_history",
    "plot_pr_curve",
    "pyplot",
    "save_figure",
    "write_overlays",
    "write_report",
]
