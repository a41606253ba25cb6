"""The `edge bench` command: accuracy, latency, memory, sweeps and camera-path stages of one or
more models, with gates (part of the command line: it prints)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.commands import EVAL_FILE, write_output
from edge.errors import EdgeError, GateError

# A run whose median moved more than this between blocks of samples gets a warning.
DRIFT_LIMIT = 0.10

SETTINGS = (
    "runs",
    "warmup",
    "min_seconds",
    "threads",
    "xnnpack",
    "dataset",
    "split",
    "photos",
    "conditions",
    "frames",
    "passes",
    "sweep",
    "min_confidence",
)


def _eval_split(model: Path, dataset: str | None, split: str):
    from edge.datasets import load_npz_split, load_split

    if dataset is None:
        path = model.parent / EVAL_FILE
        if not path.exists():
            raise EdgeError(
                f"no {EVAL_FILE} beside {model}: pass --dataset NAME (e.g. mnist) or an .npz split"
            )
        return load_npz_split(path)
    if dataset.endswith(".npz"):
        return load_npz_split(Path(dataset))
    return load_split(dataset, split)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _splits(args: argparse.Namespace):
    """Yield (model, its evaluation split), loading each split once."""
    cache = {}
    for model in args.models:
        key = args.dataset or str(model.parent)
        if key not in cache:
            cache[key] = _eval_split(model, args.dataset, args.split)
        yield model, cache[key]


def _timing(args: argparse.Namespace) -> dict:
    return {"runs": args.runs, "warmup": args.warmup, "min_seconds": args.min_seconds}


def _bench_split(args: argparse.Namespace) -> list:
    """Benchmark every model on its evaluation split: accuracy, latency, memory."""
    from edge.bench import bench_model

    rows = []
    for model, split in _splits(args):
        _log(f"benchmarking {model} on {split.name}/{split.split} ({len(split.labels)} images) ...")
        rows.append(
            bench_model(model, split, threads=args.threads, xnnpack=args.xnnpack, **_timing(args))
        )
    return rows


def _bench_sweep(args: argparse.Namespace) -> list:
    """Latency of every model at 1 to all cores, XNNPACK on and off where the backend can."""
    from edge.bench import sweep_model, sweep_settings

    settings = sweep_settings()
    points = []
    for model, split in _splits(args):
        _log(f"sweeping {model} over {len(settings)} settings (threads, XNNPACK) ...")
        points += sweep_model(model, split, settings, **_timing(args))
    return points


def _bench_photos(args: argparse.Namespace) -> list:
    """Read a folder of labelled photos through the full camera path with every model."""
    from edge.camera_bench import bench_photos
    from edge.commands import load_splitter
    from edge.interpreter import Classifier

    results = []
    for model in args.models:
        clf = Classifier(model, num_threads=args.threads, xnnpack=args.xnnpack)
        splitter = load_splitter(args, clf)
        for condition in args.conditions:
            _log(f"reading {args.photos} ({condition}) with {model} ...")
            results.append(
                bench_photos(
                    clf,
                    args.photos,
                    args.min_confidence,
                    ink=args.ink,
                    page=args.page,
                    splitter=splitter,
                    condition=condition,
                )
            )
    return results


def _conditions(args: argparse.Namespace) -> list[str]:
    """The camera-like conditions `--conditions` asks for (see `edge.conditions`), checked
    before any work; none: the photos as taken."""
    from edge.conditions import AS_TAKEN, parse_conditions

    if args.conditions is None:
        return [AS_TAKEN]
    if not args.photos:
        raise EdgeError("--conditions changes the photos of --photos DIR: add --photos DIR")
    return parse_conditions(args.conditions)


def _bench_frames(args: argparse.Namespace) -> list:
    """Per-stage timing of the full camera path on recorded frames, for every model."""
    from edge.camera_bench import bench_frames
    from edge.commands import load_splitter
    from edge.interpreter import Classifier

    results = []
    for model in args.models:
        _log(f"timing the camera path on {args.frames} with {model} ({args.passes} passes) ...")
        clf = Classifier(model, num_threads=args.threads, xnnpack=args.xnnpack)
        splitter = load_splitter(args, clf)
        results.append(
            bench_frames(clf, args.frames, args.passes, args.ink, page=args.page, splitter=splitter)
        )
    return results


def drift_warnings(rows: list) -> list[str]:
    """Warn where the median moved more than DRIFT_LIMIT during a model's timed runs."""
    from edge.bench import DRIFT_BLOCKS

    return [
        f"{r.path}: p50 drifted {100 * r.p50_drift:.0f}% across {DRIFT_BLOCKS} blocks of the "
        "run (other load or a changing clock): close other programs, set the performance "
        "governor (see `edge doctor`) and run again"
        for r in rows
        if r.p50_drift > DRIFT_LIMIT
    ]


def float_warnings(rows: list) -> list[str]:
    """Warn where an int8 model still computes in float (see `edge.interpreter.ops_in_float`)."""
    from edge.interpreter import float_ops_warning

    return [
        f"{r.path}: {float_ops_warning(r.float_ops)}"
        for r in rows
        if r.variant == "int8" and r.float_ops
    ]


def _backend_name() -> str:
    from edge.interpreter import load_backend

    backend = load_backend()
    return f"{backend.name} {backend.version}"


def gate_failures(args: argparse.Namespace, rows: list, photos: list) -> list[str]:
    """The reasons the results fail the --min-acc, --max-p99-ms and --max-rss-mb gates."""
    reasons = []
    accuracies = [(r.path, r.accuracy) for r in rows] + [
        (p.model, p.exact_accuracy) for p in photos
    ]
    if args.min_acc is not None:
        low = [f"{m} ({100 * a:.2f}%)" for m, a in accuracies if not a >= args.min_acc]
        if low:
            reasons.append(f"accuracy below --min-acc {args.min_acc}: {', '.join(low)}")
    if args.max_p99_ms is not None:
        slow = [
            f"{r.path} ({r.latency.p99:.3f} ms)" for r in rows if r.latency.p99 > args.max_p99_ms
        ]
        if slow:
            reasons.append(f"p99 above --max-p99-ms {args.max_p99_ms}: {', '.join(slow)}")
    if args.max_rss_mb is not None:
        big = [
            f"{r.path} ({r.peak_rss_mb:.0f} MB)" for r in rows if r.peak_rss_mb > args.max_rss_mb
        ]
        if big:
            reasons.append(f"peak RSS above --max-rss-mb {args.max_rss_mb}: {', '.join(big)}")
    return reasons


def cmd_bench(args: argparse.Namespace) -> int:
    from edge import telemetry
    from edge.bench import machine_info
    from edge.interpreter import require_sound_model
    from edge.report import (
        format_photo_table,
        format_stage_table,
        format_sweep_table,
        format_table,
        to_csv,
        to_json,
    )

    args.conditions = _conditions(args)
    for model in args.models:  # a wrong or corrupt model fails before any data set is loaded
        require_sound_model(model)
    if args.frames:
        from edge.camera import open_source

        with open_source(args.frames):  # a wrong path fails now, not after minutes of timing
            pass
    before = telemetry.snapshot()
    wants_split = args.dataset or args.sweep or not (args.photos or args.frames)
    rows = _bench_split(args) if wants_split else []
    sweep = _bench_sweep(args) if args.sweep else []
    photos = _bench_photos(args) if args.photos else []
    stages = _bench_frames(args) if args.frames else []
    after = telemetry.snapshot()
    warnings = telemetry.compare(before, after) + drift_warnings(rows) + float_warnings(rows)
    for text, present in (
        (format_table(rows), rows),
        (format_sweep_table(sweep), sweep),
        (format_photo_table(photos), photos),
        (format_stage_table(stages), stages),
    ):
        if present:
            print(text)
    for warning in warnings:
        _log(f"warning: {warning}")
    settings = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k in SETTINGS
    }
    if args.json:
        results = {"rows": rows, "sweep": sweep, "photos": photos, "stages": stages}
        machine = machine_info() | {
            "backend": _backend_name(),
            "telemetry": {"before": before, "after": after},
        }
        write_output(args.json, to_json(results, machine, settings, warnings))
    if args.csv and rows:
        write_output(args.csv, to_csv(rows))
    failures = gate_failures(args, rows, photos)
    if failures:
        raise GateError("; ".join(failures))
    return 0
