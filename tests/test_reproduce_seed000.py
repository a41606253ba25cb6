"""Seed 000: Mish converts to builtin TFLite ops and matches Keras, the nine architectures, the
108-point grid that runs interrupted points again, and `train-host reproduce seed-000 --quick`
end to end (table, plots, an int8 model that the edge runtime runs and that reads letters),
whose second run adds no trials."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("sklearn")

pytestmark = [pytest.mark.host, pytest.mark.slow]

LETTERS = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
MISH_SPAN = 8.0  # pre-activations of a batch-normalised layer stay well inside +-8
INT8_STEPS = 2  # int8 Mish within two output quantization steps (measured: 1.6)
INT8_OPS = {"LOGISTIC", "SUB", "MUL", "ADD", "RSQRT"}


def _reference_mish(x: np.ndarray) -> np.ndarray:
    return x * np.tanh(np.logaddexp(0.0, x))


def test_mish_is_x_tanh_softplus_x():
    import keras

    from train_host.reproduce.layers import mish

    x = np.linspace(-40, 40, 801, dtype=np.float32)
    ours = np.asarray(mish(x))
    np.testing.assert_allclose(ours, _reference_mish(x.astype(np.float64)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours, np.asarray(keras.activations.mish(x)), rtol=1e-5, atol=1e-5)


def _interpreter(content: bytes):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = litert.Interpreter(model_content=content)
    interpreter.allocate_tensors()
    return interpreter


def _run(interpreter, x: np.ndarray) -> np.ndarray:
    """One float input through a float or int8 model; float output."""
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    if inp["dtype"] == np.int8:
        scale, zero = inp["quantization"]
        x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"]).astype(np.float32)
    if out["dtype"] == np.int8:
        scale, zero = out["quantization"]
        y = (y - zero) * scale
    return y


@pytest.fixture(scope="module")
def mish_tflite(tmp_path_factory):
    """A Mish layer on 256 values, converted to float32 and int8 TFLite."""
    import keras

    from train_host.quantize import convert
    from train_host.reproduce.layers import mish

    inputs = keras.Input((256,), batch_size=1)
    model = keras.Model(inputs, keras.layers.Activation(mish)(inputs))
    rep = np.random.default_rng(0).uniform(-MISH_SPAN, MISH_SPAN, (200, 256)).astype(np.float32)
    folder = tmp_path_factory.mktemp("mish")
    paths = {}
    for variant in ("float32", "int8"):
        paths[variant] = folder / f"{variant}.tflite"
        paths[variant].write_bytes(convert(model, variant, rep))
    return model, paths


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_mish_converts_to_builtin_ops_and_matches_keras(mish_tflite, variant):
    model, paths = mish_tflite
    interpreter = _interpreter(paths[variant].read_bytes())
    ops = {d["op_name"] for d in interpreter._get_ops_details()} - {"DELEGATE"}
    assert ops <= INT8_OPS, ops  # builtin, no Flex or custom op, nothing int8 LOG/EXP/DIV
    x = np.linspace(-MISH_SPAN, MISH_SPAN, 256, dtype=np.float32)[None]
    if variant == "int8":
        scale, zero = interpreter.get_input_details()[0]["quantization"]
        x = (np.clip(np.round(x / scale + zero), -128, 127) - zero).astype(np.float32) * scale
    expected = np.asarray(model(x))
    got = _run(interpreter, x)
    if variant == "float32":
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    else:
        step = interpreter.get_output_details()[0]["quantization"][0]
        assert np.abs(got - expected).max() <= INT8_STEPS * step


def test_int8_mish_runs_on_tflite_runtime_214(mish_tflite):
    from tests.test_backends import compat_python

    script = (
        "import sys, numpy as np\n"
        "from tflite_runtime.interpreter import Interpreter\n"
        "it = Interpreter(sys.argv[1]); it.allocate_tensors()\n"
        "i = it.get_input_details()[0]\n"
        "it.set_tensor(i['index'], np.arange(-128, 128, dtype=np.int8)[None]); it.invoke()\n"
        "print(it.get_tensor(it.get_output_details()[0]['index']).dtype)\n"
    )
    done = subprocess.run(
        [str(compat_python()), "-c", script, str(mish_tflite[1]["int8"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "int8", done.stderr[-2000:]


def test_nine_architectures_layer_structure():
    from train_host.reproduce.seed_000_setup import ARCHITECTURES, build_cnn, layout

    assert len(ARCHITECTURES) == 9
    for arch in ARCHITECTURES:
        convs, denses = layout(arch)
        model = build_cnn(arch, 26)
        kinds = [type(layer).__name__ for layer in model.layers[1:]]
        conv_block = ["Conv2D", "BatchNormalization", "Activation", "MaxPooling2D", "Dropout"]
        dense_block = ["Dense", "BatchNormalization", "Activation", "Dropout"]
        assert kinds == conv_block * convs + ["Flatten"] + dense_block * denses + ["Dense"], arch
        convs_ = [x for x in model.layers if type(x).__name__ == "Conv2D"]
        assert [c.filters for c in convs_] == [32, 64, 128][:convs]
        assert all(c.kernel_size == (3, 3) for c in convs_)
        pools = [x.pool_size for x in model.layers if type(x).__name__ == "MaxPooling2D"]
        assert pools == [(2, 2)] * convs
        widths = [x.units for x in model.layers if type(x).__name__ == "Dense"]
        assert widths == [1024] * (denses - 1) + [512, 26]
        rates = [x.rate for x in model.layers if type(x).__name__ == "Dropout"]
        assert all(0.2 <= r <= 0.5 for r in rates) and rates == sorted(rates)
        assert model.output_shape == (None, 26)


def test_grid_has_108_points_and_quick_has_4():
    from train_host.reproduce.seed_000_setup import GRID, QUICK_GRID, grid_key, grid_points

    points = grid_points(GRID)
    assert len(points) == len({grid_key(*p) for p in points}) == 108
    assert len(grid_points(QUICK_GRID)) == 4 and set(grid_points(QUICK_GRID)) <= set(points)


def test_interrupted_grid_point_runs_again(tmp_path):
    from train_host.reproduce import search
    from train_host.reproduce.seed_000_grid import open_grid
    from train_host.reproduce.seed_000_setup import QUICK_GRID, grid_key

    setup = {"study": "grid", "space": QUICK_GRID, "protocol": {"epochs": 1}}
    url = f"sqlite:///{tmp_path / 'grid.db'}"
    seen = []

    def objective(trial):
        seen.append(grid_key(**{n: trial.suggest_categorical(n, c) for n, c in QUICK_GRID.items()}))
        if len(seen) == 2:
            raise KeyboardInterrupt
        return 0.5

    with pytest.raises(KeyboardInterrupt):
        search.optimize_missing(open_grid(url, setup, 0), objective, 4)
    study = open_grid(url, setup, 0)
    assert search.optimize_missing(study, objective, 4) == 3
    assert seen[1] in seen[2:] and len(set(seen)) == 4  # the interrupted point, and no other twice
    assert search.optimize_missing(open_grid(url, setup, 0), objective, 4) == 0


@pytest.fixture(scope="module")
def quick_run(shared_data, tmp_path_factory):
    from train_host.cli import main

    if not (shared_data / "emnist/emnist-byclass-test-images-idx3-ubyte.gz").is_file():
        pytest.skip("no EMNIST ByClass test files (set HWR_DATA_DIR)")
    out = tmp_path_factory.mktemp("runs")
    assert main(["reproduce", "seed-000", "--quick", "--out", str(out)]) == 0
    return out


def test_quick_run_metrics_table_and_plots(quick_run):
    run = quick_run / "seed-000"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["grid_points"] == metrics["complete"] == len(metrics["grid"]) == 4
    for record in metrics["grid"].values():
        assert 0 <= record["test_accuracy"] <= 1 and len(record["history"]["val_accuracy"]) == 1
        assert record["batch_size"] == 512
    assert metrics["best_on_validation"] in metrics["grid"]
    assert metrics["paper_best"]["test_accuracy"] == pytest.approx(0.94681)
    table = (run / "grid.md").read_text()
    assert table == metrics["table"]
    assert "| Architecture | Adam 1e-2 | Adam 1e-3 | SGD 1e-2 | SGD 1e-3 |" in table
    assert "| 3 Conv, 1 Dense |" in table and "94.68%" in table and "**" in table
    for png in ("learning_curves.png", "confusion.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quick_run_exports_an_int8_model_that_reads_letters(quick_run, tmp_path, capsys):
    import cv2

    from edge.cli import main
    from edge.datasets import load_npz_split
    from edge.interpreter import Classifier

    run = quick_run / "seed-000"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["export"]["int8"]["host_p50_ms"] > 0
    clf = Classifier(run / "models" / "int8.tflite")
    assert clf.labels == LETTERS
    assert clf.float_ops() == ()  # Mish and batch normalisation run in int8 too
    split = load_npz_split(run / "models" / "test-split.npz")
    probs = clf.predict_batch(split.images[:300])
    assert np.mean(probs.argmax(1) == split.labels[:300]) > 2 / len(LETTERS)  # 1 epoch
    big = cv2.resize(split.images[0], (112, 112), interpolation=cv2.INTER_LINEAR)
    photo = tmp_path / "letter.png"
    paper = cv2.copyMakeBorder(255 - big, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=255)
    cv2.imwrite(str(photo), paper)
    assert main(["classify", str(run / "models" / "int8.tflite"), str(photo), "--single"]) == 0
    label = capsys.readouterr().out.strip().split(": ", 1)[1][0]
    assert label in LETTERS


def test_second_quick_run_adds_no_trials(quick_run):
    from train_host.cli import main

    db = quick_run / "seed-000" / "optuna.db"

    def trials() -> int:
        with sqlite3.connect(db) as connection:
            return connection.execute("select count(*) from trials").fetchone()[0]

    before = trials()
    argv = ["reproduce", "seed-000", "--quick", "--no-export", "--out", str(quick_run)]
    assert main(argv) == 0
    assert trials() == before == 4
    metrics = json.loads((quick_run / "seed-000" / "metrics.json").read_text())
    assert metrics["trials_run_now"] == 0 and metrics["complete"] == 4


def test_models_option_is_a_one_line_error(tmp_path, capsys):
    from train_host.cli import main

    code = main(["reproduce", "seed-000", "--models", "x", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "one grid" in err and len(err.strip().splitlines()) == 1
