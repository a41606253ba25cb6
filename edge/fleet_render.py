"""The sections of an `edge report` (tables, notes, plot names) and their Markdown and HTML
renderings: pure functions, no I/O."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from edge.interpreter import count_ops

if TYPE_CHECKING:
    from edge.fleet import Fleet, Result

CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1em;font-size:14px}"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;white-space:nowrap}"
    "th{background:#eef}tr:nth-child(even) td{background:#f8f8f8}"
    "img{max-width:100%;margin:.5em 0;border:1px solid #ddd}h2{margin-top:1.5em}"
)


@dataclass(frozen=True)
class Section:
    """One part of the report: a heading, notes, a table (header row first) and plots."""

    title: str
    table: tuple[tuple[str, ...], ...] = ()
    notes: tuple[str, ...] = ()
    images: tuple[str, ...] = ()


def _f(value: float, spec: str, suffix: str = "") -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:{spec}}{suffix}"


def _acc(value: float) -> str:
    return _f(100 * value, ".2f", "%")


def _threads(threads: int | None) -> str:
    return "default" if threads is None else str(threads)


def _flag(value: bool | None) -> str:
    return "-" if value is None else ("on" if value else "off")


def _ci(ci: tuple[float, float] | None) -> str:
    return "-" if ci is None else f"{100 * ci[0]:.2f}-{100 * ci[1]:.2f}%"


def _rss(r: Result) -> str:
    growth = "" if not math.isfinite(r.rss_growth_mb) else f" (+{r.rss_growth_mb:.1f})"
    return _f(r.peak_rss_mb, ".0f", " MB") + growth


def _sources(fleet: Fleet) -> Section:
    rows = [(f, d, str(v), str(n)) for f, d, v, n in fleet.sources]
    return Section("Sources", (("File", "Device", "Schema", "Results"), *rows))


def _devices(fleet: Fleet) -> Section:
    keys = ("cpu", "cores", "pi_model", "os", "python", "numpy")
    header = ("Device", "CPU", "Cores", "Pi model", "OS", "Python", "numpy", "Backend", "Files")
    rows = [
        (d.name, *(str(d.machine.get(k) or "-") for k in keys))
        + (str(d.machine.get("backend") or ", ".join(d.backends) or "-"), str(len(d.sources)))
        for d in fleet.devices
    ]
    return Section("Devices", (header, *rows))


RESULT_HEADER = (
    "Device",
    "Model",
    "Variant",
    "Threads",
    "XNNPACK",
    "Backend",
    "Accuracy",
    "95% CI",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "Size",
    "Peak RSS",
    "Overhead",
    "Kernels",
)


def _kernels(float_ops: tuple[str, ...] | None) -> str:
    if float_ops is None:
        return "-"
    return f"{len(float_ops)} in float" if float_ops else "integer only"


def _float_note(r: Result) -> str:
    return f"{r.model} {r.variant} on {r.device}: {count_ops(r.float_ops)}"


def _result_cells(r: Result) -> tuple[str, ...]:
    return (
        r.device,
        r.model,
        r.variant,
        _threads(r.threads),
        _flag(r.xnnpack),
        r.backend,
        _acc(r.accuracy),
        _ci(r.ci95),
        _f(r.p50, ".3f"),
        _f(r.p90, ".3f"),
        _f(r.p99, ".3f"),
        _f(r.size_bytes / 1024, ".1f", " KB"),
        _rss(r),
        _f(r.overhead_ratio, ".2f", "x"),
        _kernels(r.float_ops),
    )


def _results(fleet: Fleet) -> Section:
    notes = fleet.notes
    if any(math.isfinite(r.rss_growth_mb) for r in fleet.results):
        notes += ("Peak RSS (+N): RSS growth in MB over the timed runs.",)
    mixed = [r for r in fleet.results if r.variant == "int8" and r.float_ops]
    if mixed:
        notes += (
            "Kernels: int8 models that still compute in float: "
            + "; ".join(_float_note(r) for r in mixed)
            + ".",
        )
    rows = tuple(_result_cells(r) for r in fleet.results)
    if not rows:
        notes += ("No model benchmark rows in these files (camera-path results only).",)
    return Section("Results", (RESULT_HEADER, *rows) if rows else (), notes)


def _pareto(fronts: dict[str, list[Result]], images: dict[str, list[str]]) -> Section:
    header = ("Device", "Model", "Variant", "Threads", "Accuracy", "p50 ms", "Size")
    rows = [
        (r.device, r.model, r.variant, _threads(r.threads), _acc(r.accuracy))
        + (_f(r.p50, ".3f"), _f(r.size_bytes / 1024, ".1f", " KB"))
        for front in fronts.values()
        for r in front
    ]
    note = (
        "Per device, the results no other result beats on both accuracy and p50 latency "
        "(marker area in the plot: model file size)."
    )
    return Section(
        "Pareto front", (header, *rows) if rows else (), (note,), tuple(images.get("pareto", ()))
    )


def _histograms(fleet: Fleet, images: dict[str, list[str]]) -> Section:
    missing = sum(1 for r in fleet.results if not r.samples_ms)
    notes = ()
    if missing:
        notes = (
            f"{missing} of {len(fleet.results)} results carry no raw latency samples "
            "(latency_samples_ms, schema 2): no histogram for them.",
        )
    return Section("Latency histograms", notes=notes, images=tuple(images.get("latency", ())))


def _photos(fleet: Fleet) -> Section:
    from edge.report import pct  # imports edge.bench: only when a report is made

    header = ("Device", "Model", "Images", "Exact", "Char acc", "Single", "Multi exact", "Pre p50")
    rows = [
        (p.device, p.model, str(p.images), pct(p.exact), pct(p.chars), pct(p.single))
        + (pct(p.multi_exact), _f(p.preprocess_p50_ms, ".1f", " ms"))
        for p in fleet.photos
    ]
    return Section("Camera path accuracy (photos)", (header, *rows))


def _stages(fleet: Fleet, images: dict[str, list[str]]) -> Section:
    header = ("Device", "Model", "Frames", "Capture", "Preprocess", "Invoke", "Post (p50 ms)")
    keys = ("capture_ms", "preprocess_ms", "invoke_ms", "post_ms")
    rows = [
        (s.device, s.model, str(s.frames), *(_f(getattr(s, k), ".2f") for k in keys))
        for s in fleet.stages
    ]
    note = "p50 of each stage; '-': stage not recorded (schema 1 photos: preprocess and invoke)."
    parts = tuple(
        f"Preprocess by part on {s.device}, {s.model} (p50 ms): "
        + ", ".join(f"{name} {_f(ms, '.2f')}" for name, ms in s.parts)
        + "."
        for s in fleet.stages
        if s.parts
    )
    return Section(
        "Camera-path stages", (header, *rows), (note, *parts), tuple(images.get("stages", ()))
    )


def _sweep(fleet: Fleet, images: dict[str, list[str]]) -> Section:
    header = ("Device", "Model", "Variant", "XNNPACK", "Threads", "p50 ms", "p90 ms", "p99 ms")
    rows = [
        (s.device, s.model, s.variant, _flag(s.xnnpack), str(s.threads))
        + (_f(s.p50, ".3f"), _f(s.p90, ".3f"), _f(s.p99, ".3f"))
        for s in fleet.sweep
    ]
    return Section("Thread scaling", (header, *rows), images=tuple(images.get("threads", ())))


def build_sections(
    fleet: Fleet, fronts: dict[str, list[Result]], images: dict[str, list[str]] | None
) -> list[Section]:
    """The report's sections, in order; `images` maps plot kinds to PNG names (None: no plots)."""
    plots = images or {}
    sections = [_sources(fleet)]
    if images is None:
        sections[0] = replace(sections[0], notes=("Plots skipped (--no-plots).",))
    if fleet.warnings:
        notes = tuple(f"{device} ({source}): {text}" for device, source, text in fleet.warnings)
        sections.append(Section("Warnings", notes=notes))
    sections += [_devices(fleet), _results(fleet), _pareto(fronts, plots)]
    if images is not None and fleet.results:
        sections.append(_histograms(fleet, plots))
    if fleet.photos:
        sections.append(_photos(fleet))
    if fleet.stages:
        sections.append(_stages(fleet, plots))
    if fleet.sweep:
        sections.append(_sweep(fleet, plots))
    return sections


def render_summary(fleet: Fleet, front: dict[str, list[Result]], out: Path, plots: int) -> str:
    """A few lines for stdout: where the report is, its devices, models and Pareto fronts."""
    from edge.report import align  # imports edge.bench: only when a report is made

    models = sorted(
        {f"{r.model}/{r.variant}" for r in fleet.results} | {p.model for p in fleet.photos}
    )
    lines = [
        f"report: {out / 'report.md'}, {out / 'report.html'} ({plots} plots)",
        f"devices: {', '.join(d.name for d in fleet.devices)}",
        f"models: {len(models)} ({', '.join(models[:6])}{', ...' if len(models) > 6 else ''})",
    ]
    table = [("Pareto front", "Model", "Threads", "Acc", "p50 ms")] + [
        (device, f"{r.model}/{r.variant}", _threads(r.threads), _acc(r.accuracy), f"{r.p50:.3f}")
        for device, rows in front.items()
        for r in rows
    ]
    lines += (
        align(table) if len(table) > 1 else ["Pareto front: no result with accuracy and latency"]
    )
    if fleet.warnings:
        lines.append(f"warnings: {len(fleet.warnings)} (listed in the report)")
    return "\n".join(lines)


def _md_row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render_markdown(title: str, sections: list[Section]) -> str:
    """The report as Markdown: PNGs are linked by their names (they lie beside report.md)."""
    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        lines += [f"- {n}" for n in s.notes] + ([""] if s.notes else [])
        if s.table:
            lines += [_md_row(s.table[0]), _md_row(tuple("---" for _ in s.table[0]))]
            lines += [_md_row(row) for row in s.table[1:]] + [""]
        lines += [f"![{s.title}: {name}]({name})\n" for name in s.images]
    return "\n".join(lines).rstrip() + "\n"


def _html_table(table: tuple[tuple[str, ...], ...]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in table[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table[1:]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(title: str, sections: list[Section]) -> str:
    """The report as one HTML page with inline CSS; PNGs are referenced by name."""
    esc = html.escape
    parts = [
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>',
        f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>",
    ]
    for s in sections:
        parts.append(f"<h2>{esc(s.title)}</h2>")
        if s.notes:
            parts.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in s.notes) + "</ul>")
        if s.table:
            parts.append(_html_table(s.table))
        parts += [f'<p><img src="{esc(n)}" alt="{esc(s.title)}: {esc(n)}"></p>' for n in s.images]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
