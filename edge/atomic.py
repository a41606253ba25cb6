"""Atomic file writes: write a temp file in the target folder, fsync, then os.replace.

An interrupted or failed write never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

# Mode given to a newly created file (mkstemp makes 0600 files; artifacts should be readable).
NEW_FILE_MODE = 0o644


def _fsync_dir(folder: Path) -> None:
    """Flush the folder entry so the rename survives a power cut (best effort, POSIX only)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (e.g. network mounts) refuse fsync on a directory
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temp file beside `path`; on a clean exit, fsync it and rename it onto `path`.

    If the body raises, the temp file is removed, `path` is left as it was, and the
    exception propagates.

    Args:
        path: final file path; its folder must exist.
        mode: "wb" (bytes) or "w" (UTF-8 text).

    Yields:
        The open temp file object.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports mode 'wb' or 'w', not {mode!r}")
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        file_mode = target.stat().st_mode & 0o777 if target.exists() else NEW_FILE_MODE
        os.chmod(tmp, file_mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically.

    Args:
        path: final file path; its folder must exist.
        data: the bytes to write.

    Returns:
        The path written.
    """
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return Path(path)
