import pytest

from blobsift.cli import main


def test_bad_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["demo", "--labels", "5"])
    assert excinfo.value.code == 2
    assert "at least 20" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("blobsift ")
