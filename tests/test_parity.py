"""Host parity: Keras float vs every exported TFLite variant on the same test split."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("sklearn")

from edge.interpreter import Classifier  # noqa: E402
from edge.preprocess import to_model_input  # noqa: E402
from edge.spec import file_sha256, load_spec  # noqa: E402

pytestmark = [pytest.mark.host, pytest.mark.slow]

# Named tolerances: top-1 agreement with Keras float, and accuracy drop in points.
MIN_AGREEMENT = {"float32": 0.999, "float16": 0.995, "dynamic": 0.98, "int8": 0.98}
MAX_ACC_DROP = {"float32": 0.1, "float16": 0.3, "dynamic": 1.5, "int8": 1.5}
VARIANTS = tuple(MIN_AGREEMENT)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", params=["cnn", "pca-mlp"])
def exported(request, tmp_path_factory):
    """Train a small model on the bundled digits for a few epochs and export every variant."""
    from train_host.export import export_run
    from train_host.train import TrainConfig, train

    run = tmp_path_factory.mktemp("run dir") / request.param
    # 15 epochs left the PCA-MLP at 82% with near-tied outputs: on one host's CPU 8 of 360
    # int8 readings differed from Keras, 5 of them exact int8 ties (CI's CPU passed); at 30
    # it reads 86% and int8 agrees on 99.7%
    epochs = 6 if request.param == "cnn" else 30
    train(TrainConfig(dataset="digits", model=request.param, epochs=epochs), run, verbose=0)
    results = export_run(run, progress=lambda line: None)
    return run, {r.variant: r for r in results}


def keras_predictions(run: Path, x: np.ndarray) -> np.ndarray:
    from train_host.train import load_run

    model, _, _ = load_run(run)
    return np.argmax(model.predict(x, batch_size=256, verbose=0), axis=1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_agrees_with_keras(exported, variant):
    from train_host.data import load_dataset

    run, results = exported
    test = load_dataset("digits", "test")
    clf = Classifier(run / f"{variant}.tflite")
    x = to_model_input(test.images, clf.spec.preprocess)
    tflite = np.argmax(clf.predict_batch(x), axis=1)
    float_pred = keras_predictions(run, x)
    agreement = float(np.mean(tflite == float_pred))
    drop = 100 * (np.mean(float_pred == test.labels) - np.mean(tflite == test.labels))
    assert agreement >= MIN_AGREEMENT[variant], f"{variant}: agreement {agreement:.4f}"
    assert drop <= MAX_ACC_DROP[variant], f"{variant}: accuracy drop {drop:.2f} points"
    assert results[variant].tflite_accuracy == pytest.approx(np.mean(tflite == test.labels))


def test_sidecars_describe_their_models(exported):
    run, results = exported
    for variant, result in results.items():
        spec = load_spec(result.path)
        assert spec.sha256 == file_sha256(result.path)
        assert spec.extra["variant"] == variant
        assert spec.extra["file_size"] == result.path.stat().st_size
        assert spec.labels == tuple("0123456789")
        assert spec.dataset["train_sha256"] and spec.dataset["test_sha256"]
        assert set(spec.extra["metrics"]) >= {"float_accuracy", "tflite_accuracy"}
        assert spec.input.dtype == ("int8" if variant == "int8" else "float32")
        assert spec.extra["float_ops"] == list(result.float_ops)
    # the full int8 model needs no float kernel; the float32 one computes every op in float
    assert results["int8"].float_ops == () and "warning" not in results["int8"].line()
    assert len(results["float32"].float_ops) > 3
    assert not list(run.glob("*.partial")) and not list(run.glob(".*.tmp"))


def compat_python() -> Path | None:
    env = os.environ.get("HWR_COMPAT_PYTHON")
    path = Path(env) if env else REPO / ".venv-tflite214" / "bin" / "python"
    return path if path.exists() else None


def test_every_variant_runs_in_tflite_runtime_214(exported):
    python = compat_python()
    if python is None:
        pytest.skip("no tflite-runtime 2.14 environment: run `make compat`")
    run, results = exported
    script = (
        "import json, sys, numpy as np\n"
        "from edge.interpreter import Classifier\n"
        "out = {}\n"
        "for path in sys.argv[1:]:\n"
        "    clf = Classifier(path)\n"
        "    out[path] = [clf.backend.name, clf.backend.version,\n"
        "                 clf.predict(np.zeros(clf.input_shape[1:], np.float32)).tolist()]\n"
        "print(json.dumps(out))\n"
    )
    paths = [str(r.path) for r in results.values()]
    env = {**os.environ, "HWR_BACKEND": "tflite_runtime", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [str(python), "-c", script, *paths], capture_output=True, text=True, env=env, timeout=120
    )
    if "no TFLite backend" in done.stderr:
        pytest.skip("tflite-runtime 2.14 is not installable on this Python")
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    for path in paths:
        backend, version, probs = out[path]
        assert (backend, version) == ("tflite_runtime", "2.14.0")
        reference = Classifier(path).predict(np.zeros(Classifier(path).input_shape[1:], np.float32))
        assert np.allclose(probs, reference, atol=1e-5)


def test_interrupted_export_leaves_no_file(exported, monkeypatch):
    import train_host.export as export

    run, _ = exported
    out = run.parent / "interrupted export"

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "accuracy", boom)
    with pytest.raises(KeyboardInterrupt):
        export.export_run(run, out, variants=("int8",), progress=lambda line: None)
    left = sorted(p.name for p in out.iterdir())
    assert "int8.tflite" not in left and "int8.json" not in left
    assert not [name for name in left if name.endswith((".partial", ".tmp"))], left


def test_train_host_cli_rejects_bad_run_folder(tmp_path, capsys):
    from train_host.cli import main

    assert main(["export", str(tmp_path / "no run here")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.json" in err[0]


def test_python_dash_m_train_host_help():
    done = subprocess.run(
        [sys.executable, "-m", "train_host", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0 and "export" in done.stdout


def test_train_cli_width_sets_the_cnn_width(tmp_path):
    """`train-host train --width` reaches the model: a narrower CNN has fewer parameters and
    its width is recorded for the export to rebuild the same network."""
    from train_host.cli import main

    runs = {}
    for width in (8, 16):
        out = tmp_path / f"width {width}"
        args = ["train", "--dataset", "digits", "--epochs", "1", "--width", str(width)]
        assert main([*args, "--out", str(out)]) == 0
        runs[width] = json.loads((out / "train.json").read_text())
    assert runs[8]["model_options"] == {"width": 8} and runs[16]["model_options"] == {"width": 16}
    assert runs[8]["params"] < runs[16]["params"] / 2
