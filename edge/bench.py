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


@dataclass(frozen=True)
class PhotoResult:
    """One labelled photo read through the full camera path."""

    file: str
    label: str
    read: str
    exact: bool
    char_errors: int
    preprocess_ms: float
    invoke_ms: float


@dataclass(frozen=True)
class PhotoBench:
    """Accuracy of a model through the full camera path on a folder of labelled photos."""

    model: str
    folder: str
    images: int
    exact_accuracy: float
    char_accuracy: float
    single_accuracy: float
    multi_exact_accuracy: float
    preprocess_p50_ms: float
    results: tuple[PhotoResult, ...]


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions) between two strings."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def read_labels(folder: Path) -> list[tuple[str, str]]:
    """(file, label) pairs from `folder/labels.csv` (columns `file` and `label`)."""
    import csv

    path = folder / "labels.csv"
    if not path.is_file():
        raise EdgeError(f"no labels.csv in {folder}: it needs columns file,label")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"file", "label"} <= set(rows[0]):
        raise EdgeError(f"{path} needs a header with columns file,label and at least one row")
    return [(row["file"], row["label"]) for row in rows]


def bench_photos(
    clf: Classifier,
    folder: str | Path,
    min_confidence: float = 0.0,
    read_image=None,
    ink: str = "auto",
) -> PhotoBench:
    """Read every labelled photo of a folder through the full camera path and score it.

    Line breaks are not scored: a photo of a grid of digits is read row by row.

    Args:
        clf: the loaded classifier.
        folder: a folder with labels.csv (file,label) and the images it names.
        min_confidence: characters below this read as "?" (0: always the best guess).
        read_image: image reader (path -> BGR array).
        ink: "dark", "light" or "auto" (see `edge.preprocess.ink_is_dark`).

    Returns:
        The PhotoBench with one PhotoResult per photo.
    """
    from edge.camera import read_image as default_reader
    from edge.pipeline import read_frame

    read_image = read_image or default_reader
    folder = Path(folder)
    results = []
    for name, label in read_labels(folder):
        reading = read_frame(read_image(folder / name), clf, min_confidence, ink=ink)
        text = reading.text.replace("\n", "")
        results.append(
            PhotoResult(
                name,
                label,
                text,
                text == label,
                edit_distance(text, label),
                reading.timing.preprocess,
                reading.timing.invoke,
            )
        )
    return _summarise(str(clf.model_path), str(folder), results)


def _summarise(model: str, folder: str, results: list[PhotoResult]) -> PhotoBench:
    def rate(rows):
        return float(np.mean([r.exact for r in rows])) if rows else float("nan")

    chars = sum(len(r.label) for r in results)
    errors = sum(min(r.char_errors, len(r.label)) for r in results)
    return PhotoBench(
        model=model,
        folder=folder,
        images=len(results),
        exact_accuracy=rate(results),
        char_accuracy=1.0 - errors / chars if chars else float("nan"),
        single_accuracy=rate([r for r in results if len(r.label) == 1]),
        multi_exact_accuracy=rate([r for r in results if len(r.label) > 1]),
        preprocess_p50_ms=float(np.median([r.preprocess_ms for r in results])),
        results=tuple(results),
    )


def stage_summary(timings: list) -> dict[str, LatencyStats]:
    """Per-stage latency statistics (capture, preprocess, invoke, post, total) of many frames."""
    stages = ("capture", "preprocess", "invoke", "post", "total")
    return (
        {
            stage: LatencyStats.from_ns(np.array([getattr(t, stage) for t in timings]) * 1e6)
            for stage in stages
        }
        if timings
        else {}
    )
