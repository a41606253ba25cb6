"""`make verify-arm64`, the parts that need no emulation: the prediction comparison script, and
that the install steps in firmware_notes/README.md are the ones the verification runs.

The emulated run itself (scripts/verify_arm64.sh: debootstrap, qemu, a chroot) takes tens of
minutes and root; it is never part of `make test`.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.datasets import DIGITS, Split, save_npz_split
from edge.errors import ModelError

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = REPO_ROOT / "scripts"
NOTES = REPO_ROOT / "firmware_notes" / "README.md"
INSTALL_HEADING = "## Install the runtime"


def load_compare_module():
    path = SCRIPTS / "compare_predictions.py"
    spec = importlib.util.spec_from_file_location("compare_predictions", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cp():
    return load_compare_module()


@pytest.fixture(scope="module")
def backend():
    from edge.interpreter import load_backend

    try:
        return load_backend()
    except ModelError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def small_split(tmp_path: Path, golden_dir: Path) -> Path:
    """A 22-image .npz split: the golden set's 20 crops (28x28 uint8), a blank and noise."""
    with np.load(golden_dir / "expected_inputs.npz") as crops:
        names = sorted(crops.files)
        images = [crops[name] for name in names]
    labels = [int(re.search(r"label(\d)", name).group(1)) for name in names]
    images += [np.zeros((28, 28), np.uint8), np.random.default_rng(0).integers(0, 256, (28, 28))]
    split = Split(
        "tiny", "test", np.stack(images).astype(np.uint8), np.array(labels + [0, 0]), DIGITS
    )
    return save_npz_split(split, tmp_path / "tiny split.npz")


def test_predict_writes_a_run_and_it_matches_itself(cp, backend, golden_dir, small_split, tmp_path):
    out = tmp_path / "host run.npz"
    assert (
        cp.main(["predict", str(golden_dir), "--dataset", str(small_split), "--out", str(out)]) == 0
    )
    run = cp.load_run(out)
    assert run["meta"]["images"] == 22 and run["meta"]["backend"] == backend.name
    model = run["models"]["golden model/int8"]
    assert model["variant"] == "int8" and model["probs"].shape == (22, 10)
    assert np.array_equal(model["top1"], np.argmax(model["probs"], axis=1))
    assert np.mean(model["top1"][:20] == run["labels"][:20]) >= 0.9  # the golden set reads right

    rows = cp.compare_runs(run, run)
    assert [(r.name, r.top1_match, r.mismatches, r.max_prob_diff) for r in rows] == [
        ("golden model/int8", 1.0, 0, 0.0)
    ]
    assert cp.failures(rows, ["int8"], cp.missing_models(run, run)) == []
    report = tmp_path / "compare.json"
    assert cp.main(["compare", str(out), str(out), "--require-identical", "int8",
                    "--json", str(report)]) == 0  # fmt: skip
    assert '"top1_match": 1.0' in report.read_text()


def test_compare_reports_a_changed_prediction_and_a_missing_model(cp):
    labels = np.array([0, 1, 2, 3])
    probs = np.eye(4, 10, dtype=np.float32)

    def run(top1, p, variant="int8", name="m/int8", sha="a"):
        entry = {"variant": variant, "sha256": sha, "top1": np.array(top1), "probs": p}
        return {"labels": labels, "models": {name: entry}}

    ref = run([0, 1, 2, 3], probs)
    other_probs = probs.copy()
    other_probs[3] = np.eye(1, 10, 5)[0] * 0.75
    other = run([0, 1, 2, 5], other_probs)
    (row,) = cp.compare_runs(ref, other)
    assert row.top1_match == 0.75 and row.mismatches == 1 and row.images_any_diff == 1
    assert row.max_prob_diff == pytest.approx(1.0) and row.accuracy_other == 0.75
    assert cp.failures([row], ["int8"], []) == [
        "m/int8: 1 of 4 top-1 classes differ (int8 must be identical)"
    ]
    assert cp.failures([row], ["float32"], []) == []  # other variants are reported, not gated
    assert cp.missing_models(ref, run([0], probs, name="x/int8")) == ["m/int8"]
    with pytest.raises(ValueError, match="different data"):
        cp.compare_runs(ref, {**other, "labels": labels[:3]})


def test_model_files_orders_variants_and_names_them_by_folder(cp, tmp_path):
    folder = tmp_path / "mnist-cnn"
    folder.mkdir()
    for stem in ("int8", "float32", "dynamic", "float16"):
        (folder / f"{stem}.tflite").write_bytes(b"x")
    files = cp.model_files([str(folder)])
    assert [cp.model_name(f) for f in files] == [
        "mnist-cnn/float32", "mnist-cnn/float16", "mnist-cnn/dynamic", "mnist-cnn/int8"
    ]  # fmt: skip


def script_lines() -> list[str]:
    """scripts/pi_install.sh after its `set -euo pipefail`: what the notes must quote."""
    lines = (SCRIPTS / "pi_install.sh").read_text().splitlines()
    return [line for line in lines[lines.index("set -euo pipefail") + 1 :] if line.strip()]


def notes_install_block() -> list[str]:
    """The first ```bash block under the notes' install heading."""
    text = NOTES.read_text()
    start = text.index(INSTALL_HEADING)
    block = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    assert block, f"no ```bash block under {INSTALL_HEADING!r} in {NOTES}"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_notes_quote_the_install_script_word_for_word():
    commands = [line for line in script_lines() if not line.lstrip().startswith("#")]
    assert any("python3 -m venv --system-site-packages" in c for c in commands)
    assert any(c.startswith("pip install './hwr-pi[edge]'") for c in commands)
    assert notes_install_block() == script_lines()


def test_the_verification_runs_the_install_script_and_the_edge_tests():
    script = (SCRIPTS / "verify_arm64.sh").read_text()
    assert "bash hwr-pi/scripts/pi_install.sh" in script
    assert '-m "not host and not pi"' in script
    assert "--require-identical int8" in script
    subprocess.run(["bash", "-n", str(SCRIPTS / "verify_arm64.sh")], check=True)
    subprocess.run(["bash", "-n", str(SCRIPTS / "pi_install.sh")], check=True)
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^\.PHONY:.*\bverify-arm64\b", makefile, re.M)
    assert "scripts/verify_arm64.sh" in makefile
