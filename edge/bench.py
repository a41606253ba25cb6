"""Measure a model the way an embedded engineer trusts: accuracy, latency percentiles, memory."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.datasets import Split
from edge.errors import EdgeError
from edge.interpreter import Classifier

WARMUP_RUNS = 50
TIMED_RUNS = 1000
MIN_SECONDS = 1.0


@dataclass(frozen=True)
class LatencyStats:
    """Latency of single-image runs in milliseconds."""

    runs: int
    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    max: float

    @classmethod
    def from_ns(cls, samples_ns: np.ndarray) -> LatencyStats:
        """Summarise per-run durations given in nanoseconds."""
        ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        return cls(
            len(ms),
            float(p50),
            float(p90),
            float(p99),
            float(ms.mean()),
            float(ms.std()),
            float(ms.min()),
            float(ms.max()),
        )


@dataclass(frozen=True)
class BenchRow:
    """One model's benchmark result."""

    model: str
    path: str
    variant: str
    backend: str
    backend_version: str
    threads: int | None
    size_bytes: int
    dataset: str
    accuracy: float
    samples: int
    load_ms: float
    first_inference_ms: float
    latency: LatencyStats
    raw_invoke: LatencyStats
    overhead_ratio: float
    peak_rss_mb: float


def time_interleaved(calls: list, warmup: int, runs: int, min_seconds: float) -> list:
    """Time several (fn, inputs) pairs in alternation, so drift and noise hit each alike.

    Each round calls every fn once on its next input: `warmup` untimed rounds, then at least
    `runs` timed rounds and at least `min_seconds`.

    Returns:
        One int64 array of per-call durations (ns) per pair.
    """
    clock = time.perf_counter_ns
    for i in range(warmup):
        for fn, inputs in calls:
            fn(inputs[i % len(inputs)])
    samples: list[list[int]] = [[] for _ in calls]
    deadline = clock() + int(min_seconds * 1e9)
    i = 0
    while i < runs or clock() < deadline:
        for (fn, inputs), out in zip(calls, samples, strict=True):
            x = inputs[i % len(inputs)]
            start = clock()
            fn(x)
            out.append(clock() - start)
        i += 1
    return [np.asarray(out, dtype=np.int64) for out in samples]


def time_calls(fn, inputs: list, warmup: int, runs: int, min_seconds: float) -> np.ndarray:
    """Call `fn` on inputs in turn: `warmup` untimed, then at least `runs` timed and `min_seconds`.

    Returns:
        int64 array of per-call durations in nanoseconds.
    """
    return time_interleaved([(fn, inputs)], warmup, runs, min_seconds)[0]


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS counter for this process (Linux), so each model gets its own."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (VmHWM on Linux, else ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def accuracy(clf: Classifier, x: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy over inputs `x`: uint8 crops (N, H, W) or float inputs (N, H, W, 1)."""
    if len(x) == 0:
        return float("nan")
    predicted = np.fromiter((np.argmax(clf.predict(v)) for v in x), np.int64, len(x))
    return float(np.mean(predicted == labels))


def check_split(clf: Classifier, split: Split) -> None:
    """Refuse a split the model cannot be measured on: empty, wrong image size, other classes."""
    where = f"{split.name}/{split.split}"
    if len(split) == 0:
        raise EdgeError(f"{where} holds no images: give a non-empty evaluation set")
    size = clf.spec.preprocess.size
    if tuple(split.images.shape[1:]) != (size, size):
        raise EdgeError(
            f"{where} images are {split.images.shape[1:]}, the model takes {size}x{size}: "
            "bench the model on the dataset it was trained for"
        )
    if tuple(clf.labels[: len(split.classes)]) != tuple(split.classes):
        raise EdgeError(
            f"{where} classes ({''.join(split.classes)[:40]}) are not the model's labels "
            f"({''.join(clf.labels)[:40]}): bench the model on the dataset it was trained for"
        )


def bench_model(
    path: str | Path,
    split: Split,
    threads: int | None = None,
    runs: int = TIMED_RUNS,
    warmup: int = WARMUP_RUNS,
    min_seconds: float = MIN_SECONDS,
    backend: str | None = None,
) -> BenchRow:
    """Benchmark one model on a test split.

    Args:
        path: the .tflite model (sidecar beside it).
        split: labelled 28x28 images (ink high) to measure accuracy and feed the timed runs.
        threads: interpreter threads (None: backend default).
        runs: minimum number of timed single-image runs.
        warmup: untimed runs before timing.
        min_seconds: minimum timed duration.
        backend: force a backend.

    Returns:
        The BenchRow.
    """
    reset_peak_rss()
    start = time.perf_counter_ns()
    clf = Classifier(path, num_threads=threads, backend=backend)
    load_ms = (time.perf_counter_ns() - start) / 1e6
    check_split(clf, split)
    x = split.images  # uint8 crops, as edge.preprocess hands them to the classifier
    start = time.perf_counter_ns()
    clf.predict(x[0])
    first_ms = (time.perf_counter_ns() - start) / 1e6
    inputs = list(x[: min(len(x), 256)])
    prepared = [clf.prepare(v) for v in inputs]
    ours, bare = time_interleaved(
        [(clf.predict, inputs), (clf.invoke_prepared, prepared)], warmup, runs, min_seconds
    )
    latency, raw = LatencyStats.from_ns(ours), LatencyStats.from_ns(bare)
    acc = accuracy(clf, x, split.labels)
    extra = clf.spec.extra
    return BenchRow(
        model=str(extra.get("name", Path(path).parent.name)),
        path=str(path),
        variant=str(extra.get("variant", Path(path).stem)),
        backend=clf.backend.name,
        backend_version=clf.backend.version,
        threads=threads,
        size_bytes=Path(path).stat().st_size,
        dataset=f"{split.name}/{split.split}",
        accuracy=acc,
        samples=len(x),
        load_ms=load_ms,
        first_inference_ms=first_ms,
        latency=latency,
        raw_invoke=raw,
        overhead_ratio=latency.p50 / raw.p50,
        peak_rss_mb=peak_rss_mb(),
    )


def machine_info() -> dict:
    """Describe the machine a result was measured on, so results can be compared and merged."""
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    model = Path("/proc/device-tree/model")
    if model.exists():
        info["pi_model"] = model.read_bytes().rstrip(b"\0").decode(errors="replace")
    governor = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    if governor.exists():
        info["governor"] = governor.read_text().strip()
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
