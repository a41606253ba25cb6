"""Dataset file formats -> numpy arrays: IDX (MNIST, EMNIST), USPS text, EMNIST mappings.

The readers parse and validate; checksums and the data table live in edge.datasets.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from edge.errors import DatasetError

IDX_LABELS, IDX_IMAGES = 0x00000801, 0x00000803
EMNIST_URL = "https://www.nist.gov/itl/products-and-services/emnist-dataset"
_GZIP_MAGIC = b"\x1f\x8b"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _get_again(folder: str) -> str:
    """How to get a good copy of a file of dataset folder `folder`."""
    if folder in ("mnist", "usps"):
        return f"download it again with: train-host data download {folder}"
    return f"copy it again from the EMNIST distribution at {EMNIST_URL}"


def _read_payload(path: Path) -> bytes:
    """Return the bytes of a file, gunzipped when it starts with the gzip magic."""
    try:
        with open(path, "rb") as handle:
            if handle.read(2) != _GZIP_MAGIC:
                handle.seek(0)
                return handle.read()
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise DatasetError(f"file missing: {path}") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"{path} cannot be read ({_one_line(exc)}): it is corrupt or truncated, "
            "replace it with a good copy"
        ) from exc


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzipped or raw) of uint8 labels (magic 0x0801) or images (0x0803).

    Args:
        path: the .gz or raw IDX file.

    Returns:
        A read-only uint8 array of shape (N,) for labels or (N, rows, cols) for images.

    Raises:
        DatasetError: unreadable gzip, wrong magic, or a payload whose length differs
            from what the header says.
    """
    path = Path(path)
    data = _read_payload(path)
    fix = "it is corrupt or truncated, replace it with a good copy"
    magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if magic not in (IDX_LABELS, IDX_IMAGES):
        found = "too short" if magic is None else f"magic 0x{magic:08x}"
        raise DatasetError(f"{path} is not a uint8 IDX label/image file ({found}): {fix}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path} ends inside its IDX header: {fix}")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise DatasetError(
            f"{path} holds {len(data) - header} data bytes but its header {dims} needs "
            f"{expected}: {fix}"
        )
    return np.frombuffer(data, np.uint8, expected, header).reshape(dims)


def _parse_usps_line(line: str, lineno: int, path: Path) -> np.ndarray:
    parts = line.split()
    where = f"{path} line {lineno}"
    if len(parts) != 257:
        raise DatasetError(f"{where} has {len(parts)} values, expected 257 (label + 16x16)")
    try:
        row = np.array([float(p) for p in parts])
    except ValueError as exc:
        raise DatasetError(f"{where} is malformed ({_one_line(exc)})") from exc
    label = row[0]
    if label != int(label) or not 0 <= label <= 9:
        raise DatasetError(f"{where} starts with {parts[0]!r}, expected a digit label 0-9")
    if np.abs(row[1:]).max() > 1.0 + 1e-6:
        raise DatasetError(f"{where} has grey values outside [-1, 1]")
    return row


def read_usps(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a USPS text file (gzipped or raw): one "label v1 ... v256" line per image.

    Args:
        path: zip.train.gz or zip.test.gz.

    Returns:
        float32 images (N, 16, 16) in [-1, 1] (-1 background, 1 ink) and int64 labels (N,).

    Raises:
        DatasetError: unreadable file or a malformed line (the message gives its number).
    """
    path = Path(path)
    try:
        text = _read_payload(path).decode("ascii")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not a USPS text file ({_one_line(exc)})") from exc
    rows = [
        _parse_usps_line(line, lineno, path)
        for lineno, line in enumerate(text.splitlines(), 1)
        if line.strip()
    ]
    if not rows:
        raise DatasetError(f"{path} holds no images: replace it with a good copy")
    table = np.stack(rows)
    return table[:, 1:].astype(np.float32).reshape(-1, 16, 16), table[:, 0].astype(np.int64)


def read_emnist_mapping(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Read an EMNIST mapping file ("label ascii-code" per line, CRLF) -> characters by label.

    Args:
        path: e.g. emnist/emnist-byclass-mapping.txt.

    Returns:
        Tuple of characters; index i is the character of label i.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"cannot read {path} ({_one_line(exc)}): {_get_again('emnist')}"
        ) from exc
    pairs = {}
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise DatasetError(f"{path} line {lineno} is not 'label ascii-code': {line!r}")
        pairs[int(parts[0])] = chr(int(parts[1]))
    if sorted(pairs) != list(range(len(pairs))) or not pairs:
        raise DatasetError(f"{path} does not map labels 0..N-1: replace it with a good copy")
    return tuple(pairs[i] for i in range(len(pairs)))
