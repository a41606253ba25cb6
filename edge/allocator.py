"""Keep the memory a frame frees inside the process for the next frame (glibc's allocator).

Reading a 640x480 frame makes dozens of temporary arrays of 0.3-1.2 MB (float images, masks,
label images). glibc hands freed memory at the top of its heap back to the kernel once more
than its trim threshold is free (by default twice the largest block it has mapped: a few
MB), and blocks over its mmap threshold go straight back, so the next frame's arrays fault
their pages in again. On the 2-core development host a process that only segments frames
took about 1,300 minor page faults a frame and 14 ms instead of 10; in `edge bench --frames`,
where the interpreter's own memory keeps the heap larger, about 1 ms of 14. (That was the
pipeline of 2026-11-27's sixth session; the seventh session's allocates less, and faults
about 11 times a seed-1 frame without the setting, 1 with it.) Raising both thresholds keeps
the memory for the next frame; the peak the process reaches is the same.
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt(3) parameters, and the values set: large enough that a frame's arrays stay in the
# heap; 16 MiB is the largest mmap threshold glibc accepts on 32-bit Raspberry Pi OS.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD_BYTES = 256 * 2**20
MMAP_THRESHOLD_BYTES = 16 * 2**20


def keep_freed_memory() -> bool:
    """Raise glibc's trim and mmap thresholds for this process (mallopt), unless the
    environment already sets them (MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_, which
    then stand). Both are set together: setting either one also stops glibc raising the mmap
    threshold by itself.

    Returns:
        True when the thresholds are in force; False off glibc (macOS, musl), where nothing
        is changed.
    """
    mallopt = _glibc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = (
        ("MALLOC_TRIM_THRESHOLD_", M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
        ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
    )
    return all(name in os.environ or mallopt(param, value) == 1 for name, param, value in settings)


def release_freed_memory() -> bool:
    """Hand the memory freed so far back to the kernel now (glibc malloc_trim), as the
    default thresholds would have: a per-model memory figure taken after it does not count
    what earlier models freed and the process kept.

    Returns:
        True when it ran; False off glibc.
    """
    malloc_trim = _glibc_function("malloc_trim")
    if malloc_trim is None:
        return False
    malloc_trim.argtypes, malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    malloc_trim(0)
    return True


def _glibc_function(name: str):
    """A function of the C library when it is glibc (Linux), else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
