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
    body = [COLUMNS] + [_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in body) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in body
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def to_json(rows: list[BenchRow], machine: dict, settings: dict) -> str:
    """Return the JSON report: schema version, machine, bench settings and one record per model."""
    doc = {
        "schema_version": REPORT_SCHEMA,
        "machine": machine,
        "settings": settings,
        "results": [asdict(r) for r in rows],
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
