"""Bad input to the project store gives a clear error and never silent wrong data (issue 11).

Positions outside the image, conflicting labels, glob characters in file names, truncated
image files, wrong types, labels that are not numbers, replayed imports, interrupted
detection runs, the schema 2 migration, and a fuzz of both CSV importers.
"""

import csv
import io
import json
import re
import shutil
import sqlite3
import uuid
import warnings

import numpy as np
import pandas as pd
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blobsift import store
from blobsift.cli import main
from blobsift.crops import extract_crops
from blobsift.exceptions import BlobsiftError, ImageReadError, InvalidInputError
from blobsift.io import read_candidates, read_image
from blobsift.project import AlreadyImportedWarning, LabelConflictWarning, Project
from blobsift.project._channels import ChannelsMixin
from blobsift.types import Candidates
from project_helpers import new_project, write_images


@pytest.fixture
def images(tmp_path):
    return write_images(tmp_path / "data", 2, seed=0)


@pytest.fixture
def project(tmp_path, images):
    with new_project(tmp_path / "p", images) as created:
        yield created


def write_csv(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def nothing_written(project):
    return len(project.label_events()) == 0 and project.label_imports() == []


# -- positions outside the image ------------------------------------------------------------
def test_import_labels_refuses_a_position_outside_the_image_with_line_and_shape(project, tmp_path):
    labels = write_csv(
        tmp_path / "far.csv",
        "image,row,col,label\nimg0.tif,10,10,1\nimg0.tif,99999,-500,0\nimg1.tif,5,5,1\n",
    )
    with pytest.raises(InvalidInputError, match=r"far\.csv line 3.*96 rows x 96 columns"):
        project.import_labels(labels)
    assert nothing_written(project)


@pytest.mark.parametrize(("row", "col"), [(99999.0, 5.0), (5.0, -500.0), (-2.01, 5.0),
                                          (5.0, 97.01)])  # fmt: skip
def test_label_refuses_positions_off_the_image_by_more_than_the_match_radius(project, row, col):
    with pytest.raises(InvalidInputError, match="outside their image"):
        project.label("img0.tif", row, col, 1)
    assert nothing_written(project)


def test_positions_at_the_edge_are_kept_and_cut_by_mirror_reflection(project):
    # Within the match radius (2 px) of the pixels, and within half a crop of the edge.
    edge = [(-2.0, 40.0), (0.0, 0.0), (95.0, 95.0), (97.0, 3.0), (3.0, 30.0)]
    project.add_labels(["img0.tif"] * 5, *zip(*edge, strict=True), [1, 0, 1, 0, 1])
    crops, _, table = project.training_data()
    assert table[["row", "col"]].to_numpy().tolist() == [list(p) for p in edge]
    pixels = read_image(project.image("img0.tif").path)
    np.testing.assert_array_equal(crops, extract_crops(pixels, np.array(edge)))
    assert crops[4, 32, 32] == pixels[3, 30]  # the centre is the labelled pixel
    # Mirror reflection without repeating the edge: crop row 1 is image row 3 - 32 + 1 =
    # -28, which shows row 28; crop column 2 is image column 0.
    np.testing.assert_array_equal(crops[4, 1, 2:], pixels[28, :62])


def test_import_candidates_refuses_a_position_outside_the_image_and_adds_no_run(project):
    table = Candidates(row=[10.0, 99999.0, 20.0], col=[10.0, 5.0, -500.0], image=["img0.tif"] * 3)
    with pytest.raises(InvalidInputError, match=r"2 position\(s\).*candidate row 2 \(line 3"):
        project.import_candidates(table)
    assert project.detection_runs() == []
    edge = Candidates(row=[-1.5, 96.5], col=[0.0, 50.0], image=["img1.tif"] * 2)
    assert project.import_candidates(edge)["candidates"] == 2


def test_cli_import_candidates_names_the_csv_line_outside_the_image(project, tmp_path, capsys):
    spots = write_csv(tmp_path / "spots.csv", "image,row,col\nimg0.tif,1,1\nimg0.tif,5,-500\n")
    assert main(["import-candidates", str(project.root), str(spots), "--quiet"]) == 2
    assert "line 3" in capsys.readouterr().err
    assert project.detection_runs() == []


# -- conflicting labels ---------------------------------------------------------------------
def test_two_labels_of_one_position_in_one_call_are_refused(project):
    with pytest.raises(InvalidInputError, match=r"label 0 \(0-based\) gives 1 and label 1"):
        project.add_labels(["img0.tif"] * 2, [20.0, 21.5], [20.0, 20.0], [1, 0])
    assert nothing_written(project)
    ids = project.add_labels(["img0.tif"] * 2, [20.0, 21.5], [20.0, 20.0], [1, 1])
    assert len(ids) == 2
    assert len(project.labels()) == 1  # the same label twice: one position


def test_conflicting_duplicate_rows_of_a_csv_are_refused_naming_both_lines(project, tmp_path):
    labels = write_csv(
        tmp_path / "dup.csv",
        "image,row,col,label\nimg0.tif,20,20,1\nimg1.tif,5,5,0\nimg0.tif,20,21.5,0\n",
    )
    with pytest.raises(InvalidInputError, match=r"dup\.csv line 2 gives 1 and dup\.csv line 4"):
        project.import_labels(labels)
    assert nothing_written(project)


def test_an_import_that_relabels_positions_warns_with_the_count(project, tmp_path):
    project.add_labels(["img0.tif"] * 3, [10.0, 30.0, 50.0], [10.0, 30.0, 50.0], [1, 1, 0])
    labels = write_csv(
        tmp_path / "fix.csv",
        "image,row,col,label\nimg0.tif,10.5,10,0\nimg0.tif,30,30,1\nimg0.tif,50,51,1\n",
    )
    with pytest.warns(LabelConflictWarning, match=r"^2 position\(s\) already had another"):
        assert project.import_labels(labels) == 3
    current = project.labels().sort_values("row")
    assert current["label"].tolist() == [0, 1, 1]
    assert len(project.label_events()) == 6  # the earlier events are kept


# -- glob characters --------------------------------------------------------------------------
def test_add_images_takes_an_existing_path_literally_and_globs_only_the_rest(tmp_path, capsys):
    first, second = write_images(tmp_path / "glob", 2, seed=4)
    bracket = first.rename(tmp_path / "glob" / "img[1].tif")  # img1.tif is another image
    assert second.name == "img1.tif"
    root = tmp_path / "p"
    assert main(["init", str(root), "--quiet"]) == 0
    assert main(["add-images", str(root), str(tmp_path / "glob" / "img[1].tif"), "--quiet"]) == 0
    with Project(root) as opened:
        assert [r.name for r in opened.images()] == ["img[1].tif"]
        assert opened.images()[0].sha256 == store.content_hash(bracket)
    assert main(["add-images", str(root), str(tmp_path / "glob" / "img[0-1].tif"), "--quiet"]) == 0
    with Project(root) as opened:  # no file has that name: a pattern matching img1.tif
        assert [r.name for r in opened.images()] == ["img[1].tif", "img1.tif"]


# -- truncated files ------------------------------------------------------------------------
def test_add_images_refuses_a_truncated_tiff_and_adds_nothing(tmp_path, images):
    data = np.random.default_rng(0).integers(0, 4000, (96, 96)).astype(np.uint16)
    whole = tmp_path / "whole.tif"
    tifffile.imwrite(whole, data)
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with Project.create(tmp_path / "p") as project:
        with pytest.raises(ImageReadError, match=r"truncated\.tif.*reading its pixels failed"):
            project.add_images([images[0], truncated])
        assert project.images() == []
        assert [r.name for r in project.add_images([whole])] == ["whole.tif"]


# -- types ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"threshold": "5"}, "threshold must be a number; got str '5'"),
        ({"sigma_max": None}, "sigma_max must be a number"),
        ({"threshold": True}, "threshold must be a number"),
        ({"threshold": float("nan")}, "threshold must lie in"),
        ({"min_distance": 1.5}, "min_distance must be an integer"),
        ({"max_candidates": "10"}, "max_candidates must be an integer"),
        ({"sigma_min": 0.0}, "sigma_min must lie in"),
    ],
)
def test_detect_refuses_wrong_setting_types_before_recording_a_run(project, settings, message):
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        project.detect(**settings)
    assert project.detection_runs() == []


def test_wrong_types_in_the_project_api_are_clear_errors(project, tmp_path, images):
    with pytest.raises(InvalidInputError, match="list of image paths"):
        project.detect("img0.tif")
    with pytest.raises(InvalidInputError, match="list of image paths"):
        project.add_images(str(images[0]))
    with pytest.raises(InvalidInputError, match="file paths"):
        project.add_images([None])
    with pytest.raises(InvalidInputError, match="row must be a number; got str '5'"):
        project.label("img0.tif", "5", 5.0, 1)
    with pytest.raises(InvalidInputError, match="who must be a non-empty name"):
        project.label("img0.tif", 5.0, 5.0, 1, who=7)
    with pytest.raises(InvalidInputError, match="path must hold file paths"):
        project.import_labels(None)
    with pytest.raises(InvalidInputError, match="match_radius must be a number"):
        Project(project.root, match_radius="2")
    assert nothing_written(project)


def test_integer_and_float_settings_name_the_same_detection(project):
    assert project.detect(threshold=5)["images"] == 2
    assert project.detect(threshold=5.0)["skipped"] == 2


# -- labels are numbers -----------------------------------------------------------------------
@pytest.mark.parametrize("value", ["True", "false", "yes", "2", "0.5", "\uff11", "1_0", "nan", "x"])
def test_a_label_that_is_not_a_label_value_is_refused_with_its_line(project, tmp_path, value):
    labels = write_csv(
        tmp_path / "l.csv", f"image,row,col,label\nimg0.tif,5,5,1\nimg0.tif,9,9,{value}\n"
    )
    with pytest.raises(InvalidInputError, match=r"l\.csv line 3: label must be"):
        project.import_labels(labels)
    assert nothing_written(project)


def test_label_values_numbers_and_documented_words_are_accepted(project, tmp_path):
    labels = write_csv(
        tmp_path / "ok.csv",
        "image,row,col,label\nimg0.tif,5,5,1\nimg0.tif,15,5,0.0\nimg0.tif,25,5, -1 \n"
        "img0.tif,35,5,Signal\nimg0.tif,45,5,noise\nimg0.tif,55,5,UNSURE\n\nimg0.tif,65,5,+1\n",
    )
    assert project.import_labels(labels) == 7  # the blank line is skipped
    assert project.labels()["label"].tolist() == [1, 0, -1, 1, 0, -1, 1]
    with pytest.raises(InvalidInputError, match="label must be"):
        project.label("img1.tif", 5.0, 5.0, True)


# -- import replays ----------------------------------------------------------------------------
def test_the_same_label_file_is_applied_once_and_again_on_request(project, tmp_path):
    text = "image,row,col,label\nimg0.tif,5,5,1\nimg1.tif,40,40,0\n"
    labels = write_csv(tmp_path / "labels.csv", text)
    assert project.import_labels(labels, who="ann") == 2
    with pytest.warns(AlreadyImportedWarning, match="already imported.*by ann"):
        assert project.import_labels(labels) == 0
    copy = write_csv(tmp_path / "renamed.csv", text)  # the same content under another name
    with pytest.warns(AlreadyImportedWarning):
        assert project.import_labels(copy) == 0
    assert len(project.label_events()) == 2
    (record,) = project.label_imports()
    assert (record["sha256"], record["n_events"]) == (store.content_hash(labels), 2)
    events = project.label_events()
    assert [record["first_event"], record["last_event"]] == events["id"].tolist()
    assert project.import_labels(labels, again=True) == 2
    assert len(project.label_events()) == 4
    assert [r["first_event"] for r in project.label_imports()] == [1, 3]  # recorded too


def test_cli_import_labels_says_when_a_file_was_already_imported(project, tmp_path, capsys):
    labels = write_csv(tmp_path / "labels.csv", "image,row,col,label\nimg0.tif,5,5,1\n")
    argv = ["import-labels", str(project.root), str(labels), "--json", "--quiet"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["imported"], first["already_imported"]) == (1, False)
    assert main(argv) == 0
    out, err = capsys.readouterr()
    again = json.loads(out)
    assert (again["imported"], again["already_imported"]) == (0, True)
    assert "already imported" in err
    assert main([*argv, "--again"]) == 0
    assert json.loads(capsys.readouterr().out)["imported"] == 1


# -- interrupted detection runs ----------------------------------------------------------------
def stop_after_one_image(event):
    raise KeyboardInterrupt  # called once the first image's candidates are stored


def test_a_detection_left_running_is_marked_interrupted_by_the_next_run(project):
    with pytest.raises(KeyboardInterrupt):
        project.detect(threshold=4.5, progress=stop_after_one_image)
    info = project.info()
    assert (info["unfinished_detection_runs"], info["interrupted_detection_runs"]) == (1, 0)
    assert project.detect(threshold=4.5)["images"] == 1  # resumes: the other image
    assert [r["status"] for r in project.detection_runs()] == ["interrupted", "complete"]
    info = project.info()
    assert (info["unfinished_detection_runs"], info["interrupted_detection_runs"]) == (0, 1)


def test_a_run_killed_after_its_last_image_is_marked_even_when_nothing_is_left(project):
    with pytest.raises(KeyboardInterrupt):
        project.detect(images=["img0.tif"], threshold=4.5, progress=stop_after_one_image)
    assert project.detect(images=["img0.tif"], threshold=4.5)["skipped"] == 1
    assert [r["status"] for r in project.detection_runs()] == ["interrupted"]


def test_the_schema_2_migration_keeps_every_row_and_reference(tmp_path, images, monkeypatch):
    with monkeypatch.context() as old:  # a database written by the version-1 code
        old.setattr(store, "MIGRATIONS", {1: store.MIGRATIONS[1]})
        old.setattr(store, "SCHEMA_VERSION", 1)
        # the version-1 code had no project settings (schema 4): its projects read 2D images
        old.setattr(ChannelsMixin, "_channels", lambda self: {})
        with Project.create(tmp_path / "p") as project:
            project.add_images(images)
            with pytest.raises(KeyboardInterrupt):
                project.detect(progress=stop_after_one_image)
            # The current code writes columns of later schemas: write the v1 event by hand.
            project._conn.execute(
                "INSERT INTO label_events (image_id, row, col, label, who, created_at, source)"
                " VALUES (1, 5.0, 5.0, 1, 'ann', '2026-01-01T00:00:00', 'api')"
            )
            assert project.schema_version == 1
            candidates_before = project.candidates()
            runs_before = project.detection_runs()
    with Project(tmp_path / "p") as project:
        assert project.schema_version == store.SCHEMA_VERSION
        pd.testing.assert_frame_equal(project.candidates(), candidates_before)
        assert project.detection_runs() == runs_before
        conn = project._conn
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE detection_runs SET status = 'bogus'")
        with pytest.raises(sqlite3.IntegrityError):  # candidates still refer to their run
            conn.execute("INSERT INTO candidates (run_id, image_id, row, col) VALUES (99, 1, 1, 1)")
        assert project.detect()["images"] == 1
        assert [r["status"] for r in project.detection_runs()] == ["interrupted", "complete"]
        assert len(project.labels()) == 1


# -- fuzz of the CSV importers -----------------------------------------------------------------
NAMES = ["img0.tif", "img1.tif"]
SIZE = 96
RADIUS = 2.0
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=6)
#: Cells an import must accept, by column.
GOOD = {
    "image": st.sampled_from(NAMES),
    "row": st.one_of(st.integers(-2, 97).map(str), st.floats(-2, 97).map(repr)),
    "label": st.sampled_from(["1", "0", "-1", "1.0", "signal", "Noise", "UNSURE", " 0 "]),
    "other": st.one_of(st.just(""), st.floats(0, 10).map(repr)),
}
GOOD["col"] = GOOD["row"]
#: Cells that may be wrong: NaN, inf, out of the image, not numbers, unicode, empty.
ANY = st.one_of(
    st.integers(-5, 100).map(str),
    st.floats(-10, 110, allow_nan=False).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "", " 7 ", "True", "\uff11", "1_0", "0x1",
                     "2", "signal", "img9.tif", "NA", *NAMES]),
    TEXT,
)  # fmt: skip


@st.composite
def tables(draw, needed):
    """A CSV text: a header of ``needed`` (sometimes one short) and other columns, and rows
    of valid cells of which, in half the tables, a few are replaced by any text."""
    extra = draw(st.lists(st.sampled_from(["sigma", "score", "note", "x", "ü"]), unique=True,
                          max_size=2))  # fmt: skip
    kept = list(needed)
    if draw(st.integers(0, 5)) == 0:
        kept.remove(draw(st.sampled_from(needed)))
    header = draw(st.permutations([*kept, *[c for c in extra if c not in kept]]))
    n = draw(st.integers(0, 6))
    rows = [[draw(GOOD.get(name, GOOD["other"])) for name in header] for _ in range(n)]
    if draw(st.booleans()) and n:  # positions near each other, to meet the match radius
        for row in rows:
            for name in ("row", "col"):
                if name in header:
                    row[header.index(name)] = str(draw(st.sampled_from([10, 11, 12.5])))
    if draw(st.booleans()) and n and header:
        for _ in range(draw(st.integers(1, 3))):
            rows[draw(st.integers(0, n - 1))][draw(st.integers(0, len(header) - 1))] = draw(ANY)
    if not header and draw(st.booleans()):
        return ""  # an empty file
    lines = []
    writer = csv.writer(_Lines(lines), lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return "".join(lines)


class _Lines:
    def __init__(self, out):
        self.out = out

    def write(self, text):
        self.out.append(text)


NUMBER_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:nan|inf|infinity)",
                         re.ASCII | re.IGNORECASE)  # fmt: skip


def number(text):
    text = text.strip()
    return float(text) if NUMBER_TEXT.fullmatch(text) else None


def on_image(r, c):
    return -RADIUS <= r <= SIZE - 1 + RADIUS and -RADIUS <= c <= SIZE - 1 + RADIUS


def expected_labels(text):
    """The rows an import must store, or None where the file must be refused."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return None
    header = [h.strip() for h in rows[0]]
    if any(name not in header for name in ("image", "row", "col", "label")):
        return None
    where = {name: header.index(name) for name in ("image", "row", "col", "label")}
    out = []
    for cells in rows[1:]:
        if all(not c.strip() for c in cells):
            continue  # a blank line
        image, r, c, label = (cells[where[name]].strip() for name in where)
        words = {"signal": 1, "noise": 0, "unsure": -1}
        value = words.get(label.lower(), number(label) if label else None)
        r, c = number(r), number(c)
        if image not in NAMES or r is None or c is None or value not in (-1, 0, 1):
            return None
        if not (np.isfinite(r) and np.isfinite(c) and on_image(r, c)):
            return None
        out.append((image, r, c, int(value)))
    return out


def expected_candidates(text):
    """The candidates an import must store, or None where the file must be refused."""
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return None
    if "row" not in frame.columns or "col" not in frame.columns or "image" not in frame:
        return None
    na = pd._libs.parsers.STR_NA_VALUES
    out = []
    for _, cells in frame.iterrows():
        image = cells["image"]
        r, c = (number(cells[name]) for name in ("row", "col"))
        if image not in NAMES or r is None or c is None:
            return None
        if not (np.isfinite(r) and np.isfinite(c) and on_image(r, c)):
            return None
        for name in ("sigma", "score"):
            value = cells.get(name, "")
            if value not in na and value.strip() and number(value) is None:
                return None
        out.append((image, r, c))
    return out


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    paths = write_images(root / "data", 2, seed=0)
    Project.create(root / "template").close()
    with Project(root / "template") as project:
        project.add_images(paths)
    return root


def fresh(template):
    root = template / f"p-{uuid.uuid4().hex}"
    shutil.copytree(template / "template", root)
    return Project(root)


FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(text=tables(["image", "row", "col", "label"]))
def test_fuzz_import_labels_stores_what_was_valid_or_refuses_cleanly(template, text):
    expected = expected_labels(text)
    path = template / f"labels-{uuid.uuid4().hex}.csv"
    path.write_text(text, encoding="utf-8")
    with fresh(template) as project, warnings.catch_warnings():
        warnings.simplefilter("error")
        count, error = outcome(project.import_labels, path)
        if error is not None:
            assert nothing_written(project), error
            # A valid file is refused only for labels that conflict at one position.
            assert expected is None or "conflict" in str(error), (text, error)
            assert expected is None or _has_conflict(expected), (text, error)
            return
        assert expected is not None, text  # refused input was stored: silent wrong data
        assert count == len(expected)
        events = project.label_events()
        assert events["image"].tolist() == [e[0] for e in expected]
        assert events["label"].tolist() == [e[3] for e in expected]
        distance = np.hypot(events["row"] - [e[1] for e in expected],
                            events["col"] - [e[2] for e in expected])  # fmt: skip
        assert (distance <= RADIUS).all()  # each at its row, or at the position it joined


def outcome(call, *args):
    """(result, None) or (None, the BlobsiftError); any other exception propagates."""
    try:
        return call(*args), None
    except BlobsiftError as error:
        return None, error


def _has_conflict(expected):
    for a, first in enumerate(expected):
        for second in expected[a + 1 :]:
            near = np.hypot(first[1] - second[1], first[2] - second[2]) <= 2 * RADIUS * len(
                expected
            )
            if first[0] == second[0] and first[3] != second[3] and near:
                return True
    return False


@FUZZ
@given(text=tables(["image", "row", "col"]))
def test_fuzz_import_candidates_stores_what_was_valid_or_refuses_cleanly(template, text):
    expected = expected_candidates(text)
    path = template / f"spots-{uuid.uuid4().hex}.csv"
    path.write_text(text, encoding="utf-8")
    with fresh(template) as project:
        _, error = outcome(lambda: project.import_candidates(read_candidates(path)))
        if error is not None:
            assert project.detection_runs() == [], error
            assert expected is None or not expected, (text, error)  # an empty table is refused
            return
        assert expected is not None, text
        stored = project.candidates()
        order = sorted(range(len(expected)), key=lambda k: NAMES.index(expected[k][0]))
        assert stored["image"].tolist() == [expected[k][0] for k in order]
        np.testing.assert_allclose(stored["row"], [expected[k][1] for k in order], rtol=1e-12)
        np.testing.assert_allclose(stored["col"], [expected[k][2] for k in order], rtol=1e-12)
