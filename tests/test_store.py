import sqlite3

import numpy as np
import pandas as pd
import pytest
import tifffile

from blobsift import store
from blobsift.exceptions import (
    ImageChangedError,
    ImageReadError,
    InvalidInputError,
    ProjectError,
)
from blobsift.metrics import metrics_with_intervals, precision_recall_f1
from blobsift.positions import match_positions
from blobsift.project import Project
from blobsift.types import Candidates
from project_helpers import label_candidates, new_project, objects_of, write_images


@pytest.fixture
def images(tmp_path):
    return write_images(tmp_path / "data", 3, seed=0)


@pytest.fixture
def project(tmp_path, images):
    with new_project(tmp_path / "run1", images) as created:
        yield created


# -- the folder and the database ----------------------------------------------------------
def test_create_makes_the_folder_with_wal_foreign_keys_and_schema_version(tmp_path):
    with Project.create(tmp_path / "p") as project:
        assert (tmp_path / "p" / "project.db").is_file()
        assert (tmp_path / "p" / "models").is_dir()
        assert (tmp_path / "p" / "reports").is_dir()
        assert project.schema_version == store.SCHEMA_VERSION
        conn = project._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "INSERT INTO candidates (run_id, image_id, row, col) VALUES (99, 99, 1, 1)"
            )


def test_opening_a_folder_without_project_or_creating_twice_fails(tmp_path):
    with pytest.raises(ProjectError, match="not a blobsift project"):
        Project(tmp_path)
    Project.create(tmp_path / "p").close()
    with pytest.raises(ProjectError, match="already holds"):
        Project.create(tmp_path / "p")
    Project.create(tmp_path / "p", exist_ok=True).close()


def test_a_corrupt_database_is_reported_as_a_project_error(tmp_path):
    (tmp_path / "project.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ProjectError, match="cannot open the project database"):
        Project(tmp_path)


def test_a_database_from_a_newer_blobsift_is_refused(tmp_path):
    Project.create(tmp_path / "p").close()
    conn = sqlite3.connect(tmp_path / "p" / "project.db")
    conn.execute("UPDATE schema_version SET version = ?", (store.SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(ProjectError, match="newer blobsift"):
        Project(tmp_path / "p")


def test_migrations_upgrade_an_older_database_in_order(tmp_path, monkeypatch, images):
    with Project.create(tmp_path / "p") as project:
        project.add_images(images[:1])
    after = store.SCHEMA_VERSION + 1
    migrations = {**store.MIGRATIONS, after: "ALTER TABLE images ADD COLUMN note TEXT DEFAULT 'x';"}
    monkeypatch.setattr(store, "MIGRATIONS", migrations)
    monkeypatch.setattr(store, "SCHEMA_VERSION", after)
    with Project(tmp_path / "p") as project:
        assert project.schema_version == after
        assert project._conn.execute("SELECT note FROM images").fetchall() == [("x",)]
        assert len(project.images()) == 1


# -- images -------------------------------------------------------------------------------
def test_images_are_recorded_with_hash_and_shape_and_added_once(project, images):
    records = project.images()
    assert [r.name for r in records] == ["img0.tif", "img1.tif", "img2.tif"]
    assert all(r.shape == (96, 96) for r in records)
    assert records[0].sha256 == store.content_hash(images[0])
    again = project.add_images(images[:2])
    assert [r.id for r in again] == [records[0].id, records[1].id]
    assert len(project.images()) == 3
    assert project.image("img1.tif").id == records[1].id
    assert project.image(str(images[2])).id == records[2].id
    with pytest.raises(InvalidInputError, match="not in the project"):
        project.image("nope.tif")


def test_an_unreadable_file_is_refused_and_nothing_is_added(project, tmp_path, images):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not an image")
    new = write_images(tmp_path / "more", 1, seed=5, prefix="new")
    with pytest.raises(ImageReadError):
        project.add_images([new[0], bad])
    assert len(project.images()) == 3


def test_a_changed_image_is_detected_by_its_hash_and_refused(project, images):
    data = tifffile.imread(images[1])
    tifffile.imwrite(images[1], data + 1)
    with pytest.raises(ImageChangedError, match="changed since it was added"):
        project.read_image("img1.tif")
    with pytest.raises(ImageChangedError):
        project.detect()
    assert project.detection_runs() == []  # refused before starting
    with pytest.raises(ImageChangedError, match="other content"):
        project.add_images([images[1]])
    problems = project.check_images()
    assert [(p["image"], p["problem"]) for p in problems] == [("img1.tif", "changed")]


def test_an_image_checked_once_is_read_without_hashing_again_until_its_file_changes(
    project, images, monkeypatch
):
    from blobsift.project import _images

    hashed = []
    real = _images.content_hash
    monkeypatch.setattr(_images, "content_hash", lambda path: hashed.append(path) or real(path))
    monkeypatch.setattr(_images, "_SETTLED_NS", 0)  # the files were written just now
    project.verify_image("img0.tif")
    assert len(hashed) == 1
    np.testing.assert_array_equal(project.read_image("img0.tif"), tifffile.imread(images[0]))
    project.read_image("img0.tif")
    assert len(hashed) == 1  # the file is as it was when its hash was checked
    project.read_image("img1.tif")
    assert len(hashed) == 2  # never checked by this project: hashed
    data = tifffile.imread(images[0])
    tifffile.imwrite(images[0], np.vstack([data, data]))
    with pytest.raises(ImageChangedError, match="changed since it was added"):
        project.read_image("img0.tif")


def test_a_recently_changed_file_is_hashed_at_every_read(project, images, monkeypatch):
    from blobsift.project import _images

    hashed = []
    real = _images.content_hash
    monkeypatch.setattr(_images, "content_hash", lambda path: hashed.append(path) or real(path))
    project.read_image("img0.tif")
    project.read_image("img0.tif")
    assert len(hashed) == 2  # changed within the settling time before its check


def test_a_moved_image_is_reported_and_can_be_relocated_to_identical_bytes(
    project, images, tmp_path
):
    moved = tmp_path / "elsewhere" / "img0.tif"
    moved.parent.mkdir()
    images[0].rename(moved)
    with pytest.raises(ImageChangedError, match="relocate"):
        project.read_image("img0.tif")
    assert project.check_images()[0]["problem"] == "missing"
    with pytest.raises(ImageChangedError, match="same bytes"):
        project.relocate_image("img0.tif", images[1])
    record = project.relocate_image("img0.tif", moved)
    assert record.path == moved.resolve()
    assert project.read_image(record.id).shape == (96, 96)
    assert project.check_images() == []


# -- candidates and labels ---------------------------------------------------------------
def test_detect_records_candidates_and_resumes_with_the_same_settings(project):
    first = project.detect(threshold=4.5)
    assert first["images"] == 3
    assert first["candidates"] > 20
    current = project.candidates()
    assert len(current) == first["candidates"]
    assert set(current["image"]) == {"img0.tif", "img1.tif", "img2.tif"}
    again = project.detect(threshold=4.5)
    assert again == {"run_id": None, "images": 0, "skipped": 3, "candidates": 0}
    runs = project.detection_runs()
    assert [r["status"] for r in runs] == ["complete"]
    assert runs[0]["settings"]["threshold"] == 4.5
    with pytest.raises(InvalidInputError, match="unknown detection setting"):
        project.detect(treshold=3)


def test_labels_survive_redetection_and_match_the_new_candidates(project):
    project.detect(threshold=5.0)
    table = label_candidates(project.candidates(), objects_of(3, seed=0))
    project.add_labels(table["image"], table["row"], table["col"], table["label"], who="t")
    before = project.labels()
    project.detect(threshold=3.5)
    pd.testing.assert_frame_equal(before, project.labels())
    matched = project.candidates(with_labels=True)
    assert len(matched) > len(table)  # a lower threshold finds more
    assert (matched["label"] >= 0).sum() == len(table)
    assert (matched["label"] == 1).sum() == (table["label"] == 1).sum()
    # Another detector puts the same peaks up to 1.4 px away: labels follow them.
    rng = np.random.default_rng(0)
    shifted = Candidates(
        row=table["row"] + rng.uniform(-1, 1, len(table)),
        col=table["col"] + rng.uniform(-1, 1, len(table)),
        image=table["image"],
    )
    project.import_candidates(shifted)
    matched = project.candidates(with_labels=True)
    assert len(matched) == len(table)
    assert matched["label"].tolist() == table["label"].tolist()


def test_a_label_matches_a_candidate_only_within_the_radius(project):
    project.label("img0.tif", 20.0, 20.0, 1)
    near_and_far = Candidates(row=[20.0, 60.0], col=[21.5, 60.0], image=["img0.tif"] * 2)
    project.import_candidates(near_and_far)
    assert project.candidates(with_labels=True)["label"].tolist() == [1, -2]
    project.import_candidates(Candidates(row=[20.0], col=[22.5], image=["img0.tif"]))
    assert project.candidates(with_labels=True)["label"].tolist() == [-2]


def test_label_events_are_append_only_in_the_database(project):
    project.label("img0.tif", 10.0, 10.0, 1)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        project._conn.execute("UPDATE label_events SET label = 0")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        project._conn.execute("DELETE FROM label_events")
    assert project.labels()["label"].tolist() == [1]


def test_a_relabelled_position_takes_its_latest_label_and_undo_appends(project):
    project.label("img0.tif", 20.0, 30.0, 1, who="ann")
    project.label("img0.tif", 50.0, 50.0, 0, who="ann")
    project.label("img0.tif", 20.6, 29.5, 0, who="bob")  # within 2 px: the same position
    labels = project.labels()
    assert len(labels) == 2
    first = labels[labels["row"] == 20.0].iloc[0]
    assert (first["col"], first["label"], first["who"]) == (30.0, 0, "bob")
    assert project.undo(who="bob") is not None
    assert project.labels().set_index("row").loc[20.0, "label"] == 1
    assert project.undo(who="ann") is not None  # undoes the label at (50, 50)
    assert project.labels()["row"].tolist() == [20.0]
    events = project.label_events()
    assert len(events) == 5  # nothing removed
    assert events["source"].tolist()[-2:] == ["undo", "undo"]
    assert events["label"].isna().tolist() == [False, False, False, False, True]
    assert project.undo(who="carol") is None


def test_undo_refuses_when_someone_labelled_the_position_since(project):
    project.label("img0.tif", 20.0, 30.0, 1, who="ann")
    project.label("img0.tif", 20.0, 30.0, 0, who="bob")
    with pytest.raises(InvalidInputError, match="labelled again"):
        project.undo(who="ann")
    assert project.labels()["label"].tolist() == [0]


def test_import_labels_checks_every_row_before_writing(project, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("image,row,col,label\nimg0.tif,10,12,1\nimg1.tif,40.5,41,0\n")
    assert project.import_labels(good, who="x") == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("image,row,col,label\nimg0.tif,70,70,1\nimg1.tif,5,5,2\n")
    with pytest.raises(InvalidInputError, match="line 3"):
        project.import_labels(bad)
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("image,row,col,label\nimg0.tif,70,70,1\nzzz.tif,5,5,1\n")
    with pytest.raises(InvalidInputError, match=r"zzz\.tif"):
        project.import_labels(unknown)
    missing = tmp_path / "missing.csv"
    missing.write_text("image,y,x,label\nimg0.tif,1,1,1\n")
    with pytest.raises(InvalidInputError, match="lacks column"):
        project.import_labels(missing)
    assert len(project.label_events()) == 2


def test_export_then_import_round_trips_the_labels(project, tmp_path):
    project.add_labels(["img0.tif", "img2.tif", "img2.tif"], [1.25, 2.5, 60.0],
                       [3.0, 4.0, 61.0], [1, 0, -1])  # fmt: skip
    out = tmp_path / "labels.csv"
    assert project.export_labels(out) == 2  # unsure left out
    frame = pd.read_csv(out)
    assert frame.columns.tolist() == ["image", "row", "col", "label"]
    assert frame.to_dict("list") == {"image": ["img0.tif", "img2.tif"], "row": [1.25, 2.5],
                                     "col": [3.0, 4.0], "label": [1, 0]}  # fmt: skip
    with Project.create(tmp_path / "other") as other:
        other.add_images([r.path for r in project.images()])
        assert other.import_labels(out) == 2
        assert other.label_set_hash() == project.label_set_hash()


def test_import_candidates_becomes_the_current_run(project):
    project.detect(threshold=5.0)
    imported = Candidates(row=[10.0, 20.0, 30.0], col=[11.0, 21.0, 31.0],
                          image=["img0.tif", "img0.tif", "img2.tif"])  # fmt: skip
    summary = project.import_candidates(imported, source="other.csv")
    assert summary["candidates"] == 3
    assert project.candidates("img0.tif")[["row", "col"]].values.tolist() == [
        [10.0, 11.0], [20.0, 21.0]
    ]  # fmt: skip
    assert len(project.candidates("img1.tif")) > 0  # untouched: still the detection
    with pytest.raises(InvalidInputError, match="'image' column"):
        project.import_candidates(Candidates(row=[1.0], col=[1.0]))


def test_the_label_set_hash_changes_with_the_labels_only(project):
    empty = project.label_set_hash()
    project.label("img0.tif", 5.0, 5.0, 1)
    one = project.label_set_hash()
    project.label("img0.tif", 5.0, 5.0, 0)
    project.label("img0.tif", 5.0, 5.0, 1)
    assert len({empty, one}) == 2
    assert project.label_set_hash() == one


# -- helpers -------------------------------------------------------------------------------
def test_match_positions_pairs_nearest_first_one_to_one():
    a = np.array([[0.0, 0.0], [10.0, 10.0], [0.0, 1.5]])
    b = np.array([[0.0, 1.0], [50.0, 50.0]])
    ia, ib = match_positions(a, b, 2.0)
    assert (ia.tolist(), ib.tolist()) == ([2], [0])
    assert match_positions(a, np.empty((0, 2)), 2.0)[0].size == 0


def test_metrics_with_intervals_match_sklearn_and_bracket_the_value():
    rng = np.random.default_rng(0)
    labels = (rng.random(200) < 0.2).astype(int)
    scores = np.clip(labels * 0.4 + rng.random(200) * 0.6, 0, 1)
    out = metrics_with_intervals(labels, scores, 0.5)
    expected = precision_recall_f1(labels, (scores >= 0.5).astype(int))
    for name in ("f1", "precision", "recall"):
        assert out[name] == pytest.approx(expected[name])
        low, high = out[f"{name}_ci"]
        assert low <= out[name] <= high
        assert high - low > 0.01


def test_images_with_the_same_file_name_are_named_by_path(tmp_path):
    first = write_images(tmp_path / "a", 1, seed=0)[0]
    second = write_images(tmp_path / "b", 1, seed=1)[0]
    with Project.create(tmp_path / "p") as project:
        project.add_images([first, second])
        with pytest.raises(InvalidInputError, match="ambiguous"):
            project.label("img0.tif", 5.0, 5.0, 1)
        project.label(str(second), 5.0, 5.0, 1)
        out = tmp_path / "labels.csv"
        project.export_labels(out)
        assert pd.read_csv(out)["image"].tolist() == [str(second.resolve())]
        assert project.import_labels(out) == 1
        assert project.labels()["image_id"].tolist() == [2]


# -- training and prediction ----------------------------------------------------------------
def test_train_returns_the_fitted_sifter_and_predictions_read_back_by_run_or_image(project):
    project.detect(threshold=4.5)
    table = label_candidates(project.candidates(), objects_of(3, seed=0))
    project.add_labels(table["image"], table["row"], table["col"], table["label"])
    events = []
    record = project.train(epochs=1, pretrain=False, progress=events.append)
    assert record == project.model()  # what is stored; the fitted model rides along
    assert record.sifter is not None
    assert project.model().sifter is None
    assert record.sifter.threshold_ == record.threshold
    assert {event["stage"] for event in events} <= {"pretrain", "finetune", "epoch"}
    seen = []
    frame = project.predict(progress=seen.append)
    assert [(e.stage, e.done, e.total, e.item) for e in seen] == [
        ("predict", k, 3, name) for k, name in enumerate(["img0.tif", "img1.tif", "img2.tif"], 1)
    ]
    crops, _, labelled = project.training_data()
    assert len(crops) == len(labelled) == len(table)
    stored = project.predictions()
    np.testing.assert_allclose(stored["probability"], frame["probability"], rtol=1e-6)
    latest = project.predictions(latest_per_image=True)
    pd.testing.assert_frame_equal(latest.drop(columns="run_id"), stored)
    in_one = latest[latest["image"] == "img1.tif"].reset_index(drop=True)
    pd.testing.assert_frame_equal(project.latest_predictions("img1.tif"), in_one)
    one = project.predictions(image="img1.tif")
    assert set(one["image"]) == {"img1.tif"}
    assert len(one) == (frame["image"] == "img1.tif").sum()
