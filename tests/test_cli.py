import pytest

from blobsift.cli import main


def test_demo_trains_scores_and_draws(tmp_path, capsys):
    code = main(["demo", "--labels", "25,40", "--test-size", "300", "--output", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    table = [line.split() for line in out.splitlines() if line.strip()[:2] in ("25", "40")]
    assert [row[0] for row in table] == ["25", "40"]
    assert all(0.0 <= float(row[3]) <= 1.0 for row in table)
    for name in ("learning_curve.png", "false_positives.png", "false_negatives.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["demo", "--labels", "5"])
    assert excinfo.value.code == 2
    assert "at least 20" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("blobsift ")
