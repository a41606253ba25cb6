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

from edge.allocator import release_freed_memory
from edge.datasets import Split
from edge.errors import EdgeError
from edge.interpreter import Classifier

WARMUP_RUNS = 50
TIMED_RUNS = 1000
MIN_SECONDS = 1.0
# The timed runs are cut into this many consecutive blocks to see whether the median drifted.
DRIFT_BLOCKS = 10


# The camera path's stages, timed per frame (their sum is the frame's total), and the prefix
# naming each part of preprocess among them (`preprocess_<part>`, see edge.segment.PREPROCESS_PARTS).
FRAME_STAGES = ("capture", "preprocess", "invoke", "post")
PART_PREFIX = "preprocess_"


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
    xnnpack: bool | None
    size_bytes: int
    tensor_bytes: int
    dataset: str
    accuracy: float
    accuracy_ci95: tuple[float, float]
    samples: int
    load_ms: float
    first_inference_ms: float
    latency: LatencyStats
    raw_invoke: LatencyStats
    overhead_ratio: float
    measure_cost_ms: float
    peak_rss_mb: float
    rss_growth_mb: float
    p50_drift: float = float("nan")
    float_ops: tuple[str, ...] | None = ()
    latency_samples_ms: tuple[float, ...] = ()

    @property
    def measure_cost_ratio(self) -> float:
        """The timer's own cost per sample as a fraction of the p50 it reports."""
        return self.measure_cost_ms / self.latency.p50


@dataclass(frozen=True)
class SweepPoint:
    """Latency of one model at one interpreter setting (threads, XNNPACK on or off)."""

    model: str
    variant: str
    threads: int
    xnnpack: bool
    latency: LatencyStats


def p50_drift(samples_ns: np.ndarray, blocks: int = DRIFT_BLOCKS) -> float:
    """How far the median moved during the run: the spread (max - min) of the medians of
    `blocks` consecutive blocks of samples, as a fraction of the overall median. A steady
    machine gives a few percent; more means other load or a changing clock."""
    samples = np.asarray(samples_ns, dtype=np.float64)
    if len(samples) < 2 * blocks:
        return float("nan")
    medians = [np.median(b) for b in np.array_split(samples, blocks)]
    return float((max(medians) - min(medians)) / np.median(samples))


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of an accuracy measured as correct / total."""
    if total == 0:
        return (float("nan"), float("nan"))
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


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
    """Reset the kernel's peak-RSS counter for this process (Linux), so each model gets its own:
    the memory earlier models freed is handed back first (the `edge` command keeps freed
    memory for the next frame, see `edge.allocator`), or it would count towards this one."""
    release_freed_memory()
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def rss_mb() -> float:
    """Current resident set size of this process in MiB (VmRSS; NaN where not exposed)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def measurement_cost_ms(runs: int = 2000) -> float:
    """Median duration (ms) the timing loop records for a call that does nothing: the cost
    of the clock reads and the call itself, included in every latency sample."""
    samples = time_calls(_nothing, [None], warmup=100, runs=runs, min_seconds=0)
    return float(np.median(samples)) / 1e6


def _nothing(_) -> None:
    return None


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
    return count_correct(clf, x, labels) / len(x)


def count_correct(clf: Classifier, x: np.ndarray, labels: np.ndarray) -> int:
    """How many of inputs `x` the classifier's top-1 gets right."""
    predicted = np.fromiter((np.argmax(clf.predict(v)) for v in x), np.int64, len(x))
    return int(np.sum(predicted == labels))


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
    xnnpack: bool | None = None,
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
        xnnpack: False turns the XNNPACK delegate off (see `Classifier`).

    Returns:
        The BenchRow.
    """
    reset_peak_rss()
    start = time.perf_counter_ns()
    clf = Classifier(path, num_threads=threads, backend=backend, xnnpack=xnnpack)
    load_ms = (time.perf_counter_ns() - start) / 1e6
    check_split(clf, split)
    x = split.images  # uint8 crops, as edge.preprocess hands them to the classifier
    start = time.perf_counter_ns()
    clf.predict(x[0])
    first_ms = (time.perf_counter_ns() - start) / 1e6
    inputs = list(x[: min(len(x), 256)])
    prepared = [clf.prepare(v) for v in inputs]
    for v in inputs[:warmup]:
        clf.predict(v)  # so the RSS growth below counts the run, not first-touch pages
    rss_before = rss_mb()
    ours, bare = time_interleaved(
        [(clf.predict, inputs), (clf.invoke_prepared, prepared)], warmup, runs, min_seconds
    )
    correct = count_correct(clf, x, split.labels)
    rss_growth = rss_mb() - rss_before
    latency, raw = LatencyStats.from_ns(ours), LatencyStats.from_ns(bare)
    extra = clf.spec.extra
    return BenchRow(
        model=str(extra.get("name", Path(path).parent.name)),
        path=str(path),
        variant=str(extra.get("variant", Path(path).stem)),
        backend=clf.backend.name,
        backend_version=clf.backend.version,
        threads=threads,
        xnnpack=xnnpack,
        size_bytes=Path(path).stat().st_size,
        tensor_bytes=clf.tensor_bytes(),
        float_ops=clf.float_ops(),
        dataset=f"{split.name}/{split.split}",
        accuracy=correct / len(x),
        accuracy_ci95=wilson_interval(correct, len(x)),
        samples=len(x),
        load_ms=load_ms,
        first_inference_ms=first_ms,
        latency=latency,
        raw_invoke=raw,
        overhead_ratio=latency.p50 / raw.p50,
        measure_cost_ms=measurement_cost_ms(),
        peak_rss_mb=peak_rss_mb(),
        rss_growth_mb=rss_growth,
        p50_drift=p50_drift(ours),
        latency_samples_ms=tuple(np.round(ours / 1e6, 5).tolist()),
    )


def sweep_settings(backend: str | None = None, cores: int | None = None) -> list[tuple]:
    """(threads, xnnpack) pairs to sweep: 1 to the core count, XNNPACK on and, where the
    backend can, off."""
    from edge.interpreter import load_backend

    cores = cores or os.cpu_count() or 1
    xnnpack = (True, False) if load_backend(backend).can_disable_xnnpack else (True,)
    return [(t, x) for x in xnnpack for t in range(1, cores + 1)]


def sweep_model(
    path: str | Path,
    split: Split,
    settings: list[tuple],
    runs: int = TIMED_RUNS,
    warmup: int = WARMUP_RUNS,
    min_seconds: float = MIN_SECONDS,
    backend: str | None = None,
) -> list[SweepPoint]:
    """Latency of one model at each (threads, xnnpack) setting, all timed interleaved in one
    loop so that machine noise hits every setting alike."""
    classifiers = [Classifier(path, num_threads=t, backend=backend, xnnpack=x) for t, x in settings]
    check_split(classifiers[0], split)
    inputs = list(split.images[: min(len(split), 256)])
    samples = time_interleaved(
        [(c.predict, inputs) for c in classifiers], warmup, runs, min_seconds
    )
    extra = classifiers[0].spec.extra
    name = str(extra.get("name", Path(path).parent.name))
    variant = str(extra.get("variant", Path(path).stem))
    return [
        SweepPoint(name, variant, t, x, LatencyStats.from_ns(ns))
        for (t, x), ns in zip(settings, samples, strict=True)
    ]


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
    from edge.telemetry import read_cpu_freq_mhz, read_governor, read_temperature_c

    governor = read_governor()
    if governor is not None:
        info["governor"] = governor
    info["frequency_mhz"] = read_cpu_freq_mhz()
    temperature = read_temperature_c()
    if temperature is not None:
        info["temperature_c"] = temperature
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
