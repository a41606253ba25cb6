"""edge.datasets and edge.atomic: real files match data/README.md; bad files fail clearly."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge import datasets as ds
from edge.atomic import atomic_open, atomic_write_bytes
from edge.datasets import DatasetError

MNIST_TRAIN_HIST = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_HIST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
USPS_TRAIN_HIST = [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]
USPS_TEST_HIST = [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]
BYCLASS_HIST_HEAD = [5778, 6330, 5869, 5969, 5619, 5190, 5705, 6139, 5633, 5686, 1062, 648]
BYMERGE_HIST = (
    "5745 6400 5765 5827 5498 5326 5787 5873 5655 5651 1058 652 2156 735 860 1524 430 576 2413 "
    "912 809 3358 1984 1351 4690 1812 415 835 3899 1630 2528 1223 1262 897 1195 925 1668 932 "
    "1708 4066 426 583 1535 1872 533 2365 2979"
)
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@pytest.fixture(scope="session")
def mnist_test(shared_data):
    return ds.load_split("mnist", "test", shared_data)


@pytest.fixture(scope="session")
def emnist_mnist(shared_data):
    return ds.load_split("emnist-mnist", "test", shared_data)


def _spread(image: np.ndarray) -> tuple[float, float]:
    """Intensity-weighted standard deviation of an image along y and along x."""
    ys, xs = np.indices(image.shape)
    weights = image / image.sum()
    cy, cx = (weights * ys).sum(), (weights * xs).sum()
    return float(np.sqrt((weights * (ys - cy) ** 2).sum())), float(
        np.sqrt((weights * (xs - cx) ** 2).sum())
    )


# --- the real files -------------------------------------------------------------------


def test_known_files_match_shared_sha256sums(shared_data):
    sums = dict(
        reversed(line.split())
        for line in (shared_data / "SHA256SUMS").read_text().splitlines()
        if line.strip() and not line.split()[1].startswith("photos/")
    )
    assert {rel: sha for rel, (sha, _) in ds.KNOWN_FILES.items()} == sums
    for rel in ds.KNOWN_FILES:
        assert ds.verify_file(shared_data, rel) == shared_data / rel


@pytest.mark.parametrize(
    ("split", "count", "hist", "pixel_sum"),
    [
        ("train", 60000, MNIST_TRAIN_HIST, 1_567_298_545),
        ("test", 10000, MNIST_TEST_HIST, 264_923_200),
    ],
)
def test_mnist_matches_readme(shared_data, split, count, hist, pixel_sum):
    data = ds.load_split("mnist", split, shared_data)
    assert data.images.shape == (count, 28, 28) and data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64 and data.classes == ds.DIGITS
    assert np.bincount(data.labels, minlength=10).tolist() == hist
    assert int(data.images.sum(dtype=np.int64)) == pixel_sum


@pytest.mark.parametrize(
    ("split", "count", "hist"), [("train", 7291, USPS_TRAIN_HIST), ("test", 2007, USPS_TEST_HIST)]
)
def test_usps_matches_readme(shared_data, split, count, hist):
    values, labels = ds.load_usps_native(split, shared_data)
    assert values.shape == (count, 16, 16) and values.dtype == np.float32
    assert values.min() == -1.0 and values.max() == 1.0
    assert np.bincount(labels, minlength=10).tolist() == hist
    data = ds.load_split("usps", split, shared_data)
    assert data.images.dtype == np.uint8 and data.images.shape == (count, 16, 16)
    np.testing.assert_array_equal(data.images, np.round((values + 1) * 127.5).astype(np.uint8))
    assert np.median(data.images) == 0  # background is 0, ink 255
    np.testing.assert_array_equal(data.labels, labels)


def test_emnist_byclass_and_bymerge(shared_data):
    byclass = ds.load_split("emnist-byclass", "test", shared_data)
    assert byclass.images.shape == (116323, 28, 28)
    assert "".join(byclass.classes) == "0123456789" + UPPER + UPPER.lower()
    assert np.bincount(byclass.labels)[: len(BYCLASS_HIST_HEAD)].tolist() == BYCLASS_HIST_HEAD
    bymerge = ds.load_split("emnist-bymerge", "test", shared_data)
    assert "".join(bymerge.classes) == "0123456789" + UPPER + "abdefghnqrt"
    assert np.bincount(bymerge.labels).tolist() == [int(v) for v in BYMERGE_HIST.split()]


def test_emnist_mnist_is_upright(shared_data, emnist_mnist, mnist_test):
    assert emnist_mnist.images.shape == (10000, 28, 28)
    assert np.bincount(emnist_mnist.labels).tolist() == [1000] * 10
    ones = emnist_mnist.images[emnist_mnist.labels == 1].mean(axis=0)
    tall, wide = _spread(ones)
    assert tall > 1.5 * wide  # a "1" is a vertical stroke once transposed back
    raw = ds.read_idx(shared_data / "emnist/emnist-mnist-test-images-idx3-ubyte.gz")
    stored_tall, stored_wide = _spread(raw[emnist_mnist.labels == 1].mean(axis=0))
    assert stored_wide > 1.5 * stored_tall  # as stored, it lies on its side
    mnist_tall, mnist_wide = _spread(mnist_test.images[mnist_test.labels == 1].mean(axis=0))
    assert mnist_tall > 1.5 * mnist_wide


def test_mapping_chars(shared_data):
    assert ds.read_emnist_mapping(shared_data / "emnist/emnist-mnist-mapping.txt") == ds.DIGITS
    assert b"\r\n" in (shared_data / "emnist/emnist-byclass-mapping.txt").read_bytes()


def test_split_sha256_is_of_content(mnist_test):
    assert mnist_test.sha256 == mnist_test.sha256
    labels = mnist_test.labels.copy()
    labels[0] = (labels[0] + 1) % 10
    changed = ds.Split("mnist", "test", mnist_test.images, labels, mnist_test.classes)
    assert changed.sha256 != mnist_test.sha256 and len(changed) == 10000


# --- verify_file and missing files --------------------------------------------------


def test_verify_file_catches_corrupt_and_truncated_copies(shared_data, data_root):
    rel = "mnist/t10k-labels-idx1-ubyte.gz"
    copy = data_root / rel
    copy.parent.mkdir()
    data = bytearray((shared_data / rel).read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="SHA-256") as err:
        ds.verify_file(data_root, rel)
    assert "train-host data download mnist" in str(err.value) and "\n" not in str(err.value)
    copy.write_bytes(bytes(data[:-10]))
    with pytest.raises(DatasetError, match="truncated"):
        ds.verify_file(data_root, rel)


def test_missing_file_names_folder_and_file(data_root):
    with pytest.raises(DatasetError) as err:
        ds.load_split("mnist", "test", data_root)
    message = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in message and str(data_root / "mnist") in message
    assert "train-host data download mnist" in message and "\n" not in message


def test_unknown_name_and_split(data_root):
    with pytest.raises(DatasetError, match="did you mean 'emnist-byclass'"):
        ds.load_split("emnist-byclas", "test", data_root)
    with pytest.raises(DatasetError, match="use 'train' or 'test'"):
        ds.load_split("mnist", "validation", data_root)


def test_emnist_train_missing_names_official_file(shared_data):
    with pytest.raises(DatasetError, match="emnist-byclass-train-images-idx3-ubyte.gz"):
        ds.load_split("emnist-byclass", "train", shared_data)


def test_emnist_official_train_files_load_unverified(shared_data, data_root, idx_bytes, write_gz):
    images = np.zeros((3, 28, 28), np.uint8)
    images[:, :, 5] = 255  # stored transposed: a column here is a row upright
    stem = data_root / "emnist" / "emnist-mnist-train"
    write_gz(Path(f"{stem}-images-idx3-ubyte.gz"), idx_bytes(images))
    write_gz(Path(f"{stem}-labels-idx1-ubyte.gz"), idx_bytes(np.array([1, 2, 3])))
    shutil.copy(shared_data / "emnist/emnist-mnist-mapping.txt", data_root / "emnist")
    split = ds.load_split("emnist-mnist", "train", data_root)
    assert split.labels.tolist() == [1, 2, 3] and split.classes == ds.DIGITS
    assert (split.images[:, 5, :] == 255).all() and split.images.sum() == 3 * 28 * 255


# --- parsers on bad input -------------------------------------------------------------


def test_read_idx_raw_and_gz(data_root, idx_bytes, write_gz):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = write_gz(data_root / "raw idx", idx_bytes(images), gz=False)
    packed = write_gz(data_root / "packed.gz", idx_bytes(images))
    np.testing.assert_array_equal(ds.read_idx(raw), images)
    np.testing.assert_array_equal(ds.read_idx(packed), images)


def test_read_idx_rejects_bad_files(data_root, idx_bytes, write_gz):
    good = idx_bytes(np.ones((4, 5, 5), np.uint8))
    truncated = data_root / "truncated.gz"
    truncated.write_bytes(gzip.compress(good)[:-12])
    with pytest.raises(DatasetError, match="truncated.gz"):
        ds.read_idx(truncated)
    wrong_magic = write_gz(data_root / "magic.gz", b"\x00\x00\x08\x02" + good[4:])
    with pytest.raises(DatasetError, match="magic 0x00000802"):
        ds.read_idx(wrong_magic)
    short = write_gz(data_root / "short.gz", good[:-5])
    with pytest.raises(DatasetError, match="header"):
        ds.read_idx(short)
    long = write_gz(data_root / "long.gz", good + b"\x00")
    with pytest.raises(DatasetError, match="header"):
        ds.read_idx(long)
    tiny = write_gz(data_root / "tiny.gz", b"\x00\x00")
    with pytest.raises(DatasetError, match="too short"):
        ds.read_idx(tiny)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("3 " + " ".join(["-1"] * 255), "line 2 has 256 values"),
        ("3 " + " ".join(["-1"] * 257), "line 2 has 258 values"),
        ("3 " + " ".join(["x"] * 256), "line 2 is malformed"),
        ("12 " + " ".join(["-1"] * 256), "line 2 starts with '12'"),
        ("3 " + " ".join(["1.5"] * 256), "line 2 has grey values outside"),
    ],
)
def test_read_usps_reports_line_number(data_root, write_gz, line, match):
    good = "6.0000 " + " ".join(["-1.0000"] * 256)
    path = write_gz(data_root / "zip.train.gz", f"{good}\n{line}\n".encode())
    with pytest.raises(DatasetError, match=match):
        ds.read_usps(path)


def test_read_usps_parses_both_number_styles(data_root, write_gz):
    text = "6.0000 " + " ".join(["-1.0000"] * 255) + " 1.0000\n9 " + " ".join(["-0.5"] * 256)
    values, labels = ds.read_usps(write_gz(data_root / "zip.test.gz", text.encode()))
    assert labels.tolist() == [6, 9] and values.dtype == np.float32
    assert values[0, 15, 15] == 1.0 and values[1, 0, 0] == -0.5


def test_read_emnist_mapping_rejects_gaps(data_root):
    path = data_root / "mapping.txt"
    path.write_bytes(b"0 48\r\n2 50\r\n")
    with pytest.raises(DatasetError, match="labels 0..N-1"):
        ds.read_emnist_mapping(path)
    path.write_bytes(b"0 48\r\n1 forty-nine\r\n")
    with pytest.raises(DatasetError, match="line 2"):
        ds.read_emnist_mapping(path)


# --- npz evaluation files and atomic writes ----------------------------------------


def test_npz_roundtrip(mnist_test, data_root):
    small = ds.Split("mnist", "test", mnist_test.images[:50], mnist_test.labels[:50], ds.DIGITS)
    path = ds.save_npz_split(small, data_root / "eval split.npz")
    back = ds.load_npz_split(path)
    assert (back.name, back.split, back.classes) == ("mnist", "test", ds.DIGITS)
    assert back.sha256 == small.sha256 and back.labels.dtype == np.int64
    assert [p.name for p in data_root.iterdir()] == ["eval split.npz"]


def test_npz_missing_or_corrupt(mnist_test, data_root):
    with pytest.raises(DatasetError, match="missing"):
        ds.load_npz_split(data_root / "none.npz")
    small = ds.Split("mnist", "test", mnist_test.images[:5], mnist_test.labels[:5], ds.DIGITS)
    path = ds.save_npz_split(small, data_root / "eval.npz")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DatasetError, match="eval.npz"):
        ds.load_npz_split(path)
    np.savez(path, images=small.images)
    with pytest.raises(DatasetError, match="lacks labels"):
        ds.load_npz_split(path)


def test_atomic_open_failure_leaves_nothing(data_root):
    target = data_root / "model file.tflite"
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write(b"half a model")
        raise RuntimeError("interrupted")
    assert list(data_root.iterdir()) == []


def test_atomic_write_replaces_and_keeps_mode(data_root):
    target = data_root / "report.json"
    atomic_write_bytes(target, b"old")
    os.chmod(target, 0o640)
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and (target.stat().st_mode & 0o777) == 0o640
    with atomic_open(target, "w") as handle:
        handle.write("text é")
    assert target.read_text(encoding="utf-8") == "text é"
    assert [p.name for p in data_root.iterdir()] == ["report.json"]


def test_data_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HWR_DATA_DIR", str(tmp_path / "my data"))
    assert ds.data_dir() == tmp_path / "my data"
    monkeypatch.delenv("HWR_DATA_DIR")
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "work tree").mkdir()
    monkeypatch.chdir(tmp_path / "work tree")
    assert ds.data_dir().resolve() == (tmp_path / "shared" / "data").resolve()


def test_edge_datasets_imports_no_host_modules():
    code = (
        "import sys, edge.datasets, edge.atomic; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'sklearn', 'train_host', 'tqdm') "
        "if m in sys.modules))"
    )
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
