"""Measure the full camera path on labelled photos: exact-string and character accuracy, and
per-stage timing of frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.bench import FRAME_STAGES, PART_PREFIX, LatencyStats
from edge.conditions import AS_TAKEN
from edge.errors import EdgeError
from edge.interpreter import Classifier
from edge.segment import PREPROCESS_PARTS


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
    condition: str = AS_TAKEN


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
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise EdgeError(f"{path} is not a UTF-8 CSV file ({exc}): save it as UTF-8 text") from None
    if not rows or not {"file", "label"} <= set(rows[0]):
        raise EdgeError(f"{path} needs a header with columns file,label and at least one row")
    for line, row in enumerate(rows, start=2):
        if not row["file"] or not row["label"]:  # a short row gives None, an empty cell ""
            raise EdgeError(f"{path} line {line}: give both a file and its label (file,label)")
    return [(row["file"], row["label"]) for row in rows]


def bench_photos(
    clf: Classifier,
    folder: str | Path,
    min_confidence: float = 0.0,
    read_image=None,
    ink: str = "auto",
    page=None,
    splitter: Classifier | None = None,
    condition: str = AS_TAKEN,
) -> PhotoBench:
    """Read every labelled photo of a folder through the full camera path and score it.

    Line breaks are not scored: a photo of a grid of digits is read row by row.

    Args:
        clf: the loaded classifier.
        folder: a folder with labels.csv (file,label) and the images it names.
        min_confidence: characters below this read as "?" (0: always the best guess).
        read_image: image reader (path -> BGR array).
        ink: "dark", "light" or "auto" (see `edge.preprocess.ink_is_dark`).
        page: perspective correction (see `edge.pipeline.read_frame`).
        splitter: a model that decides which blobs to split (see `edge.pipeline.read_frame`).
        condition: a camera-like change made to every photo first (see `edge.conditions`).

    Returns:
        The PhotoBench with one PhotoResult per photo.
    """
    from edge.camera import read_image as default_reader
    from edge.conditions import apply_condition
    from edge.pipeline import read_frame

    read_image = read_image or default_reader
    folder = Path(folder)
    results = []
    for index, (name, label) in enumerate(read_labels(folder)):
        image = apply_condition(condition, read_image(folder / name), seed=index)
        reading = read_frame(image, clf, min_confidence, ink=ink, page=page, splitter=splitter)
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
    return _summarise(str(clf.model_path), str(folder), results, condition)


def _summarise(model: str, folder: str, results: list[PhotoResult], condition: str) -> PhotoBench:
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
        condition=condition,
    )


STAGES = (*FRAME_STAGES, "total")


def stage_summary(timings: list) -> dict[str, LatencyStats]:
    """Per-stage latency statistics of many frames: capture, preprocess, invoke, post, total,
    then each part of preprocess as `preprocess_<part>` (0 ms in a frame that skipped it)."""
    if not timings:
        return {}
    ms = {stage: [getattr(t, stage) for t in timings] for stage in STAGES}
    ms |= {
        f"{PART_PREFIX}{part}": [t.parts.get(part, 0.0) for t in timings]
        for part in PREPROCESS_PARTS
    }
    return {name: LatencyStats.from_ns(np.array(values) * 1e6) for name, values in ms.items()}


@dataclass(frozen=True)
class FrameBench:
    """Steady-state per-stage timing of the full camera path over recorded frames."""

    model: str
    source: str
    frames: int
    passes: int
    stages: dict


def bench_frames(
    clf: Classifier,
    source: str,
    passes: int = 3,
    ink: str = "auto",
    min_confidence: float = 0.0,
    page=None,
    splitter: Classifier | None = None,
) -> FrameBench:
    """Time every stage of the camera path on recorded frames (a folder, glob or video), so
    the figure is reproducible: `passes` passes over the frames, the first one untimed (file
    cache, page faults, first allocations). Capture is the time to read and decode a frame.

    Returns:
        The FrameBench, its stages LatencyStats keyed by capture, preprocess, invoke, post, total.
    """
    from edge.camera import open_source
    from edge.pipeline import run

    timings, frames = [], 0
    for index in range(max(1, passes)):
        with open_source(source) as frames_source:
            pass_timings = [
                r.timing
                for _, r in run(
                    frames_source, clf, min_confidence, ink=ink, page=page, splitter=splitter
                )
            ]
        frames = len(pass_timings)
        if index > 0 or passes == 1:
            timings += pass_timings
    return FrameBench(
        str(clf.model_path), str(source), frames, max(1, passes), stage_summary(timings)
    )
