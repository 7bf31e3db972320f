import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from blobsift.app import create_app
from blobsift.app.imaging import centre_ticks
from blobsift.crops import extract_crops
from blobsift.project import Project
from web_helpers import FAST_TRAINING, make_project

LOCAL = "http://127.0.0.1"
PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture(scope="module")
def blank(tmp_path_factory):
    """A detected project without labels."""
    return make_project(tmp_path_factory.mktemp("web-blank"))


@pytest.fixture
def fresh(tmp_path):
    """A detected project without labels, for tests that write."""
    return make_project(tmp_path)


@pytest.fixture
def client(fresh):
    with TestClient(create_app(fresh, who="tester"), base_url=LOCAL) as client:
        yield client


def stored_labels(project_dir: Path) -> pd.DataFrame:
    with Project(project_dir) as project:
        return project.labels()


def project_positions(project_dir: Path) -> pd.DataFrame:
    with Project(project_dir) as project:
        return project.candidates()


def duplicates(table: pd.DataFrame, radius: float = 2.0) -> int:
    """Candidates within ``radius`` of an earlier candidate of the same image (chains join)."""
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial.distance import cdist

    extra = 0
    for _, part in table.groupby("image_id"):
        near = cdist(part[["row", "col"]], part[["row", "col"]]) <= radius
        extra += len(part) - connected_components(near, directed=False)[0]
    return extra


def position(client: TestClient, cid: str) -> tuple[int, float, float]:
    item = client.get(f"/api/candidate/{cid}").json()
    return item["image_id"], item["row"], item["col"]


# ---------------------------------------------------------------------------- reading
def test_status_counts_candidates_and_labels(blank):
    with TestClient(create_app(blank), base_url=LOCAL) as client:
        status = client.get("/api/status").json()
    with Project(blank) as project:
        n = len(project.candidates())
    assert status["candidates"] == n > 20
    # candidates closer than the match radius are one labelled position: offered once
    positions = project_positions(blank)
    assert status["unlabelled"] == n - duplicates(positions)
    assert status["labels"] == {"signal": 0, "noise": 0, "unsure": 0}
    assert status["latest"] is None
    assert status["phase2"]["labels_to_go"] == status["phase2"]["min_labels"] > 0
    assert status["phase2"]["labels"] == 0
    assert status["phase1"] == {"min_per_class": 2, "signal": 0, "noise": 0, "available": False}
    assert status["orders"][0] == "useful"


def test_queue_returns_distinct_unlabelled_candidates_and_honours_exclude(blank):
    with TestClient(create_app(blank), base_url=LOCAL) as client:
        first = client.post("/api/queue", json={"n": 6}).json()["items"]
        ids = [item["id"] for item in first]
        assert len(set(ids)) == 6
        second = client.post("/api/queue", json={"n": 6, "exclude": ids}).json()["items"]
        assert not {item["id"] for item in second} & set(ids)
        again = client.post("/api/queue", json={"n": 6}).json()["items"]
        assert [item["id"] for item in again] == ids  # deterministic: a reload sees the same


def test_queue_by_score_is_sorted_and_random_differs(blank):
    with TestClient(create_app(blank), base_url=LOCAL) as client:
        by_score = client.post("/api/queue", json={"order": "score", "n": 10}).json()["items"]
        scores = [item["score"] for item in by_score]
        assert scores == sorted(scores, reverse=True)
        shuffled = client.post("/api/queue", json={"order": "random", "n": 10}).json()["items"]
        assert [i["id"] for i in shuffled] != [i["id"] for i in by_score]
        assert client.post("/api/queue", json={"order": "sideways"}).status_code == 422


def test_crops_and_context_are_pngs_served_by_id_only(blank):
    with TestClient(create_app(blank), base_url=LOCAL) as client:
        cid = client.post("/api/queue", json={"n": 1}).json()["items"][0]["id"]
        crop = client.get(f"/api/crop/{cid}.png")
        assert crop.headers["content-type"] == "image/png"
        assert png_size(crop.content) == (64, 64)
        context = client.get(f"/api/context/{cid}.png")
        assert png_size(context.content) == (192, 192)  # the 96x96 image, 2x
        for bad in ("9999-0", "1-99999", "..", "%2Fetc%2Fpasswd"):
            response = client.get(f"/api/crop/{bad}.png")
            assert response.status_code == 404
            assert response.json()["detail"] in (f"no candidate {bad!r} in this project.",
                                                 "Not Found")  # fmt: skip
        assert client.get(f"/api/crop/{cid}.png?high=101").status_code == 422


def test_marked_crop_has_ticks_around_the_centre_and_the_raw_crop_elsewhere(blank):
    with TestClient(create_app(blank), base_url=LOCAL) as client:
        cid = client.post("/api/queue", json={"n": 1}).json()["items"][0]["id"]
        raw = np.asarray(Image.open(io.BytesIO(client.get(f"/api/crop/{cid}.png").content)))
        response = client.get(f"/api/crop/{cid}.png?mark=true")
    assert response.headers["content-type"] == "image/png"
    marked = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)
    assert raw.shape == (64, 64)
    assert marked.shape == (64, 64, 3)
    ticks = np.zeros((64, 64), dtype=bool)
    for top, left, bottom, right in centre_ticks(64):
        ticks[top : bottom + 1, left : right + 1] = True
    # four one-pixel ticks on the centre row and column, off the centre pixel itself
    assert ticks.sum() == 4 * max(2, 64 // 12)
    rows, cols = np.nonzero(ticks)
    assert set(rows[cols != 32]) == {32}
    assert set(cols[rows != 32]) == {32}
    assert not ticks[30:35, 30:35].any()
    # coloured (not grey) at the ticks, the untouched grey crop everywhere else
    assert (marked[ticks] == (255, 64, 160)).all()
    assert (marked[~ticks] == raw[~ticks][:, None]).all()


def test_contrast_control_changes_the_crop(blank):
    with TestClient(create_app(blank), base_url=LOCAL) as client:
        cid = client.post("/api/queue", json={"n": 1}).json()["items"][0]["id"]
        soft = client.get(f"/api/crop/{cid}.png?high=100").content
        hard = client.get(f"/api/crop/{cid}.png?high=90").content
        assert soft != hard


# ---------------------------------------------------------------------------- writing
def test_status_says_when_phase_1_becomes_available(client):
    ids = [item["id"] for item in client.post("/api/queue", json={"n": 5}).json()["items"]]
    words = ["signal", "noise", "noise", "unsure", "signal"]
    seen = []
    for cid, word in zip(ids, words, strict=True):
        assert client.post("/api/label", json={"id": cid, "label": word}).status_code == 200
        status = client.get("/api/status").json()
        seen.append((status["phase1"]["signal"], status["phase1"]["noise"],
                     status["phase1"]["available"], status["phase2"]["labels"]))  # fmt: skip
    # unsure labels count for neither; Phase 1 needs 2 of each class
    assert seen == [(1, 0, False, 1), (1, 1, False, 2), (1, 2, False, 3), (1, 2, False, 3),
                    (2, 2, True, 4)]  # fmt: skip


def test_a_label_is_committed_before_the_response(client, fresh):
    cid = client.post("/api/queue", json={"n": 1}).json()["items"][0]["id"]
    answer = client.post("/api/label", json={"id": cid, "label": "signal"}).json()
    stored = stored_labels(fresh)  # another connection sees it at once
    assert stored["event_id"].tolist() == [answer["event_id"]]
    assert stored["label"].tolist() == [1]
    assert stored["who"].tolist() == ["tester"]
    image_id, row, col = position(client, cid)
    assert stored[["image_id", "row", "col"]].iloc[0].tolist() == [image_id, row, col]
    queued = client.post("/api/queue", json={"n": 100}).json()
    assert cid not in {item["id"] for item in queued["items"]}
    assert client.get("/api/status").json()["labels"]["signal"] == 1


def test_undo_appends_an_event_and_returns_the_crop(client, fresh):
    ids = [i["id"] for i in client.post("/api/queue", json={"n": 2}).json()["items"]]
    client.post("/api/label", json={"id": ids[0], "label": "noise"})
    client.post("/api/label", json={"id": ids[1], "label": "unsure"})
    undone = client.post("/api/undo", json={}).json()
    assert undone["id"] == ids[1]
    assert undone["label"] is None
    with Project(fresh) as project:
        assert len(project.label_events()) == 3  # nothing deleted
        assert project.labels()["label"].tolist() == [0]
    assert client.get(f"/api/candidate/{ids[1]}").json()["label"] == -2
    client.post("/api/undo", json={})
    assert client.post("/api/undo", json={}).json()["event_id"] is None


def test_a_grid_page_is_written_all_or_nothing(client, fresh):
    ids = [i["id"] for i in client.post("/api/queue", json={"n": 4}).json()["items"]]
    items = [{"id": cid, "label": "noise"} for cid in ids]
    bad = client.post("/api/labels", json={"items": [*items, {"id": "77-0", "label": "signal"}]})
    assert bad.status_code == 404
    assert stored_labels(fresh).empty
    items[0]["label"] = "signal"
    answer = client.post("/api/labels", json={"items": items}).json()
    assert answer["count"] == 4
    assert sorted(stored_labels(fresh)["label"].tolist()) == [0, 0, 0, 1]


def test_invalid_labels_are_refused(client, fresh):
    cid = client.post("/api/queue", json={"n": 1}).json()["items"][0]["id"]
    assert client.post("/api/label", json={"id": cid, "label": "maybe"}).status_code == 422
    assert client.post("/api/label", json={"id": cid}).status_code == 422
    assert client.post("/api/labels", json={"items": []}).status_code == 422
    assert stored_labels(fresh).empty


def test_two_tabs_labelling_at_once_lose_nothing(client, fresh):
    ids = [i["id"] for i in client.post("/api/queue", json={"n": 40}).json()["items"]]
    errors = []

    def tab(mine, word):
        for cid in mine:
            response = client.post("/api/label", json={"id": cid, "label": word})
            if response.status_code != 200:
                errors.append(response.text)

    tabs = [
        threading.Thread(target=tab, args=(ids[:20], "signal")),
        threading.Thread(target=tab, args=(ids[20:], "noise")),
    ]
    for thread in tabs:
        thread.start()
    for thread in tabs:
        thread.join()
    assert errors == []
    stored = stored_labels(fresh)
    assert len(stored) == 40
    assert sorted(stored["label"].tolist()) == [0] * 20 + [1] * 20


def test_review_lists_labels_and_relabel_is_a_new_event(client, fresh):
    ids = [i["id"] for i in client.post("/api/queue", json={"n": 3}).json()["items"]]
    for cid, word in zip(ids, ["signal", "noise", "noise"], strict=True):
        client.post("/api/label", json={"id": cid, "label": word})
    review = client.get("/api/review?label=noise").json()
    assert review["total"] == 2
    assert [row["id"] for row in review["items"]] == [ids[2], ids[1]]  # newest first
    crop = client.get(review["items"][0]["src"])
    assert png_size(crop.content) == (64, 64)
    answer = client.post("/api/relabel", json={"event_id": review["items"][0]["event_id"],
                                               "label": "signal"}).json()  # fmt: skip
    with Project(fresh) as project:
        assert len(project.label_events()) == 4
        current = project.labels()
    assert current.loc[current["event_id"] == answer["event_id"], "label"].tolist() == [1]
    assert client.get("/api/review?label=signal").json()["total"] == 2
    assert client.post("/api/relabel", json={"event_id": 999, "label": "noise"}).status_code == 404


# ---------------------------------------------------------------------------- the gate
def test_loopback_app_refuses_foreign_host_names(blank):
    with TestClient(create_app(blank), base_url="http://evil.example:8000") as client:
        response = client.get("/api/status")
    assert response.status_code == 421
    with TestClient(create_app(blank), base_url="http://localhost:8000") as client:
        assert client.get("/api/status").status_code == 200


def test_token_is_required_on_every_request(blank):
    app = create_app(blank, token="s3cret-token")
    with TestClient(app, base_url="http://192.0.2.7:8000") as client:
        for path in ("/", "/api/status", "/static/app.js", "/api/crop/1-0.png", "/api/events"):
            assert client.get(path).status_code == 401, path
        assert client.post("/api/train", json={}).status_code == 401
        assert client.get("/api/status?token=wrong").status_code == 401
        assert client.get("/api/status", headers={"X-Blobsift-Token": "s3cret-token"}).is_success
        bearer = {"Authorization": "Bearer s3cret-token"}
        assert client.get("/api/status", headers=bearer).is_success
        page = client.get("/?token=s3cret-token")
        assert page.is_success
        assert "HttpOnly" in page.headers["set-cookie"]
        assert client.get("/api/status").is_success  # the cookie carries it on
    assert app.state.web.job.running is False


def test_request_bodies_are_bounded_and_must_be_json(client, fresh):
    huge = {"n": 5, "exclude": ["x" * 70_000]}
    assert client.post("/api/queue", json=huge).status_code == 413
    form = client.post("/api/label", content=b"id=1-0&label=signal",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert form.status_code == 415

    def chunks():
        for _ in range(20):
            yield b" " * 8192

    streamed = client.post("/api/label", content=chunks(),
                           headers={"Content-Type": "application/json"})  # fmt: skip
    assert streamed.status_code == 413
    assert stored_labels(fresh).empty


def test_index_page_and_static_files_are_served(blank):
    with TestClient(create_app(blank), base_url=LOCAL) as client:
        page = client.get("/")
        assert page.is_success
        assert '<script src="/static/app.js">' in page.text
        assert "http" not in page.text.replace("http-equiv", "")  # no CDN
        assert client.get("/static/style.css").headers["content-type"].startswith("text/css")


# ---------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A project with 48 truth labels, trained once through the app."""
    project_dir = make_project(tmp_path_factory.mktemp("web-train"), truth_labels=48, flipped=3)
    app = create_app(project_dir, train_options=FAST_TRAINING, stream_seconds=0.5)
    with TestClient(app, base_url=LOCAL) as client:
        assert client.post("/api/train", json={}).status_code == 202
        second = client.post("/api/train", json={})
        app.state.web.job.join(120)
        stream = client.get("/api/events?after=0").text
        yield client, project_dir, second, stream


def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_training_runs_once_at_a_time_and_streams_progress(trained):
    _, _, second, stream = trained
    assert second.status_code == 409
    assert second.json()["detail"] == "already training"
    phases = [data["phase"] for kind, data in sse_events(stream) if kind == "training"]
    assert phases[0] == "started"
    assert phases[-2:] == ["scoring", "done"]
    steps = [d for k, d in sse_events(stream) if k == "training" and d["phase"] == "progress"]
    assert steps
    assert all(0 < d["done"] <= d["total"] for d in steps)
    assert steps[-1]["done"] == steps[-1]["total"]  # the last stage ran to its end
    assert all(np.isfinite(d["loss"]) for d in steps)
    assert all(0.0 <= d["val_f1"] <= 1.0 for d in steps if d["stage"] == "epoch")
    assert {d["model_phase"] for d in steps} <= {"siamese", "cnn"}


def test_a_trained_model_scores_the_queue_and_shows_in_the_status(trained):
    client = trained[0]
    status = client.get("/api/status").json()
    latest = status["latest"]
    assert latest["n_labels"] == 48
    assert 0.0 <= latest["f1_ci"][0] <= latest["f1"] <= latest["f1_ci"][1] <= 1.0
    assert status["scored_by"] == latest["model_id"]
    assert status["training"]["phase"] == "done"
    assert status["phase2"]["labels_to_go"] == max(0, status["phase2"]["min_labels"] - 48)
    items = client.post("/api/queue", json={"n": 5}).json()["items"]
    assert all(0.0 <= item["proba"] <= 1.0 for item in items)
    assert all(item["decision"] == int(item["proba"] >= status["threshold"]) for item in items)


def test_likely_mislabels_are_confident_disagreements(trained):
    client, project_dir, _, _ = trained
    answer = client.get("/api/mislabels").json()
    with Project(project_dir) as project:
        heldout = project.heldout_scores(answer["model_id"])
    threshold = answer["threshold"]
    wrong = ((heldout["label"] == 1) & (heldout["probability"] < threshold / 2)) | (
        (heldout["label"] == 0) & (heldout["probability"] > (1 + threshold) / 2)
    )
    assert len(answer["items"]) == int(wrong.sum()) > 0  # 3 noise crops were labelled signal
    scores = [item["disagreement"] for item in answer["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all(score >= 0.5 for score in scores)


def test_neighbours_come_from_the_latest_siamese_gallery(trained):
    client, project_dir = trained[0], trained[1]
    status = client.get("/api/status").json()
    assert status["latest"]["model_phase"] == "siamese"  # 48 labels: Phase 1
    assert status["gallery"] is True
    item = client.post("/api/queue", json={"n": 1}).json()["items"][0]
    neighbours = client.get(f"/api/candidate/{item['id']}").json()["neighbours"]
    with Project(project_dir) as project:
        sifter = project.load_model()
        heldout = project.heldout_scores()
        crop = extract_crops(project.read_image(item["image_id"]), [[item["row"], item["col"]]])
    similarity, index = sifter.kneighbors(crop, 6)
    model_id = status["latest"]["model_id"]
    assert [n["src"] for n in neighbours] == [f"/api/gallery/{model_id}/{i}.png" for i in index[0]]
    names = {1: "signal", 0: "noise"}
    assert [n["label"] for n in neighbours] == [
        names[int(heldout["label"].iloc[i])] for i in index[0]
    ]
    np.testing.assert_allclose([n["similarity"] for n in neighbours], similarity[0], rtol=1e-5)
    assert png_size(client.get(neighbours[0]["src"]).content) == (64, 64)
    assert client.get(f"/api/gallery/{model_id}/9999.png").status_code == 404
    assert client.get(f"/api/gallery/{model_id + 1}/0.png").status_code == 404


def test_status_withholds_an_f1_from_too_few_heldout_positives(blank):
    from blobsift.metrics import MIN_HELDOUT_POSITIVES
    from blobsift.store import ModelRecord

    def record(model_id: int, n_positive: int) -> ModelRecord:
        metrics = {"f1": 0.8, "f1_ci": [0.5, 0.95], "precision": 0.9, "recall": 0.7,
                   "n_positive": n_positive}  # fmt: skip
        return ModelRecord(
            id=model_id, created_at="2026-01-01T00:00:00", kind="sifter", phase="siamese",
            phase_reason="", label_set_hash="", n_labels=4 * n_positive, n_positive=n_positive,
            metrics=metrics, threshold=0.5, settings={}, path=Path("model"),
        )  # fmt: skip

    few, enough = MIN_HELDOUT_POSITIVES - 1, MIN_HELDOUT_POSITIVES
    app = create_app(blank)
    with TestClient(app, base_url=LOCAL) as client:
        app.state.web.models = [record(1, few), record(2, enough)]
        models = client.get("/api/status").json()["models"]
    withheld, shown = models
    assert [withheld[k] for k in ("f1", "f1_ci", "precision", "recall")] == [None] * 4
    assert withheld["estimates"].startswith("too few positives to estimate")
    assert f"{few} signal, {MIN_HELDOUT_POSITIVES} needed" in withheld["estimates"]
    assert withheld["n_positive"] == few  # the count itself is still shown
    assert shown["estimates"] is None
    assert (shown["f1"], shown["f1_ci"]) == (0.8, [0.5, 0.95])


# ---------------------------------------------------------------------------- the command
def test_label_command_serves_and_a_killed_server_keeps_acknowledged_labels(fresh):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "blobsift.cli", "label", str(fresh), "--no-browser",
               "--who", "cli"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                              text=True)  # fmt: skip
    try:
        line = server.stdout.readline()
        assert line.startswith("blobsift labelling app"), server.stderr.read()
        url = line.rsplit(": ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, timeout=10) as http:
            ids = [i["id"] for i in http.post("/api/queue", json={"n": 5}).json()["items"]]
            acked = [http.post("/api/label", json={"id": cid, "label": "noise"}).json()
                     for cid in ids]  # fmt: skip
    finally:
        server.send_signal(signal.SIGKILL)
        server.communicate(timeout=10)
    stored = stored_labels(fresh)
    assert sorted(stored["event_id"].tolist()) == sorted(a["event_id"] for a in acked)
    assert stored["who"].unique().tolist() == ["cli"]


def test_label_command_has_help_with_examples(capsys):
    from blobsift.cli import main

    with pytest.raises(SystemExit) as excinfo:
        main(["label", "--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert "blobsift label run1 --host 0.0.0.0" in out
    for option in ("--host", "--port", "--no-browser", "--token"):
        assert option in out


def test_label_command_on_a_busy_port_is_one_clear_line(fresh, capsys):
    from blobsift.app.serve import bind
    from blobsift.cli import main

    taken = bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        assert main(["label", str(fresh), "--no-browser", "--port", str(port)]) == 2
    finally:
        taken.close()
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"cannot listen on 127.0.0.1:{port}" in err


def test_label_command_on_a_missing_project_is_one_clear_line(tmp_path, capsys):
    from blobsift.cli import main

    assert main(["label", str(tmp_path / "nothing"), "--no-browser"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "is not a blobsift project" in err


def test_a_missing_model_file_leaves_labelling_working(trained, tmp_path):
    _, project_dir, _, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(project_dir, copy)
    for path in (copy / "models").glob("model-*"):
        path.unlink()
    with TestClient(create_app(copy), base_url=LOCAL) as client:
        status = client.get("/api/status").json()
        assert "cannot be loaded" in status["problem"]
        assert status["scored_by"] is None
        cid = client.post("/api/queue", json={"n": 1}).json()["items"][0]["id"]
        assert client.post("/api/label", json={"id": cid, "label": "noise"}).is_success


def test_loopback_names_and_urls():
    from blobsift.app.guard import is_loopback
    from blobsift.app.serve import app_url

    assert all(map(is_loopback, ["localhost", "127.0.0.1", "127.8.0.1", "::1", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.2", "example.com"]))
    assert app_url("::1", 8000, None) == "http://[::1]:8000/"
    assert app_url("127.0.0.1", 9, "a/b c") == "http://127.0.0.1:9/?token=a/b%20c"
