"""The allocator setting that keeps a frame's freed memory for the next frame."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from edge.allocator import keep_freed_memory, release_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

FAULTS_PER_FRAME = """
import resource, sys
from pathlib import Path
import cv2
from edge.allocator import keep_freed_memory, release_freed_memory
from edge.segment import find_characters
if sys.argv[2] == "keep":
    assert keep_freed_memory()
frames = [cv2.imread(str(p)) for p in sorted(Path(sys.argv[1]).glob("*.jpg"))]
for frame in frames[:5]:
    find_characters(frame)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for frame in frames:
    find_characters(frame)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / len(frames))
"""


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_keep_freed_memory_sets_the_thresholds():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # setting them again is harmless


FAULTS_PER_BURST = """
import resource, sys
import numpy as np
from edge.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def burst():
    arrays = [np.ones(2**20, np.uint8) for _ in range(8)]  # 8 MiB taken and freed, as a frame does
    del arrays
for _ in range(5):
    burst()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    burst()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def _run(script: str, *args: str) -> float:
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, cwd=root
    )
    return float(out.stdout.split()[-1])


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_memory_freed_in_a_burst_is_reused_not_faulted_in_again():
    """glibc hands a freed top of heap larger than its trim threshold back to the kernel, so
    the next burst faults every page in again (2,016 faults a burst of 8 MiB here); with the
    setting the memory is kept and reused."""
    kept, plain = _run(FAULTS_PER_BURST, "keep"), _run(FAULTS_PER_BURST, "plain")
    assert kept < 50 and kept * 10 < plain, (kept, plain)


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_camera_frames_do_not_fault_their_memory_in_again(shared_data, tmp_path):
    """Camera-set frames read one after another, with the setting: a few page faults a frame
    (a frame works on several MB of arrays; the sixth session's pipeline faulted about
    1,300 times a frame without the setting, the seventh session's, which allocates less,
    11-73 times)."""
    from edge.datasets import load_split
    from train_host.camera_set import CameraSetConfig, build_camera_set

    split = load_split("mnist", "test", shared_data)
    config = CameraSetConfig(singles=10, strings=10, min_length=2, max_length=8, seed=3)
    build_camera_set(split, tmp_path / "frames", config)
    kept = _run(FAULTS_PER_FRAME, str(tmp_path / "frames"), "keep")
    plain = _run(FAULTS_PER_FRAME, str(tmp_path / "frames"), "plain")
    assert kept < 100 and kept <= plain, (kept, plain)


RSS_KEPT_AND_RELEASED = """
from pathlib import Path
import numpy as np
from edge.allocator import keep_freed_memory, release_freed_memory
def rss_mb():
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024
assert keep_freed_memory()
start = rss_mb()
arrays = [np.ones(2**20, np.uint8) for _ in range(150)]  # 150 blocks of 1 MiB
del arrays
kept = rss_mb()
assert release_freed_memory()
print(start, kept, rss_mb())
"""


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_freed_memory_is_kept_and_released_on_request():
    """With the thresholds raised, 150 MiB freed stays with the process (for the next frame);
    release_freed_memory hands it back, so a per-model peak RSS does not count it."""
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", RSS_KEPT_AND_RELEASED],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )
    start, kept, released = (float(v) for v in out.stdout.split())
    assert kept - start > 100 and released - start < 30, (start, kept, released)
    assert release_freed_memory() is True
