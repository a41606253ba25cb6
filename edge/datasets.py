"""Dataset files on disk -> verified numpy arrays: MNIST, USPS and EMNIST (numpy only, Pi-safe).

Every file is checked against its published size and SHA-256 before it is parsed.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.atomic import atomic_open
from edge.dataset_formats import (  # noqa: F401 (IDX_* are re-exported)
    EMNIST_URL,
    IDX_IMAGES,
    IDX_LABELS,
    _get_again,
    _one_line,
    read_emnist_mapping,
    read_idx,
    read_usps,
)
from edge.errors import DatasetError
from edge.spec import file_sha256

DIGITS = tuple("0123456789")
DERIVED_NAMES = ("emnist-letters", "emnist-balanced")  # official files, else edge.emnist_derived
DATASET_NAMES = (
    "mnist",
    "usps",
    "emnist-mnist",
    "emnist-byclass",
    "emnist-bymerge",
    *DERIVED_NAMES,
)
SPLITS = ("train", "test")
NPZ_KEYS = ("images", "labels", "classes", "name", "split")
_MNIST_PREFIX = {"train": "train", "test": "t10k"}

# SHA-256, size in bytes and path of every file in the shared data table (data/README.md).
_SHA256SUMS = """
440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609   9912422  mnist/train-images-idx3-ubyte.gz
3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c     28881  mnist/train-labels-idx1-ubyte.gz
8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6   1648877  mnist/t10k-images-idx3-ubyte.gz
f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6      4542  mnist/t10k-labels-idx1-ubyte.gz
66ebf231ab51f2cf6ac1a892d0f98ccffee1079d7a5db638c1f11f366046ca16   1829071  usps/zip.train.gz
8dacc3c6e136af6c3488de9e5113a7daf140c8c2f1f0b61c54ee02f03f1a962f    439208  usps/zip.test.gz
5ec835bd5d5b1a66378a132e727fef20fe994b3cc666899befcca5ac766f50cd  28908322  emnist/emnist-byclass-test-images-idx3-ubyte.gz
501e305eeeacb093b162592d80e8a2632040872360fa6d85cfcb2200d91ca92a     81839  emnist/emnist-byclass-test-labels-idx1-ubyte.gz
5e5815ec1b522089134435f7c55e75a00960b58414793593ffff23efc0821683  28905295  emnist/emnist-bymerge-test-images-idx3-ubyte.gz
8bda1516255683ba9071e141947ca0c91a911176065cdd6259b0b4d8dc5b5f35     79351  emnist/emnist-bymerge-test-labels-idx1-ubyte.gz
b25640fa9e356c618132f5df347c95ef5bae6d9c2596be1de40f7e0ae1c3eac6   2484884  emnist/emnist-mnist-test-images-idx3-ubyte.gz
bcc5385d38f083dba046f5f756e99b32f5ea7fad122c6243c71c2239873065ca      5144  emnist/emnist-mnist-test-labels-idx1-ubyte.gz
68fa9091ed325830418b5a8d732f32316e54a480b9f8994a161abb4eddd0d078       447  emnist/emnist-byclass-mapping.txt
956dc507bf69e9f31f4e3e876d22ec66124aa229b5d0bd65ab8956a8044d3ede       328  emnist/emnist-bymerge-mapping.txt
6d157dc46a7b1c80d630f4fed571d9964db37ee1669cac403b6db2c8bb109d94        60  emnist/emnist-mnist-mapping.txt
"""
KNOWN_FILES: dict[str, tuple[str, int]] = {
    rel: (sha, int(size)) for sha, size, rel in map(str.split, _SHA256SUMS.strip().splitlines())
}


def data_dir() -> Path:
    """Return the data root: $HWR_DATA_DIR, else ../shared/data (from the cwd, then from the
    source checkout) when it exists, else the user cache dir ($XDG_CACHE_HOME/hwr-pi/data)."""
    env = os.environ.get("HWR_DATA_DIR")
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[1].parent
    for candidate in (Path.cwd().parent / "shared" / "data", checkout / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "hwr-pi" / "data"


def unknown_dataset_error(name: str, names: tuple[str, ...]) -> DatasetError:
    """Build the error for an unknown dataset name, with a close-match suggestion."""
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return DatasetError(f"unknown dataset {name!r}{hint}: choose one of {', '.join(names)}")


def _require(root: Path, relpath: str) -> Path:
    path = Path(root) / relpath
    if not path.is_file():
        folder = relpath.split("/")[0]
        how = f"run: train-host data download {folder}"
        if folder not in ("mnist", "usps"):
            how = f"get it from {EMNIST_URL}"
        raise DatasetError(
            f"{folder.upper()} file missing: put {path.name} in {path.parent}{os.sep} (or {how})"
        )
    return path


def verify_file(root: Path, relpath: str, known: dict[str, tuple[str, int]] | None = None) -> Path:
    """Check that a dataset file exists and matches its published size and SHA-256.

    Args:
        root: the data root (see `data_dir`).
        relpath: path below the root, e.g. "mnist/train-images-idx3-ubyte.gz".
        known: relpath -> (sha256, size) table; defaults to KNOWN_FILES.

    Returns:
        The full path of the verified file.

    Raises:
        DatasetError: the file is missing, has the wrong size or the wrong checksum.
        ValueError: `relpath` has no known checksum.
    """
    table = KNOWN_FILES if known is None else known
    if relpath not in table:
        raise ValueError(f"no checksum known for {relpath!r}")
    sha, size = table[relpath]
    path = _require(root, relpath)
    fix = f"delete it and {_get_again(relpath.split('/')[0])}"
    actual = path.stat().st_size
    if actual != size:
        raise DatasetError(f"{path} is {actual} bytes, expected {size} (truncated?): {fix}")
    if file_sha256(path) != sha:
        raise DatasetError(f"{path} fails its SHA-256 check (corrupt or truncated): {fix}")
    return path


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset, as the files hold it but upright.

    Attributes:
        name: dataset name, e.g. "mnist".
        split: "train", "test" (or "val" once carved from training data).
        images: uint8 (N, H, W), 0 = background, 255 = ink, upright. EMNIST is transposed
            back here with ``transpose(0, 2, 1)``; a model's preprocessing spec may
            transpose again (``PreprocessSpec.transposed``) to feed it as stored.
        labels: int64 (N,) class indices.
        classes: index -> character.
    """

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the image bytes then the label bytes (int64 little-endian)."""
        digest = hashlib.sha256(np.ascontiguousarray(self.images).tobytes())
        digest.update(np.ascontiguousarray(self.labels, dtype="<i8").tobytes())
        return digest.hexdigest()


def _load_idx_pair(root: Path, images_rel: str, labels_rel: str, verify: bool) -> tuple:
    check = verify_file if verify else _require
    images = read_idx(check(root, images_rel))
    labels = read_idx(check(root, labels_rel))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetError(
            f"{root / images_rel} {images.shape} and {labels_rel} {labels.shape} do not "
            "pair up: replace them with good copies"
        )
    return images, labels.astype(np.int64)


def _check_labels(split: Split) -> Split:
    if len(split) and int(split.labels.max()) >= len(split.classes):
        raise DatasetError(
            f"{split.name} {split.split} has label {int(split.labels.max())} but only "
            f"{len(split.classes)} classes: replace the files with good copies"
        )
    return split


def _load_emnist(name: str, split: str, root: Path, verify: bool) -> Split:
    stem = f"emnist/{name}"
    images_rel = f"{stem}-{split}-images-idx3-ubyte.gz"
    labels_rel = f"{stem}-{split}-labels-idx1-ubyte.gz"
    if split == "train" and not (root / images_rel).is_file():
        raise DatasetError(
            f"{name} has no training split in {root / 'emnist'} (the shared data holds only "
            f"the test split): add the official {images_rel} and {labels_rel} from "
            f"{EMNIST_URL}, or use split 'test'"
        )
    known = verify and images_rel in KNOWN_FILES  # official train files: no checksum here
    images, labels = _load_idx_pair(root, images_rel, labels_rel, known)
    mapping = (verify_file if verify else _require)(root, f"{stem}-mapping.txt")
    upright = np.ascontiguousarray(images.transpose(0, 2, 1))
    return Split(name, split, upright, labels, read_emnist_mapping(mapping))


def load_usps_native(
    split: str, root: Path | None = None, verify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Load USPS as published: float32 (N, 16, 16) in [-1, 1] (1 = ink) and int64 labels.

    Args:
        split: "train" or "test".
        root: data root; defaults to `data_dir()`.
        verify: check size and SHA-256 before parsing.
    """
    if split not in SPLITS:
        raise DatasetError(f"usps has no split {split!r}: use 'train' or 'test'")
    root = data_dir() if root is None else Path(root)
    relpath = f"usps/zip.{split}.gz"
    return read_usps(verify_file(root, relpath) if verify else _require(root, relpath))


def load_split(name: str, split: str, root: Path | None = None, verify: bool = True) -> Split:
    """Load one split of a dataset as uint8 images (0 background, 255 ink, upright).

    Args:
        name: one of DATASET_NAMES.
        split: "train" or "test" (EMNIST "train" needs the official files added by hand);
            emnist-letters and emnist-balanced also "train-6to1"/"test-6to1" (see
            `edge.emnist_derived`, which derives them when the official files are absent).
        root: data root; defaults to `data_dir()`.
        verify: check each file's size and SHA-256 (where known) before parsing.

    Returns:
        The Split.

    Raises:
        DatasetError: unknown name or split, or a missing, corrupt or unreadable file.
    """
    if name not in DATASET_NAMES:
        raise unknown_dataset_error(name, DATASET_NAMES)
    root = data_dir() if root is None else Path(root)
    if name in DERIVED_NAMES:
        from edge.emnist_derived import load_derived

        return _check_labels(load_derived(name, split, root, verify))
    if split not in SPLITS:
        raise DatasetError(f"{name} has no split {split!r}: use 'train' or 'test'")
    if name == "usps":
        values, labels = load_usps_native(split, root, verify)
        images = np.round((values + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
        return Split(name, split, images, labels, DIGITS)
    if name == "mnist":
        prefix = f"mnist/{_MNIST_PREFIX[split]}"
        images_rel, labels_rel = f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"
        pair = _load_idx_pair(root, images_rel, labels_rel, verify)
        return _check_labels(Split(name, split, *pair, DIGITS))
    return _check_labels(_load_emnist(name, split, root, verify))


def save_npz_split(split: Split, path: str | os.PathLike[str]) -> Path:
    """Write a Split to a compressed .npz evaluation file, atomically.

    Args:
        split: the Split to save.
        path: the target file (its folder must exist).

    Returns:
        The path written.
    """
    classes = np.array(split.classes, dtype=str)
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(
            handle,
            images=split.images,
            labels=split.labels,
            classes=classes,
            name=np.array(split.name),
            split=np.array(split.split),
        )
    return Path(path)


def load_npz_split(path: str | os.PathLike[str]) -> Split:
    """Read an evaluation file written by `save_npz_split`.

    Args:
        path: the .npz file.

    Returns:
        The Split it holds.

    Raises:
        DatasetError: the file is missing, corrupt or lacks a key.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"evaluation file missing: {path} (write it with save_npz_split)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in NPZ_KEYS if key not in npz.files]
            arrays = {key: npz[key] for key in NPZ_KEYS if not missing}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise DatasetError(
            f"{path} is not a readable evaluation file ({_one_line(exc)}): write it again"
        ) from exc
    if missing:
        raise DatasetError(f"{path} lacks {', '.join(missing)}: write it again")
    return Split(
        name=str(arrays["name"]),
        split=str(arrays["split"]),
        images=arrays["images"],
        labels=arrays["labels"].astype(np.int64),
        classes=tuple(str(c) for c in arrays["classes"]),
    )
