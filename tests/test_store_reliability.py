"""Crashes (SIGKILL) and concurrent writers leave the project consistent and lose nothing."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from blobsift.cli import main
from blobsift.detect import detect_blobs
from blobsift.io import read_image
from blobsift.project import Project
from project_helpers import write_images

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def start(code, *args):
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip


def integrity(root):
    conn = sqlite3.connect(root / "project.db")
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def project_root(tmp_path):
    images = write_images(tmp_path / "data", 4, seed=0)
    with Project.create(tmp_path / "p") as project:
        project.add_images(images)
        rng = np.random.default_rng(0)
        project.add_labels(["img0.tif"] * 30, rng.uniform(0, 95, 30), rng.uniform(0, 95, 30),
                           [1] * 10 + [0] * 20, who="before")  # fmt: skip
    return tmp_path / "p"


def committed_labels(root):
    with Project(root) as project:
        return project.labels(), project.label_events()


KILL_IN_IMPORT = """
import os, signal, sys
from blobsift.project import Project
project = Project(sys.argv[1])
def progress(event):
    if event.done >= 2000:  # inside the import's transaction, after 2,000 inserts
        print("killing", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
project.import_labels(sys.argv[2], who="child", progress=progress)
print("finished", flush=True)
"""


def test_sigkill_during_label_import_keeps_every_committed_label(project_root, tmp_path):
    labels_before, events_before = committed_labels(project_root)
    n = 5000
    rng = np.random.default_rng(1)
    csv = tmp_path / "many.csv"
    # One label for all: 5,000 random positions on 96 x 96 pixels fall within 2 px of each
    # other, and different labels there would be a conflict, which refuses the file.
    pd.DataFrame({"image": "img1.tif", "row": rng.uniform(0, 95, n),
                  "col": rng.uniform(0, 95, n), "label": 1}).to_csv(csv, index=False)  # fmt: skip
    child = start(KILL_IN_IMPORT, project_root, csv)
    out, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, err
    assert out.split() == ["killing"]
    assert integrity(project_root) == "ok"
    labels_after, events_after = committed_labels(project_root)
    pd.testing.assert_frame_equal(labels_before, labels_after)
    pd.testing.assert_frame_equal(events_before, events_after)  # the import rolled back whole
    with Project(project_root) as project:
        assert project.import_labels(csv) == n
        assert len(project.label_events()) == len(events_before) + n


KILL_AFTER_IMPORT_COMMITTED = """
import os, signal, sys
from blobsift import project as store
from blobsift.cli import main
def killed(self, **options):  # the CLI's next step after the import's commit
    os.kill(os.getpid(), signal.SIGKILL)
store.Project.info = killed
main(["import-labels", sys.argv[1], sys.argv[2], "--who", "child"])
"""


def test_rerunning_an_import_killed_after_its_commit_applies_nothing_twice(
    project_root, tmp_path, capsys
):
    _, events_before = committed_labels(project_root)
    csv = tmp_path / "labels.csv"
    rng = np.random.default_rng(2)
    pd.DataFrame({"image": "img1.tif", "row": rng.uniform(0, 95, 50),
                  "col": rng.uniform(0, 95, 50), "label": 0}).to_csv(csv, index=False)  # fmt: skip
    child = start(KILL_AFTER_IMPORT_COMMITTED, project_root, csv)
    out, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, err
    assert out == ""  # it looked failed: no report
    assert integrity(project_root) == "ok"
    _, events_killed = committed_labels(project_root)
    assert len(events_killed) == len(events_before) + 50  # ... but it had committed
    capsys.readouterr()
    assert main(["import-labels", str(project_root), str(csv), "--json", "--quiet"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert (report["imported"], report["already_imported"]) == (0, True)
    assert "already imported" in err
    assert "by child" in err
    _, events_after = committed_labels(project_root)
    pd.testing.assert_frame_equal(events_killed, events_after)


KILL_IN_DETECT = """
import os, signal, sys
from blobsift.project import Project
project = Project(sys.argv[1])
def progress(event):
    print(event.item, flush=True)
    if event.done == 2:
        os.kill(os.getpid(), signal.SIGKILL)
project.detect(threshold=4.5, progress=progress)
print("finished", flush=True)
"""


def test_sigkill_during_detection_keeps_finished_images_and_detect_resumes(project_root):
    labels_before, events_before = committed_labels(project_root)
    child = start(KILL_IN_DETECT, project_root)
    out, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, err
    assert out.split() == ["img0.tif", "img1.tif"]
    assert integrity(project_root) == "ok"
    with Project(project_root) as project:
        info = project.info()
        assert info["unfinished_detection_runs"] == 1
        assert info["images_without_candidates"] == 2
        labels_after = project.labels()
        assert project.label_events().equals(events_before)
        summary = project.detect(threshold=4.5)
        assert (summary["images"], summary["skipped"]) == (2, 2)
        # The killed run is marked interrupted when the next one starts; info says so.
        assert [r["status"] for r in project.detection_runs()] == ["interrupted", "complete"]
        info = project.info()
        assert (info["unfinished_detection_runs"], info["interrupted_detection_runs"]) == (0, 1)
        for record in project.images():
            expected = detect_blobs(read_image(record.path), threshold=4.5)
            np.testing.assert_allclose(project.candidates(record.id)["row"], expected.row)
    pd.testing.assert_frame_equal(labels_before, labels_after)


KILL_IN_TRAINING = """
import os, signal, sys
from blobsift.project import Project
project = Project(sys.argv[1])
def progress(event):
    if event["stage"] in ("finetune", "epoch"):  # training Phase 1 or Phase 2
        os.kill(os.getpid(), signal.SIGKILL)
project.train(epochs=3, pretrain=False, progress=progress)
"""


def test_sigkill_during_training_records_no_model_and_keeps_labels(project_root):
    _, events_before = committed_labels(project_root)
    child = start(KILL_IN_TRAINING, project_root)
    _, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, err
    assert integrity(project_root) == "ok"
    with Project(project_root) as project:
        assert project.models() == []
        assert project.label_events().equals(events_before)
    assert list((project_root / "models").iterdir()) == []


LABEL_FOREVER = """
import sys
from blobsift.project import Project
project = Project(sys.argv[1])
for i in range(10**6):
    event = project.label("img2.tif", 3 + (i * 7) % 90, 3 + (i * 13) % 90, i % 2, who="loop")
    print(event, flush=True)  # printed only after the commit
"""


def test_sigkill_at_an_arbitrary_moment_loses_no_committed_label(project_root):
    child = start(LABEL_FOREVER, project_root)
    printed = []
    while len(printed) < 40:
        line = child.stdout.readline()
        assert line, child.stderr.read()
        printed.append(int(line))
    time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    rest, _ = child.communicate(timeout=30)
    printed += [int(line) for line in rest.split()]
    assert integrity(project_root) == "ok"
    _, events = committed_labels(project_root)
    assert set(printed) <= set(events["id"])
    assert len(events) >= 30 + len(printed)


LABEL_ALONGSIDE = """
import sys, time
from pathlib import Path
from blobsift.project import Project
root, who, offset = sys.argv[1], sys.argv[2], float(sys.argv[3])
project = Project(root)
print("ready", flush=True)
while not Path(root, "go").exists():
    time.sleep(0.005)
for i in range(120):  # own positions, one transaction each
    print(project.label("img3.tif", offset + (i // 10) * 3, 3 + (i % 10) * 3, i % 2, who=who),
          flush=True)
    if i % 20 == 0:  # and the same shared positions as the other process, as a batch
        ids = project.add_labels(["img3.tif"] * 5, [80.0] * 5, [10.0, 20, 30, 40, 50],
                                 [1, 0, 1, 0, 1], who=who)
        print(*ids, sep="\\n", flush=True)
    time.sleep(0.002)  # a (very fast) person: lets the other process's writes interleave
"""


def test_two_processes_labelling_at_once_lose_nothing(project_root):
    children = [start(LABEL_ALONGSIDE, project_root, who, offset)
                for who, offset in (("ann", 3.0), ("bob", 40.0))]  # fmt: skip
    for child in children:
        assert child.stdout.readline().strip() == "ready"
    (project_root / "go").touch()
    outputs = [child.communicate(timeout=120) for child in children]
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    ids = [[int(v) for v in out.split()] for out, _ in outputs]
    assert [len(i) for i in ids] == [120 + 6 * 5] * 2
    assert integrity(project_root) == "ok"
    with Project(project_root) as project:
        events = project.label_events()
        assert set(ids[0]) | set(ids[1]) <= set(events["id"])
        assert set(ids[0]).isdisjoint(ids[1])
        mine = events[events["image"] == "img3.tif"]
        assert len(mine) == 2 * (120 + 30)
        switches = int((mine["who"] != mine["who"].shift()).sum()) - 1
        assert switches > 10  # the two really wrote at the same time
        assert mine.groupby("who").size().to_dict() == {"ann": 150, "bob": 150}
        current = project.labels("img3.tif")
        # 120 own positions each (none within 2 px of another) + 5 shared ones.
        assert len(current) == 245
        own = current[current["row"] < 80]
        assert own.groupby("who").size().to_dict() == {"ann": 120, "bob": 120}


KILL_IN_PREDICT = """
import os, signal, sys
from blobsift import project as store
from blobsift.cli import main
real = store.Project.predict
def predict(self, *args, progress=None, **kwargs):
    def kill(event):
        if event.done == 2:  # after the second image's rows are written
            print("killing", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    return real(self, *args, progress=kill, **kwargs)
store.Project.predict = predict
sys.exit(main(["predict", sys.argv[1], "--output", sys.argv[2], "--quiet"]))
"""


def test_sigkill_during_predict_leaves_the_output_whole_or_absent_and_a_rerun_completes(
    project_root, tmp_path
):
    from blobsift.cli import main

    with Project(project_root) as project:
        project.detect(threshold=4.5)
        project.train(epochs=1, pretrain=False)
        counts = project.candidates().groupby("image").size()
    output = tmp_path / "out" / "f.csv"
    child = start(KILL_IN_PREDICT, project_root, output)
    out, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, err
    assert out.split() == ["killing"]
    assert not output.exists()  # never a part of the table under the final name
    assert not output.with_suffix(".parquet").exists()
    partial = pd.read_csv(output.with_name("f.csv.partial"))
    assert sorted(set(partial["image"])) == ["img0.tif", "img1.tif"]
    assert len(partial) == counts[["img0.tif", "img1.tif"]].sum()
    assert integrity(project_root) == "ok"
    with Project(project_root) as project:
        assert project.prediction_runs() == []  # recorded only once the files are whole

    assert main(["predict", str(project_root), "--output", str(output), "--quiet"]) == 0
    frame = pd.read_csv(output)
    assert frame.groupby("image").size().to_dict() == counts.to_dict()
    pd.testing.assert_frame_equal(pd.read_parquet(output.with_suffix(".parquet")), frame)
    assert not output.with_name("f.csv.partial").exists()
    assert sorted(p.name for p in output.parent.iterdir()) == [
        "f.csv", "f.csv.status.jsonl", "f.parquet"
    ]  # fmt: skip
    with Project(project_root) as project:
        (run,) = project.prediction_runs()
        assert run["n_candidates"] == len(frame) == counts.sum()
