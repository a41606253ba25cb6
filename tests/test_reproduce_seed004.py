"""Seed 004: the numpy MLP (gradients, dropout, export weights), the FLOP formula, sample
reduction, and `train-host reproduce seed-004 --quick` end to end with numpy-TFLite agreement."""

from __future__ import annotations

import json

import numpy as np
import pytest

from train_host.reproduce.numpy_mlp import MLPConfig, NumpyMLP, multiplications

TINY = MLPConfig(hidden=(5, 4), keep=0.75, dropout_layers=1, l1=1e-3, seed=3)


def _tiny(dtype=np.float64) -> tuple[NumpyMLP, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(8, 6)), rng.integers(0, 3, 8)
    mlp = NumpyMLP(TINY).init(6, 3, dtype)
    for bias in mlp.params[1::2]:  # zero biases put fully dropped rows on ReLU's kink
        bias += rng.normal(scale=0.1, size=bias.shape).astype(dtype)
    return mlp, x, y


def _training_loss(mlp: NumpyMLP, x, y) -> float:
    probs, _ = mlp.forward(x, np.random.default_rng(7))  # the same dropout mask every call
    return mlp.loss(probs, y)


def test_gradients_match_finite_differences():
    mlp, x, y = _tiny()
    probs, saved = mlp.forward(x, np.random.default_rng(7))
    assert 0 < np.sum(saved[0][0][1] == 0) < saved[0][0][1].size  # dropout dropped some units
    grads = mlp.backward(probs, y, saved)
    eps = 1e-6
    for param, grad in zip(mlp.params, grads, strict=True):
        numeric = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            old = param[index]
            param[index] = old + eps
            up = _training_loss(mlp, x, y)
            param[index] = old - eps
            down = _training_loss(mlp, x, y)
            param[index] = old
            numeric[index] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_test_time_dropout_scales_by_keep_and_folds_into_weights():
    mlp, x, _ = _tiny(np.float32)
    x = x.astype(np.float32)
    w1, b1, w2, b2, w3, b3 = mlp.params
    h1 = np.maximum(x @ w1 + b1, 0) * TINY.keep  # the paper's Algorithm 1 at evaluation
    logits = np.maximum(h1 @ w2 + b2, 0) @ w3 + b3
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(mlp.predict_proba(x), expected, rtol=1e-5)
    k1, c1, k2, c2, k3, c3 = mlp.keras_weights()  # dropout is identity in Keras at test time
    plain = np.maximum(np.maximum(x @ k1 + c1, 0) @ k2 + c2, 0) @ k3 + c3
    np.testing.assert_allclose(plain, logits, rtol=1e-5, atol=1e-6)


def test_training_learns_a_separable_problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 10)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + 2 * (x[:, 2] > 0)
    config = MLPConfig(hidden=(32, 32), epochs=15, batch_size=50, learning_rate=1e-2)
    history = NumpyMLP(config).fit(x[:500], y[:500], x[500:], y[500:])
    assert max(history["val_accuracy"]) > 0.9 and len(history["loss"]) == 15
    again = NumpyMLP(config)
    assert again.fit(x[:500], y[:500], x[500:], y[500:])["val_accuracy"] == history["val_accuracy"]


def test_multiplications_formula():
    assert multiplications((78, 128, 128, 128, 47)) == 78 * 128 + 2 * 128 * 128 + 128 * 47 == 48768
    assert multiplications((78, 128, 128, 128, 128, 47)) == 65152  # the paper's sum
    mlp = NumpyMLP(MLPConfig()).init(78, 47)
    assert multiplications(mlp.sizes) == sum(w.size for w in mlp.params[0::2])


# --- host: PCA, sample reduction, the quick end-to-end run ------------------------------


@pytest.fixture(scope="module")
def host():
    pytest.importorskip("tensorflow")
    pytest.importorskip("sklearn")
    from train_host.reproduce import seed_004, seed_004_mining

    return seed_004, seed_004_mining


@pytest.mark.host
def test_flop_counts_show_the_papers_formula(host):
    seed_004, _ = host
    flops = seed_004.flop_counts(47)
    assert flops["pca_mlp"] == 48768 and flops["paper"] == 65152
    assert flops["pca_mlp_formula"] == "78*128 + 128*128 + 128*128 + 128*47 = 48768"
    assert flops["pca_projection"] == 784 * 78


@pytest.mark.host
def test_sample_reduction_keeps_the_closest(host):
    _, mining = host
    y = np.repeat([0, 1], 50)
    distance = np.concatenate([np.arange(50)[::-1], np.arange(50)]).astype(float)
    kept = mining.keep_closest(y, distance, 0.9)
    assert kept.tolist() == list(range(5, 50)) + list(range(50, 95))
    x = np.zeros((4, 3), np.float32)
    x[:, 0] = [1, 3, 10, 20]
    assert mining.mean_deviation(x, np.array([0, 0, 1, 1])).tolist() == [1, 1, 5, 5]


@pytest.mark.host
def test_pca_rebuilds_data_in_its_span(host):
    _, mining = host
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(200, 2)) @ rng.normal(size=(2, 30)) + 5).astype(np.float32)
    pca = mining.fit_pca(x, seed=0, components=2)
    assert pca.explained_variance_ratio > 0.999
    assert mining.reconstruction_rmse(pca, x).max() < 1e-4
    from sklearn.decomposition import PCA

    scores = PCA(2).fit_transform(x)  # the same scores up to each component's sign
    np.testing.assert_allclose(np.abs(mining.project(pca, x)), np.abs(scores), atol=1e-3)


@pytest.fixture(scope="module")
def quick_run(host, tmp_path_factory):
    from edge.datasets import data_dir
    from train_host.cli import main

    if not (data_dir() / "emnist/emnist-bymerge-test-images-idx3-ubyte.gz").is_file():
        pytest.skip("no EMNIST ByClass/ByMerge test files (set HWR_DATA_DIR)")
    out = tmp_path_factory.mktemp("runs")
    assert main(["reproduce", "seed-004", "--quick", "--out", str(out)]) == 0
    return out / "seed-004"


@pytest.mark.host
@pytest.mark.slow
def test_quick_run_metrics(quick_run):
    metrics = json.loads((quick_run / "metrics.json").read_text())
    assert set(metrics["models"]) == {
        "mlp",
        "pca_mlp",
        "reduced_pca_mlp",
        "random_forest_50",
        "random_forest_50_pca",
        "decision_tree",
        "logistic_regression",
    }
    for result in metrics["models"].values():
        assert 1 / 47 < result["test_accuracy"] <= 1 and result["train_seconds"] >= 0
    assert metrics["test_images"] == 47 * 108 and metrics["splits"] == ["train-6to1", "test-6to1"]
    assert 0.85 < metrics["pca"]["variance_kept"] < 0.97
    reduction = metrics["reduction"]
    assert 0.88 < reduction["share_of_images"] < 0.9 and reduction["share_of_bytes"] < 0.4
    assert metrics["flops"]["paper"] == 65152
    for png in ("learning_curves.png", "confusion.png"):
        assert (quick_run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.host
@pytest.mark.slow
def test_numpy_and_tflite_agree(quick_run):
    agreement = json.loads((quick_run / "metrics.json").read_text())["numpy_vs_tflite"]
    assert agreement["float32"]["top1_agreement"] >= 0.99
    assert agreement["float32"]["max_abs_prob_diff"] < 1e-4
    assert agreement["int8"]["top1_agreement"] >= 0.9


@pytest.mark.host
@pytest.mark.slow
def test_exported_model_reads_characters(quick_run):
    from edge.datasets import load_npz_split
    from edge.interpreter import Classifier

    clf = Classifier(quick_run / "models" / "int8.tflite")
    split = load_npz_split(quick_run / "models" / "test-split.npz")
    assert clf.labels == split.classes and "a" in clf.labels and "Z" in clf.labels
    assert clf.float_ops() == ()  # full int8: no float kernel anywhere
    assert clf.top_k(clf.predict(split.images[0]), 1)[0][0] in split.classes
