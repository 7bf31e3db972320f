"""Project images (added, found, hash-checked, read, relocated) and their candidates."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from blobsift._validation import check_integer
from blobsift.detect import DetectSettings, detect_blobs
from blobsift.exceptions import ImageChangedError, ImageReadError, InvalidInputError
from blobsift.positions import match_labels
from blobsift.project._base import as_path, reference_list
from blobsift.project._channels import ChannelsMixin
from blobsift.store import ImageRecord, content_hash, settings_hash
from blobsift.types import Candidates, Progress, ProgressEvent

__all__ = ["ImagesMixin"]

#: A file's stat signature is trusted only if it was last changed this long before its
#: content hash was checked (a change within the file system's clock tick could
#: otherwise keep the signature the hash was checked under).
_SETTLED_NS = 2_000_000_000


class ImagesMixin(ChannelsMixin):
    """The images of a project and the candidates found in them."""

    # -- images -------------------------------------------------------------------------
    def add_images(
        self, paths: Iterable[str | os.PathLike[str]], *, progress: Progress | None = None
    ) -> list[ImageRecord]:
        """Add image files (hash and shape recorded); all or none are added.

        Images already in the project are skipped if their content is unchanged. Every new
        image's pixel data is read once (block by block) to check that the file is whole,
        so a truncated or corrupt file is refused here rather than when it is detected.

        Parameters
        ----------
        paths : iterable of path-like
            Image files (any format :func:`blobsift.read_image` reads).
        progress : callable, optional
            Called with a ``ProgressEvent("add-images", done, total, item=path)`` after
            each file.

        Returns
        -------
        list of ImageRecord
            The records of the given images, in order (new and already present).

        Raises
        ------
        ImageReadError
            If a file is missing, not a readable 2D image (in a project of stacks: not a
            readable stack), or its pixel data cannot be read (truncated or corrupt);
            nothing is added.
        ImageChangedError
            If a path is already in the project with other content.
        InvalidInputError
            If ``paths`` is empty or a single path instead of a list, or (in a project
            of stacks) an image has other channels than the project's images or lacks
            the detection channel.
        """
        files = [as_path(p, name="paths") for p in reference_list(paths, name="paths")]
        if not files:
            raise InvalidInputError("add_images needs at least one image path; got none.")
        known = {record.path: record for record in self.images()}
        count = self.n_channels if known else None  # a stack project's channels, once known
        prepared = []
        for done, path in enumerate(files, start=1):
            if not path.exists():
                raise ImageReadError(f"cannot read image {str(path)!r}: the file does not exist.")
            digest = content_hash(path)
            record = known.get(path)
            if record is not None and record.sha256 != digest:
                raise ImageChangedError(
                    f"image {str(path)!r} is already in the project with other content (its "
                    "file changed since it was added); its labels describe the old pixels. "
                    "Restore the original file, or save the new one under another name."
                )
            if record is None:
                shape, count = self._image_shape(path, count)
            else:
                shape = record.shape
            prepared.append((path, digest, shape, _size(path)))
            if progress is not None:
                progress(ProgressEvent("add-images", done, len(files), item=str(path)))
        self._store.add_images(prepared, self._count_setting(count))
        records = {record.path: record for record in self.images()}
        return [records[path] for path, *_ in prepared]

    def images(self) -> list[ImageRecord]:
        """Return every image of the project, in the order they were added."""
        return self._store.images()

    def image(self, ref: int | str | os.PathLike[str] | ImageRecord) -> ImageRecord:
        """Find an image by id, by path (absolute, or relative to the current folder) or name.

        Raises
        ------
        InvalidInputError
            If no image (or more than one, for a file name) matches.
        """
        if isinstance(ref, ImageRecord):
            return ref
        return self._resolver()(ref)

    def _resolver(self) -> Callable[[Any], ImageRecord]:
        """A function mapping image references (id, path, name) to records, with a cache."""
        records = self.images()
        by_id = {r.id: r for r in records}
        by_path = {str(r.path): r for r in records}
        by_name: dict[str, list[ImageRecord]] = {}
        for r in records:
            by_name.setdefault(r.name, []).append(r)
        cache: dict[Any, ImageRecord] = {}

        def resolve(ref: Any) -> ImageRecord:
            if ref in cache:
                return cache[ref]
            found: ImageRecord | None = None
            if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
                found = by_id.get(int(ref))
            else:
                text = os.fspath(ref) if isinstance(ref, os.PathLike) else str(ref)
                found = by_path.get(text) or by_path.get(str(Path(text).resolve()))
                if found is None:
                    named = by_name.get(text, [])
                    if len(named) > 1:
                        raise InvalidInputError(
                            f"image name {text!r} is ambiguous: {len(named)} project images "
                            f"have it ({[str(r.path) for r in named[:3]]}); use the path."
                        )
                    found = named[0] if named else None
            if found is None:
                raise InvalidInputError(
                    f"image {ref!r} is not in the project (it has {len(records)} images, e.g. "
                    f"{[r.name for r in records[:3]]}); add it with `blobsift add-images` or "
                    "name it by its file name or path as added."
                )
            cache[ref] = found
            return found

        return resolve

    def verify_image(self, ref: Any) -> ImageRecord:
        """Check that an image's file is where it was and holds the same bytes.

        Raises
        ------
        ImageChangedError
            If the file is missing (moved or deleted) or its content hash changed.
        """
        record = self.image(ref)
        if not record.path.exists():
            raise ImageChangedError(
                f"image {record.name!r} (id {record.id}) is missing from {str(record.path)!r}; "
                "it moved or was deleted. If it moved, run `blobsift relocate PROJECT "
                f"{record.name} NEW_PATH`."
            )
        signature, checked_at = _signature(record), time.time_ns()
        digest = content_hash(record.path)
        if digest != record.sha256:
            self._hash_checked.pop(record.id, None)
            raise ImageChangedError(
                f"image {record.name!r} (id {record.id}) at {str(record.path)!r} changed since "
                f"it was added (content hash {digest[:12]}... is not {record.sha256[:12]}...); "
                "its candidates and labels describe the old pixels. Restore the original file."
            )
        if signature is not None:
            self._hash_checked[record.id] = (signature, checked_at)
        return record

    def _checked(self, record: ImageRecord) -> ImageRecord:
        """``record`` once its file is known to hold its bytes.

        The content hash is checked unless this project already checked it with the file
        in the same state (size, modification and change times, inode, all as now), and
        that state was settled before the check: so a job that verifies its images and
        then reads them hashes each once, and a changed file is still refused.
        """
        signature = _signature(record)
        seen = self._hash_checked.get(record.id)
        settled = signature is not None and max(signature[2:4]) + _SETTLED_NS
        if seen is not None and seen[0] == signature and settled and settled < seen[1]:
            return record
        return self.verify_image(record)

    def read_image(self, ref: Any) -> np.ndarray:
        """Read a project image after checking its content hash.

        Returns
        -------
        (H, W) float32 array, or (C, H, W) in a project of stacks (see
        :attr:`detect_channel`).
        """
        record = self._checked(self.image(ref))
        return self.read_file(record.path)

    def check_images(self) -> list[dict[str, Any]]:
        """Return the images whose file is missing or changed (``image``, ``problem``)."""
        problems = []
        for record in self.images():
            try:
                self.verify_image(record)
            except ImageChangedError as error:
                problem = "missing" if not record.path.exists() else "changed"
                problems.append(
                    {
                        "image": record.name,
                        "id": record.id,
                        "problem": problem,
                        "message": str(error),
                    }
                )
        return problems

    def relocate_image(self, ref: Any, new_path: str | os.PathLike[str]) -> ImageRecord:
        """Point an image at its new file, which must hold exactly the same bytes.

        Raises
        ------
        ImageChangedError
            If the new file's content hash differs from the recorded one.
        """
        record = self.image(ref)
        path = Path(new_path).resolve()
        if not path.exists():
            raise ImageReadError(f"cannot relocate to {str(path)!r}: the file does not exist.")
        if content_hash(path) != record.sha256:
            raise ImageChangedError(
                f"{str(path)!r} does not hold the same bytes as image {record.name!r} "
                f"(id {record.id}); refusing to relocate it there."
            )
        self._store.move_image(record.id, path)
        self._hash_checked.pop(record.id, None)
        return self.image(record.id)

    # -- candidates ---------------------------------------------------------------------
    def detect(
        self,
        images: Iterable[Any] | None = None,
        *,
        force: bool = False,
        progress: Progress | None = None,
        n_threads: int | None = None,
        **settings: Any,
    ) -> dict[str, Any]:
        """Detect candidates in project images, one transaction per image.

        In a project of stacks candidates are detected on its :attr:`detect_channel`.

        Images whose current candidates come from a detection with the same settings are
        skipped (so an interrupted run resumes) unless ``force``. Every setting is checked
        before anything is recorded. Each call marks earlier runs still ``running`` (killed
        or interrupted, they never finished) as ``interrupted``; their finished images keep
        their candidates. (A run that another process is still working on is marked too,
        and marks itself ``complete`` when it finishes.)

        Parameters
        ----------
        images : iterable, optional
            Image ids, paths or names; default every image.
        force : bool
            Detect again even where the same settings already ran.
        progress : callable, optional
            Called with a ``ProgressEvent("detect", done, total, item=image name,
            details={"candidates": n})`` per image.
        n_threads : int, optional
            Threads for :func:`blobsift.detect_blobs`.
        **settings
            :class:`~blobsift.detect.DetectSettings` by name (``sigma_min``,
            ``sigma_max``, ``threshold``, ``min_distance``, ``border``,
            ``max_candidates``).

        Returns
        -------
        dict
            ``run_id`` (None if nothing ran), ``images`` (detected), ``skipped`` and
            ``candidates`` (found in this run).

        Raises
        ------
        InvalidInputError
            If a setting is unknown, of the wrong type or out of range, or ``images`` is a
            single name instead of a list.
        """
        checked = DetectSettings.from_mapping(settings)
        if n_threads is not None:
            check_integer(n_threads, name="n_threads", low=1)
        stored: dict[str, Any] = checked.as_dict()
        if self.detect_channel is not None:  # another channel is another detection
            stored["detect_channel"] = self.detect_channel
        wanted = settings_hash(stored)
        if images is None:
            records = self.images()
        else:
            records = [self.image(i) for i in reference_list(images, name="images")]
        current = self._store.current_runs()
        todo = []
        for record in records:
            run = current.get(record.id)
            same = (
                run is not None
                and run["settings_hash"] == wanted
                and run["image_sha256"] == record.sha256
            )
            if force or not same:
                todo.append(record)
        summary: dict[str, Any] = {
            "run_id": None,
            "images": 0,
            "skipped": len(records) - len(todo),
            "candidates": 0,
        }
        if not todo:
            self._store.mark_interrupted()
            return summary
        for record in todo:  # fail before starting if a file moved or changed
            self.verify_image(record)
        run_id = self._store.start_detection(stored)
        summary["run_id"] = run_id
        for done, record in enumerate(todo, start=1):
            plane = self.detection_plane(self.read_image(record))
            found = detect_blobs(plane, checked, n_threads=n_threads)
            self._store.store_candidates(run_id, record, found)
            summary["images"] += 1
            summary["candidates"] += len(found)
            if progress is not None:
                details = {"candidates": len(found)}
                progress(ProgressEvent("detect", done, len(todo), record.name, details))
        self._store.finish_detection(run_id)
        return summary

    def import_candidates(
        self,
        candidates: Candidates,
        *,
        source: str = "",
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Import candidates found by another detector (all in one transaction).

        Every row is checked first: an unknown image, or a position outside its image
        (see :meth:`add_labels` for the rule), refuses the whole table, naming the rows.
        Positions within half a crop (32 px) of the edge are kept; their crops are
        completed by mirror reflection.

        Parameters
        ----------
        candidates : Candidates
            With an ``image`` column naming project images (id, path or file name).
        source : str
            Where they came from (recorded with the run's settings).
        progress : callable, optional
            Called with a ``ProgressEvent("import-candidates", done, total)`` per image.

        Returns
        -------
        dict
            ``run_id``, ``images`` and ``candidates``.

        Raises
        ------
        InvalidInputError
            If an image is unknown or a position lies outside its image; nothing is written.
        """
        if not isinstance(candidates, Candidates):
            raise InvalidInputError(
                f"candidates must be a Candidates table; got {type(candidates).__name__}."
            )
        if candidates.image is None:
            raise InvalidInputError(
                "imported candidates need an 'image' column naming the image of each row "
                "(or give the image, e.g. `import-candidates --image NAME`)."
            )
        resolve = self._resolver()
        ids = []
        for k, name in enumerate(candidates.image):
            try:
                ids.append(resolve(name).id)
            except InvalidInputError as error:
                raise InvalidInputError(f"{_candidate_row(k)}: {error}") from None
        image_ids = np.asarray(ids, dtype=np.int64)
        self._check_inside(image_ids, candidates.row, candidates.col, _candidate_row)
        settings = {"source": str(source), "detector": "external"}
        run_id = self._store.import_candidates(candidates, image_ids, settings, progress=progress)
        n_images = len(np.unique(image_ids))
        return {"run_id": run_id, "images": n_images, "candidates": len(candidates)}

    def detection_runs(self) -> list[dict[str, Any]]:
        """Return every detection run (id, source, settings, status, times, counts)."""
        return self._store.detection_runs()

    def candidates(self, image: Any = None, *, with_labels: bool = False) -> Any:
        """Return the current candidates as a DataFrame, optionally with matched labels.

        Parameters
        ----------
        image : optional
            One image (id, path or name); default every image.
        with_labels : bool
            Add a ``label`` column: the current label matched to each candidate within
            ``match_radius`` (nearest first, one to one), or -2 where none matches.

        Returns
        -------
        pandas.DataFrame
            Columns ``image_id``, ``image`` (name), ``row``, ``col``, ``sigma``, ``score``
            [, ``label``], ordered by image, then as found (by descending score for
            ``detect``, in file order for imported candidates).
        """
        image_id = None if image is None else self.image(image).id
        frame = self._store.candidates(image_id)
        if with_labels:
            labels = self._store.labels(image_id)
            frame["label"] = match_labels(frame, labels, self.match_radius)
        return frame

    def _check_inside(
        self,
        image_ids: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray,
        describe: Callable[[int], str],
    ) -> None:
        """Refuse positions off their image by more than ``match_radius`` (all reported)."""
        records = {r.id: r for r in self.images()}
        heights = np.array([records[int(i)].shape[0] for i in image_ids], dtype=np.float64)
        widths = np.array([records[int(i)].shape[1] for i in image_ids], dtype=np.float64)
        r = self.match_radius
        inside = (rows >= -r) & (rows <= heights - 1 + r) & (cols >= -r) & (cols <= widths - 1 + r)
        outside = np.flatnonzero(~inside)
        if outside.size:
            shown = "; ".join(
                f"{describe(int(k))}: (row {rows[k]:g}, col {cols[k]:g}) in "
                f"{records[int(image_ids[k])].name!r} of {int(heights[k])} rows x "
                f"{int(widths[k])} columns"
                for k in outside[:3]
            )
            raise InvalidInputError(
                f"{outside.size} position(s) lie outside their image ({shown}). A position "
                f"must lie within {r:g} px (the match radius) of the image's pixels: {-r:g} "
                f"<= row <= height - 1 + {r:g}, likewise col. Nothing was written; fix those "
                "rows (are row and col swapped, or given in another unit?)."
            )


def _signature(record: ImageRecord) -> tuple[int, int, int, int, int] | None:
    """(size, inode, mtime_ns, ctime_ns, device) of an image file; None for a folder."""
    try:
        stat = record.path.stat()
    except OSError:
        return None
    if not record.path.is_file():
        return None  # a Zarr folder changes inside without its own times changing
    return (stat.st_size, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_dev)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _candidate_row(k: int) -> str:
    """Candidate ``k`` of a table, as the row (and line) of the CSV it was read from."""
    return f"candidate row {k + 1} (line {k + 2} of its CSV)"
