"""Golden tests: the committed int8 model + sidecar reproduces expected.json, in code and via the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.camera import read_image
from edge.preprocess import extract_character, to_model_input

GOLDEN_DIR = Path(__file__).parent / "fixtures" / "golden model"
EXPECTED = json.loads((GOLDEN_DIR / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def classifier(golden_model):
    from edge.interpreter import Classifier

    return Classifier(golden_model)


def classify(clf, path: Path) -> np.ndarray:
    """Probabilities for one image file, preprocessed exactly as `edge classify` does."""
    char = extract_character(read_image(path), clf.spec.preprocess)
    return clf.predict(to_model_input(char, clf.spec.preprocess)[0])


def test_expected_lists_every_image(golden_dir):
    listed = sorted(Path(e["image"]).name for e in EXPECTED)
    on_disk = sorted(p.name for p in (golden_dir / "images").iterdir())
    assert listed == on_disk
    assert all({"image", "label", "predicted", "probabilities"} <= set(e) for e in EXPECTED)


@pytest.mark.parametrize("entry", EXPECTED, ids=[Path(e["image"]).name for e in EXPECTED])
def test_classifier_reproduces_expected(classifier, golden_dir, golden_sidecar, entry):
    probs = classify(classifier, golden_dir / entry["image"])
    step = golden_sidecar["output"]["scale"] or 1e-6  # one quantization step of the output
    expected = np.asarray(entry["probabilities"], dtype=np.float64)
    assert probs.shape == expected.shape
    assert classifier.labels[int(np.argmax(probs))] == entry["predicted"]
    worst = float(np.max(np.abs(probs - expected)))
    assert worst <= step + 1e-6, f"probabilities off by {worst:.6f} > one step {step:.6f}"


def _top1_by_line(out: str) -> dict[str, str]:
    """Map each printed image path to the first label on its line ("PATH: LABEL P  LABEL P")."""
    result = {}
    for line in out.splitlines():
        path, sep, rest = line.rpartition(": ")
        assert sep, f"unexpected line {line!r}"
        result[path] = rest.split()[0]
    return result


def test_cli_prints_expected_top1(run_edge, golden_model, golden_dir):
    images = [golden_dir / e["image"] for e in EXPECTED]
    code, out, err = run_edge(["classify", golden_model, *images])
    assert code == 0, err
    assert len(out.splitlines()) == len(images)
    top1 = _top1_by_line(out)
    assert top1 == {str(golden_dir / e["image"]): e["predicted"] for e in EXPECTED}


def test_cli_top_k_sets_labels_per_line(run_edge, golden_model, golden_dir):
    code, out, _ = run_edge(["classify", "--top-k", "1", golden_model, golden_dir / "images"])
    assert code == 0
    for line in out.splitlines():
        assert len(line.rpartition(": ")[2].split()) == 2  # one label and its probability


def test_cli_json_and_folder_argument(run_edge, golden_copy, tmp_path):
    out_dir = tmp_path / "out dir"
    out_dir.mkdir()
    report = out_dir / "predictions file.json"
    model = golden_copy / "int8.tflite"
    code, out, err = run_edge(["classify", model, golden_copy / "images", "--json", report])
    assert code == 0, err
    expected = {str(golden_copy / e["image"]): e["predicted"] for e in EXPECTED}
    assert _top1_by_line(out) == expected
    assert [p.name for p in out_dir.iterdir()] == [report.name]  # no temp file left beside it
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert doc["model"] == str(model)
    got = {r["image"]: r["chars"][0]["top_k"][0]["label"] for r in doc["predictions"]}
    assert got == expected
    assert all(len(r["chars"]) == 1 for r in doc["predictions"])
    assert all(len(r["chars"][0]["top_k"]) == 3 for r in doc["predictions"])


def test_top_k_order_and_ties(classifier):
    n = len(classifier.labels)
    probs = np.zeros(n, np.float32)
    probs[[1, 2]] = 0.4  # a tie: the lower index first, as np.argmax picks it
    probs[0] = 0.2
    top = classifier.top_k(probs, k=3)
    assert [label for label, _ in top] == [classifier.labels[i] for i in (1, 2, 0)]
    assert top[0][0] == classifier.labels[int(np.argmax(probs))]
    assert len(classifier.top_k(probs, k=n + 5)) == n
