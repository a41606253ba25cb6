"""`train-host reproduce seed-001`: the LocallyConnected2D layer (unshared weights, builtin
TFLite ops, runs in the edge runtime), the KDE bounds and ensemble, and a quick USPS run that
is scored against the paper, plotted, exported and resumed without new trials."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("sklearn")
pytest.importorskip("optuna")

pytestmark = [pytest.mark.host, pytest.mark.slow]

USPS_FILES = ("usps/zip.train.gz", "usps/zip.test.gz")
PNGS = ("learning_curves", "confusion", "roc", "gradients", "gradients_init")
PER_ARCH_PNGS = ("search", "kde")
ARCHS = ("mlp", "lcnn", "cnn")


def lc_params(out_h, out_w, kernel, channels, filters):
    """Unshared weights: a kernel and a bias per output position."""
    return out_h * out_w * filters * (kernel * kernel * channels + 1)


def test_locally_connected_shape_parameters_and_values():
    import keras

    from train_host.reproduce.layers import LocallyConnected2D

    inputs = keras.Input((16, 16, 1))
    first = LocallyConnected2D(8, 3, activation="relu")
    second = LocallyConnected2D(16, 3, strides=2)
    model = keras.Model(inputs, second(first(inputs)))
    assert first.compute_output_shape((None, 16, 16, 1)) == (None, 14, 14, 8)
    assert model.output.shape == (None, 6, 6, 16)
    assert first.count_params() == lc_params(14, 14, 3, 1, 8) == 15680
    assert second.count_params() == lc_params(6, 6, 3, 8, 16) == 42048
    x = np.random.default_rng(0).uniform(-1, 1, (3, 16, 16, 1)).astype(np.float32)
    kernel, bias = (np.asarray(w) for w in first.get_weights())
    expected = np.zeros((3, 14, 14, 8), np.float32)
    for r in range(14):
        for c in range(14):  # every position its own kernel and bias
            patch = x[:, r : r + 3, c : c + 3].reshape(3, -1)
            expected[:, r, c] = patch @ kernel[r * 14 + c] + bias[r * 14 + c]
    np.testing.assert_allclose(np.asarray(first(x)), np.maximum(expected, 0), atol=1e-5)


def test_locally_connected_round_trips_through_config():
    import keras

    from train_host.reproduce.layers import LocallyConnected2D

    layer = LocallyConnected2D(4, (3, 3), strides=2, activation="tanh")
    clone = LocallyConnected2D.from_config(layer.get_config())
    assert (clone.filters, clone.kernel_size, clone.strides) == (4, (3, 3), (2, 2))
    assert clone.activation is keras.activations.tanh


def _synthetic(n=400, seed=0):
    """Ten noisy fixed 16x16 templates in [-1, 1]: a task the LCNN learns in a few epochs."""
    rng = np.random.default_rng(seed)
    templates = rng.uniform(-1, 1, (10, 16, 16, 1))
    labels = rng.integers(0, 10, n)
    x = np.clip(templates[labels] + rng.normal(0, 0.3, (n, 16, 16, 1)), -1, 1)
    return x.astype(np.float32), labels


def _write_sidecar_spec(path: Path):
    from edge.interpreter import read_tensor_specs
    from edge.spec import ModelSpec, file_sha256
    from train_host.reproduce.seed_001 import SPEC

    tensor_in, tensor_out = read_tensor_specs(path)
    labels = tuple("0123456789")
    return ModelSpec(
        labels, tensor_in, tensor_out, SPEC, {"dataset": "synthetic"}, file_sha256(path)
    )


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_lcnn_converts_to_builtin_tflite_and_runs_in_edge(tmp_path, variant):
    import keras

    from edge.interpreter import Classifier
    from train_host.quantize import convert
    from train_host.reproduce.seed_001 import lcnn

    x, y = _synthetic()
    keras.utils.set_random_seed(0)
    model = lcnn()
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    export = lcnn(batch_size=1)
    export.set_weights(model.get_weights())
    path = tmp_path / "lcnn dir" / f"{variant}.tflite"
    path.parent.mkdir()
    path.write_bytes(convert(export, variant, x[:100]))
    clf = Classifier(path, spec=_write_sidecar_spec(path))
    keras_top1 = np.argmax(model.predict(x[:20], verbose=0), axis=1)
    tflite_top1 = np.array([np.argmax(clf.predict(sample)) for sample in x[:20]])
    assert np.mean(keras_top1 == y[:20]) > 0.9  # trained: decisive outputs
    np.testing.assert_array_equal(tflite_top1, keras_top1)


def test_paper_architectures_parameter_counts():
    from train_host.reproduce import seed_001

    assert seed_001.mlp().count_params() == (256 * 128 + 128) + (128 * 64 + 64) + (64 * 32 + 32) + (
        32 * 10 + 10
    )
    assert seed_001.cnn().count_params() == (9 * 32 + 32) + (9 * 32 * 64 + 64) + (
        1024 * 128 + 128
    ) + (128 * 10 + 10)
    assert seed_001.lcnn().count_params() == lc_params(14, 14, 3, 1, 8) + lc_params(
        6, 6, 3, 8, 16
    ) + (144 * 128 + 128) + (128 * 10 + 10)


def test_kde_bounds_are_mean_and_std_of_the_best_fifth():
    from train_host.reproduce.seed_001_search import SPACE, kde_bounds

    values = list(np.linspace(0.5, 0.95, 10))  # the last two are the best 20%
    params = [
        {
            "learning_rate": 10.0 ** -(7 - 0.5 * i),
            "momentum": 0.5 + 0.04 * i,
            "dropout": 0.1 + 0.05 * i,
            "batch_size": 32 if i < 9 else 128,
        }
        for i in range(10)
    ]
    bounds, batch, top = kde_bounds(values, params)
    assert top == [9, 8] and batch in (32, 128)
    momentum = np.array([0.5 + 0.04 * 9, 0.5 + 0.04 * 8])
    low, high = bounds["momentum"]
    assert low == pytest.approx(momentum.mean() - momentum.std(ddof=1))
    assert high == pytest.approx(min(SPACE["momentum"][1], momentum.mean() + momentum.std(ddof=1)))
    lr_low, lr_high = bounds["learning_rate"]
    assert SPACE["learning_rate"][0] <= lr_low < 10**-2.75 < lr_high <= SPACE["learning_rate"][1]


def test_weighted_vote_draws_the_papers_weights():
    from train_host.reproduce.seed_001_analysis import ENSEMBLE_LIMITS, weighted_vote

    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, 200)
    perfect = np.eye(10)[y]
    noise = rng.dirichlet(np.ones(10), 200)
    probs = {
        "mlp": {"val": noise, "test": noise},
        "lcnn": {"val": noise, "test": noise},
        "cnn": {"val": perfect, "test": perfect},
    }
    result = weighted_vote(probs, y, y, seed=0)
    assert result["trials"] == 100
    assert sum(result["weights"].values()) == pytest.approx(1.0)
    assert all(0 <= result["weights"][k] <= limit for k, limit in ENSEMBLE_LIMITS.items())
    assert result["val_accuracy"] >= 0.5 and 0 <= result["test_accuracy"] <= 1


@pytest.fixture(scope="module")
def usps_root() -> Path:
    from edge.datasets import data_dir

    env = os.environ.get("HWR_DATA_DIR")
    root = Path(env) if env else data_dir()
    if not all((root / rel).is_file() for rel in USPS_FILES):
        pytest.skip(f"no USPS files in {root} (set HWR_DATA_DIR to the shared data folder)")
    return root


@pytest.fixture(scope="module")
def quick_run(usps_root, tmp_path_factory):
    from train_host.cli import main

    out = tmp_path_factory.mktemp("runs dir")
    assert main(["reproduce", "seed-001", "--quick", "--out", str(out)]) == 0
    return out


def _metrics(out: Path) -> dict:
    return json.loads((out / "seed-001" / "metrics.json").read_text())


def test_quick_run_metrics_are_sane(quick_run):
    metrics = _metrics(quick_run)
    assert set(metrics) >= {
        "paper",
        "search",
        "models",
        "ensemble",
        "deep_ensemble",
        "gradients",
        "roc_auc",
        "export",
        "wall_seconds",
    }
    assert (
        metrics["test_images"] == 2007 and metrics["paper"]["table1"]["cnn"]["fine_test"] == 0.9631
    )
    assert set(metrics["models"]) == set(ARCHS)
    for arch in ARCHS:
        search, model = metrics["search"][arch], metrics["models"][arch]
        assert (search["coarse"]["trials"], search["fine"]["trials"]) == (3, 2)
        assert search["paper"] and 0 < model["paper_test_accuracy"] < 1
        low, high = search["bounds"]["momentum"]
        assert 0.5 <= low < high <= 0.99
        assert 0.1 < model["test_accuracy"] <= 1.0
        assert metrics["gradients"][arch]["effective"]["mean_abs"] > 0
    assert metrics["models"]["cnn"]["test_accuracy"] > 0.8
    ensemble = metrics["ensemble"]
    assert sum(ensemble["weights"].values()) == pytest.approx(1.0)
    assert ensemble["paper"]["test_accuracy"] == 0.9631
    deep = metrics["deep_ensemble"]
    assert deep["members"] == len(deep["member_test_accuracy"]) == 2 and deep["seeds"] == [0, 1]
    assert deep["train_images"] == metrics["train_images"] + metrics["val_images"]
    assert deep["hyperparameters"] == metrics["models"]["cnn"]["hyperparameters"]
    assert 0.1 < deep["test_accuracy"] <= 1.0
    names = [*PNGS, *(f"{kind}_{arch}" for kind in PER_ARCH_PNGS for arch in ARCHS)]
    for name in names:
        assert (quick_run / "seed-001" / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name


def test_quick_run_exports_what_edge_runs(quick_run):
    from edge.datasets import load_npz_split
    from edge.interpreter import Classifier

    models = quick_run / "seed-001" / "models"
    clf = Classifier(models / "int8.tflite")
    assert (clf.spec.preprocess.size, clf.spec.preprocess.scale) == (16, "symmetric")
    assert clf.float_ops() == ()  # full int8: no float kernel anywhere
    split = load_npz_split(models / "test-split.npz")
    predicted = np.array([np.argmax(clf.predict(image)) for image in split.images[:300]])
    assert np.mean(predicted == split.labels[:300]) > 0.75


def test_second_run_resumes_without_new_trials(quick_run):
    import optuna

    from train_host.cli import main

    storage = f"sqlite:///{quick_run / 'seed-001' / 'optuna.db'}"

    def trial_count():
        return sum(s.n_trials for s in optuna.get_all_study_summaries(storage))

    before = trial_count()
    args = ["reproduce", "seed-001", "--quick", "--no-export", "--out", str(quick_run)]
    assert main(args) == 0
    assert trial_count() == before == 3 * (3 + 2)
    for search in _metrics(quick_run)["search"].values():
        assert search["coarse"]["new_trials"] == search["fine"]["new_trials"] == 0


def test_more_coarse_trials_give_the_fine_stage_new_bounds(quick_run):
    """A reduced search taken further resumes its coarse trials, and its fine stage starts
    afresh inside the bounds of all of them (not the bounds of the first few)."""
    from train_host.cli import main
    from train_host.reproduce.seed_001_search import kde_bounds

    args = ["reproduce", "seed-001", "--quick", "--trials", "4", "--no-export"]
    assert main([*args, "--out", str(quick_run)]) == 0
    for search in _metrics(quick_run)["search"].values():
        coarse, fine = search["coarse"], search["fine"]
        assert (coarse["trials"], coarse["new_trials"]) == (4, 1)
        assert (fine["trials"], fine["new_trials"]) == (4, 4)
        expected = kde_bounds(coarse["values"], coarse["params"])[0]
        assert search["bounds"] == {k: list(v) for k, v in expected.items()}
