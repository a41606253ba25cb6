"""Present benchmark results: a terminal table, JSON and CSV (no measuring here)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path

from edge.atomic import atomic_write_bytes
from edge.bench import PART_PREFIX, BenchRow
from edge.interpreter import describe_kernels

# 2: sweep, stages, warnings; accuracy_ci95, xnnpack, tensor_bytes, rss_growth_mb,
# measure_cost_ms and latency_samples_ms per result (docs/BENCH_SCHEMA.md).
REPORT_SCHEMA = 2
COLUMNS = (
    "Model",
    "Variant",
    "Backend",
    "Size",
    "Acc (95% CI)",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "FPS",
    "Overhead",
    "Peak RSS",
)


def _cells(row: BenchRow) -> tuple[str, ...]:
    lat = row.latency
    return (
        row.model,
        row.variant,
        f"{row.backend} {row.backend_version}",
        f"{row.size_bytes / 1024:.1f} KB",
        f"{100 * row.accuracy:.2f}% "
        f"({100 * row.accuracy_ci95[0]:.2f}-{100 * row.accuracy_ci95[1]:.2f})",
        f"{lat.p50:.3f}",
        f"{lat.p90:.3f}",
        f"{lat.p99:.3f}",
        f"{1000.0 / lat.mean:.0f}",
        f"{row.overhead_ratio:.2f}x",
        f"{row.peak_rss_mb:.0f} MB",
    )


def format_table(rows: list[BenchRow]) -> str:
    """Return one aligned text table of benchmark rows, then each row's load time, first
    inference, memory growth and the timer's own cost."""
    lines = align([COLUMNS] + [_cells(r) for r in rows])
    lines += [
        f"  {r.model} {r.variant}: load {r.load_ms:.1f} ms, first inference "
        f"{r.first_inference_ms:.2f} ms, tensors {r.tensor_bytes / 1024:.0f} KB, RSS growth "
        f"{r.rss_growth_mb:+.1f} MB, timer cost {1000 * r.measure_cost_ms:.2f} us "
        f"({100 * r.measure_cost_ratio:.2f}% of p50), p50 drift {100 * r.p50_drift:.1f}%, "
        f"{describe_kernels(r.float_ops)}"
        for r in rows
    ]
    return "\n".join(lines)


def format_sweep_table(points: list) -> str:
    """Return one aligned table of latency per (model, threads, XNNPACK) setting."""
    header = ("Model", "Variant", "Threads", "XNNPACK", "p50 ms", "p90 ms", "p99 ms")
    body = [
        (
            p.model,
            p.variant,
            str(p.threads),
            "on" if p.xnnpack else "off",
            f"{p.latency.p50:.3f}",
            f"{p.latency.p90:.3f}",
            f"{p.latency.p99:.3f}",
        )
        for p in points
    ]
    return "\n".join(align([header] + body))


def format_stage_table(benches: list) -> str:
    """Return one aligned table of camera-path stage p50 / p99 per model (recorded frames),
    then a line per model with the p50 of each part of preprocess."""
    stages = ("capture", "preprocess", "invoke", "post", "total")
    header = ("Model", "Frames") + tuple(f"{s} p50/p99 ms" for s in stages)
    timed = [b for b in benches if b.stages]
    body = [
        (b.model, f"{b.frames}x{b.passes - 1 or 1}")
        + tuple(f"{b.stages[s].p50:.2f}/{b.stages[s].p99:.2f}" for s in stages)
        for b in timed
    ]
    lines = align([header] + body)
    parts = [(b.model, format_parts(b.stages)) for b in timed]
    lines += [f"  {model}: {text}" for model, text in parts if text]
    return "\n".join(lines)


def format_parts(stages: dict) -> str:
    """ "preprocess p50 by part: ink 1.20, threshold ... ms", from the stages' LatencyStats
    named PART_PREFIX + part; "" when there are none."""
    parts = [
        (k.removeprefix(PART_PREFIX), v.p50) for k, v in stages.items() if k.startswith(PART_PREFIX)
    ]
    if not parts:
        return ""
    return "preprocess p50 by part: " + ", ".join(f"{k} {ms:.2f}" for k, ms in parts) + " ms"


def format_photo_table(benches: list) -> str:
    """One table of camera-path accuracy per model (and per camera-like condition of the
    photos, when there were any: see `edge.conditions`), then each misread photo."""
    from edge.conditions import AS_TAKEN

    varied = any(b.condition != AS_TAKEN for b in benches)
    header = ("Model", "Images", "Exact", "Char acc", "Single", "Multi exact", "Preproc p50 ms")
    body = [(header[0], "Condition", *header[1:]) if varied else header] + [
        (
            b.model,
            *((b.condition,) if varied else ()),
            str(b.images),
            pct(b.exact_accuracy),
            pct(b.char_accuracy),
            pct(b.single_accuracy),
            pct(b.multi_exact_accuracy),
            f"{b.preprocess_p50_ms:.1f}",
        )
        for b in benches
    ]
    lines = align(body)
    for b in benches:
        seen = f" ({b.condition})" if varied else ""
        lines += [
            f"  misread by {b.model}{seen}: {r.file} {r.label!r} -> {r.read!r}"
            for r in b.results
            if not r.exact
        ]
    return "\n".join(lines)


def pct(value: float) -> str:
    """A fraction as a percentage with one decimal; NaN as "-"."""
    return "-" if value != value else f"{100 * value:.1f}%"


def align(body: list[tuple[str, ...]]) -> list[str]:
    """Left-align rows of cells into columns, a dashed rule under the header (first row)."""
    widths = [max(len(line[i]) for line in body) for i in range(len(body[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in body
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def to_json(results: dict, machine: dict, settings: dict, warnings: list = ()) -> str:
    """Return the JSON report (schema in docs/BENCH_SCHEMA.md).

    Args:
        results: lists keyed rows (BenchRow), sweep (SweepPoint), photos (PhotoBench),
            stages (FrameBench); any may be missing or empty.
        machine: `edge.bench.machine_info()`.
        settings: the bench options.
        warnings: telemetry warnings (throttling, clock drop, heat) of the run.
    """
    doc = {
        "schema_version": REPORT_SCHEMA,
        "machine": machine,
        "settings": settings,
        "warnings": list(warnings),
        "results": [asdict(r) for r in results.get("rows", ())],
        "sweep": [_flat_sweep(p) for p in results.get("sweep", ())],
        "photos": [asdict(p) for p in results.get("photos", ())],
        "stages": [_flat_stages(b) for b in results.get("stages", ())],
    }
    return json.dumps(doc, indent=2)


def _flat_sweep(point) -> dict:
    record = asdict(point)
    latency = record.pop("latency")
    return record | {k: latency[k] for k in ("p50", "p90", "p99", "mean", "runs")}


def _flat_stages(bench) -> dict:
    record = {"model": bench.model, "source": bench.source, "frames": bench.frames}
    record["passes"] = bench.passes
    record |= {f"{stage}_ms": stats.p50 for stage, stats in bench.stages.items()}
    record["stats"] = {stage: asdict(stats) for stage, stats in bench.stages.items()}
    return record


def to_csv(rows: list[BenchRow]) -> str:
    """Return the rows as CSV, latency fields flattened (latency_p50, raw_invoke_p50, ...)."""
    flat = []
    for row in rows:
        record = asdict(row)
        record.pop("latency_samples_ms")
        record["float_ops"] = " ".join(record["float_ops"] or ())
        low, high = record.pop("accuracy_ci95")
        record |= {"accuracy_ci95_low": low, "accuracy_ci95_high": high}
        for nested in ("latency", "raw_invoke"):
            record.update({f"{nested}_{k}": v for k, v in record.pop(nested).items()})
        flat.append(record)
    out = io.StringIO()
    if flat:
        writer = csv.DictWriter(out, fieldnames=list(flat[0]))
        writer.writeheader()
        writer.writerows(flat)
    return out.getvalue()


def write_text(path: str | Path, text: str) -> Path:
    """Write a report file atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))
