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


def test_progress_bars_follow_progress_events(capsys):
    from blobsift.cli._bars import _Bars
    from blobsift.types import ProgressEvent

    bars = _Bars(enabled=True)
    bars(ProgressEvent(stage="predict", done=0, total=3, details={"dashboard": "http://h:8787"}))
    for epoch in (1, 2):
        values = {"epoch": epoch, "total_epochs": 5, "train_loss": 0.1, "val_f1": 0.5 + epoch / 10}
        bars(ProgressEvent(stage="epoch", done=epoch, total=5, details=values))
    bars(ProgressEvent(stage="pretrain", done=10, total=None, details={"loss": 1.0}))
    shown = {stage: (bar.n, bar.total, bar.desc, bar.unit) for stage, bar in bars.bars.items()}
    assert shown == {
        "predict": (0, 3, "predict", "image"),
        "epoch": (2, 5, "training Phase 2", "epoch"),
        "pretrain": (10, None, "pre-training Phase 1", "step"),
    }
    assert bars.bars["epoch"].postfix == "val_f1=0.700"
    bars.close()
    assert "Dask dashboard: http://h:8787" in capsys.readouterr().err
    quiet = _Bars(enabled=False)
    quiet(ProgressEvent(stage="detect", done=1, total=2))
    assert quiet.bars == {}
