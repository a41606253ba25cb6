"""EMNIST Letters and Balanced: the official files when present, else derived (numpy only).

Without the official files both sets are built from the ByClass and ByMerge *test* files:

- emnist-letters: the ByClass letters, upper and lower case folded into 26 classes A-Z.
- emnist-balanced: the 47 ByMerge classes from ByMerge test + ByClass test (ByClass labels
  mapped onto ByMerge's through the two mapping files), exact duplicates removed, every
  class cut to the smallest class's count.

Splits: "train"/"test" hold 80% / 20% of each class (seed 000's protocol), and
"train-6to1"/"test-6to1" hold 6/7 / 1/7 (the proportions of official Balanced, seed 004's).
Balanced also has "train-2400": "test" left out, every other distinct image up to 2,400 a
class (official Balanced's training count per class), so the classes the balancing cut to
759 images train on more of theirs; its test split is "test". Letters also has "train-all":
"train" plus every ByMerge test letter that is not a ByClass letter already (ByMerge's and
ByClass's test files are different draws from the same images), so it never meets "test".
Official files keep their own train/test split for every name. The order is fixed by a keyed
hash (key SEED) of each image's bytes, so every machine and numpy version derives the same
sets. Images are upright, as every loader here returns them (sidecars: transposed=False).

Counts from the shared test files:
- letters: 58,405 (all distinct): train 46,723 / test 11,682; train-6to1 50,060 / test-6to1 8,345;
  train-all 97,253 (train and 50,530 more from ByMerge).
- balanced: 232,646 images, 216,168 distinct; the smallest class ('f') has 759, so 47 x 759 =
  35,673: train 28,529 / test 7,144 (607 / 152 a class); train-6to1 30,597 / test-6to1 5,076
  (651 / 108 a class); train-2400 92,625 (607-2,400 a class).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from edge.datasets import (
    DERIVED_NAMES,
    Split,
    _load_idx_pair,
    _require,
    load_split,
    read_emnist_mapping,
)
from edge.errors import DatasetError

LETTERS = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
SEED = 0
# split name -> (share of each class held out for test, is the test side)
SPLIT_TEST_SHARE = {
    "train": (0.2, False),
    "test": (0.2, True),
    "train-6to1": (1 / 7, False),
    "test-6to1": (1 / 7, True),
    "train-2400": (0.2, False),
    "train-all": (0.2, False),
}
# Balanced's split beyond the balanced set: its training images per class at most.
UNBALANCED_SPLIT = "train-2400"
UNBALANCED_PER_CLASS = 2400
# Letters' split beyond ByClass: "train" and the ByMerge letters ByClass does not hold.
WIDE_LETTERS_SPLIT = "train-all"
# the splits only one derived set has -> that set
OWN_SPLITS = {UNBALANCED_SPLIT: "emnist-balanced", WIDE_LETTERS_SPLIT: "emnist-letters"}
DERIVED_SPLITS = tuple(SPLIT_TEST_SHARE)
_FIRST_LETTER = 10  # ByClass: 0-9, then A-Z (10-35), then a-z (36-61)
_DIGEST_BYTES = 16


def byclass_to_bymerge(byclass: tuple[str, ...], bymerge: tuple[str, ...]) -> np.ndarray:
    """Map every ByClass label onto a ByMerge label: the same character, or its upper case
    where ByMerge merged the two cases (c, i, j, k, l, m, o, p, s, u, v, w, x, y, z).

    Args:
        byclass: ByClass characters by label (its mapping file).
        bymerge: ByMerge characters by label (its mapping file).

    Returns:
        int64 array: ByMerge label of each ByClass label.
    """
    index = {char: label for label, char in enumerate(bymerge)}
    missing = [c for c in byclass if c not in index and c.upper() not in index]
    if missing:
        raise DatasetError(
            f"ByMerge mapping has no class for ByClass {missing[0]!r}: replace the mapping files"
        )
    return np.array([index.get(c, index.get(c.upper())) for c in byclass], dtype=np.int64)


def fold_letters(byclass_labels: np.ndarray) -> np.ndarray:
    """ByClass letter labels (10-61) -> 0-25 (A-Z), upper and lower case together."""
    return (np.asarray(byclass_labels, dtype=np.int64) - _FIRST_LETTER) % len(LETTERS)


def image_digests(images: np.ndarray, seed: int = SEED) -> np.ndarray:
    """Keyed BLAKE2b of each image's bytes: (N, 16) uint8; equal images, equal digests."""
    rows = np.ascontiguousarray(images).reshape(len(images), -1)
    key = seed.to_bytes(8, "little")
    joined = b"".join(
        hashlib.blake2b(row, digest_size=_DIGEST_BYTES, key=key).digest() for row in rows
    )
    return np.frombuffer(joined, np.uint8).reshape(len(images), _DIGEST_BYTES)


def first_unique(digests: np.ndarray) -> np.ndarray:
    """Sorted indices of the first occurrence of every distinct digest."""
    rows = np.ascontiguousarray(digests).view(np.dtype((np.void, digests.shape[1]))).ravel()
    return np.sort(np.unique(rows, return_index=True)[1])


def digest_keys(digests: np.ndarray) -> np.ndarray:
    """A sort key per digest: its first 8 bytes as a big-endian uint64."""
    return np.ascontiguousarray(digests[:, :8]).view(">u8").ravel()


def class_ranks(labels: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Rank of each sample within its class by ascending key (ties: by index).

    Args:
        labels: int class of each sample.
        keys: one sortable value per sample (a digest key, a distance ...).
    """
    order = np.lexsort((keys, labels))  # stable: ties keep their index order
    counts = np.bincount(labels)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    ranks = np.empty(len(labels), np.int64)
    ranks[order] = np.arange(len(labels)) - starts
    return ranks


def split_mask(labels: np.ndarray, ranks: np.ndarray, share: float) -> np.ndarray:
    """True for the first round(count * share) of each class by rank (the test side)."""
    counts = np.bincount(labels)
    return ranks < np.round(counts * share).astype(np.int64)[labels]


def _letters_pool(root: Path, verify: bool) -> tuple:
    byclass = load_split("emnist-byclass", "test", root, verify)
    letters = byclass.labels >= _FIRST_LETTER
    return byclass.images[letters], fold_letters(byclass.labels[letters]), LETTERS


def bymerge_letters(root: Path, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    """The letters of the ByMerge test file, upper and lower case folded into A-Z (0-25)."""
    bymerge = load_split("emnist-bymerge", "test", root, verify)
    folded = np.array([LETTERS.index(c.upper()) if c.isalpha() else -1 for c in bymerge.classes])
    labels = folded[bymerge.labels]
    return bymerge.images[labels >= 0], labels[labels >= 0]


def new_images(known: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """Indices into `extra` of its distinct images that are not in `known` (first kept)."""
    unique = first_unique(image_digests(np.concatenate([known, extra])))
    return unique[unique >= len(known)] - len(known)


def _balanced_pool(root: Path, verify: bool) -> tuple:
    bymerge = load_split("emnist-bymerge", "test", root, verify)
    byclass = load_split("emnist-byclass", "test", root, verify)
    mapped = byclass_to_bymerge(byclass.classes, bymerge.classes)[byclass.labels]
    images = np.concatenate([bymerge.images, byclass.images])
    return images, np.concatenate([bymerge.labels, mapped]), bymerge.classes


def derived_pool(name: str, root: Path, verify: bool = True) -> tuple:
    """The whole derived set before splitting: (images, labels, classes, ranks, per_class).

    Duplicates are removed (first occurrence kept) and every image ranked within its class.
    Balanced keeps `per_class` images of every class (the smallest class's count, the first
    by rank); Letters keeps all (per_class None). Not cached (the Pi's memory is small):
    about 1.5 s (Letters) and 3 s (Balanced) on the host.
    """
    images, labels, classes = (_letters_pool if name == "emnist-letters" else _balanced_pool)(
        root, verify
    )
    digests = image_digests(images)
    keep = first_unique(digests)
    images, labels, digests = images[keep], labels[keep], digests[keep]
    ranks = class_ranks(labels, digest_keys(digests))
    per_class = None
    if name == "emnist-balanced":
        per_class = int(np.bincount(labels, minlength=len(classes)).min())
    return images, labels, classes, ranks, per_class


def derived_side(ranks: np.ndarray, labels: np.ndarray, split: str, per_class: int | None):
    """Which images of a derived pool (see `derived_pool`) make up one split.

    The balanced splits take, of each class's first `per_class` by rank, the test share or
    the rest (`split_mask`); "train-2400" takes every image past the test share of that
    balanced set, up to UNBALANCED_PER_CLASS a class, so it never meets "test".
    """
    share, is_test = SPLIT_TEST_SHARE[split]
    if per_class is None:
        return split_mask(labels, ranks, share) == is_test
    held_out = round(per_class * SPLIT_TEST_SHARE["test"][0])
    if split == UNBALANCED_SPLIT:
        return (ranks >= held_out) & (ranks < held_out + UNBALANCED_PER_CLASS)
    balanced = ranks < per_class
    side = np.zeros(len(labels), bool)
    side[balanced] = split_mask(labels[balanced], ranks[balanced], share) == is_test
    return side


def official_files(name: str, split: str, root: Path) -> tuple[str, str] | None:
    """(images, labels) paths below the root of the official split, or None without them."""
    side = "test" if SPLIT_TEST_SHARE[split][1] else "train"
    stem = f"emnist/{name}-{side}"
    if not (Path(root) / f"emnist/{name}-train-images-idx3-ubyte.gz").is_file():
        return None
    return f"{stem}-images-idx3-ubyte.gz", f"{stem}-labels-idx1-ubyte.gz"


def _load_official(name: str, split: str, root: Path, files: tuple[str, str]) -> Split:
    images, labels = _load_idx_pair(root, *files, verify=False)  # no published checksums
    upright = np.ascontiguousarray(images.transpose(0, 2, 1))
    if name == "emnist-letters":
        if len(labels) and labels.min() < 1:
            raise DatasetError(
                f"{root / files[1]} has label 0, official Letters labels are 1-26: "
                "replace it with a good copy"
            )
        return Split(name, split, upright, labels - 1, LETTERS)
    classes = read_emnist_mapping(_require(root, f"emnist/{name}-mapping.txt"))
    return Split(name, split, upright, labels, classes)


def load_derived_splits(
    name: str, splits: tuple[str, ...], root: Path, verify: bool = True
) -> dict[str, Split]:
    """Load splits of emnist-letters or emnist-balanced: the official files if present, else
    derived (once for all the splits asked for).

    Args:
        name: "emnist-letters" or "emnist-balanced".
        splits: names from DERIVED_SPLITS.
        root: the data root.
        verify: check the source files' size and SHA-256 (derived sets only).

    Returns:
        split name -> Split, images upright (uint8, ink high).
    """
    if name not in DERIVED_NAMES:
        raise DatasetError(f"{name} is not a derived set: use one of {', '.join(DERIVED_NAMES)}")
    for split in splits:
        if split not in SPLIT_TEST_SHARE:
            raise DatasetError(f"{name} has no split {split!r}: use {', '.join(DERIVED_SPLITS)}")
        if OWN_SPLITS.get(split, name) != name:
            raise DatasetError(
                f"{name} has no split {split!r} (only {OWN_SPLITS[split]}): use "
                f"{', '.join(s for s in DERIVED_SPLITS if OWN_SPLITS.get(s, name) == name)}"
            )
    root = Path(root)
    if official_files(name, splits[0], root) is not None:
        return {s: _load_official(name, s, root, official_files(name, s, root)) for s in splits}
    try:
        images, labels, classes, ranks, per_class = derived_pool(name, root, verify)
    except DatasetError as exc:
        raise DatasetError(
            f"{name} is derived from the EMNIST ByClass/ByMerge test files ({exc}); or add "
            f"the official {name}-train/test files to {root / 'emnist'}"
        ) from exc
    out = {}
    for split in splits:
        side = derived_side(ranks, labels, split, per_class)
        out[split] = Split(name, split, images[side], labels[side], classes)
    if WIDE_LETTERS_SPLIT in splits:
        extra_images, extra_labels = bymerge_letters(root, verify)
        new = new_images(images, extra_images)
        wide = out[WIDE_LETTERS_SPLIT]
        out[WIDE_LETTERS_SPLIT] = Split(
            name,
            WIDE_LETTERS_SPLIT,
            np.concatenate([wide.images, extra_images[new]]),
            np.concatenate([wide.labels, extra_labels[new]]),
            classes,
        )
    return out


def load_derived(name: str, split: str, root: Path, verify: bool = True) -> Split:
    """Load one split of emnist-letters or emnist-balanced (see `load_derived_splits`)."""
    return load_derived_splits(name, (split,), root, verify)[split]
