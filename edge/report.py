"""Present benchmark results: a terminal table, JSON and CSV (no measuring here)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path

from edge.atomic import atomic_write_bytes
from edge.bench import BenchRow

REPORT_SCHEMA = 1
COLUMNS = (
    "Model",
    "Variant",
    "Backend",
    "Size",
    "Acc",
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
        f"{100 * row.accuracy:.2f}%",
        f"{lat.p50:.3f}",
        f"{lat.p90:.3f}",
        f"{lat.p99:.3f}",
        f"{1000.0 / lat.mean:.0f}",
        f"{row.overhead_ratio:.2f}x",
        f"{row.peak_rss_mb:.0f} MB",
    )


def format_table(rows: list[BenchRow]) -> str:
    """Return one aligned text table of benchmark rows."""
    return "\n".join(_align([COLUMNS] + [_cells(r) for r in rows]))


def format_photo_table(benches: list) -> str:
    """One table of camera-path accuracy per model, then each misread photo."""
    header = ("Model", "Images", "Exact", "Char acc", "Single", "Multi exact", "Preproc p50 ms")
    body = [header] + [
        (
            b.model,
            str(b.images),
            _pct(b.exact_accuracy),
            _pct(b.char_accuracy),
            _pct(b.single_accuracy),
            _pct(b.multi_exact_accuracy),
            f"{b.preprocess_p50_ms:.1f}",
        )
        for b in benches
    ]
    lines = _align(body)
    for b in benches:
        lines += [
            f"  misread by {b.model}: {r.file} {r.label!r} -> {r.read!r}"
            for r in b.results
            if not r.exact
        ]
    return "\n".join(lines)


def _pct(value: float) -> str:
    return "-" if value != value else f"{100 * value:.1f}%"


def _align(body: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(line[i]) for line in body) for i in range(len(body[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in body
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def to_json(rows: list[BenchRow], machine: dict, settings: dict, photos: list = ()) -> str:
    """Return the JSON report: schema version, machine, bench settings and one record per model."""
    doc = {
        "schema_version": REPORT_SCHEMA,
        "machine": machine,
        "settings": settings,
        "results": [asdict(r) for r in rows],
        "photos": [asdict(p) for p in photos],
    }
    return json.dumps(doc, indent=2)


def to_csv(rows: list[BenchRow]) -> str:
    """Return the rows as CSV, latency fields flattened (latency_p50, raw_invoke_p50, ...)."""
    flat = []
    for row in rows:
        record = asdict(row)
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
