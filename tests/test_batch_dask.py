"""predict_images: here and on a real distributed.LocalCluster; failures, resume, tiles."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import numpy as np
import pandas as pd
import pytest

from blobsift import Sifter, predict_images
from blobsift.simulate import simulate_crops, simulate_image

distributed = pytest.importorskip("distributed")

DETECT = {"threshold": 5.0}
N_IMAGES = 4


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    data = simulate_crops(120, seed=0)
    sifter = Sifter(phase="cnn", random_state=0, epochs=2).fit(data.crops, data.labels)
    path = tmp_path_factory.mktemp("model") / "model"
    sifter.save(path)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for seed in range(N_IMAGES):
        path = folder / f"image{seed}.npy"
        np.save(path, simulate_image((192, 256), n_spots=15, seed=seed).image)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def serial(images, model_file):
    return predict_images(images, model_file, **DETECT)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,  # no fixed port 8787: suites on one machine never collide
        worker_dashboard_address=None,
    ) as local_cluster:
        yield local_cluster


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster, timeout="60s", set_as_default=False) as connected:
        connected.wait_for_workers(2, timeout=60)
        yield connected


def _journal(output):
    with open(str(output) + ".status.jsonl") as handle:
        return [json.loads(line) for line in handle]


def _by_position(frame):
    return frame.sort_values(["image", "row", "col"]).reset_index(drop=True)


def _assert_same(left, right, atol=1e-6):
    left, right = _by_position(left), _by_position(right)
    assert left["image"].tolist() == right["image"].tolist()
    for column in ("row", "col", "sigma", "score", "probability"):
        np.testing.assert_allclose(left[column], right[column], atol=atol, rtol=1e-5)
    assert (left["decision"] == right["decision"]).mean() > 0.99


def test_serial_finds_candidates_in_every_image(serial, images):
    assert list(serial.columns) == [
        "image", "row", "col", "sigma", "score", "probability", "decision"
    ]  # fmt: skip
    assert list(dict.fromkeys(serial["image"])) == images  # in the order given
    assert serial["probability"].between(0, 1).all()
    assert serial.attrs["failed"] == {}


def test_cluster_gives_the_serial_result(client, images, model_file, serial):
    seen = []
    frame = predict_images(images, model_file, scheduler=client, progress=seen.append, **DETECT)
    _assert_same(frame, serial)
    assert list(dict.fromkeys(frame["image"])) == images
    assert all(event.stage == "predict" for event in seen)
    assert seen[0].done == 0
    assert "dashboard" in seen[0].details
    assert [event.done for event in seen[1:]] == list(range(1, N_IMAGES + 1))
    assert all(event.details["status"] == "done" for event in seen[1:])


def test_cluster_takes_a_fitted_sifter_and_a_scheduler_address(cluster, images, model_file):
    sifter = Sifter.load(model_file)
    frame = predict_images(images[:2], sifter, scheduler=cluster.scheduler_address, **DETECT)
    expected = predict_images(images[:2], sifter, **DETECT)
    _assert_same(frame, expected)


def _loaded_models(dask_worker):
    return [
        (name, id(plugin.model))
        for name, plugin in dask_worker.plugins.items()
        if name.startswith("blobsift-model") and plugin.model is not None
    ]


def test_the_model_is_loaded_once_per_worker_and_removed_afterwards(client, images, model_file):
    snapshots = []

    def look(event):
        if event.done in (1, N_IMAGES - 1) and event.item is not None:
            snapshots.append(client.run(_loaded_models))

    predict_images(images, model_file, scheduler=client, progress=look, **DETECT)
    assert len(snapshots) == 2
    # One model per worker, the same object all run long (loaded once, not per task).
    assert snapshots[0] == snapshots[1]
    assert len(snapshots[0]) == 2
    assert all(len(models) == 1 for models in snapshots[0].values())
    assert all(models == [] for models in client.run(_loaded_models).values())


def test_a_corrupt_image_is_recorded_and_the_rest_completes(
    client, images, model_file, serial, tmp_path
):
    bad = tmp_path / "corrupt.tif"
    bad.write_bytes(b"II*\x00" + b"\x00" * 20)
    wrong = tmp_path / "stack.npy"
    np.save(wrong, np.zeros((3, 40, 40), np.float32))
    paths = [images[0], str(bad), images[1], str(wrong)]
    for scheduler in (None, client):
        frame = predict_images(paths, model_file, scheduler=scheduler, **DETECT)
        assert set(frame.attrs["failed"]) == {str(bad), str(wrong)}
        assert "TIFF" in frame.attrs["failed"][str(bad)]
        assert "pages" in frame.attrs["failed"][str(wrong)]
        _assert_same(frame, serial[serial["image"].isin(images[:2])])


def test_a_worker_killed_mid_run_still_completes_every_image_once(
    client, images, model_file, serial, tmp_path
):
    pids = client.run(os.getpid)
    killed = []

    def kill_one_worker(event):
        if killed or event.done < 1 or "dashboard" in event.details:
            return
        busy = [address for address, tasks in client.processing().items() if tasks]
        address = busy[0] if busy else next(iter(pids))
        os.kill(pids[address], signal.SIGKILL)
        killed.append(address)

    paths = images * 2  # the same pixels under other names: more tasks in flight
    copies = []
    for i, path in enumerate(paths):
        copy = tmp_path / f"copy{i}.npy"
        shutil.copyfile(path, copy)
        copies.append(str(copy))
    output = tmp_path / "out.csv"
    frame = predict_images(
        copies, model_file, scheduler=client, output=output, progress=kill_one_worker, **DETECT
    )
    assert killed
    journal = _journal(output)
    assert sorted(r["image"] for r in journal) == sorted(copies)
    assert all(r["status"] == "done" for r in journal)
    assert frame.attrs["failed"] == {}
    expected = serial.set_index("image").loc[paths].reset_index()
    expected["image"] = np.repeat(copies, [int((serial["image"] == p).sum()) for p in paths])
    _assert_same(frame, expected)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the worker


def test_output_is_written_as_images_finish_and_resumes(images, model_file, serial, tmp_path):
    output = tmp_path / "out.csv"
    seen = []

    def interrupt(event):
        seen.append(event.item)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_images(images, model_file, output=output, progress=interrupt, **DETECT)
    finished = set(seen)
    assert len(finished) == 2
    assert not output.exists()  # the final name is whole or absent
    partial_output = tmp_path / "out.csv.partial"
    partial = pd.read_csv(partial_output)
    assert set(partial["image"]) == finished
    rest = [image for image in images if image not in finished]
    # Simulate a crash while another image's rows were being written.
    with open(partial_output, "a") as handle:
        handle.write(f"{rest[0]},1.0,2.0,1.0")
    with open(str(output) + ".status.jsonl", "a") as handle:
        handle.write('{"image": "cut off')

    redone = []
    frame = predict_images(images, model_file, output=output, progress=redone.append, **DETECT)
    assert sorted(event.item for event in redone) == sorted(rest)
    assert redone[0].done == 3
    _assert_same(frame, serial)
    _assert_same(pd.read_csv(output), serial)
    assert not partial_output.exists()


def test_parquet_output_resumes(images, model_file, serial, tmp_path):
    output = tmp_path / "out.parquet"
    first = predict_images(images[:2], model_file, output=output, **DETECT)
    _assert_same(first, serial[serial["image"].isin(images[:2])])
    calls = []
    frame = predict_images(images, model_file, output=output, progress=calls.append, **DETECT)
    assert sorted(event.item for event in calls) == sorted(images[2:])
    _assert_same(frame, serial)
    _assert_same(pd.read_parquet(output), serial)


def test_tiled_equals_whole_without_duplicates(model_file, tmp_path):
    picture = simulate_image((700, 600), n_spots=120, seed=5).image
    path = tmp_path / "large.npy"
    np.save(path, picture)
    whole = predict_images([path], model_file, **DETECT)
    tiled = predict_images([path], model_file, tile_size=256, **DETECT)
    assert len(whole) > 50
    assert len(tiled) == len(whole)
    positions = tiled[["row", "col"]].round(2)
    assert not positions.duplicated().any()
    _assert_same(tiled, whole, atol=1e-3)


@pytest.mark.parametrize("kind", ["zarr", "tiled-tiff"])
def test_lazy_formats_in_tiles_equal_the_whole_image(kind, model_file, tmp_path):
    picture = simulate_image((520, 600), n_spots=60, seed=7).image
    whole = predict_images([_save(tmp_path / "whole.npy", picture)], model_file, **DETECT)
    if kind == "zarr":
        zarr = pytest.importorskip("zarr")
        path = tmp_path / "mosaic.zarr"
        store = zarr.open(str(path), mode="w", shape=picture.shape, chunks=(128, 128), dtype="f4")
        store[:] = picture
    else:
        import tifffile

        path = tmp_path / "mosaic.tif"
        tifffile.imwrite(path, picture, tile=(128, 128))
    tiled = predict_images([path], model_file, tile_size=256, **DETECT)
    assert len(whole) > 20
    _assert_same(tiled.assign(image="x"), whole.assign(image="x"), atol=1e-3)


def _save(path, array):
    np.save(path, array)
    return path


def test_bad_arguments_raise_clear_errors(images, model_file):
    from blobsift import InvalidInputError

    with pytest.raises(InvalidInputError, match="scheduler"):
        predict_images(images[:1], model_file, scheduler=3.5)
    with pytest.raises(InvalidInputError, match="tile_size"):
        predict_images(images[:1], model_file, tile_size=10)
    with pytest.raises(InvalidInputError, match="unknown detection setting"):
        predict_images(images[:1], model_file, treshold=5)
    with pytest.raises(InvalidInputError, match="fitted Sifter"):
        predict_images(images[:1], object())


def test_an_empty_list_gives_an_empty_table(model_file):
    frame = predict_images([], model_file)
    assert frame.shape == (0, 7)


def test_elapsed_time_is_recorded(images, model_file, tmp_path):
    output = tmp_path / "out.csv"
    start = time.perf_counter()
    predict_images(images[:1], model_file, output=output, **DETECT)
    record = _journal(output)[0]
    assert 0 < record["seconds"] <= time.perf_counter() - start
    assert record["n_candidates"] > 0


def test_cli_predict_on_a_scheduler(cluster, images, model_file, serial, tmp_path, capsys):
    from blobsift.cli import main

    project = tmp_path / "run1"
    assert main(["init", str(project), "--quiet"]) == 0
    csv = tmp_path / "cli.csv"
    model = str(model_file) + ".json"
    argv = ["predict", str(project), "--images", *images[:2], "--model", model]
    argv += ["--scheduler", cluster.scheduler_address, "--detect-threshold", "5"]
    capsys.readouterr()
    assert main([*argv, "--output", str(csv), "--json", "--quiet"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["failed"] == {}
    frame = pd.read_csv(csv)
    expected = serial[serial["image"].isin(images[:2])]
    assert len(frame) == len(expected) > 0
    np.testing.assert_allclose(
        np.sort(frame["probability"]), np.sort(expected["probability"]), rtol=1e-5
    )


def test_a_large_image_is_read_in_tiles_with_bounded_memory(model_file, tmp_path):
    import tracemalloc

    side, tile = 3072, 512
    path = tmp_path / "mosaic.npy"
    pixels = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=(side, side))
    rng = np.random.default_rng(0)
    for start in range(0, side, 512):
        pixels[start : start + 512] = rng.poisson(100, (512, side))
    spots = rng.integers(40, side - 40, (60, 2))
    for r, c in spots:
        pixels[r - 1 : r + 2, c - 1 : c + 2] += 400
    pixels.flush()
    del pixels
    tracemalloc.start()
    try:
        frame = predict_images([path], model_file, tile_size=tile, n_threads=1, threshold=6.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    whole_float32 = side * side * 4
    # Whole, the image alone is 38 MB as float32 and its scale space about 8 times that.
    assert peak < whole_float32 / 2, f"peak {peak / 1e6:.1f} MB"
    assert len(frame) >= 55
    found = np.round(frame[["row", "col"]].to_numpy())
    hits = (np.abs(found[:, None, :] - spots[None]).max(axis=2) <= 1).any(axis=0)
    assert hits.all()


def test_cluster_scores_stacks_of_channels_as_here(client, tmp_path):
    """A model of (science, reference, difference) crops on triplet stacks, on workers."""
    from blobsift.simulate import simulate_difference_image

    data = simulate_crops(80, positive_fraction=0.3, seed=2, domain="difference")
    sifter = Sifter(phase="cnn", random_state=0, epochs=2).fit(data.triplets, data.labels)
    paths = []
    for seed in range(2):
        simulated = simulate_difference_image((160, 192), seed=seed)
        stack = np.stack([simulated.science, simulated.reference, simulated.difference])
        np.save(tmp_path / f"triplet{seed}.npy", stack)
        paths.append(str(tmp_path / f"triplet{seed}.npy"))
    here = predict_images(paths, sifter, detect_channel=2, **DETECT)
    assert here.attrs["failed"] == {}
    assert len(here) > 20
    there = predict_images(paths, sifter, scheduler=client, detect_channel=2, **DETECT)
    _assert_same(there, here)
    # a 2D image where a stack of 3 is expected fails with the model's channel message
    np.save(tmp_path / "flat.npy", simulated.difference)
    failed = predict_images([str(tmp_path / "flat.npy")], sifter, detect_channel=0, **DETECT)
    assert "1 channel(s) per crop but the model was trained on crops of 3" in next(
        iter(failed.attrs["failed"].values())
    )
