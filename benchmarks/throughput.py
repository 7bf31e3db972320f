"""Whole-pipeline throughput: read → detect → crop → normalise → classify → write.

Images are 2048 x 2048 simulated frames (``blobsift.simulate.simulate_image``, 1,000 spots
plus decoys), written as NPY files: the 8 flips/rotations of one cached simulation,
repeated. The detection threshold is bisected so that an image gives about 3,000
candidates (the issue's setting), whatever the detector's default. The model is a
``Sifter`` (the CNN ensemble of 3 members; with ``--predict-with refit`` the one refit
network; with ``--predict-with siamese`` Phase 1, the encoder and its gallery, which
``phase="auto"`` keeps most often) fitted briefly on simulated crops; its speed does not
depend on how well it was trained. Every scoring process loads it as batch runs do, with
``blobsift.classify.graph_model.load_predictor`` (the stored ONNX graph, no torch).

Parts, each in a fresh process:

* **Per-stage table** of one image, steady state (model loaded, best of 3), on 1 and on 2
  threads: ``io.open_image(...).read()``, ``detect_blobs``, ``extract_crops``,
  ``normalise_crops`` (on the model's window), the model's onnxruntime session and
  ``batch.write_predictions`` (CSV + Parquet), in seconds and % of their sum; then the
  whole path as ``predict_images`` runs it (``score_image`` on the opened file + write).
* **"sep + 1 CNN (78 MFLOP, onnxruntime)"**: the user's alternative on the same image and
  threads (``_sep_baseline.py``): sep background + extraction at a threshold bisected to
  the same candidate count, blobsift's crops, the specification's ``SignalClassifier`` on
  onnxruntime; its whole-image wall time and the ratio blobsift / sep. Without ``sep``
  (the ``bench`` dependency group) the row says so.
* **Memory** of one single-threaded scoring process: RSS after each step (imports, model,
  image, detection, crops, scoring) and the peak within it (``VmHWM``, reset per step), and
  a fresh process's peak with the model loaded and after two images (what one Dask worker
  thread adds on top of distributed itself), by ``load_predictor`` and, the baseline, by
  ``Sifter.load`` (torch). Target: at most 500 MB after loading.
* **Batch rows** (unless ``--stages-only``): ``predict_images(paths, model)`` in a fresh
  process on every core (``serial``), and on a ``distributed.LocalCluster`` of 2 worker
  processes x 1 thread (the model sent once to each worker is part of the timed run;
  starting the cluster is not). Ratios are to the serial row; ``s/image/core`` is wall
  time x cores / images; peak memory is each process's own ``VmHWM`` (``ru_maxrss`` of a
  spawned process includes its parent's peak).

    OMP_NUM_THREADS=2 python benchmarks/throughput.py                 # 16 images
    OMP_NUM_THREADS=2 python benchmarks/throughput.py --quick         # 4 images
    OMP_NUM_THREADS=2 python benchmarks/throughput.py --stages-only   # stages, sep, memory
    OMP_NUM_THREADS=2 python benchmarks/throughput.py --predict-with refit
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from _sep_baseline import ROW_NAME, sep_available, sep_threshold

SIZE, SPOTS, SEED = 2048, 1000, 0
TARGET_CANDIDATES = 3000  # per 2048 x 2048 image (issue 14's setting)


def _status_mb(field: str) -> float:
    """A size from ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return float(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    """This process's own peak RSS (``VmHWM``).

    Not ``getrusage``'s ``ru_maxrss``: a spawned process (a Dask worker, a pool process)
    inherits its parent's peak through fork + exec, so ``ru_maxrss`` overstates it.
    """
    return _status_mb("VmHWM")


def _reset_peak() -> None:
    """Start ``VmHWM`` again from the current RSS (Linux ``clear_refs`` 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def _serial(paths: list[str], model: str, threshold: float) -> tuple[float, int, float]:
    """Run in a fresh process: (seconds, candidates, peak RSS in MB)."""
    from blobsift import predict_images

    predict_images(paths[:1], model, threshold=threshold)  # warm-up: imports, session
    start = time.perf_counter()
    frame = predict_images(paths, model, threshold=threshold)
    return time.perf_counter() - start, len(frame), _peak_rss_mb()


def _stages(
    path: str, model: str, threads: int, threshold: float, sep_threshold: float | None
) -> dict:
    """Seconds per stage for one image, best of 3, in a fresh process on ``threads`` cores.

    Each stage is the library's own function: ``io.open_image(...).read()``,
    ``detect_blobs``, ``extract_crops``, ``normalise_crops`` (on the model's window),
    the model's onnxruntime session, ``batch.write_predictions``. ``whole`` is one call of
    ``score_image`` on the opened file plus the write, as ``predict_images`` does it.
    """
    from blobsift.batch import write_predictions
    from blobsift.classify.graph_model import GraphModel, load_predictor
    from blobsift.crops import centre_window, extract_crops, normalise_crops
    from blobsift.detect import DetectSettings, detect_blobs
    from blobsift.io import open_image
    from blobsift.scoring import prediction_table, score_image

    predictor = load_predictor(model, threads=threads)
    assert isinstance(predictor, GraphModel)
    settings = DetectSettings(threshold=threshold)
    out = Path(tempfile.mkdtemp(prefix="blobsift-stages-")) / "predictions.csv"
    best: dict[str, float] = {}
    for _ in range(3):
        times = [time.perf_counter()]
        with open_image(path) as lazy:
            image = lazy.read()
        times.append(time.perf_counter())
        found = detect_blobs(image, settings, n_threads=threads)
        times.append(time.perf_counter())
        crops = extract_crops(image, found)
        times.append(time.perf_counter())
        x = normalise_crops(np.ascontiguousarray(centre_window(crops, predictor.crop_size_)))
        times.append(time.perf_counter())
        probability = predictor._network_scores(x).astype(np.float64)
        times.append(time.perf_counter())
        table = prediction_table(path, found, probability, float(predictor.threshold_))
        write_predictions(table, out)
        times.append(time.perf_counter())
        names = ("read", "detect", "crop", "normalise", "classify", "write")
        for name, a, b in zip(names, times[:-1], times[1:], strict=True):
            best[name] = min(best.get(name, np.inf), b - a)
        start = time.perf_counter()
        with open_image(path) as lazy:
            frame = score_image(lazy, predictor, settings, name=path, n_threads=threads)
        write_predictions(frame, out)
        best["whole"] = min(best.get("whole", np.inf), time.perf_counter() - start)
        assert np.allclose(frame["probability"].to_numpy(), probability, atol=1e-6)
    result: dict = {"stages": best, "candidates": len(found)}
    if sep_threshold is not None:
        from _sep_baseline import sep_pipeline

        run = sep_pipeline(threads)
        sep_runs = [run(path, sep_threshold) for _ in range(3)]
        result["sep"] = min(sep_runs, key=lambda row: row["seconds"])
    return result


def _memory(path: str, model: str, threshold: float) -> list[tuple[str, float, float]]:
    """What one single-threaded worker's memory is made of: (step, RSS after, step peak) MB.

    The peak of each step is ``VmHWM`` reset just before it.
    """
    steps = []

    def step(name: str, run: Callable[[], Any]) -> Any:
        _reset_peak()
        result = run()
        steps.append((name, _status_mb("VmRSS"), _peak_rss_mb()))
        return result

    step("python + numpy", lambda: None)
    step("import blobsift.batch, scoring, io", lambda: __import__("blobsift.batch"))
    step("import onnxruntime", lambda: __import__("onnxruntime"))
    from blobsift.crops import extract_crops
    from blobsift.detect import DetectSettings, detect_blobs
    from blobsift.io import open_image
    from blobsift.scoring import score_candidates, score_image

    settings = DetectSettings(threshold=threshold)
    sifter = step("load_predictor, session made", lambda: _loaded(model, "load_predictor"))
    with open_image(path) as lazy:
        image = step("image read (float32)", lambda: np.array(lazy.read()))
    found = step("detect_blobs", lambda: detect_blobs(image, settings, n_threads=1))
    step("crops of all candidates", lambda: extract_crops(image, found))
    step("score_candidates", lambda: score_candidates(image, found, sifter))
    with open_image(path) as lazy:
        step("score_image (whole step)", lambda: score_image(lazy, sifter, settings, n_threads=1))
    assert "torch" not in __import__("sys").modules
    return steps


def _loaded(model: str, loader: str) -> Any:
    """The model on one thread, by ``load_predictor`` or ``Sifter.load``, session made."""
    if loader == "load_predictor":
        from blobsift.classify.graph_model import load_predictor

        predictor = load_predictor(model, threads=1)
    else:
        from blobsift import Sifter

        predictor = Sifter.load(model)
        predictor.limit_threads(1)
    predictor.predict_proba(np.zeros((2, 64, 64), np.float32))
    return predictor


def _worker_peak(path: str, model: str, threshold: float, loader: str) -> tuple[float, float]:
    """(peak MB with the model loaded, peak MB after scoring the image twice), fresh process.

    What a single-threaded worker holds: the imports, the model (by ``loader``:
    "load_predictor" or "Sifter.load") and one image's work.
    """
    import blobsift.batch  # noqa: F401  (what a worker imports anyway)
    from blobsift.detect import DetectSettings
    from blobsift.io import open_image
    from blobsift.scoring import score_image

    predictor = _loaded(model, loader)
    loaded = _peak_rss_mb()
    for _ in range(2):
        with open_image(path) as lazy:
            score_image(lazy, predictor, DetectSettings(threshold=threshold), n_threads=1)
    return loaded, _peak_rss_mb()


def _write_images(folder: Path, count: int) -> list[str]:
    from detection import load_image

    image, _ = load_image(SIZE, SPOTS, SEED)
    variants = [np.rot90(image, k) for k in range(4)]
    variants += [np.fliplr(v) for v in variants]
    paths = []
    for i in range(count):
        path = folder / f"frame{i:03d}.npy"
        np.save(path, np.ascontiguousarray(variants[i % len(variants)]))
        paths.append(str(path))
    return paths


def _fit_model(folder: Path, predict_with: str) -> str:
    from blobsift import Sifter
    from blobsift.simulate import simulate_crops

    data = simulate_crops(500, seed=0)
    if predict_with == "siamese":
        sifter = Sifter(phase="siamese", random_state=0)
    else:
        sifter = Sifter(phase="cnn", random_state=0, epochs=3, predict_with=predict_with)
    sifter.fit(data.crops, data.labels)
    stem = folder / "model"
    sifter.save(stem)
    return str(stem)


def _row(name: str, seconds: float, n_images: int, candidates: int, cores: int) -> dict:
    return {
        "name": name,
        "seconds": seconds,
        "images/s": n_images / seconds,
        "MP/s": n_images * SIZE * SIZE / 1e6 / seconds,
        "s/image/core": seconds * cores / n_images,
        "candidates/image": candidates / n_images,
    }


def _fresh(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a fresh (spawned) process."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def _print_stages(threads: int, result: dict, sep_ok: bool) -> None:
    stages = result["stages"]
    whole = stages.pop("whole")
    total = sum(stages.values())
    print(f"\none image, {result['candidates']} candidates, {threads} thread(s), best of 3")
    print(f"{'stage':<12}{'s':>8}{'%':>7}")
    for name, seconds in stages.items():
        print(f"{name:<12}{seconds:>8.3f}{100 * seconds / total:>7.1f}")
    print(f"{'sum':<12}{total:>8.3f}{100.0:>7.1f}")
    print(f"{'whole path':<12}{whole:>8.3f}   (open_image -> score_image -> write_predictions)")
    if "sep" in result:
        sep = result["sep"]
        print(
            f"{ROW_NAME}: {sep['seconds']:.3f} s for {sep['candidates']} candidates "
            f"(read + sep {sep['sep']:.3f}, crops + CNN {sep['cnn']:.3f}); "
            f"blobsift / sep = {whole / sep['seconds']:.2f}"
        )
    elif not sep_ok:
        print(f"{ROW_NAME}: not run, sep is not installed (pip install sep; group 'bench')")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16, help="images per run (default 16)")
    parser.add_argument("--quick", action="store_true", help="4 images")
    parser.add_argument(
        "--stages-only", action="store_true", help="only the per-stage tables and memory"
    )
    parser.add_argument(
        "--predict-with",
        choices=("ensemble", "refit", "siamese"),
        default="ensemble",
        help="what predicts: Phase 2's 3-member ensemble (default) or its one refit "
        "network, or Phase 1's encoder and gallery",
    )
    args = parser.parse_args()
    n_images = 4 if args.quick else args.images
    cores = len(os.sched_getaffinity(0))

    with tempfile.TemporaryDirectory(prefix="blobsift-throughput-") as folder:
        folder = Path(folder)
        paths = _write_images(folder, 1 if args.stages_only else n_images)
        model = _fit_model(folder, args.predict_with)
        threshold, target = _fresh(_threshold_for, paths[0], TARGET_CANDIDATES)
        print(f"model: {args.predict_with}; detection threshold {threshold:.3f} gives ", end="")
        print(f"{target} candidates (target {TARGET_CANDIDATES})")
        sep_ok = sep_available()
        sep_at = None
        if sep_ok:
            from blobsift.io import open_image

            with open_image(paths[0]) as lazy:
                data = np.require(lazy.read(), np.float32, ["C", "W"])
            sep_at = sep_threshold(data, target)
        for threads in (1, 2):
            stages = _fresh(_stages, paths[0], model, threads, threshold, sep_at)
            _print_stages(threads, stages, sep_ok)
        print("\nmemory of one single-threaded scoring process (MB)")
        print(f"  {'step':<38}{'RSS after':>10}{'peak in step':>13}")
        for step, current, peak in _fresh(_memory, paths[0], model, threshold):
            print(f"  {step:<38}{current:>10.0f}{peak:>13.0f}")
        for loader in ("load_predictor", "Sifter.load"):
            loaded, peak = _fresh(_worker_peak, paths[0], model, threshold, loader)
            print(
                f"  fresh process, {loader + ':':<16} peak {loaded:.0f} with the model loaded, "
                f"{peak:.0f} after 2 images"
            )
        if not args.stages_only:
            _batch_rows(paths, model, n_images, cores, threshold)


def _threshold_for(path: str, target: int) -> tuple[float, int]:
    """The detection threshold giving 98-100 % of ``target`` candidates, and the count."""
    from blobsift.detect import detect_blobs
    from blobsift.io import open_image
    from detection import bisect_threshold

    with open_image(path) as lazy:
        image = np.asarray(lazy.read())

    def run(threshold: float) -> Any:
        return detect_blobs(image, threshold=threshold)

    threshold = bisect_threshold(run, target, 1.0, 20.0, 14)
    return threshold, len(run(threshold))


def _batch_rows(paths: list[str], model: str, n_images: int, cores: int, threshold: float) -> None:
    """The serial and LocalCluster rows over ``n_images`` images."""
    import distributed

    from blobsift import predict_images

    seconds, candidates, serial_rss = _fresh(_serial, paths, model, threshold)
    rows = [_row("serial", seconds, n_images, candidates, cores)]
    start = time.perf_counter()
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,  # no fixed port: never collides with another run
            worker_dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        client.wait_for_workers(2, timeout=120)
        startup = time.perf_counter() - start
        predict_images(paths[:2], model, scheduler=client, threshold=threshold)  # warm-up
        start = time.perf_counter()
        frame = predict_images(paths, model, scheduler=client, threshold=threshold)
        seconds = time.perf_counter() - start
        worker_rss = client.run(_peak_rss_mb)
    rows.append(_row("LocalCluster 2x1", seconds, n_images, len(frame), cores))

    base = rows[0]["seconds"]
    print(f"\n{n_images} images of {SIZE}x{SIZE} on {cores} cores; cluster start {startup:.1f} s")
    header = (
        f"{'run':<18}{'s':>8}{'images/s':>10}{'MP/s':>8}{'s/img/core':>12}"
        f"{'cand/img':>10}{'speed x':>9}"
    )
    print(header)
    for row in rows:
        print(
            f"{row['name']:<18}{row['seconds']:>8.2f}{row['images/s']:>10.3f}{row['MP/s']:>8.2f}"
            f"{row['s/image/core']:>12.2f}{row['candidates/image']:>10.0f}"
            f"{base / row['seconds']:>9.2f}"
        )
    print(f"peak memory: serial process {serial_rss:.0f} MB; ", end="")
    print("workers " + ", ".join(f"{mb:.0f} MB" for mb in sorted(worker_rss.values())))


if __name__ == "__main__":
    main()
