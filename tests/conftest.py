"""Shared fixtures: the real data folder (skipped when absent) and tiny dataset-file writers."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

MNIST_FILES = (
    "mnist/train-images-idx3-ubyte.gz",
    "mnist/train-labels-idx1-ubyte.gz",
    "mnist/t10k-images-idx3-ubyte.gz",
    "mnist/t10k-labels-idx1-ubyte.gz",
)


def make_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array of labels (N,) or images (N, H, W) as IDX bytes (big-endian)."""
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x0800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_file(path: Path, data: bytes, gz: bool = True) -> Path:
    """Write bytes (gzipped when `gz`) to `path`, creating its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data root ($HWR_DATA_DIR, else edge.datasets.data_dir()); skip without MNIST."""
    from edge.datasets import data_dir

    env = os.environ.get("HWR_DATA_DIR")
    root = Path(env) if env else data_dir()
    missing = [rel for rel in MNIST_FILES if not (root / rel).is_file()]
    if missing:
        pytest.skip(f"no MNIST files in {root} (set HWR_DATA_DIR to the shared data folder)")
    return root


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """An empty data root whose path has a space in it."""
    root = tmp_path / "data dir"
    root.mkdir()
    return root


@pytest.fixture
def idx_bytes() -> Callable[[np.ndarray], bytes]:
    """The `make_idx` encoder."""
    return make_idx


@pytest.fixture
def write_gz() -> Callable[..., Path]:
    """The `write_file` writer: write_gz(path, data, gz=True)."""
    return write_file


# --- the golden model and the `edge` command line -------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[1]
GOLDEN_DIR = Path(__file__).parent / "fixtures" / "golden model"
GOLDEN_MODEL = "int8.tflite"
GOLDEN_SIDECAR = "int8.json"


def load_expected() -> list[dict]:
    """The golden expectations: [{image, label, predicted, probabilities}], image relative."""
    return json.loads((GOLDEN_DIR / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    """The committed golden fixture folder (read only: copy it before changing anything)."""
    return GOLDEN_DIR


@pytest.fixture(scope="session")
def golden_model() -> Path:
    """The committed golden int8 .tflite (its sidecar lies beside it)."""
    return GOLDEN_DIR / GOLDEN_MODEL


@pytest.fixture(scope="session")
def golden_sidecar() -> dict:
    """The golden model's sidecar as parsed JSON (shared: deep-copy it before changing it)."""
    return json.loads((GOLDEN_DIR / GOLDEN_SIDECAR).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def golden_expected() -> list[dict]:
    """expected.json of the golden fixture."""
    return load_expected()


@pytest.fixture
def golden_copy(tmp_path: Path) -> Path:
    """A private copy of the golden folder at tmp_path / "model dir" (safe to modify)."""
    return Path(shutil.copytree(GOLDEN_DIR, tmp_path / "model dir"))


@pytest.fixture
def run_edge(capsys, monkeypatch) -> Callable[..., tuple[int, str, str]]:
    """Run `edge.cli.main(args)` in-process; return (exit code, stdout, stderr).

    `env` maps variable names to values (None removes one) for the duration of the call.
    An argparse usage error (SystemExit) is returned as its exit code.
    """
    from edge.cli import main

    def run(args: list, env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
        capsys.readouterr()  # drop anything printed before
        with monkeypatch.context() as patch:
            for name, value in (env or {}).items():
                if value is None:
                    patch.delenv(name, raising=False)
                else:
                    patch.setenv(name, str(value))
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:
                code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def eval_npz(shared_data: Path, golden_sidecar: dict, tmp_path_factory) -> Path:
    """A small .npz evaluation split (the first 40 MNIST test digits), in a folder with a space.

    Skipped when MNIST is missing or the golden model does not classify the digits 0-9.
    """
    from edge.datasets import Split, load_split, save_npz_split

    labels = golden_sidecar["labels"]
    test = load_split("mnist", "test", shared_data)
    if tuple(labels[: len(test.classes)]) != test.classes:
        pytest.skip("the golden model does not classify the MNIST digits")
    few = Split("mnist", "test", test.images[:40], test.labels[:40], test.classes)
    folder = tmp_path_factory.mktemp("eval") / "eval data"
    folder.mkdir()
    return save_npz_split(few, folder / "mnist few.npz")


@pytest.fixture(scope="session")
def mnist_digits(shared_data):
    """The first 24 MNIST test digits and their labels (pages are rendered from them)."""
    from edge.datasets import load_split

    test = load_split("mnist", "test", shared_data)
    return test.images[:24], test.labels[:24]
