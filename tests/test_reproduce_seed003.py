"""`train-host reproduce seed-003 --quick`: the paper's LeNet (15,626 parameters) trains, the
Optuna study runs and resumes without extra trials, the ensemble is scored against the
paper, plotted, and the best single model is exported for the edge runtime."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("sklearn")
pytest.importorskip("optuna")

pytestmark = [pytest.mark.host, pytest.mark.slow]

PNGS = (
    "learning_curves.png",
    "confusion.png",
    "roc.png",
    "search_history.png",
    "intermediate_values.png",
    "importance.png",
)


def test_lenet_has_the_papers_parameter_count():
    from train_host.reproduce.seed_003_setup import PAPER_PARAMS, lenet

    assert PAPER_PARAMS == 15626
    assert lenet().count_params() == 15626
    assert lenet(batch_size=1).count_params() == 15626


def test_papers_best_trial_lies_in_the_search_space():
    from optuna.trial import FixedTrial

    from train_host.reproduce.seed_003_setup import PAPER_BEST, lenet, suggest

    assert suggest(FixedTrial(PAPER_BEST)) == PAPER_BEST
    assert lenet(params=PAPER_BEST).count_params() > 15626


def run_cli(out, *extra) -> int:
    from train_host.cli import main

    return main(["reproduce", "seed-003", "--quick", "--out", str(out), *extra])


def trial_states(run_dir) -> list[str]:
    import optuna

    study = optuna.load_study(study_name="seed-003-lenet", storage=f"sqlite:///{run_dir}/optuna.db")
    return [t.state.name for t in study.trials]


@pytest.fixture(scope="module")
def quick_run(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HWR_DATA_DIR", str(shared_data))
        assert run_cli(out) == 0
    return out / "seed-003"


def test_quick_run_metrics_are_sane(quick_run):
    metrics = json.loads((quick_run / "metrics.json").read_text())
    assert metrics["images"] == {"train": 1200, "val": 400, "paper_test": 400}
    assert metrics["paper"] == {"baseline": 0.965, "optimized": 0.978, "ensemble": 0.985}
    assert metrics["baseline"]["params"] == metrics["paper_params"] == 15626
    for name in ("baseline", "optimized"):
        for split in ("paper_test_accuracy", "mnist_test_accuracy", "val_accuracy"):
            assert 0.0 < metrics[name][split]["mean"] <= 1.0
    assert len(metrics["optimized"]["runs"]) == metrics["ensemble"]["members"] == 2
    assert 0.0 < metrics["ensemble"]["paper_test_accuracy"] <= 1.0
    assert 0.0 < metrics["ensemble"]["mnist_test_accuracy"] <= 1.0
    # one epoch on 1,200 images: far from the paper, but already better than chance
    assert sum(metrics["ensemble"]["roc_auc"].values()) / 10 > 0.55
    search = metrics["search"]
    assert search["trials_completed"] + search["trials_pruned"] == search["target_trials"] == 3
    assert set(search["best_params"]) == set(search["paper_best_params"])
    assert set(search["importance"]) == set(search["best_params"])
    assert set(metrics["seconds"]) >= {"data", "baseline", "search", "ensemble", "export"}
    for png in PNGS:
        assert (quick_run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quick_run_exports_what_edge_runs(quick_run):
    import numpy as np

    from edge.datasets import load_npz_split
    from edge.interpreter import Classifier

    metrics = json.loads((quick_run / "metrics.json").read_text())
    int8 = metrics["export"]["variants"]["int8"]
    assert metrics["export"]["model"] in ("baseline", "optimized")
    assert int8["host_p50_ms"] > 0
    split = load_npz_split(quick_run / "models" / "test-split.npz")
    assert len(split) == metrics["mnist_test_images"] == 1000
    clf = Classifier(quick_run / "models" / "int8.tflite")
    assert clf.float_ops() == ()  # full int8: no float kernel anywhere
    predicted = np.argmax(clf.predict_batch(split.images), 1)
    assert np.mean(predicted == split.labels) == pytest.approx(int8["tflite_accuracy"], abs=0.01)


def test_size_curves_of_the_baseline_and_the_searched_configuration(
    quick_run, tmp_path, shared_data, monkeypatch
):
    """`--models curves`: each configuration trained on stratified subsets of the training
    images; a second run reuses every kept point and gives the same figures."""
    monkeypatch.setenv("HWR_DATA_DIR", str(shared_data))
    shutil.copytree(quick_run, tmp_path / "seed-003")
    assert run_cli(tmp_path, "--models", "curves", "--no-export") == 0
    run_dir = tmp_path / "seed-003"
    curves = json.loads((run_dir / "metrics.json").read_text())["size_curves"]
    assert set(curves) == {"baseline", "optimized"}  # the quick search has a completed trial
    for rows in curves.values():
        assert [(r["images"], r["runs"]) for r in rows] == [(600, 1), (1200, 1)]
        for row in rows:
            for split in ("train_accuracy", "paper_test_accuracy"):
                assert 0.0 < row[split]["mean"] <= 1.0
            assert "ensemble" not in row  # one training a size: nothing to average
    assert (run_dir / "size_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(json.loads((run_dir / "curves.json").read_text())) == 4
    assert len(list((run_dir / "curve-predictions").glob("*.npy"))) == 4
    # a second seed: the first seed's points are reused, and each size gets an ensemble of two
    assert run_cli(tmp_path, "--models", "curves", "--repeats", "2", "--no-export") == 0
    curves = json.loads((run_dir / "metrics.json").read_text())["size_curves"]
    assert len(list((run_dir / "curve-predictions").glob("*.npy"))) == 8
    for rows in curves.values():
        assert [(r["images"], r["runs"]) for r in rows] == [(600, 2), (1200, 2)]
        for row in rows:
            assert row["ensemble"]["members"] == 2
            assert 0.0 < row["ensemble"]["paper_test_accuracy"] <= 1.0
    assert run_cli(tmp_path, "--models", "curves", "--repeats", "2", "--no-export") == 0
    again = json.loads((run_dir / "metrics.json").read_text())["size_curves"]
    assert again == curves


def test_training_subsets_are_stratified_and_seeded():
    import numpy as np

    from train_host.reproduce.common import Data
    from train_host.reproduce.seed_003_curves import training_subset

    y = np.repeat(np.arange(10), [100, 200, 100, 100, 100, 100, 100, 100, 100, 300])
    x = np.arange(len(y), dtype=np.float32)[:, None]
    data = Data("toy", tuple("0123456789"), None, x, y, x[:5], y[:5], x[:5], y[:5])
    part = training_subset(data, 0.1, seed=3)
    assert np.bincount(part.y_train).tolist() == [10, 20, 10, 10, 10, 10, 10, 10, 10, 30]
    assert np.array_equal(part.x_train[:, 0].astype(int), np.sort(part.x_train[:, 0]).astype(int))
    assert np.array_equal(training_subset(data, 0.1, seed=3).x_train, part.x_train)
    assert not np.array_equal(training_subset(data, 0.1, seed=4).x_train, part.x_train)
    assert training_subset(data, 1.0, seed=3) is data


def test_search_resumes_without_extra_trials(quick_run, tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("HWR_DATA_DIR", str(shared_data))
    shutil.copytree(quick_run, tmp_path / "seed-003")
    run_dir = tmp_path / "seed-003"
    assert len(trial_states(run_dir)) == 3
    assert run_cli(tmp_path, "--models", "search", "--no-export") == 0
    assert len(trial_states(run_dir)) == 3
    assert json.loads((run_dir / "metrics.json").read_text())["search"]["trials_run_now"] == 0
    assert run_cli(tmp_path, "--models", "search", "--no-export", "--trials", "4") == 0
    assert len(trial_states(run_dir)) == 4
    assert json.loads((run_dir / "metrics.json").read_text())["search"]["trials_run_now"] == 1


def test_finished_trainings_are_kept_for_a_resumed_run(
    quick_run, tmp_path, shared_data, capsys, monkeypatch
):
    monkeypatch.setenv("HWR_DATA_DIR", str(shared_data))
    shutil.copytree(quick_run, tmp_path / "seed-003")
    run_dir = tmp_path / "seed-003"
    before = json.loads((run_dir / "metrics.json").read_text())["baseline"]
    kept = run_dir / "trainings" / "baseline-seed0"
    assert {p.name for p in kept.iterdir()} == {"best.weights.h5", "training.json"}
    capsys.readouterr()
    # the first training is kept, the second (a new seed) is trained
    assert run_cli(tmp_path, "--models", "baseline", "--repeats", "2", "--no-export") == 0
    out = capsys.readouterr().out
    assert "baseline seed 0: finished by an earlier run" in out
    assert "baseline seed 1 epoch" in out
    after = json.loads((run_dir / "metrics.json").read_text())["baseline"]
    assert after["runs"][0] == before["runs"][0]
    # a kept training made under another protocol (here: a damaged record) is trained again
    (kept / "training.json").write_text("{")
    assert run_cli(tmp_path, "--models", "baseline", "--repeats", "1", "--no-export") == 0
    assert "baseline seed 0 epoch" in capsys.readouterr().out
    assert json.loads((kept / "training.json").read_text())["protocol"]["seed"] == 0


def test_resuming_with_other_epochs_is_one_line_error(
    quick_run, tmp_path, shared_data, capsys, monkeypatch
):
    monkeypatch.setenv("HWR_DATA_DIR", str(shared_data))
    shutil.copytree(quick_run, tmp_path / "seed-003")
    assert run_cli(tmp_path, "--models", "search", "--epochs", "2") == 2
    err = capsys.readouterr().err
    assert "was run with" in err and "--storage" in err and len(err.strip().splitlines()) == 1


def test_papers_best_trial_trains_and_ensembles_without_a_search(
    tmp_path, shared_data, monkeypatch
):
    from train_host.reproduce.seed_003_setup import PAPER_BEST, lenet

    monkeypatch.setenv("HWR_DATA_DIR", str(shared_data))
    assert run_cli(tmp_path, "--models", "paper-best", "--no-export") == 0
    run_dir = tmp_path / "seed-003"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "search" not in metrics and not (run_dir / "optuna.db").exists()
    best = metrics["paper-best"]
    assert best["params"] == lenet(params=PAPER_BEST).count_params()
    assert best["paper"] == metrics["paper"]["optimized"]
    assert len(best["runs"]) == metrics["paper_best_ensemble"]["members"] == 2
    assert 0.0 < metrics["paper_best_ensemble"]["paper_test_accuracy"] <= 1.0


def test_unknown_stage_is_one_line_error(tmp_path, capsys):
    assert run_cli(tmp_path, "--models", "nope") == 2
    err = capsys.readouterr().err
    assert "no such model" in err and len(err.strip().splitlines()) == 1


def test_repeats_override_the_trainings(tmp_path, shared_data, capsys, monkeypatch):
    monkeypatch.setenv("HWR_DATA_DIR", str(shared_data))
    assert run_cli(tmp_path, "--models", "baseline", "--repeats", "2", "--no-export") == 0
    metrics = json.loads((tmp_path / "seed-003" / "metrics.json").read_text())
    assert len(metrics["baseline"]["runs"]) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:  # a usage error: usage, then one line
        run_cli(tmp_path, "--repeats", "0")
    assert stop.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.endswith("argument --repeats: must be at least 1, got 0")


@pytest.mark.parametrize("url", ["notadb://x", "postgresql+nosuchdriver://u:secret@host/db"])
def test_unusable_storage_url_is_one_line_error_before_any_training(tmp_path, capsys, url):
    assert run_cli(tmp_path, "--storage", url) == 2  # no data dir needed: nothing trains
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "cannot use --storage" in err
    assert "secret" not in err  # the password is not echoed
    assert not (tmp_path / "seed-003").exists()


def test_storage_that_cannot_open_is_one_line_error(tmp_path):
    from edge.errors import EdgeError
    from train_host.reproduce import search

    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'study.db'}"
    search.check_storage_url(url)  # the driver is there: the check passes
    with pytest.raises(EdgeError, match="cannot use --storage .*in a folder that exists"):
        search.heartbeat_storage(url)
    with pytest.raises(EdgeError, match="cannot use --storage"):
        search.create_study("s", url)


def test_workers_below_one_is_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:  # a usage error: usage, then one line
        run_cli(tmp_path, "--workers", "0")
    assert stop.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.endswith("argument --workers: must be at least 1, got 0")
    from edge.errors import EdgeError
    from train_host.reproduce.common import Options

    with pytest.raises(EdgeError, match="--workers must be at least 1"):  # the API says so too
        Options(workers=0)


def test_workers_share_the_search_and_the_trainings(tmp_path, shared_data, capfd, monkeypatch):
    """`--workers 2`: two processes run the trials (drawing from their own sampler seeds, so
    their first trials differ) and the ensemble's trainings, which the run then keeps."""
    monkeypatch.setenv("HWR_DATA_DIR", str(shared_data))
    extra = ("--workers", "2", "--trials", "4", "--repeats", "2", "--no-export")
    assert run_cli(tmp_path, "--models", "search,ensemble", *extra) == 0
    out = capfd.readouterr().out
    assert "[worker 0] trial" in out and "[worker 1] trial" in out
    assert "[worker 0]   optimized seed 0 epoch" in out
    assert "[worker 1]   optimized seed 1 epoch" in out
    run_dir = tmp_path / "seed-003"
    import optuna

    study = optuna.load_study(study_name="seed-003-lenet", storage=f"sqlite:///{run_dir}/optuna.db")
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) >= 4
    first = {t.number: t.params for t in study.trials[:2]}
    assert first[0] != first[1]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["ensemble"]["members"] == 2
    assert metrics["search"]["trials_run_now"] == len(finished)
    assert {p.name for p in (run_dir / "trainings").iterdir()} == {
        "optimized-seed0",
        "optimized-seed1",
    }


def test_search_runs_on_kerass_jax_backend(tmp_path, shared_data):
    """`KERAS_BACKEND=jax` (the faster backend for this small network on a CPU): the search
    and a kept training run the same code, and the export still writes TFLite."""
    import os
    import subprocess
    import sys

    pytest.importorskip("jax")
    env = os.environ | {"KERAS_BACKEND": "jax", "HWR_DATA_DIR": str(shared_data)}
    args = ["seed-003", "--quick", "--out", str(tmp_path), "--trials", "2", "--repeats", "1"]
    script = (
        "import sys, keras; from train_host.cli import main; "
        "print('backend', keras.backend.backend()); sys.exit(main(['reproduce', *sys.argv[1:]]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "backend jax" in done.stdout
    metrics = json.loads((tmp_path / "seed-003" / "metrics.json").read_text())
    assert metrics["search"]["trials_completed"] + metrics["search"]["trials_pruned"] == 2
    assert metrics["ensemble"]["members"] == 1
    assert (tmp_path / "seed-003" / "models" / "int8.tflite").stat().st_size > 0


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # the test asks for a trial by hand
def test_a_killed_processs_trial_is_failed_when_the_search_resumes(
    quick_run, tmp_path, shared_data, monkeypatch
):
    """A process killed mid-trial leaves it running in the storage; its heartbeat stops, and
    the next run marks it failed instead of leaving it running for ever."""
    import time

    from train_host.reproduce import search

    monkeypatch.setenv("HWR_DATA_DIR", str(shared_data))
    monkeypatch.setattr(search, "GRACE_SECONDS", 1)
    shutil.copytree(quick_run, tmp_path / "seed-003")
    url = f"sqlite:///{tmp_path}/seed-003/optuna.db"
    storage = search.heartbeat_storage(url)
    killed = search.create_study("seed-003-lenet", storage).ask()
    storage.record_heartbeat(killed._trial_id)  # then the process dies: no more beats
    time.sleep(2)
    assert trial_states(tmp_path / "seed-003")[-1] == "RUNNING"
    assert run_cli(tmp_path, "--models", "search", "--no-export") == 0
    assert trial_states(tmp_path / "seed-003")[-1] == "FAIL"
