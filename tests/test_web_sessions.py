"""Labels across clients: undo per tab session, and labels other processes write."""

import sqlite3
import time

import pytest
from fastapi.testclient import TestClient

from blobsift import store
from blobsift.app import create_app
from blobsift.project import Project
from blobsift.project._channels import ChannelsMixin
from web_helpers import make_project

LOCAL = "http://127.0.0.1"
TAB_A, TAB_B = "tab-a-0123456789", "tab-b-0123456789"


@pytest.fixture
def fresh(tmp_path):
    return make_project(tmp_path, n_images=2)


def queue(client, n, **body):
    return [item["id"] for item in client.post("/api/queue", json={"n": n, **body}).json()["items"]]


def test_undo_undoes_only_the_labels_of_its_own_session(fresh):
    with TestClient(create_app(fresh, who="same-login"), base_url=LOCAL) as client:
        a1, a2, b1 = queue(client, 3)
        client.post("/api/label", json={"id": a1, "label": "signal", "session": TAB_A})
        client.post("/api/label", json={"id": a2, "label": "noise", "session": TAB_A})
        client.post("/api/label", json={"id": b1, "label": "signal", "session": TAB_B})
        undone = client.post("/api/undo", json={"session": TAB_A}).json()
        assert undone["id"] == a2  # tab A's latest, not tab B's later label
        assert client.post("/api/undo", json={"session": TAB_A}).json()["id"] == a1
        assert client.post("/api/undo", json={"session": TAB_A}).json()["event_id"] is None
        assert client.post("/api/undo", json={}).json()["event_id"] is None  # server session
        assert client.get(f"/api/candidate/{b1}").json()["label"] == 1
        assert client.post("/api/undo", json={"session": TAB_B}).json()["id"] == b1
        bad = client.post("/api/undo", json={"session": "x"})  # too short to be a tab id
        assert bad.status_code == 422
    with Project(fresh) as project:
        log = project.label_events()
    assert log["session"].tolist() == [TAB_A, TAB_A, TAB_B, TAB_A, TAB_A, TAB_B]
    assert log["source"].tolist()[3:] == ["undo"] * 3


def test_a_grid_page_and_a_relabel_belong_to_their_session(fresh):
    with TestClient(create_app(fresh), base_url=LOCAL) as client:
        ids = queue(client, 3)
        items = [{"id": cid, "label": "noise"} for cid in ids]
        client.post("/api/labels", json={"items": items, "session": TAB_A})
        event = client.get("/api/review").json()["items"][0]["event_id"]
        client.post("/api/relabel", json={"event_id": event, "label": "signal", "session": TAB_B})
        assert client.post("/api/undo", json={"session": TAB_B}).json()["label"] == "noise"
        assert client.post("/api/undo", json={"session": TAB_B}).json()["event_id"] is None
    with Project(fresh) as project:
        sessions = project.label_events()["session"].tolist()
    assert sessions == [TAB_A] * 3 + [TAB_B] * 2


def test_store_undo_by_session_and_events_without_one(fresh):
    with Project(fresh) as project:
        project.label(1, 10.0, 10.0, 1, who="ann", session="s1")
        project.label(1, 30.0, 30.0, 0, who="ann")  # the CLI or the API: no session
        assert project.undo(who="ann", session="s2") is None
        undo = project.undo(who="ann", session="s1")
        assert project.labels()["row"].tolist() == [30.0]
        assert project.undo(who="ann") is not None  # no session given: the latest of ann
        log = project.label_events()
    assert log.loc[log["id"] == undo, "session"].tolist() == ["s1"]
    assert log["session"].isna().tolist() == [False, True, False, True]


def test_a_version_1_database_gains_the_session_column_and_keeps_its_labels(tmp_path, monkeypatch):
    with monkeypatch.context() as old:
        old.setattr(store, "MIGRATIONS", {1: store.MIGRATIONS[1]})
        old.setattr(store, "SCHEMA_VERSION", 1)
        # the version-1 code had no project settings (schema 4): its projects read 2D images
        old.setattr(ChannelsMixin, "_channels", lambda self: {})
        root = make_project(tmp_path, n_images=1)
    db = sqlite3.connect(root / "project.db")
    with db:
        for row, label in ((10.0, 1), (40.0, 0)):
            db.execute(
                "INSERT INTO label_events (image_id, row, col, label, who, created_at, source) "
                "VALUES (1, ?, 20.0, ?, 'ann', '2026-01-01T00:00:00', 'api')",
                (row, label),
            )
    assert "session" not in [r[1] for r in db.execute("PRAGMA table_info(label_events)")]
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    db.close()
    with Project(root) as project:
        assert project.schema_version == store.SCHEMA_VERSION >= 2
        assert project.labels()["label"].tolist() == [1, 0]
        assert project.label_events()["session"].isna().all()
        assert project.undo(session="s1") is None  # the old events belong to no session
        project.label(1, 70.0, 70.0, 1, session="s1")
        assert project.undo(session="s1") is not None
        assert project.labels()["label"].tolist() == [1, 0]


def test_labels_written_by_another_process_reach_the_queue_and_the_counts(fresh, tmp_path):
    app = create_app(fresh, poll_seconds=0.05)
    with TestClient(app, base_url=LOCAL) as client:
        first = client.post("/api/queue", json={"n": 4}).json()["items"]
        before = client.get("/api/status").json()
        rows = "".join(f"{i['image']},{i['row']},{i['col']},1\n" for i in first[:3])
        csv = tmp_path / "labels.csv"
        csv.write_text("image,row,col,label\n" + rows)
        with Project(fresh) as other:  # another connection, as `blobsift import-labels` is
            assert other.import_labels(csv, who="importer") == 3
        status = client.get("/api/status").json()
        assert status["labels"]["signal"] == before["labels"]["signal"] + 3
        assert status["unlabelled"] == before["unlabelled"] - 3
        assert queue(client, 4)[0] == first[3]["id"]  # the imported ones are no longer offered
        assert client.get(f"/api/candidate/{first[0]['id']}").json()["label"] == 1
        review = client.get("/api/review").json()
        assert {row["who"] for row in review["items"]} == {"importer"}
        # the watcher tells the pages, once, that labels came from elsewhere
        deadline = time.monotonic() + 10
        while not [e for e in app.state.web.hub.since(0) if e[1] == "labels"]:
            assert time.monotonic() < deadline, "no 'labels' event"
            time.sleep(0.05)
        client.post("/api/label", json={"id": first[3]["id"], "label": "noise"})
        time.sleep(0.3)  # several polls: the app's own label is no news from elsewhere
        news = [data for _, kind, data in app.state.web.hub.since(0) if kind == "labels"]
    assert news == [{"external": 3, "label_event_id": status["label_event_id"]}]


def test_the_labels_the_app_sees_are_the_stores_after_any_mix_of_writes(fresh):
    app = create_app(fresh)
    with TestClient(app, base_url=LOCAL) as client:
        ids = queue(client, 12)
        for k, cid in enumerate(ids[:6]):
            client.post("/api/label", json={"id": cid, "label": ["signal", "noise"][k % 2]})
        client.post("/api/undo", json={})  # clears a position
        event = client.get("/api/review").json()["items"][0]["event_id"]
        client.post("/api/relabel", json={"event_id": event, "label": "unsure"})
        with Project(fresh) as other:  # elsewhere: a label on the other image and a clear
            table = other.candidates()
            last = table[table["image_id"] == table["image_id"].max()].iloc[-1]
            other.label(int(last["image_id"]), last["row"] + 0.5, last["col"], 1)
            first = other.labels().iloc[0]
            other.label(int(first["image_id"]), first["row"], first["col"], None)
        seen = app.state.web.labels.current().of_candidate
    with Project(fresh) as project:
        truth = project.candidates(with_labels=True)["label"].to_numpy()
    assert (truth != -2).sum() == 5  # 6 labelled, 1 undone, 1 relabelled; +1, -1 elsewhere
    assert seen.tolist() == truth.tolist()
