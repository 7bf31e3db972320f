"""The candidates the labelling app works on: ids, descriptors and model scores."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from blobsift.active import crop_descriptors
from blobsift.crops import crops_for, extract_crops
from blobsift.exceptions import InvalidInputError
from blobsift.positions import close_pairs, match_labels, nearest_within
from blobsift.project import Project
from blobsift.scoring import score_candidates
from blobsift.store import ImageRecord
from blobsift.types import Label, Progress, ProgressEvent

__all__ = ["CandidatePool", "ImageCache"]


class ImageCache:
    """Project images in memory, read (content hash checked) on first use; least recent out.

    Parameters
    ----------
    project : Project
        Used only to read images by record (no database access), from any thread.
    records : iterable of ImageRecord
        The images that may be read, by id.
    size : int
        How many images to keep.
    """

    def __init__(self, project: Project, records: Iterable[ImageRecord], size: int = 4) -> None:
        self._project = project
        self._records = {record.id: record for record in records}
        self._size = size
        self._pixels: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, image_id: int) -> np.ndarray:
        """Return the pixels of image ``image_id`` (float32, (C, H, W) for stacks)."""
        with self._lock:
            if image_id in self._pixels:
                self._pixels.move_to_end(image_id)
                return self._pixels[image_id]
        pixels = self._project.read_image(self._records[image_id])
        with self._lock:
            self._pixels[image_id] = pixels
            while len(self._pixels) > self._size:
                self._pixels.popitem(last=False)
        return pixels


class CandidatePool:
    """Every current candidate of a project, with its descriptor and model score.

    A candidate's id is ``"IMAGE-INDEX"``: the image id and its position in
    :meth:`Project.candidates` of that image. The pool holds no labels: those are read
    from the store (:class:`~blobsift.app.labels.CurrentLabels`) and matched to the
    candidates with :meth:`labels_from`. Methods are thread safe.

    Parameters
    ----------
    table : pandas.DataFrame
        ``Project.candidates()``.
    descriptors : (n, d) array
        :func:`~blobsift.active.crop_descriptors` of each candidate.
    images : ImageCache
        Pixels of the project images.
    match_radius : float
        Distance within which a labelled position belongs to a candidate.
    detect_channel : int, optional
        In a project of stacks (images (C, H, W), crops (C, 64, 64)): the channel the
        candidates were detected on, which the context view shows.
    """

    def __init__(
        self,
        table: Any,
        descriptors: np.ndarray,
        images: ImageCache,
        match_radius: float,
        detect_channel: int | None = None,
    ) -> None:
        self.image_id = table["image_id"].to_numpy(dtype=np.int64)
        self.image_name = table["image"].astype(str).tolist()
        self.row = table["row"].to_numpy(dtype=np.float64)
        self.col = table["col"].to_numpy(dtype=np.float64)
        self.sigma = table["sigma"].to_numpy(dtype=np.float64)
        self.score = table["score"].to_numpy(dtype=np.float64)
        self._table = table[["image_id", "image"]].reset_index(drop=True)
        self._positions = table[["image_id", "row", "col"]].reset_index(drop=True)
        index = table.groupby("image_id").cumcount().to_numpy()
        self.ids = [f"{i}-{k}" for i, k in zip(self.image_id.tolist(), index.tolist(), strict=True)]
        self._by_id = {cid: k for k, cid in enumerate(self.ids)}
        self.group = _groups(self.image_id, self.row, self.col, match_radius)
        first = np.zeros(len(self.group), dtype=bool)
        first[np.unique(self.group, return_index=True)[1]] = True
        self.primary = first
        self.descriptors = np.asarray(descriptors, dtype=np.float32)
        self.images = images
        self.detect_channel = detect_channel
        self.match_radius = float(match_radius)
        self.proba: np.ndarray | None = None
        self.threshold = 0.5
        self.model_id: int | None = None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, project: Project, progress: Progress | None = None) -> CandidatePool:
        """Read a project's candidates and describe every candidate's crop.

        Parameters
        ----------
        project : Project
        progress : Progress, optional
            Called with a ``ProgressEvent(stage="score", ...)`` after each image (``done``
            and ``total`` count images; ``item`` is the image's name).
        """
        table = project.candidates().reset_index(drop=True)
        images = ImageCache(project, project.images())
        descriptors = np.empty((len(table), 64), np.float32)
        positions = table[["image_id", "row", "col"]]
        channel = project.detect_channel
        for rows in _each_image(table, progress):
            crops = crops_for(positions.iloc[rows], images)
            # the queue's diversity: what the detection channel shows
            descriptors[rows] = crop_descriptors(crops if channel is None else crops[:, channel])
        return cls(table, descriptors, images, project.match_radius, channel)

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, cid: str) -> int:
        """The row of candidate ``cid``.

        Raises
        ------
        InvalidInputError
            If there is no such candidate.
        """
        k = self._by_id.get(cid)
        if k is None:
            raise InvalidInputError(f"no candidate {cid!r} in this project.")
        return k

    def find(self, image_id: int, row: float, col: float) -> int | None:
        """The candidate nearest to a position of an image, within ``match_radius``."""
        mine = np.flatnonzero(self.image_id == image_id)
        points = np.column_stack([self.row[mine], self.col[mine]])
        best = nearest_within(points, row, col, self.match_radius)
        return None if best is None else int(mine[best])

    def crop(self, k: int) -> np.ndarray:
        """The 64x64 crop of candidate ``k`` ((C, 64, 64) in a project of stacks)."""
        return self.crop_at(int(self.image_id[k]), self.row[k], self.col[k])

    def crop_at(self, image_id: int, row: float, col: float) -> np.ndarray:
        """The 64x64 crop centred on a position of an image ((C, 64, 64) for stacks)."""
        return extract_crops(self.images(image_id), np.array([[row, col]]))[0]

    def detection_image(self, image_id: int) -> np.ndarray:
        """The 2D image candidates were detected on: the image, or its detection channel."""
        pixels = self.images(image_id)
        return pixels if self.detect_channel is None else pixels[self.detect_channel]

    def labels_from(
        self, table: Any, previous: np.ndarray | None = None, images: Iterable[int] = ()
    ) -> np.ndarray:
        """Each candidate's label in a table of current labels (``Project.labels()``).

        Matched as :meth:`Project.candidates` matches them; ``Label.UNLABELLED`` where none.

        Parameters
        ----------
        table : pandas.DataFrame
            The current labels.
        previous : (n,) array, optional
            An earlier result: then only the candidates of ``images`` are matched anew
            (the images whose labels changed since), and the rest is copied.
        images : iterable of int
            Image ids to match anew when ``previous`` is given.
        """
        if previous is None:
            return match_labels(self._positions, table, self.match_radius)
        out = previous.copy()
        ids = list(images)
        rows = np.isin(self.image_id, ids)
        if rows.any():
            mine = table[table["image_id"].isin(ids)]
            out[rows] = match_labels(self._positions[rows], mine, self.match_radius)
        return out

    def set_scores(self, proba: np.ndarray, threshold: float, model_id: int) -> None:
        """Record a model's signal probability of every candidate."""
        with self._lock:
            self.proba = np.asarray(proba, dtype=np.float64)
            self.threshold = float(threshold)
            self.model_id = int(model_id)

    def score_all(self, model: Any, progress: Progress | None = None) -> np.ndarray:
        """A fitted model's signal probability of every candidate, image by image.

        Parameters
        ----------
        model : estimator
            ``predict_proba(crops) -> (n, 2)`` (a fitted Sifter).
        progress : Progress, optional
            Called with a ``ProgressEvent(stage="score", ...)`` after each image.
        """
        proba = np.empty(len(self), np.float64)
        for rows in _each_image(self._table, progress):
            image = self.images(int(self.image_id[rows[0]]))
            proba[rows] = score_candidates(image, self._positions.iloc[rows], model)
        return proba

    def scores(self) -> tuple[np.ndarray | None, float]:
        """Copies of (model probabilities or None, threshold), taken together."""
        with self._lock:
            proba = None if self.proba is None else self.proba.copy()
            return proba, self.threshold

    def open_for_labels(self, labels: np.ndarray) -> np.ndarray:
        """Which candidates may still be offered, given each one's current ``labels``.

        Candidates closer than ``match_radius`` form a group that the store treats as one
        labelled position, so only the first of a group is offered, and only while no member
        of the group carries a label.
        """
        labelled = np.zeros(self.group.max() + 1 if len(self.group) else 0, dtype=bool)
        labelled[self.group[labels != Label.UNLABELLED]] = True
        return self.primary & ~labelled[self.group]

    def item(self, k: int, label: int) -> dict[str, Any]:
        """The JSON description of candidate ``k``, whose current label is ``label``."""
        proba = self.proba
        item: dict[str, Any] = {
            "id": self.ids[k],
            "image": self.image_name[k],
            "image_id": int(self.image_id[k]),
            "row": float(self.row[k]),
            "col": float(self.col[k]),
            "sigma": _finite(self.sigma[k]),
            "score": _finite(self.score[k]),
            "label": int(label),
            "proba": None,
            "decision": None,
        }
        if proba is not None:
            item["proba"] = float(proba[k])
            item["decision"] = int(proba[k] >= self.threshold)
        return item


def _each_image(table: Any, progress: Progress | None) -> Iterator[np.ndarray]:
    """Yield the rows of each image of a candidate table, reporting each image as done."""
    groups = table.groupby("image_id", sort=True)
    total = groups.ngroups
    for done, (_, rows) in enumerate(groups.indices.items(), start=1):
        yield rows
        if progress is not None:
            name = str(table["image"].iloc[rows[0]])
            progress(ProgressEvent(stage="score", done=done, total=total, item=name))


def _groups(image_id: np.ndarray, row: np.ndarray, col: np.ndarray, radius: float) -> np.ndarray:
    """Group ids of candidates linked by chains of distances up to ``radius`` (per image)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(image_id)
    links = close_pairs(np.column_stack([row, col]), image_id, radius)
    graph = coo_matrix((np.ones(len(links)), (links[:, 0], links[:, 1])), shape=(n, n))
    labels: np.ndarray = connected_components(graph, directed=False)[1].astype(np.int64)
    return labels


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
