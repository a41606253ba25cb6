"""`train-host`'s command line refuses bad numbers and a file given as --out before any work,
with one line that names the flag."""

from __future__ import annotations

import pytest

from train_host.cli import main


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
        (["train", "--batch-size", "-8"], "argument --batch-size: must be at least 1, got -8"),
        (["train", "--learning-rate", "0"], "argument --learning-rate: must be more than 0.0"),
        (["train", "--width", "x"], "argument --width: 'x' is not an integer"),
        (["train", "--several", "-0.1"], "argument --several: must be more than 0.0, got -0.1"),
        (["camera-set", "--singles", "-1"], "argument --singles: must be at least 0, got -1"),
        (["reproduce", "seed-003", "--trials", "0"], "argument --trials: must be at least 1"),
        (["reproduce", "seed-003", "--workers", "0"], "argument --workers: must be at least 1"),
    ],
)
def test_bad_numbers_are_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--dataset", "digits"],
        ["camera-set", "--singles", "1"],
        ["reproduce", "seed-002", "--quick"],
        ["ensemble", "a", "b"],
    ],
)
def test_a_file_as_out_fails_before_any_work(command, tmp_path, capsys):
    out = tmp_path / "model.tflite"
    out.write_bytes(b"not a folder")
    assert main([*command, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"train-host: error: --out {out} is not a folder: give a folder (new or existing)"
    ]
    assert out.read_bytes() == b"not a folder"


def test_a_camera_set_of_nothing_is_refused(tmp_path, capsys):
    code = main(["camera-set", "--singles", "0", "--strings", "0", "--out", str(tmp_path / "c")])
    assert code == 2
    assert "nothing to render" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_an_unknown_data_set_fails_before_training_is_announced(tmp_path, capsys):
    assert main(["train", "--dataset", "mnist+nosuch", "--out", str(tmp_path / "run")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("train-host: error: unknown dataset 'nosuch'")
    assert not (tmp_path / "run").exists()
