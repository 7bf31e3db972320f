from dataclasses import fields

import pytest

from blobsift.cli import build_parser, main
from blobsift.cli._options import _detect_settings
from blobsift.detect import DetectSettings


def test_bad_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["demo", "--labels", "5"])
    assert excinfo.value.code == 2
    assert "at least 20" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("blobsift ")


@pytest.mark.parametrize(("command", "prefix"), [("detect", ""), ("predict", "detect-")])
def test_detection_options_are_the_fields_of_detect_settings(command, prefix, capsys):
    parser = build_parser()
    assert _detect_settings(parser.parse_args([command, "p"])) == {}
    given = {"sigma_min": 1.5, "sigma_max": 4.0, "threshold": 6.0, "min_distance": 2,
             "border": 3, "max_candidates": 7}  # fmt: skip
    assert set(given) == set(DetectSettings.names())
    argv = [command, "p"]
    for name, value in given.items():
        argv += [f"--{prefix}{name.replace('_', '-')}", str(value)]
    settings = _detect_settings(parser.parse_args(argv))
    assert settings == given
    assert [type(v) for v in settings.values()] == [type(v) for v in given.values()]
    DetectSettings(**settings)
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for setting in fields(DetectSettings):
        option = f"--{prefix}{setting.name.replace('_', '-')} {setting.metadata['metavar']}"
        assert option in out
        assert f"default {setting.default:g})" in out
    assert "smallest blob width (Gaussian sigma; default 1)" in out
    assert "keep at most N per image (default 100000)" in out


def test_an_option_of_the_wrong_kind_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["detect", "p", "--min-distance", "1.5"])
    assert excinfo.value.code == 2
    assert "--min-distance: invalid int value" in capsys.readouterr().err
