"""Shared fixtures: the real data folder (skipped when absent) and tiny dataset-file writers."""

from __future__ import annotations

import gzip
import os
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
