"""Host-side datasets: sklearn digits at 28x28, seeded stratified splits, verified downloads.

Wraps `edge.datasets` (the loaders the Pi shares) and adds what only the host needs.
"""

from __future__ import annotations

import hashlib
import http.client
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np

from edge.atomic import atomic_open
from edge.datasets import (
    DATASET_NAMES,
    DIGITS,
    EMNIST_URL,
    KNOWN_FILES,
    DatasetError,
    Split,
    data_dir,
    load_split,
    unknown_dataset_error,
    verify_file,
)
from edge.preprocess import normalize_character

__all__ = [
    "DATASET_CHOICES",
    "MIRRORS",
    "DatasetError",
    "data_dir",
    "download",
    "load_dataset",
    "load_digits_28",
    "load_split",
    "train_val_split",
]

DIGITS_NAME = "digits"
# USPS brought to MNIST's 28x28 format, so a USPS model reads camera crops like an MNIST one.
USPS28_NAME = "usps28"
DATASET_CHOICES = (DIGITS_NAME, USPS28_NAME, *DATASET_NAMES)
DIGITS_TEST_FRACTION = 0.2
DIGITS_SEED = 0
DIGITS_MAX_VALUE = 16  # sklearn's 8x8 digits count ink in 0..16
DIGITS_UPSAMPLE = 32  # 8x8 -> 32x32 before fitting into 20x20, for sub-pixel detail
DOWNLOAD_TIMEOUT_S = 60
_READ_CHUNK = 1 << 16
# What a failed fetch raises (disk errors are not caught: they are not the network's).
_NETWORK_ERRORS = (
    urllib.error.URLError,
    http.client.HTTPException,
    ssl.SSLError,
    TimeoutError,
    ConnectionError,
    ValueError,  # a malformed URL
)

# Base URLs to try in order; the file names (and checksums) come from KNOWN_FILES.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
    "usps": ("https://hastie.su.domains/ElemStatLearn/datasets/",),
}


def load_digits_28() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits, brought to 28x28 the way MNIST was made.

    Each image is scaled to 0-255, upsampled to 32x32 (bilinear), then fitted into a
    20x20 box keeping aspect and placed in 28x28 by centre of mass
    (`edge.preprocess.normalize_character`).

    Returns:
        uint8 images (1797, 28, 28), ink high, and int64 labels (1797,).
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    grey = np.round(bunch.images * (255.0 / DIGITS_MAX_VALUE)).astype(np.uint8)
    return mnist_format(grey), bunch.target.astype(np.int64)


def _subset(split: Split, index: np.ndarray, name: str) -> Split:
    index = np.sort(index)  # keep the source order: stable hashes, easy to inspect
    return Split(split.name, name, split.images[index], split.labels[index], split.classes)


def _stratified(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    try:
        return train_test_split(index, test_size=fraction, random_state=seed, stratify=labels)
    except ValueError as exc:
        raise DatasetError(
            f"cannot split {len(labels)} samples {fraction:.0%} stratified ({exc}): "
            "use more data or another fraction"
        ) from exc


def train_val_split(split: Split, val_fraction: float = 0.1, seed: int = 0) -> tuple[Split, Split]:
    """Carve a stratified, seeded validation split out of training data.

    Args:
        split: the training Split.
        val_fraction: share of samples (per class) that go to validation, in (0, 1).
        seed: random seed; the same seed gives the same carve.

    Returns:
        (train, val) Splits named "train" and "val", each in the source order.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    train_index, val_index = _stratified(split.labels, val_fraction, seed)
    return _subset(split, train_index, "train"), _subset(split, val_index, "val")


def mnist_format(images: np.ndarray, upsample: int = DIGITS_UPSAMPLE) -> np.ndarray:
    """Small uint8 ink-high digits brought to 28x28 the way MNIST was made: upsampled
    (bilinear) for sub-pixel detail, fitted into 20x20 keeping aspect, placed by centre of mass."""
    size = (upsample, upsample)
    return np.stack(
        [normalize_character(cv2.resize(i, size, interpolation=cv2.INTER_LINEAR)) for i in images]
    )


def load_usps_28(split: str, root: Path | None = None) -> Split:
    """USPS (16x16 digits that fill their box) in MNIST's 28x28 format."""
    usps = load_split("usps", split, root)
    return Split(USPS28_NAME, split, mnist_format(usps.images), usps.labels, usps.classes)


def combined(splits: list[Split], name: str) -> Split:
    """One split from the same split of several datasets with the same classes and image size."""
    first = splits[0]
    for other in splits[1:]:
        if other.classes != first.classes or other.images.shape[1:] != first.images.shape[1:]:
            raise DatasetError(
                f"cannot join {first.name} and {other.name}: their classes or image sizes "
                "differ (join datasets of the same characters in the same format, e.g. "
                "mnist+usps28)"
            )
    images = np.concatenate([s.images for s in splits])
    labels = np.concatenate([s.labels for s in splits])
    return Split(name, first.split, images, labels, first.classes)


def check_dataset_name(name: str) -> None:
    """Fail with the list of names unless every "+"-joined part of `name` is a data set."""
    for part in name.split("+"):
        if part not in DATASET_CHOICES:
            raise unknown_dataset_error(part, DATASET_CHOICES)


def load_dataset(name: str, split: str, root: Path | None = None) -> Split:
    """Load a split of any dataset: "digits" (bundled with scikit-learn) or an edge dataset.

    "digits" is split 80/20, stratified, with a fixed seed, so "train" and "test" never
    overlap and are the same on every machine. "usps28" is USPS in MNIST's format. Names
    joined by "+" ("mnist+usps28") load each and concatenate the same split of all of them
    (more writers for one model; the classes must agree).

    Args:
        name: one of DATASET_CHOICES, or several joined by "+".
        split: "train" or "test".
        root: data root for the file datasets; defaults to `data_dir()`.

    Returns:
        The Split.
    """
    check_dataset_name(name)
    if "+" in name:
        return combined([load_dataset(part, split, root) for part in name.split("+")], name)
    if name == USPS28_NAME:
        return load_usps_28(split, root)
    if name != DIGITS_NAME:
        return load_split(name, split, root)
    if split not in ("train", "test"):
        raise DatasetError(f"digits has no split {split!r}: use 'train' or 'test'")
    images, labels = load_digits_28()
    full = Split(DIGITS_NAME, split, images, labels, DIGITS)
    train_index, test_index = _stratified(labels, DIGITS_TEST_FRACTION, DIGITS_SEED)
    return _subset(full, train_index if split == "train" else test_index, split)


def _copy_response(response, out, digest, bar) -> int:
    """Copy an HTTP response body to `out`, updating `digest` and `bar`; return the byte count."""
    got = 0
    while chunk := response.read(_READ_CHUNK):
        out.write(chunk)
        digest.update(chunk)
        got += len(chunk)
        bar.update(len(chunk))
    missing = getattr(response, "length", None)  # bytes an HTTP server promised but never sent
    if missing:
        raise ConnectionError(f"connection closed after {got} bytes, {missing} missing")
    return got


def _fetch(url: str, target: Path, expected: tuple[str, int], progress: bool) -> Path:
    """Download `url` to `target` atomically, checking size and SHA-256 before the rename."""
    from tqdm import tqdm

    sha, size = expected
    digest = hashlib.sha256()
    bar = tqdm(total=size, unit="B", unit_scale=True, desc=target.name, disable=not progress)
    try:
        with bar, atomic_open(target, "wb") as out:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                got = _copy_response(response, out, digest, bar)
            if got != size or digest.hexdigest() != sha:
                raise DatasetError(
                    f"{url} sent {got} bytes that fail the size/SHA-256 check (expected {size}): "
                    f"try again later, or copy a good {target.name} to {target} by hand"
                )
    except _NETWORK_ERRORS as exc:
        cause = exc.reason if type(exc) is urllib.error.URLError else exc  # HTTPError: code too
        reason = " ".join(str(cause).split()) or type(exc).__name__
        raise DatasetError(
            f"could not download {url} ({reason}): check your connection or copy the file "
            f"to {target} by hand"
        ) from exc
    return target


def _fetch_any(
    root: Path, relpath: str, bases: tuple[str, ...], known: dict, progress: bool
) -> Path:
    """Return the verified file, fetching it from the first mirror that serves a good copy."""
    try:
        return verify_file(root, relpath, known)
    except DatasetError:
        pass  # missing or bad: a good download replaces it (a bad file stays until then)
    errors = []
    for base in bases:
        url = base.rstrip("/") + "/" + relpath.rsplit("/", 1)[-1]
        try:
            return _fetch(url, root / relpath, known[relpath], progress)
        except DatasetError as exc:
            errors.append(str(exc))
    more = f" (and {len(errors) - 1} fallback mirror(s) failed too)" if len(errors) > 1 else ""
    raise DatasetError(errors[0] + more)


def download(
    name: str,
    root: Path | None = None,
    base_url: str | None = None,
    known: dict[str, tuple[str, int]] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Download a dataset's files into the data root, verified, skipping good files already there.

    Args:
        name: "mnist" or "usps" ("digits" ships with scikit-learn: nothing to fetch).
        root: data root; defaults to `data_dir()`.
        base_url: fetch from this folder URL instead of the built-in MIRRORS.
        known: relpath -> (sha256, size) table; defaults to KNOWN_FILES (tests pass their own).
        progress: show a tqdm progress bar per file.

    Returns:
        The paths of the dataset's files, all verified.

    Raises:
        DatasetError: unknown or non-downloadable dataset, network error, or a checksum
            mismatch. No partial file is ever left under a final name.
    """
    if name == DIGITS_NAME:
        return []
    if name.startswith("emnist") and name in DATASET_NAMES:
        folder = (data_dir() if root is None else Path(root)) / "emnist"
        raise DatasetError(
            f"EMNIST is not downloaded by this tool: get the files from {EMNIST_URL} and put "
            f"them in {folder}"
        )
    if name not in MIRRORS:
        raise unknown_dataset_error(name, (DIGITS_NAME, *MIRRORS))
    root = data_dir() if root is None else Path(root)
    table = KNOWN_FILES if known is None else known
    relpaths = [rel for rel in table if rel.startswith(f"{name}/")]
    (root / name).mkdir(parents=True, exist_ok=True)
    bases = (base_url,) if base_url else MIRRORS[name]
    return [_fetch_any(root, rel, bases, table, progress) for rel in relpaths]
