"""Where prediction rows go: a CSV file or a folder of Parquet parts, with a journal.

:class:`PredictionSink` appends each finished image's rows to ``OUTPUT.partial`` and its
record to the journal ``OUTPUT.status.jsonl``, and publishes ``OUTPUT`` in one rename when
the run is complete (so the final name is whole or absent); a later run resumes from the
journal. :class:`MemorySink` keeps the tables in memory instead (no output file).
:func:`write_predictions` writes a finished table as CSV and Parquet, each atomically.
"""

from __future__ import annotations

import json
import os
import shutil
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from blobsift._atomic import atomic_write, check_output_file, publish
from blobsift.exceptions import InvalidInputError
from blobsift.io import read_table
from blobsift.scoring import PREDICTION_COLUMNS

__all__ = [
    "COLUMNS",
    "MemorySink",
    "PredictionSink",
    "empty_predictions",
    "parquet_beside",
    "write_predictions",
]

#: Columns of a prediction table, in order.
COLUMNS = PREDICTION_COLUMNS
_PARQUET_FLUSH_IMAGES = 64  # a Parquet part holds at most this many images ...
_PARQUET_FLUSH_ROWS = 200_000  # ... or about this many rows


def _status_path(output: Path) -> Path:
    return output.with_name(output.name + ".status.jsonl")


def _append(path: Path, data: bytes) -> int:
    """Append ``data`` durably; return the file's new size."""
    with open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
        return handle.tell()


class PredictionSink:
    """Append finished images to ``OUTPUT.partial``; publish it as ``OUTPUT`` when complete.

    The journal ``OUTPUT.status.jsonl`` makes the output resumable: an interrupted run
    continues its partial output; a completed one is copied to a new partial output (CSV)
    or linked part by part (Parquet) when more images are added to it.

    Parameters
    ----------
    output : Path
        The final CSV file, or Parquet folder for a name ending in ``.parquet``.
    resume : bool
        Continue from the journal (False: start afresh).

    Raises
    ------
    OutputError
        If the output or its journal cannot be written there (checked first).
    """

    def __init__(self, output: Path, resume: bool) -> None:
        self.output = output
        self.parquet = output.suffix.lower() == ".parquet"
        self.partial = output.with_name(output.name + ".partial")
        self.journal = _status_path(output)
        if not self.parquet:
            check_output_file(output, what="the prediction CSV")
        check_output_file(self.journal, what="the prediction journal")
        self.records: list[dict[str, Any]] = []
        self._buffer: list[tuple[dict[str, Any], Any]] = []
        self._parts = 0
        output.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.journal.exists():
            self.records = self._read_journal()
        else:
            self.journal.write_bytes(b"")
        self._repair()
        self._started = self.partial.exists()

    def _read_journal(self) -> list[dict[str, Any]]:
        records = []
        with open(self.journal, "rb") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    break  # a line cut off by an interruption, and anything after it
                if not line.endswith(b"\n"):
                    break
                records.append(record)
        lines = b"".join(json.dumps(r).encode() + b"\n" for r in records)
        atomic_write(self.journal, lambda tmp: tmp.write_bytes(lines), what="the journal")
        return records

    def _recorded_parts(self) -> set[str]:
        """The Parquet part files the journal records name."""
        return {r["part"] for r in self.records if r.get("part") is not None}

    def _forget(self) -> None:
        """Start afresh: no records, and no partial output of an earlier run."""
        self.records = []
        self.journal.write_bytes(b"")
        if self.partial.is_dir():
            shutil.rmtree(self.partial)
        else:
            self.partial.unlink(missing_ok=True)

    def _repair(self) -> None:
        """Drop rows written after the last journal record (an image cut off half-way)."""
        if not self.records:
            self._forget()
            return
        if self.parquet:
            kept = self._recorded_parts()
            if not (self.partial.is_dir() or self.output.is_dir()):
                self._forget()  # the output was removed by hand: start afresh
                return
            if self.partial.is_dir():
                for part in self.partial.glob("part-*.parquet"):
                    if part.name not in kept:
                        part.unlink()
            self._parts = 1 + max((int(p[5:11]) for p in kept), default=-1)
            return
        end = max(r.get("offset", 0) for r in self.records)
        source = self.partial if self.partial.exists() else self.output
        size = source.stat().st_size if source.is_file() else 0
        if end == 0 or size < end:  # an output shortened or removed by hand: start afresh
            self._forget()
        elif source == self.partial:
            with open(self.partial, "r+b") as handle:
                handle.truncate(end)

    def _start(self) -> None:
        """Create the partial output: empty, or continuing the published one."""
        self._started = True
        if self.parquet:
            self.partial.mkdir()
            for part in self._recorded_parts():
                try:
                    os.link(self.output / part, self.partial / part)  # parts never change
                except OSError:
                    shutil.copyfile(self.output / part, self.partial / part)
        elif self.records:
            end = max(r.get("offset", 0) for r in self.records)
            shutil.copyfile(self.output, self.partial)
            with open(self.partial, "r+b") as handle:
                handle.truncate(end)
        else:
            _append(self.partial, (",".join(COLUMNS) + "\n").encode())

    def done(self) -> set[str]:
        """Images recorded as done (failed ones are tried again)."""
        return {r["image"] for r in self.records if r["status"] == "done"}

    def add(self, record: dict[str, Any], frame: Any) -> None:
        """Append one finished image: its rows (``frame``, None if it failed) and record."""
        if not self._started:
            self._start()
        if self.parquet:
            self._buffer.append((record, frame))
            rows = sum(0 if f is None else len(f) for _, f in self._buffer)
            if len(self._buffer) >= _PARQUET_FLUSH_IMAGES or rows >= _PARQUET_FLUSH_ROWS:
                self.flush()
            return
        if frame is not None and len(frame):
            text = frame[list(COLUMNS)].to_csv(header=False, index=False)
            record = {**record, "offset": _append(self.partial, text.encode())}
        else:
            record = {**record, "offset": self.partial.stat().st_size}
        self._log([record])

    def flush(self) -> None:
        """Write what is buffered (Parquet) so the partial output and journal are current."""
        if not self._buffer:
            return
        import pandas as pd

        frames = [f for _, f in self._buffer if f is not None and len(f)]
        part = None
        if frames:
            part = f"part-{self._parts:06d}.parquet"
            table = pd.concat(frames, ignore_index=True)[list(COLUMNS)]
            atomic_write(
                self.partial / part, partial(table.to_parquet, index=False), what="a Parquet part"
            )
            self._parts += 1
        self._log(
            [{**r, "part": part if f is not None and len(f) else None} for r, f in self._buffer]
        )
        self._buffer.clear()

    def commit(self) -> None:
        """Publish the complete output under its final name (in one rename)."""
        self.flush()
        if not self._started and not self.records:
            self._start()  # an empty run still leaves an (empty) output
        if not self._started:
            return  # every image was already in the published output
        if not self.parquet:
            publish(self.partial, self.output)
        else:
            _publish_folder(self.partial, self.output)
        self._started = False

    def _log(self, records: list[dict[str, Any]]) -> None:
        self.records.extend(records)
        _append(self.journal, b"".join(json.dumps(r).encode() + b"\n" for r in records))

    def read(self) -> Any:
        """The published output as one table (after :meth:`commit`)."""
        frame = read_table(self.output)
        return empty_predictions() if frame.empty else frame.astype({"decision": np.int64})


def _publish_folder(folder: Path, target: Path) -> None:
    """Move a complete folder to ``target``, replacing what is there (absent in between)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.urandom(4).hex()}")
        os.replace(target, old)
    os.replace(folder, target)
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()


class MemorySink:
    """Keep every table in memory (no ``output``)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.frames: list[Any] = []

    def done(self) -> set[str]:
        """No image is done before a run (nothing is resumed)."""
        return set()

    def add(self, record: dict[str, Any], frame: Any) -> None:
        """Keep one finished image's record and rows."""
        self.records.append(record)
        if frame is not None and len(frame):
            self.frames.append(frame)

    def flush(self) -> None:
        """Nothing to write."""

    def commit(self) -> None:
        """Nothing to publish."""

    def read(self) -> Any:
        """Every table kept, in the order the images finished."""
        import pandas as pd

        if not self.frames:
            return empty_predictions()
        return pd.concat(self.frames, ignore_index=True)[list(COLUMNS)]


def empty_predictions() -> Any:
    """A prediction table without rows, with the columns' types."""
    import pandas as pd

    return pd.DataFrame(
        {
            "image": pd.Series(dtype=object),
            "row": pd.Series(dtype=float),
            "col": pd.Series(dtype=float),
            "sigma": pd.Series(dtype=float),
            "score": pd.Series(dtype=float),
            "probability": pd.Series(dtype=float),
            "decision": pd.Series(dtype=np.int64),
        }
    )


def write_predictions(frame: Any, path: str | os.PathLike[str]) -> list[Path]:
    """Write a prediction table as CSV and, when pyarrow is installed, Parquet beside it.

    Parameters
    ----------
    frame : pandas.DataFrame
        A table with :data:`COLUMNS`.
    path : path-like
        The CSV file; the Parquet file gets the same name with ``.parquet``.

    Returns
    -------
    list of Path
        The files written, each whole or not at all (written beside, then renamed).

    Raises
    ------
    OutputError
        If a file cannot be written there; nothing is left behind.
    """
    path = Path(path)
    parquet = parquet_beside(path)
    frame = frame[list(COLUMNS)]
    write_csv = partial(frame.to_csv, index=False, float_format="%.9g")
    written = [atomic_write(path, write_csv, what="the prediction CSV")]
    if parquet is not None:
        write_parquet = partial(frame.to_parquet, index=False)
        written.append(atomic_write(parquet, write_parquet, what="the prediction Parquet file"))
    return written


def parquet_beside(csv: Path) -> Path | None:
    """The Parquet file beside a prediction CSV (None without pyarrow), both checked."""
    check_output_file(csv, what="the prediction CSV")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return None
    parquet = csv.with_suffix(".parquet")
    if parquet == csv:
        raise InvalidInputError(
            f"the prediction CSV {str(csv)!r} ends in .parquet, the name of the Parquet file "
            "written beside it; give a .csv path (e.g. predictions.csv)."
        )
    return check_output_file(parquet, what="the prediction Parquet file")
