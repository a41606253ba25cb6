"""`train-host reproduce seed-002 --quick`: the paper's four MNIST models train, are scored
against the paper, plotted, and the best is exported for the edge runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("sklearn")

pytestmark = [pytest.mark.host, pytest.mark.slow]


def test_paper_parameter_counts():
    from train_host.reproduce import seed_002

    for name, expected in seed_002.PAPER_PARAMS.items():
        assert getattr(seed_002, name)().count_params() == expected, name


@pytest.fixture(scope="module")
def quick_run(shared_data, tmp_path_factory):
    from train_host.cli import main

    out = tmp_path_factory.mktemp("runs")
    assert main(["reproduce", "seed-002", "--quick", "--out", str(out)]) == 0
    return out / "seed-002"


def test_quick_run_metrics_are_sane(quick_run):
    metrics = json.loads((quick_run / "metrics.json").read_text())
    models = metrics["models"]
    assert set(models) == {"simple_nn", "enhanced_nn", "simple_cnn", "enhanced_cnn_adam"}
    for result in models.values():
        assert 0.1 < result["test_accuracy"] <= 1.0
        assert result["paper_test_accuracy"] > 0.96
        assert len(result["history"]["val_accuracy"]) == result["epochs"]
    # 8,000 training images and 3 epochs: the enhanced CNN is already far from chance
    assert models["enhanced_cnn_adam"]["test_accuracy"] > 0.95
    assert metrics["best_on_validation"] in models
    assert min(metrics["roc_auc"].values()) > 0.9
    for png in ("learning_curves.png", "confusion.png", "roc.png"):
        assert (quick_run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quick_run_exports_what_edge_runs(quick_run):
    from edge.datasets import load_npz_split
    from edge.interpreter import Classifier

    metrics = json.loads((quick_run / "metrics.json").read_text())
    int8 = quick_run / "models" / "int8.tflite"
    assert metrics["export"]["int8"]["host_p50_ms"] > 0
    split = load_npz_split(quick_run / "models" / "test-split.npz")
    clf = Classifier(int8)
    assert clf.float_ops() == ()  # full int8: no float kernel anywhere
    predicted = np.array([np.argmax(clf.predict(x)) for x in split.images[:300]])
    assert np.mean(predicted == split.labels[:300]) > 0.9


def test_unknown_model_is_one_line_error(tmp_path, capsys):
    from train_host.cli import main

    code = main(["reproduce", "seed-002", "--models", "nope", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "no such model" in err and len(err.strip().splitlines()) == 1


def test_list_experiments(capsys):
    from train_host.cli import main

    assert main(["reproduce", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("seed-001", "seed-002", "seed-003"))


def test_an_interrupted_fit_goes_on_from_its_last_epoch(tmp_path):
    import keras

    from edge.preprocess import PreprocessSpec
    from train_host.reproduce.common import Data, fit

    rng = np.random.default_rng(0)
    x = rng.random((64, 4, 4, 1)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    data = Data("toy", ("0", "1"), PreprocessSpec(), x, y, x, y, x, y)

    def model():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((4, 4, 1))
        flat = keras.layers.Flatten()(inputs)
        return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(flat))

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                raise KeyboardInterrupt  # as a killed session would stop it

    folder = tmp_path / "resume"
    with pytest.raises(KeyboardInterrupt):
        fit(model(), data, keras.optimizers.SGD(0.1), 6, 16, [Interrupt()], resume_dir=folder)
    interrupted = json.loads((folder / "seconds.json").read_text())["seconds"]
    assert interrupted > 0  # the three finished epochs' time is kept
    seen = []

    class Epochs(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    second = model()
    history, seconds = fit(
        second, data, keras.optimizers.SGD(0.1), 6, 16, [Epochs()], resume_dir=folder
    )
    assert seen == [3, 4, 5]  # the three finished epochs are not trained again
    assert len(history["val_accuracy"]) == 6 and seconds > interrupted
    best = int(np.argmax(history["val_accuracy"]))
    loss, accuracy = second.evaluate(x, y, verbose=0, return_dict=False)
    assert abs(accuracy - history["val_accuracy"][best]) < 1e-6  # the best epoch's weights
    again, _ = fit(model(), data, keras.optimizers.SGD(0.1), 6, 16, [Epochs()], resume_dir=folder)
    assert seen == [3, 4, 5] and again == history  # all done: nothing trained
