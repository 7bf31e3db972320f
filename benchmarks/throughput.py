"""Whole-pipeline throughput: read → detect → crop → classify, serial vs a LocalCluster.

Images are 2048 x 2048 simulated frames (``blobsift.simulate.simulate_image``, 1,000 spots
plus decoys; about 2,900 candidates each at the default threshold), written as NPY files:
the 8 flips/rotations of one cached simulation, repeated. The model is a ``Sifter`` (the
default CNN ensemble of 3 members) fitted briefly on simulated crops; its speed does not
depend on how well it was trained.

Rows:

* ``serial``: ``predict_images(paths, model)``, in a fresh process, using every core
  through threaded detection and onnxruntime (the default).
* ``LocalCluster 2x1``: ``predict_images(..., scheduler=client)`` on a
  ``distributed.LocalCluster`` of 2 worker processes with 1 thread each (the model sent
  once to each worker is part of the timed run; starting the cluster is not).

Ratios are to the serial row of the same run. ``s/image/core`` is wall time x cores /
images. Peak memory is the peak resident set size of the serial process and of each worker
process.

    python benchmarks/throughput.py            # 16 images
    python benchmarks/throughput.py --quick    # 4 images
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from blobsift import Sifter, predict_images
from blobsift.simulate import simulate_crops
from detection import load_image

SIZE, SPOTS, SEED = 2048, 1000, 0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _serial(paths: list[str], model: str) -> tuple[float, int, float]:
    """Run in a fresh process: (seconds, candidates, peak RSS in MB)."""
    predict_images(paths[:1], model)  # warm-up: imports, onnxruntime session
    start = time.perf_counter()
    frame = predict_images(paths, model)
    return time.perf_counter() - start, len(frame), _peak_rss_mb()


def _stages(path: str, model: str) -> dict[str, float]:
    """Seconds per stage for one image, best of 3, in a fresh single-threaded process."""
    import torch

    from blobsift.crops import extract_crops
    from blobsift.detect import detect_blobs
    from blobsift.io import read_image

    torch.set_num_threads(1)
    sifter = Sifter.load(model)
    sifter.estimator_.backend = "onnx"
    best: dict[str, float] = {}
    for _ in range(3):
        times = [time.perf_counter()]
        image = read_image(path)
        times.append(time.perf_counter())
        found = detect_blobs(image, n_threads=1)
        times.append(time.perf_counter())
        crops = extract_crops(image, found)
        times.append(time.perf_counter())
        sifter.predict_proba(crops)
        times.append(time.perf_counter())
        names = ("read", "detect", "crop", "classify")
        for name, a, b in zip(names, times[:-1], times[1:], strict=True):
            best[name] = min(best.get(name, np.inf), b - a)
    return best


def _write_images(folder: Path, count: int) -> list[str]:
    image, _ = load_image(SIZE, SPOTS, SEED)
    variants = [np.rot90(image, k) for k in range(4)]
    variants += [np.fliplr(v) for v in variants]
    paths = []
    for i in range(count):
        path = folder / f"frame{i:03d}.npy"
        np.save(path, np.ascontiguousarray(variants[i % len(variants)]))
        paths.append(str(path))
    return paths


def _fit_model(folder: Path) -> str:
    data = simulate_crops(500, seed=0)
    sifter = Sifter(phase="cnn", random_state=0, epochs=3).fit(data.crops, data.labels)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16, help="images per run (default 16)")
    parser.add_argument("--quick", action="store_true", help="4 images")
    args = parser.parse_args()
    n_images = 4 if args.quick else args.images
    cores = len(os.sched_getaffinity(0))

    import distributed

    with tempfile.TemporaryDirectory(prefix="blobsift-throughput-") as folder:
        folder = Path(folder)
        paths = _write_images(folder, n_images)
        model = _fit_model(folder)

        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            seconds, candidates, serial_rss = pool.submit(_serial, paths, model).result()
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            stages = pool.submit(_stages, paths[0], model).result()
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
            predict_images(paths[:2], model, scheduler=client)  # warm-up, as for serial
            start = time.perf_counter()
            frame = predict_images(paths, model, scheduler=client)
            seconds = time.perf_counter() - start
            worker_rss = client.run(_peak_rss_mb)
        rows.append(_row("LocalCluster 2x1", seconds, n_images, len(frame), cores))

    base = rows[0]["seconds"]
    print(f"{n_images} images of {SIZE}x{SIZE} on {cores} cores; cluster start {startup:.1f} s")
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
    parts = ", ".join(f"{name} {value:.2f}" for name, value in stages.items())
    print(f"one image on one core (s): {parts}; total {sum(stages.values()):.2f}")
    print(f"peak memory: serial process {serial_rss:.0f} MB; ", end="")
    print("workers " + ", ".join(f"{mb:.0f} MB" for mb in sorted(worker_rss.values())))


if __name__ == "__main__":
    main()
