"""The :class:`Project`: a project folder's store composed with detection, crops, models."""

from __future__ import annotations

from typing import Any

from blobsift.project._predict import PredictMixin
from blobsift.types import Label

__all__ = ["Project"]


class Project(PredictMixin):
    """A blobsift project folder: images, candidates, label events, models, predictions.

    Open an existing project with ``Project(folder)``; make a new one with
    :meth:`Project.create`. The object holds one SQLite connection; use it as a context
    manager or call :meth:`close`.

    Parameters
    ----------
    root : str or path-like
        The project folder (holding ``project.db``).
    match_radius : float
        Distance in pixels within which a label event joins an already labelled position,
        and within which a label matches a candidate.

    Raises
    ------
    ProjectError
        If the folder holds no project or was written by a newer blobsift.

    Examples
    --------
    >>> project = Project.create("run1")                     # doctest: +SKIP
    >>> project.add_images(["a.tif", "b.tif"])               # doctest: +SKIP
    >>> project.detect(threshold=5)                          # doctest: +SKIP
    >>> project.import_labels("labels.csv")                  # doctest: +SKIP
    >>> record = project.train()                             # doctest: +SKIP
    """

    def info(self, *, verify: bool = False) -> dict[str, Any]:
        """Return a summary: images, candidates, labels, models, predictions.

        ``detect_channel`` and ``channels`` say how the images are read (None and 1 for
        2D images). ``unfinished_detection_runs`` counts runs still ``running`` (one in
        progress, or one killed since the last run started); ``interrupted_detection_runs``
        those that a later run found unfinished.

        Parameters
        ----------
        verify : bool
            Also hash every image and list those missing or changed (reads every file).
        """
        labels = self.labels()
        counts = labels["label"].value_counts().to_dict() if len(labels) else {}
        images = self.images()
        current = self._store.current_runs()
        stored = self._store.counts()
        models = self.models()
        info: dict[str, Any] = {
            "project": str(self.root),
            "schema_version": self.schema_version,
            "detect_channel": self.detect_channel,
            "channels": self.n_channels,
            "images": len(images),
            "images_missing": sum(not r.path.exists() for r in images),
            "images_without_candidates": sum(r.id not in current for r in images),
            "detection_runs": stored["detection_runs"],
            "unfinished_detection_runs": stored["unfinished_detection_runs"],
            "interrupted_detection_runs": stored["interrupted_detection_runs"],
            "label_imports": stored["label_imports"],
            "candidates": stored["candidates"],
            "label_events": stored["label_events"],
            "labels": {label.word: int(counts.get(int(label), 0)) for label in Label.given()},
            "label_set_hash": self.label_set_hash(),
            "models": len(models),
            "prediction_runs": stored["prediction_runs"],
        }
        if models:
            latest = models[-1]
            info["latest_model"] = {
                "id": latest.id,
                "created_at": latest.created_at,
                "phase": latest.phase,
                "phase_reason": latest.phase_reason,
                "n_labels": latest.n_labels,
                "threshold": latest.threshold,
                "f1": latest.metrics.get("f1"),
                "precision": latest.metrics.get("precision"),
                "recall": latest.metrics.get("recall"),
                "path": str(latest.path),
                "labels_changed_since": latest.label_set_hash != info["label_set_hash"],
            }
        if verify:
            info["image_problems"] = self.check_images()
        return info
