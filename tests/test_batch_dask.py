"""predict_images: here and on a real distributed.LocalCluster; failures, resume, tiles."""

from __future__ import annotations

import json
import os
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
        scheduler_kwargs={"dashboard": False},
        worker_dashboard_address=None,
    ) as local_cluster:
        yield local_cluster


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster, timeout="60s", set_as_default=False) as connected:
        connected.wait_for_workers(2, timeout=60)
        yield connected


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
    assert set(serial["image"]) == set(images)
    assert serial["probability"].between(0, 1).all()
    assert serial.attrs["failed"] == {}


def test_cluster_gives_the_serial_result(client, images, model_file, serial):
    seen = []
    frame = predict_images(
        images, model_file, scheduler=client, progress=lambda s, i: seen.append(i), **DETECT
    )
    _assert_same(frame, serial)
    assert seen[0]["done"] == 0
    assert "dashboard" in seen[0]
    assert [i["done"] for i in seen[1:]] == list(range(1, N_IMAGES + 1))


def test_cluster_takes_a_fitted_sifter_and_a_scheduler_address(cluster, images, model_file):
    sifter = Sifter.load(model_file)
    frame = predict_images(images[:2], sifter, scheduler=cluster.scheduler_address, **DETECT)
    expected = predict_images(images[:2], sifter, **DETECT)
    _assert_same(frame, expected)


def test_model_is_loaded_once_per_worker(client, images, model_file):
    predict_images(images, model_file, scheduler=client, **DETECT)
    # The plugin is gone afterwards, and no task carried the model: tasks are small.
    plugins = client.run(lambda dask_worker: sorted(dask_worker.plugins))
    assert all(not any(p.startswith("blobsift-model") for p in names) for names in plugins.values())


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

    def kill_one_worker(stage, info):
        if killed or info.get("done", 0) < 1 or "dashboard" in info:
            return
        busy = [address for address, tasks in client.processing().items() if tasks]
        address = busy[0] if busy else next(iter(pids))
        os.kill(pids[address], signal.SIGKILL)
        killed.append(address)

    paths = images * 2  # the same pixels under other names: more tasks in flight
    copies = []
    for i, path in enumerate(paths):
        copy = tmp_path / f"copy{i}.npy"
        copy.write_bytes(open(path, "rb").read())
        copies.append(str(copy))
    output = tmp_path / "out.csv"
    frame = predict_images(
        copies, model_file, scheduler=client, output=output, progress=kill_one_worker, **DETECT
    )
    assert killed
    journal = [json.loads(line) for line in open(str(output) + ".status.jsonl")]
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

    def interrupt(stage, info):
        seen.append(info["image"])
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_images(images, model_file, output=output, progress=interrupt, **DETECT)
    partial = pd.read_csv(output)
    assert set(partial["image"]) == set(images[:2])
    # Simulate a crash while the third image's rows were being written.
    with open(output, "a") as handle:
        handle.write(f"{images[2]},1.0,2.0,1.0")
    with open(str(output) + ".status.jsonl", "a") as handle:
        handle.write('{"image": "cut off')

    redone = []
    frame = predict_images(
        images, model_file, output=output, progress=lambda s, i: redone.append(i), **DETECT
    )
    assert [i["image"] for i in redone] == images[2:]
    assert redone[0]["done"] == 3
    _assert_same(frame, serial)
    _assert_same(pd.read_csv(output), serial)


def test_parquet_output_resumes(images, model_file, serial, tmp_path):
    output = tmp_path / "out.parquet"
    first = predict_images(images[:2], model_file, output=output, **DETECT)
    _assert_same(first, serial[serial["image"].isin(images[:2])])
    calls = []
    frame = predict_images(
        images, model_file, output=output, progress=lambda s, i: calls.append(i), **DETECT
    )
    assert [i["image"] for i in calls] == images[2:]
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


def test_bad_arguments_raise_clear_errors(images, model_file):
    from blobsift import InvalidInputError

    with pytest.raises(InvalidInputError, match="scheduler"):
        predict_images(images[:1], model_file, scheduler=3.5)
    with pytest.raises(InvalidInputError, match="tile_size"):
        predict_images(images[:1], model_file, tile_size=10)
    with pytest.raises(InvalidInputError, match="fitted Sifter"):
        predict_images(images[:1], object())


def test_an_empty_list_gives_an_empty_table(model_file):
    frame = predict_images([], model_file)
    assert frame.shape == (0, 7)


def test_elapsed_time_is_recorded(images, model_file, tmp_path):
    output = tmp_path / "out.csv"
    start = time.perf_counter()
    predict_images(images[:1], model_file, output=output, **DETECT)
    record = json.loads(open(str(output) + ".status.jsonl").readline())
    assert 0 < record["seconds"] <= time.perf_counter() - start
    assert record["n_candidates"] > 0
