"""`train-host ensemble`: trained runs averaged into one model that exports and runs on the
edge like any other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")


def _train(out: Path, seed: int, split_seed: int | None, width: int = 16) -> Path:
    from train_host.train import TrainConfig, train

    config = TrainConfig(dataset="digits", epochs=1, seed=seed, split_seed=split_seed, width=width)
    train(config, out, verbose=0)
    return out


def _tflite_and_keras_mean(run: Path, members: list[Path], count: int = 20):
    """The exported float32 ensemble's probabilities and the mean of its members' (Keras)."""
    from edge.datasets import load_npz_split
    from edge.interpreter import Classifier
    from edge.preprocess import to_model_input
    from train_host.train import load_run

    test = load_npz_split(run / "test-split.npz")
    x = to_model_input(test.images[:count], load_run(members[0])[2].preprocess)
    mean = np.mean([load_run(m)[0].predict(x, verbose=0) for m in members], axis=0)
    return Classifier(run / "float32.tflite").predict_batch(test.images[:count]), mean


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("ensemble")
    return [_train(root / f"seed{seed}", seed, split_seed=0) for seed in (0, 1)]


@pytest.fixture(scope="module")
def exported(members, tmp_path_factory) -> Path:
    from train_host.ensemble import ensemble_runs
    from train_host.export import export_run

    out = tmp_path_factory.mktemp("ensemble") / "ensemble"
    ensemble_runs(members, out, progress=lambda line: None)
    export_run(out, variants=("float32", "int8"), progress=lambda line: None)
    return out


def test_ensemble_is_the_mean_of_its_members_in_tflite(members, exported):
    tflite, mean = _tflite_and_keras_mean(exported, members)
    np.testing.assert_allclose(tflite, mean, atol=1e-5)


def test_members_of_other_widths_keep_their_own_weights(members, tmp_path):
    from train_host.ensemble import ensemble_runs
    from train_host.export import export_run

    narrow = _train(tmp_path / "narrow", seed=3, split_seed=0, width=8)
    both = [narrow, members[0]]
    ensemble_runs(both, tmp_path / "mixed", progress=lambda line: None)
    export_run(tmp_path / "mixed", variants=("float32",), progress=lambda line: None)
    tflite, mean = _tflite_and_keras_mean(tmp_path / "mixed", both)
    np.testing.assert_allclose(tflite, mean, atol=1e-5)


def test_ensemble_record_and_sidecar_name_their_members(members, exported):
    record = json.loads((exported / "train.json").read_text())
    assert [m["run"] for m in record["members"]] == [str(m) for m in members]
    assert 0.0 <= record["val_accuracy"] <= 1.0
    sidecar = json.loads((exported / "int8.json").read_text())
    assert sidecar["name"] == "digits-cnn-ensemble2"
    assert len(sidecar["training"]["members"]) == 2
    assert sidecar["metrics"]["tflite_accuracy"] > 0


def test_members_with_other_validation_splits_are_refused(members, tmp_path, capsys):
    from train_host.cli import main

    other = _train(tmp_path / "other-split", seed=2, split_seed=None)  # split seed 2
    code = main(["ensemble", str(members[0]), str(other), "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "--split-seed" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "e").exists()


def test_ensemble_needs_two_run_folders(members, tmp_path, capsys):
    from train_host.cli import main

    assert main(["ensemble", str(members[0]), "--out", str(tmp_path / "e")]) == 2
    assert "at least two" in capsys.readouterr().err
    assert main(["ensemble", str(members[0]), str(tmp_path), "--out", str(tmp_path / "e")]) == 2
    assert "not a run folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda run: (run / "train.json").write_text("{"), "train.json is corrupt"),
        (lambda run: (run / "train.json").write_text("{}"), "train.json is corrupt ('config')"),
        (lambda run: (run / "model.keras").unlink(), "has no model.keras"),
        (lambda run: (run / "model.keras").write_bytes(b"PK\x03\x04cut"), "does not load"),
    ],
)
def test_a_damaged_run_folder_is_one_line(members, tmp_path, capsys, damage, message):
    import shutil

    from train_host.cli import main

    run = tmp_path / "run"
    shutil.copytree(members[0], run)
    damage(run)
    assert main(["export", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "train it again" in err[0]
    assert not list(run.glob("*.tflite"))


def test_split_seed_defaults_to_the_seed_and_old_records_load():
    from train_host.train import TrainConfig, config_from_dict

    assert TrainConfig(seed=3).resolved_split_seed() == 3
    assert TrainConfig(seed=3, split_seed=0).resolved_split_seed() == 0
    old = {"dataset": "digits", "seed": 5}  # a train.json written before --split-seed
    assert config_from_dict(old).resolved_split_seed() == 5
