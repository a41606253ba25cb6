"""The device boundary: the edge runtime never imports TensorFlow, Keras, scikit-learn, optuna
or the host package, even after a full classify / bench round (checked in a fresh process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("tensorflow", "keras", "sklearn", "optuna", "train_host")

SCRIPT = """
import json, sys
from pathlib import Path

import edge, edge.bench, edge.cli, edge.datasets, edge.report
from edge.camera import read_image
from edge.cli import main
from edge.interpreter import Classifier
from edge.preprocess import extract_character, to_model_input

golden, image = Path(sys.argv[1]), Path(sys.argv[2])
clf = Classifier(golden / "int8.tflite")
char = extract_character(read_image(image), clf.spec.preprocess)
probs = clf.predict(to_model_input(char, clf.spec.preprocess)[0])
assert main(["info", str(golden / "int8.tflite")]) == 0
assert main(["classify", str(golden / "int8.tflite"), str(image)]) == 0
forbidden = sys.argv[3].split(",")
loaded = sorted(m for m in sys.modules if m.startswith(tuple(forbidden)))
print(json.dumps({"backend": clf.backend.name, "classes": len(probs), "loaded": loaded}))
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HWR_BACKEND"}  # the default order
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_edge_never_imports_host_packages(golden_dir, golden_expected):
    image = golden_dir / golden_expected[0]["image"]
    done = _run(SCRIPT, str(golden_dir), str(image), ",".join(FORBIDDEN))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["classes"] > 0
    assert result["backend"] != "tensorflow"
    assert result["loaded"] == [], f"edge imported host packages: {result['loaded']}"


def test_importing_the_cli_loads_no_backend_or_opencv():
    """`edge --help` stays fast: the CLI imports the interpreter and OpenCV only when it needs them."""
    code = (
        "import sys, edge.cli; "
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('cv2', 'ai_edge_litert', 'tflite_runtime', 'tensorflow')))"
    )
    done = _run(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
