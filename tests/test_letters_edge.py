"""The edge runtime reads letters: a small EMNIST-letters PCA-MLP (numpy weights in the Keras
PCA-MLP, exported as seed 004 does) prints characters with `edge classify` and is measured by
`edge bench --dataset emnist-letters`."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("sklearn")

pytestmark = [pytest.mark.host, pytest.mark.slow]

TRAIN_IMAGES = 4000


@pytest.fixture(scope="module")
def letters_model(tmp_path_factory):
    """Train on 4,000 derived letters for a few epochs and export every variant."""
    from edge.datasets import data_dir
    from edge.spec import dataset_spec
    from train_host.reproduce.common import export_model, load_data
    from train_host.reproduce.numpy_mlp import MLPConfig, NumpyMLP
    from train_host.reproduce.seed_004 import keras_pca_mlp
    from train_host.reproduce.seed_004_mining import fit_pca, flat, project

    if not (data_dir() / "emnist/emnist-byclass-test-images-idx3-ubyte.gz").is_file():
        pytest.skip("no EMNIST ByClass test files (set HWR_DATA_DIR)")
    data = load_data("emnist-letters", dataset_spec("emnist-letters"), 0.1, 0, TRAIN_IMAGES)
    train, val = flat(data.x_train), flat(data.x_val)
    pca = fit_pca(train, seed=0)
    mlp = NumpyMLP(MLPConfig(epochs=8))
    mlp.fit(project(pca, train), data.y_train, project(pca, val), data.y_val)
    builder, model = keras_pca_mlp(pca, mlp, len(data.classes))
    out = tmp_path_factory.mktemp("letters model")
    export_model(builder, model, data, out, "letters-pca_mlp", {}, progress=lambda line: None)
    return out / "int8.tflite", data.test_split


def _photo(char_image: np.ndarray, path) -> None:
    """A test letter as dark ink on white paper, 4x larger with a margin."""
    big = cv2.resize(char_image, (112, 112), interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(
        str(path), cv2.copyMakeBorder(255 - big, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=255)
    )


def test_classify_prints_letters(letters_model, tmp_path, capsys):
    from edge.cli import main
    from edge.interpreter import Classifier

    model, test = letters_model
    clf = Classifier(model)
    assert clf.labels == tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    index = next(
        i for i, img in enumerate(test.images) if np.argmax(clf.predict(img)) == test.labels[i]
    )
    photo = tmp_path / "one letter.png"
    _photo(test.images[index], photo)
    report = tmp_path / "classify.json"
    assert main(["classify", str(model), str(photo), "--single", "--json", str(report)]) == 0
    line = capsys.readouterr().out.strip()
    label = json.loads(report.read_text())["predictions"][0]["chars"][0]["label"]
    assert label in clf.labels and line.split(": ", 1)[1].startswith(f"{label} ")


def test_bench_on_letters_by_name(letters_model, tmp_path):
    from edge.cli import main

    model, test = letters_model
    report = tmp_path / "bench.json"
    argv = ["bench", str(model), "--dataset", "emnist-letters", "--runs", "30", "--warmup", "3"]
    assert main([*argv, "--min-seconds", "0", "--json", str(report)]) == 0
    result = json.loads(report.read_text())["results"][0]
    assert result["samples"] == len(test) and result["accuracy"] > 0.5
