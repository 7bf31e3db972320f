"""The demo: the whole path of a project on built-in simulated images.

:func:`run_demo` does what a user does, with a simulated labeller who knows the answer, on
one simulated domain (:data:`DEMO_DOMAINS`: fluorescence-like spots, or astronomical
difference images); :func:`run_demos` runs it on each domain, one project per domain:

1. **simulate** training images and *new* images as TIFF files, with their ground truth
   in ``truth.csv`` beside them (:func:`~blobsift.simulate.write_simulated_images`);
2. **init** a project in the output folder with the training images and **detect** their
   candidates (a low threshold, so that false candidates outnumber real ones about 10:1);
3. **label in rounds**: the labeller labels the candidates in one seeded order, round after
   round: a candidate near a true spot as signal, every other as noise
   (:func:`~blobsift.simulate.truth_labels`);
4. **train** after each round with ``Project.train(phase="auto")``, which picks the phase
   and records why;
5. **predict**: every model version sifts the new images (outside the project) and is
   scored against their ground truth, beside the trivial baselines trained on the same
   labels (:data:`BASELINES`: the brightness cut and the feature forest);
6. **report**: the HTML report of the last model
   (:func:`~blobsift.report.write_report`), whose F1 figure also shows the F1 on
   the new images.

The library prints nothing: progress goes to a callback and the results come back as a
:class:`DemoResult`; :func:`summary_lines` turns it into the table ``blobsift demo``
prints.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from math import ceil
from pathlib import Path
from typing import Any

import numpy as np

from blobsift._validation import check_choice
from blobsift.classify.baselines import BrightnessCut, FeatureForest, centre_features
from blobsift.crops import crops_for
from blobsift.exceptions import InvalidInputError
from blobsift.metrics import MIN_HELDOUT_POSITIVES, precision_recall_f1, too_few_positives
from blobsift.report import SPEC_EXPECTED_F1
from blobsift.simulate import truth_labels, write_simulated_images
from blobsift.splits import nested_order
from blobsift.types import Progress, ProgressEvent

__all__ = [
    "BASELINES",
    "DEMO_DOMAINS",
    "DemoDomain",
    "DemoResult",
    "DemoRound",
    "run_demo",
    "run_demos",
    "summary_lines",
]


@dataclass(frozen=True)
class DemoDomain:
    """How the demo simulates, detects and labels one domain.

    Attributes
    ----------
    image_options : dict
        :func:`~blobsift.simulate.write_simulated_images` arguments of every image.
    detect_settings : dict
        ``Project.detect`` settings.
    candidates_per_image : int
        A little under what the detector finds in one image, to size the training set.
    label_counts : tuple of int
        Labels after each round (each round labels up to the next count).
    """

    image_options: dict[str, Any]
    detect_settings: dict[str, Any]
    candidates_per_image: int
    label_counts: tuple[int, ...]


#: The demo's domains. Spots: at 3 noise sigmas a 512 x 512 image gives about 440
#: candidates, about 1 real : 11 false. Difference imaging: ``detect_blobs`` at 5 sigmas
#: on a 512 x 512 difference image gives about 75, about 1 real : 7 false (dipoles, star
#: residuals, cosmic rays and hot pixels; see :mod:`blobsift.simulate`). Training
#: dominates the demo's time: spots have no round at 500 and difference imaging none at
#: 1,000 (that would need 40 images), to keep the demo short.
DEMO_DOMAINS: dict[str, DemoDomain] = {
    "spots": DemoDomain(
        image_options={"domain": "spots", "shape": (512, 512), "n_spots": 40,
                       "decoys_per_spot": 2.0},
        detect_settings={"threshold": 3.0},
        candidates_per_image=400,
        label_counts=(25, 50, 100, 250, 1000),
    ),
    "difference": DemoDomain(
        image_options={"domain": "difference", "shape": (512, 512)},
        detect_settings={"threshold": 5.0},
        candidates_per_image=60,
        label_counts=(25, 50, 100, 250, 500),
    ),
}  # fmt: skip
#: The trivial baselines every round also trains on its labels and scores on the new
#: images (:mod:`blobsift.classify.baselines`): what the learner adds is the difference.
BASELINES = ("brightness cut", "forest")
_LABELLED_SHARE = 1 / 3  # the labeller labels at most this share of the candidates
_MARKER = "demo.json"
_WHO = "simulated labeller"


@dataclass(frozen=True)
class DemoRound:
    """One labelling round of the demo: its labels, its model and how it does.

    Attributes
    ----------
    labels, positives : int
        Labels in the project after this round, and how many of them are signal.
    model_id : int
        The model version trained on them.
    phase, phase_reason : str
        The phase ``Project.train(phase="auto")`` picked, and why.
    f1, precision, recall : float
        Scores of the model's decisions on the candidates of the new images, against
        their ground truth.
    oof_f1 : float or None
        The F1 the project recorded for the model: out-of-fold, on its own labels; None
        if not recorded or if the labels hold too few positives to estimate it (fewer
        than :data:`~blobsift.metrics.MIN_HELDOUT_POSITIVES`).
    seconds : float
        Training time.
    expected : (float, float) or None
        The specification's expected F1 range at this label count.
    baselines : dict
        F1 of each of :data:`BASELINES` on the same new images, trained on the same labels.
    """

    labels: int
    positives: int
    model_id: int
    phase: str
    phase_reason: str
    f1: float
    precision: float
    recall: float
    oof_f1: float | None
    seconds: float
    expected: tuple[float, float] | None
    baselines: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` did and where it put things.

    Attributes
    ----------
    domain : str
        The simulated domain (a key of :data:`DEMO_DOMAINS`).
    project : Path
        The project folder.
    rounds : list of DemoRound
        One per label count.
    new_images : int
        New images the models were scored on.
    new_candidates, new_signal : int
        Candidates the detector found in them, and how many are real.
    report : Path
        The report's ``index.html``.
    predictions : list of Path
        The last model's predictions on the new images (CSV, Parquet, overlay PNGs).
    seconds : float
        Wall time of the whole demo.
    """

    domain: str
    project: Path
    rounds: list[DemoRound]
    new_images: int
    new_candidates: int
    new_signal: int
    report: Path
    predictions: list[Path]
    seconds: float


def run_demo(
    output: str | os.PathLike[str],
    *,
    domain: str = "spots",
    label_counts: Sequence[int] | None = None,
    train_images: int | None = None,
    new_images: int = 6,
    seed: int = 0,
    progress: Progress | None = None,
    **train_options: Any,
) -> DemoResult:
    """Run the whole path on simulated images: detect, label in rounds, train, predict, report.

    Parameters
    ----------
    output : path-like
        The project folder to create. A folder an earlier demo wrote (it holds
        ``demo.json``) is replaced; any other folder must be empty or missing.
    domain : str
        The simulated domain, a key of :data:`DEMO_DOMAINS`.
    label_counts : sequence of int, optional
        Labels after each round, increasing; a model is trained at each. By default the
        domain's (:attr:`DemoDomain.label_counts`).
    train_images : int, optional
        Simulated images in the project; by default enough that the labeller labels at most
        a third of their candidates.
    new_images : int
        Simulated images outside the project that every model is scored on.
    seed : int
        Seed of the images, the labelling order and the training.
    progress : Progress, optional
        Called with a :class:`~blobsift.types.ProgressEvent` as the demo goes: the stages
        of :class:`~blobsift.project.Project` (``"detect"``, ``"epoch"``, ``"predict"`` ...)
        and of the report (``"report"``, ``"overlays"``); and the demo's own: ``"round"``
        before each round (``done`` rounds begun of ``total``; details ``domain``,
        ``labels``, ``positives``) and ``"scored"`` after it (details: the fields of its
        :class:`DemoRound`).
    **train_options
        Further ``Project.train`` options (e.g. ``epochs``, ``pretrain``).

    Returns
    -------
    DemoResult

    Raises
    ------
    InvalidInputError
        If ``domain`` is unknown, ``label_counts`` is not increasing and positive,
        ``new_images`` is below 1, there are too few candidates for the last count, or
        ``output`` is a non-empty folder that no demo wrote.
    """
    from blobsift.batch import write_predictions
    from blobsift.project import Project
    from blobsift.report import write_overlays, write_report

    started = time.perf_counter()
    check_choice(domain, tuple(DEMO_DOMAINS), name="domain")
    settings = DEMO_DOMAINS[domain]
    counts = [int(count) for count in (label_counts or settings.label_counts)]
    if not counts or counts[0] < 1 or any(b <= a for a, b in pairwise(counts)):
        raise InvalidInputError(f"label_counts must be positive and increasing; got {counts}.")
    if new_images < 1:
        raise InvalidInputError(f"new_images must be at least 1; got {new_images}.")
    if train_images is None:
        per_image = _LABELLED_SHARE * settings.candidates_per_image
        train_images = max(2, ceil(counts[-1] / per_image))
    report = progress or (lambda event: None)
    root = _fresh_folder(output)
    (root / _MARKER).write_text(json.dumps({"status": "running", "seed": seed}))

    options = settings.image_options
    train_truth = _simulate(root / "images", train_images, seed * 1000, "train", options)
    new_truth = _simulate(root / "new-images", new_images, seed * 1000 + 500, "new", options)
    truth = {path.name: objects for path, objects in {**train_truth, **new_truth}.items()}
    new_paths = list(new_truth)
    with Project.create(root) as project:
        project.add_images(list(train_truth))
        project.detect(progress=progress, **settings.detect_settings)
        candidates = project.candidates()
        labels = truth_labels(candidates, truth, project.match_radius)
        order = _labelling_order(candidates, labels, project.match_radius, seed)
        if len(order) < counts[-1]:
            raise InvalidInputError(
                f"the {train_images} training images give {len(order)} candidates to label, "
                f"fewer than {counts[-1]}; pass more train_images."
            )
        rounds: list[DemoRound] = []
        baselines = _Baselines(project, candidates.iloc[order[: counts[-1]]], labels[order])
        done = 0
        for k, count in enumerate(counts, start=1):
            batch = candidates.iloc[order[done:count]]
            project.add_labels(
                batch["image_id"].tolist(),
                batch["row"].tolist(),
                batch["col"].tolist(),
                labels[order[done:count]].tolist(),
                who=_WHO,
                source="demo",
            )
            done = count
            positives = int(labels[order[:count]].sum())
            report(
                ProgressEvent(
                    stage="round",
                    done=k,
                    total=len(counts),
                    details={"domain": domain, "labels": count, "positives": positives},
                )
            )
            start = time.perf_counter()
            record = project.train(
                phase="auto", random_state=seed, progress=progress, **train_options
            )
            seconds = time.perf_counter() - start
            frame = project.predict(new_paths, model=record.id, progress=progress)
            names = frame.assign(image=[Path(image).name for image in frame["image"]])
            real = truth_labels(names, truth, project.match_radius)
            scores = precision_recall_f1(real, frame["decision"].to_numpy())
            oof_f1 = record.metrics.get("f1")
            if too_few_positives(record.n_positive):
                oof_f1 = None
            rounds.append(
                DemoRound(
                    labels=count,
                    positives=positives,
                    model_id=record.id,
                    phase=record.phase,
                    phase_reason=record.phase_reason,
                    f1=scores["f1"],
                    precision=scores["precision"],
                    recall=scores["recall"],
                    oof_f1=oof_f1,
                    seconds=seconds,
                    expected=SPEC_EXPECTED_F1.get(count),
                    baselines=baselines.f1(count, frame, real, seed),
                )
            )
            report(
                ProgressEvent(stage="scored", done=k, total=len(counts), details=asdict(rounds[-1]))
            )
        written = write_predictions(frame, root / "predictions" / "new-images.csv")
        written += write_overlays(
            project, frame, root / "predictions" / "new-images-overlays", progress=progress
        )
        index = write_report(
            project,
            progress=progress,
            f1_curves={
                "F1 on new images (ground truth)": (
                    [r.labels for r in rounds],
                    [r.f1 for r in rounds],
                )
            },
        )
    result = DemoResult(
        domain=domain,
        project=root,
        rounds=rounds,
        new_images=len(new_paths),
        new_candidates=len(frame),
        new_signal=int(real.sum()),
        report=index,
        predictions=written,
        seconds=time.perf_counter() - started,
    )
    (root / _MARKER).write_text(json.dumps(asdict(result), indent=2, default=str))
    return result


def run_demos(
    output: str | os.PathLike[str],
    domains: Sequence[str] = tuple(DEMO_DOMAINS),
    *,
    label_counts: Sequence[int] | None = None,
    rounds: int | None = None,
    **options: Any,
) -> dict[str, DemoResult]:
    """Run :func:`run_demo` on each domain, one project each in ``output/<domain>``.

    Parameters
    ----------
    output : path-like
        The folder of the projects. A folder an earlier run wrote (it holds ``demo.json``)
        is replaced; any other folder must be empty or missing.
    domains : sequence of str
        Keys of :data:`DEMO_DOMAINS`, run in this order.
    label_counts : sequence of int, optional
        Labels after each round, for every domain; by default each domain's
        (:attr:`DemoDomain.label_counts`).
    rounds : int, optional
        Without ``label_counts``: only each domain's first ``rounds`` rounds.
    **options
        Further :func:`run_demo` arguments (``new_images``, ``seed``, ``progress``, and
        ``Project.train`` options).

    Returns
    -------
    dict
        Domain -> its :class:`DemoResult`, in the order run.

    Raises
    ------
    InvalidInputError
        If ``domains`` is empty or names an unknown or repeated domain, or as
        :func:`run_demo` does.
    """
    names = [check_choice(name, tuple(DEMO_DOMAINS), name="domain") for name in domains]
    if not names or len(set(names)) != len(names):
        raise InvalidInputError(
            f"domains must name each of {list(DEMO_DOMAINS)} at most once, and one at "
            f"least; got {names}."
        )
    root = _fresh_folder(output)
    (root / _MARKER).write_text(json.dumps({"status": "running", "domains": names}))
    results = {
        name: run_demo(
            root / name,
            domain=name,
            label_counts=label_counts or DEMO_DOMAINS[name].label_counts[:rounds],
            **options,
        )
        for name in names
    }
    summary = {name: str(result.project) for name, result in results.items()}
    (root / _MARKER).write_text(json.dumps({"projects": summary}, indent=2))
    return results


class _Baselines:
    """The baselines of every round, with each crop's features computed once.

    ``labelled`` holds the candidates in labelling order and ``labels`` their labels: a
    round with ``count`` labels trains on the first ``count``.
    """

    def __init__(self, project: Any, labelled: Any, labels: np.ndarray) -> None:
        self.crops = crops_for(labelled.reset_index(drop=True), project.read_image)
        self.labels = labels[: len(labelled)]
        self.features = centre_features(self.crops)
        self.new: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _new_crops(self, frame: Any) -> tuple[np.ndarray, np.ndarray]:
        """Crops and features of the candidates of ``frame`` (kept while they stay the same)."""
        from blobsift.io import read_image

        positions = frame[["row", "col"]].to_numpy()
        if self.new is None or not np.array_equal(self.new[0], positions):
            crops = crops_for(frame, read_image, image_column="image")
            self.new = (positions, crops, centre_features(crops))
        return self.new[1], self.new[2]

    def f1(self, count: int, frame: Any, real: np.ndarray, seed: int) -> dict[str, float]:
        """F1 on the candidates of ``frame`` of each baseline trained on ``count`` labels."""
        crops, features = self._new_crops(frame)
        x, y = self.crops[:count], self.labels[:count]
        cut = BrightnessCut().fit(x, y).predict(crops)
        forest = FeatureForest(random_state=seed).fit_features(self.features[:count], y)
        decisions = {"brightness cut": cut, "forest": forest.predict_from_features(features)}
        return {name: precision_recall_f1(real, decisions[name])["f1"] for name in BASELINES}


def summary_lines(result: DemoResult) -> list[str]:
    """The demo's summary: a table of the rounds, the phase history and where things are.

    Parameters
    ----------
    result : DemoResult
        What :func:`run_demo` returned.

    Returns
    -------
    list of str
        Lines of text (``blobsift demo`` prints them).
    """
    from blobsift._version import __version__

    names = list(result.rounds[0].baselines) if result.rounds else []
    heads = "".join(f" {_short(name):>6}" for name in names)
    lines = [
        f"blobsift {__version__} demo, {result.domain}: {result.rounds[-1].labels} labels in "
        f"{len(result.rounds)} rounds; every model scored on {result.new_images} new image(s) "
        f"({result.new_candidates} candidates, {result.new_signal} real) against their truth",
        "",
        f"labels signal phase      F1   prec recall{heads}   oof F1 train s  spec expects",
    ]
    lines.append("-" * len(lines[-1]))
    for r in result.rounds:
        expected = "-"
        if r.expected:
            low, high = r.expected
            verdict = "above" if r.f1 > high else "within" if r.f1 >= low else "below"
            expected = f"{low:.2f}-{high:.2f} {verdict}"
        oof = "too few" if too_few_positives(r.positives) else _number(r.oof_f1)
        cells = "".join(f" {_number(r.baselines.get(name)):>6}" for name in names)
        lines.append(
            f"{r.labels:>6} {r.positives:>6} {r.phase:<8} {r.f1:5.3f} {r.precision:6.3f} "
            f"{r.recall:6.3f}{cells} {oof:>8} {r.seconds:7.1f}  {expected}"
        )
    legend = (
        "F1, prec, recall: of the model on the new images"
        + "".join(f"; {_short(name)}: F1 of the {name}" for name in names)
        + ", trained on the same labels, on the same new images; oof F1: out-of-fold on the "
        f"labels (too few: fewer than {MIN_HELDOUT_POSITIVES} signal labels, too few "
        "positives to estimate); train s: training seconds, with Phase 1's pre-training on "
        "unlabelled candidates (once)"
    )
    lines += [
        "",
        *textwrap.wrap(legend, width=88),
        "",
        "phase history (why each model has its phase):",
        *[
            textwrap.fill(
                f"model {r.model_id}, {r.phase}: {r.phase_reason}",
                width=88,
                initial_indent="  ",
                subsequent_indent="    ",
            )
            for r in result.rounds
        ],
    ]
    overlays = {path.parent for path in result.predictions if path.suffix == ".png"}
    lines += [
        "",
        f"report:      {result.report}",
        f"project:     {result.project}",
        *[f"predictions: {path}" for path in result.predictions if path.suffix != ".png"],
        *[f"overlays:    {folder}" for folder in overlays],
        f"took {result.seconds:.0f} s",
    ]
    return lines


def _short(name: str) -> str:
    """A table heading for a baseline's name: "brightness cut" -> "cut"."""
    return name.split()[-1]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _simulate(
    folder: Path, n: int, seed: int, prefix: str, options: dict[str, Any]
) -> dict[Path, Any]:
    """Write ``n`` demo images and ``truth.csv`` (their objects) into ``folder``."""
    import pandas as pd

    written = write_simulated_images(folder, n, seed=seed, prefix=prefix, **options)
    table = pd.concat({path.name: objects for path, objects in written.items()}, names=["image"])
    table.reset_index(level="image").to_csv(folder / "truth.csv", index=False, float_format="%.4f")
    return written


def _fresh_folder(output: str | os.PathLike[str]) -> Path:
    """Return ``output`` made empty: missing, empty, or an earlier demo's (then removed)."""
    root = Path(output).resolve()
    if (root / _MARKER).is_file():
        shutil.rmtree(root)
    elif root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise InvalidInputError(
            f"{str(root)!r} exists and is not an earlier demo's folder (no {_MARKER}); the "
            "demo needs a new or empty folder."
        )
    root.mkdir(parents=True, exist_ok=True)
    return root


def _labelling_order(candidates: Any, labels: np.ndarray, radius: float, seed: int) -> np.ndarray:
    """The order in which the simulated labeller labels candidates (row positions).

    Seeded and stratified: every prefix holds the share of signal of the whole pool, so
    even the first 25 labels hold about two signal. Of two candidates within ``radius`` of
    each other in one image only the one found first is labelled, since the project would
    join their labels into one position.
    """
    from blobsift.positions import close_pairs

    keep = np.ones(len(candidates), dtype=bool)
    positions = candidates[["row", "col"]].to_numpy()
    keep[close_pairs(positions, candidates["image_id"].to_numpy(), radius)[:, 1]] = False
    pool = np.random.default_rng(seed).permutation(np.flatnonzero(keep))
    return pool[nested_order(labels[pool])]
