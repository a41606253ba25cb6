"""EMNIST Letters and Balanced derived from the ByClass/ByMerge test files (or read from the
official files): counts, folding, duplicates, balance, splits, reproducibility, loading by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge import datasets as ds
from edge import emnist_derived as derived
from edge.errors import DatasetError

EMNIST_FILES = (
    "emnist/emnist-byclass-test-images-idx3-ubyte.gz",
    "emnist/emnist-byclass-test-labels-idx1-ubyte.gz",
    "emnist/emnist-bymerge-test-images-idx3-ubyte.gz",
    "emnist/emnist-bymerge-test-labels-idx1-ubyte.gz",
)
BYCLASS_LETTERS = 58405  # ByClass test labels 10-61 (data README)
BALANCED_PER_CLASS = 759  # 'f', the smallest class of ByMerge test + ByClass test, deduplicated
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def emnist_root() -> Path:
    """The real data root; skip without the EMNIST ByClass and ByMerge test files."""
    root = ds.data_dir()
    if not all((root / rel).is_file() for rel in EMNIST_FILES):
        pytest.skip(f"no EMNIST ByClass/ByMerge test files in {root} (set HWR_DATA_DIR)")
    return root


@pytest.fixture(scope="module")
def letters(emnist_root) -> dict[str, ds.Split]:
    return derived.load_derived_splits("emnist-letters", ("train", "test"), emnist_root)


@pytest.fixture(scope="module")
def balanced(emnist_root) -> dict[str, ds.Split]:
    own = tuple(s for s in derived.DERIVED_SPLITS if s != derived.WIDE_LETTERS_SPLIT)
    return derived.load_derived_splits("emnist-balanced", own, emnist_root)


def _digest_set(split: ds.Split) -> set[bytes]:
    return {row.tobytes() for row in derived.image_digests(split.images)}


# --- without data -----------------------------------------------------------------------


def test_fold_letters_joins_cases():
    byclass = tuple("0123456789") + derived.LETTERS + tuple("abcdefghijklmnopqrstuvwxyz")
    labels = np.arange(10, 62)
    folded = derived.fold_letters(labels)
    assert [derived.LETTERS[i] for i in folded] == [byclass[i].upper() for i in labels]


def test_split_mask_takes_share_of_every_class():
    labels = np.repeat(np.arange(3), [10, 20, 7])
    digests = derived.image_digests(np.arange(37, dtype=np.uint8).reshape(37, 1, 1))
    ranks = derived.class_ranks(labels, derived.digest_keys(digests))
    for c, n in enumerate((10, 20, 7)):
        assert sorted(ranks[labels == c].tolist()) == list(range(n))
    test = derived.split_mask(labels, ranks, 0.2)
    assert np.bincount(labels[test]).tolist() == [2, 4, 1]


def test_first_unique_keeps_first_copy():
    images = np.array([[[1]], [[2]], [[1]], [[3]], [[2]]], np.uint8)
    assert derived.first_unique(derived.image_digests(images)).tolist() == [0, 1, 3]


def test_mapping_without_a_class_is_one_line_error():
    with pytest.raises(DatasetError, match="no class for ByClass '#'"):
        derived.byclass_to_bymerge(("A", "#"), ("A",))


def test_unknown_split_and_missing_sources(data_root):
    with pytest.raises(DatasetError, match="train-6to1"):
        ds.load_split("emnist-letters", "val", data_root)
    with pytest.raises(DatasetError, match="official emnist-balanced-train/test") as err:
        ds.load_split("emnist-balanced", "test", data_root)
    assert "\n" not in str(err.value)


def _write_official(root: Path, name: str, labels: np.ndarray, idx_bytes, write_gz) -> None:
    images = np.zeros((len(labels), 28, 28), np.uint8)
    images[:, :, 3] = 255  # stored transposed: row 3 once upright
    for side in ("train", "test"):
        stem = root / "emnist" / f"{name}-{side}"
        write_gz(Path(f"{stem}-images-idx3-ubyte.gz"), idx_bytes(images))
        write_gz(Path(f"{stem}-labels-idx1-ubyte.gz"), idx_bytes(labels))


def test_official_letters_files_win(data_root, idx_bytes, write_gz):
    _write_official(data_root, "emnist-letters", np.array([1, 2, 26]), idx_bytes, write_gz)
    for split in ("train", "test-6to1"):
        loaded = ds.load_split("emnist-letters", split, data_root)
        assert loaded.labels.tolist() == [0, 1, 25] and loaded.classes == derived.LETTERS
        assert (loaded.images[:, 3, :] == 255).all() and loaded.images.sum() == 3 * 28 * 255


def test_train_2400_is_balanced_only_with_official_letters_too(data_root, idx_bytes, write_gz):
    _write_official(data_root, "emnist-letters", np.array([1, 2, 26]), idx_bytes, write_gz)
    with pytest.raises(DatasetError, match="only emnist-balanced"):
        ds.load_split("emnist-letters", derived.UNBALANCED_SPLIT, data_root)


def test_official_balanced_files_win(data_root, idx_bytes, write_gz):
    _write_official(data_root, "emnist-balanced", np.array([0, 46]), idx_bytes, write_gz)
    chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt"
    lines = "".join(f"{i} {ord(c)}\r\n" for i, c in enumerate(chars))
    (data_root / "emnist" / "emnist-balanced-mapping.txt").write_text(lines, newline="")
    loaded = ds.load_split("emnist-balanced", "test", data_root)
    assert loaded.labels.tolist() == [0, 46] and "".join(loaded.classes) == chars


def test_official_letters_label_zero_is_refused(data_root, idx_bytes, write_gz):
    _write_official(data_root, "emnist-letters", np.array([0, 1]), idx_bytes, write_gz)
    with pytest.raises(DatasetError, match="labels are 1-26"):
        ds.load_split("emnist-letters", "train", data_root)


def test_derived_module_imports_no_host_modules():
    code = (
        "import sys, edge.emnist_derived; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'sklearn', 'train_host') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# --- on the shared EMNIST files -----------------------------------------------------------


def test_bymerge_mapping_comes_from_the_files(emnist_root):
    byclass = ds.read_emnist_mapping(emnist_root / "emnist/emnist-byclass-mapping.txt")
    bymerge = ds.read_emnist_mapping(emnist_root / "emnist/emnist-bymerge-mapping.txt")
    mapping = derived.byclass_to_bymerge(byclass, bymerge)
    assert len(mapping) == 62 and sorted(set(mapping.tolist())) == list(range(47))
    to = {c: bymerge[mapping[i]] for i, c in enumerate(byclass)}
    assert to["c"] == "C" and to["o"] == "O" and to["z"] == "Z" and to["7"] == "7"
    assert to["a"] == "a" and to["t"] == "t" and to["A"] == "A"
    merged = sorted(c for c in byclass if c.islower() and to[c] == c.upper())
    assert "".join(merged) == "cijklmopsuvwxyz"


def test_letters_counts_folding_and_split(emnist_root, letters):
    train, test = letters["train"], letters["test"]
    byclass = ds.load_split("emnist-byclass", "test", emnist_root)
    assert train.classes == test.classes == derived.LETTERS
    assert (len(train), len(test)) == (46723, 11682) and len(train) + len(test) == BYCLASS_LETTERS
    counts = np.bincount(train.labels, minlength=26) + np.bincount(test.labels, minlength=26)
    upper = np.bincount(byclass.labels, minlength=62)[10:36]
    lower = np.bincount(byclass.labels, minlength=62)[36:62]
    np.testing.assert_array_equal(counts, upper + lower)  # A and a, B and b, ... in one class
    share = np.bincount(test.labels) / counts
    assert np.all(np.abs(share - 0.2) < 0.005)


def test_balanced_counts_no_duplicates_and_splits(emnist_root, balanced):
    bymerge = ds.load_split("emnist-bymerge", "test", emnist_root)
    splits = balanced
    for split in splits.values():
        assert split.classes == bymerge.classes
    per_class = {s: set(np.bincount(v.labels, minlength=47).tolist()) for s, v in splits.items()}
    del per_class[derived.UNBALANCED_SPLIT]
    assert per_class == {"train": {607}, "test": {152}, "train-6to1": {651}, "test-6to1": {108}}
    for train, test in (("train", "test"), ("train-6to1", "test-6to1")):
        a, b = _digest_set(splits[train]), _digest_set(splits[test])
        assert len(a) == len(splits[train]) and len(b) == len(splits[test])  # no duplicates
        assert not a & b  # disjoint
        assert len(a | b) == 47 * BALANCED_PER_CLASS


def test_balanced_train_2400_adds_images_and_never_meets_test(balanced):
    """train-2400: every distinct image outside "test", up to 2,400 a class: the balanced
    training split and more of the classes the balancing cut."""
    wide, train, test = (balanced[s] for s in (derived.UNBALANCED_SPLIT, "train", "test"))
    counts = np.bincount(wide.labels, minlength=47)
    assert counts.min() == BALANCED_PER_CLASS - 152 and counts.max() == 2400
    assert len(wide) == 92625
    digests = _digest_set(wide)
    assert len(digests) == len(wide)  # no duplicates
    assert not digests & _digest_set(test) and _digest_set(train) <= digests


def test_train_2400_is_balanced_only(emnist_root):
    with pytest.raises(DatasetError, match="only emnist-balanced"):
        ds.load_split("emnist-letters", derived.UNBALANCED_SPLIT, emnist_root)


def test_train_all_is_letters_only(emnist_root):
    with pytest.raises(DatasetError, match="only emnist-letters"):
        ds.load_split("emnist-balanced", derived.WIDE_LETTERS_SPLIT, emnist_root)


def test_letters_train_all_adds_bymerge_letters_and_never_meets_test(emnist_root, letters):
    """train-all: "train" plus every ByMerge letter that ByClass does not hold, folded to A-Z;
    no duplicates and nothing of "test", exact copies included."""
    wide = ds.load_split("emnist-letters", derived.WIDE_LETTERS_SPLIT, emnist_root)
    assert wide.classes == derived.LETTERS and len(wide) == 97253
    digests = _digest_set(wide)
    assert len(digests) == len(wide)
    assert not digests & _digest_set(letters["test"])
    assert _digest_set(letters["train"]) <= digests
    np.testing.assert_array_equal(wide.labels[: len(letters["train"])], letters["train"].labels)
    extra, extra_labels = derived.bymerge_letters(emnist_root, verify=False)
    index = {row.tobytes(): i for i, row in enumerate(derived.image_digests(extra))}
    added = derived.image_digests(wide.images[len(letters["train"]) :])
    picked = [index[row.tobytes()] for row in added]
    np.testing.assert_array_equal(wide.labels[len(letters["train"]) :], extra_labels[picked])


def test_letters_splits_are_disjoint(letters):
    train, test = _digest_set(letters["train"]), _digest_set(letters["test"])
    assert len(train) + len(test) == BYCLASS_LETTERS and not train & test


def test_derivation_is_reproducible(emnist_root, letters, balanced):
    for name, first in (("emnist-letters", letters), ("emnist-balanced", balanced)):
        again = ds.load_split(name, "test", emnist_root)  # one split alone: the same content
        assert again.sha256 == first["test"].sha256
        np.testing.assert_array_equal(again.labels, first["test"].labels)
    assert letters["test"].sha256 != letters["train"].sha256 != balanced["train"].sha256


def test_derived_images_are_upright(letters):
    test = letters["test"]
    mean_l = test.images[test.labels == derived.LETTERS.index("L")].mean(axis=0)
    left, right = mean_l[:, :14].sum(), mean_l[:, 14:].sum()
    bottom, top = mean_l[14:, :].sum(), mean_l[:14, :].sum()
    assert left > right and bottom > top  # an L: stem on the left, foot at the bottom


def test_loading_by_name_as_edge_bench_does(emnist_root):
    from edge.bench_command import _eval_split

    split = _eval_split(Path("model.tflite"), "emnist-letters", "test")
    assert split.name == "emnist-letters" and len(split) == 11682


def test_host_loader_accepts_derived_names(emnist_root):
    pytest.importorskip("sklearn")
    from train_host.data import DATASET_CHOICES, load_dataset

    assert {"emnist-letters", "emnist-balanced"} <= set(DATASET_CHOICES)
    assert len(load_dataset("emnist-balanced", "test-6to1", emnist_root)) == 47 * 108
