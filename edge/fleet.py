"""`edge report`: merge `edge bench --json` files from many runs and devices, find the
accuracy/latency Pareto front, and write one Markdown and one HTML report with plots."""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.atomic import atomic_write_bytes
from edge.bench import PART_PREFIX
from edge.errors import EdgeError
from edge.fleet_render import build_sections, render_html, render_markdown, render_summary

SCHEMAS = (1, 2)
FIX = "pass a file written by `edge bench --json`"
# Machine keys that identify a device; clock, temperature and throttle flags vary per run.
IDENTITY = ("cpu", "cores", "machine", "pi_model", "os", "python", "numpy")
NAN = float("nan")


@dataclass(frozen=True)
class Result:
    """One benchmark row (device, model, variant, threads) with the numbers the report shows."""

    device: str
    source: str
    model: str
    variant: str
    threads: int | None
    xnnpack: bool | None
    backend: str
    accuracy: float
    ci95: tuple[float, float] | None
    p50: float
    p90: float
    p99: float
    size_bytes: float
    peak_rss_mb: float
    rss_growth_mb: float
    overhead_ratio: float
    samples_ms: tuple[float, ...]
    float_ops: tuple[str, ...] | None = None  # None: not recorded (older files) or not listed

    @property
    def key(self) -> tuple:
        return (self.device, self.model, self.variant, self.threads, self.xnnpack)


@dataclass(frozen=True)
class SweepPoint:
    """Latency of one model at one thread count (a thread sweep)."""

    device: str
    model: str
    variant: str
    threads: int
    xnnpack: bool | None
    p50: float
    p90: float
    p99: float


@dataclass(frozen=True)
class StageTiming:
    """Camera-path stage p50s of one model (NaN where a stage was not recorded)."""

    device: str
    model: str
    frames: int
    capture_ms: float
    preprocess_ms: float
    invoke_ms: float
    post_ms: float
    parts: tuple[tuple[str, float], ...] = ()  # preprocess by part (p50 ms), where recorded


@dataclass(frozen=True)
class PhotoResult:
    """Camera-path accuracy of one model on a folder of labelled photos."""

    device: str
    model: str
    images: int
    exact: float
    chars: float
    single: float
    multi_exact: float
    preprocess_p50_ms: float


@dataclass(frozen=True)
class Device:
    """One machine results came from, with the files measured on it."""

    name: str
    machine: dict
    sources: tuple[str, ...]
    backends: tuple[str, ...]


@dataclass(frozen=True)
class Fleet:
    """All results of all files, merged."""

    sources: tuple[tuple[str, str, int, int], ...]  # file, device, schema, result rows
    devices: tuple[Device, ...]
    results: tuple[Result, ...]
    sweep: tuple[SweepPoint, ...]
    stages: tuple[StageTiming, ...]
    photos: tuple[PhotoResult, ...]
    warnings: tuple[tuple[str, str, str], ...]  # device, file, text
    notes: tuple[str, ...]


def load_file(path: str | Path) -> dict:
    """Read and validate one `edge bench --json` file (schema 1 or 2).

    Raises:
        EdgeError: unreadable, not JSON, truncated, unknown schema, or missing keys.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeError(
            f"cannot read {path} ({getattr(exc, 'strerror', None) or exc}): {FIX}"
        ) from None
    if not text.strip():
        raise EdgeError(f"{path} is empty: {FIX}")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated"):
            raise EdgeError(
                f"{path} is truncated (JSON ends early): re-run edge bench --json"
            ) from None
        raise EdgeError(f"{path} is not JSON ({exc.msg}, line {exc.lineno}): {FIX}") from None
    if not isinstance(doc, dict):
        raise EdgeError(f"{path} holds no JSON object: {FIX}")
    version = doc.get("schema_version")
    if version not in SCHEMAS:
        raise EdgeError(
            f"{path} has schema_version {version!r}, this edge reads {SCHEMAS[0]}-{SCHEMAS[-1]}: "
            "upgrade hwr-pi (pip install -U hwr-pi) or " + FIX
        )
    for key, kind in (("machine", dict), ("results", list)):
        if not isinstance(doc.get(key), kind):
            raise EdgeError(f"{path} lacks {key!r} (a JSON {kind.__name__}): {FIX}")
    return doc


def _num(value) -> float:
    return NAN if value is None or isinstance(value, bool) else float(value)


def _interval(value) -> tuple[float, float] | None:
    """A [lo, hi] pair of finite numbers, else None."""
    if not isinstance(value, list) or len(value) != 2 or None in value:
        return None
    lo, hi = float(value[0]), float(value[1])
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


def _need(record, key: str, where: str):
    if not isinstance(record, dict) or record.get(key) is None:
        raise EdgeError(f"{where} lacks {key!r}: {FIX}")
    return record[key]


def _result(row: dict, device: str, source: str, where: str) -> Result:
    latency = _need(row, "latency", where)
    threads = row.get("threads")
    return Result(
        device=device,
        source=source,
        model=str(_need(row, "model", where)),
        variant=str(row.get("variant") or Path(str(row.get("path", "?"))).stem),
        threads=None if threads is None else int(threads),
        xnnpack=row.get("xnnpack"),
        backend=f"{row.get('backend', '?')} {row.get('backend_version', '')}".strip(),
        accuracy=_num(row.get("accuracy")),
        ci95=_interval(row.get("accuracy_ci95")),
        p50=_num(_need(latency, "p50", f"{where} latency")),
        p90=_num(latency.get("p90")),
        p99=_num(latency.get("p99")),
        size_bytes=_num(row.get("size_bytes")),
        peak_rss_mb=_num(row.get("peak_rss_mb")),
        rss_growth_mb=_num(row.get("rss_growth_mb")),
        overhead_ratio=_num(row.get("overhead_ratio")),
        samples_ms=tuple(float(v) for v in row.get("latency_samples_ms") or ()),
        float_ops=_names(row.get("float_ops")),
    )


def _names(value) -> tuple[str, ...] | None:
    """A recorded list of op names; None where the file has none (or not a list)."""
    return tuple(str(v) for v in value) if isinstance(value, list) else None


def _sweep(doc: dict, device: str, where: str) -> list[SweepPoint]:
    return [
        SweepPoint(
            device,
            str(_need(r, "model", f"{where}: sweep[{i}]")),
            str(r.get("variant", "")),
            int(_need(r, "threads", f"{where}: sweep[{i}]")),
            r.get("xnnpack"),
            _num(_need(r, "p50", f"{where}: sweep[{i}]")),
            _num(r.get("p90")),
            _num(r.get("p99")),
        )
        for i, r in enumerate(doc.get("sweep") or ())
    ]


def _stages(doc: dict, device: str) -> list[StageTiming]:
    """The file's stage p50s; for schema 1, derived from the per-photo camera-path timings."""
    if doc.get("stages"):
        return [
            StageTiming(
                device,
                str(s.get("model", "?")),
                int(s.get("frames") or 0),
                *(_num(s.get(k)) for k in ("capture_ms", "preprocess_ms", "invoke_ms", "post_ms")),
                _parts(s),
            )
            for s in doc["stages"]
        ]
    stages = []
    for p in doc.get("photos") or ():
        rows = p.get("results") or []
        pre = [r["preprocess_ms"] for r in rows if r.get("preprocess_ms") is not None]
        inv = [r["invoke_ms"] for r in rows if r.get("invoke_ms") is not None]
        if pre and inv:
            median = statistics.median
            stages.append(
                StageTiming(
                    device, str(p.get("model")), len(rows), NAN, median(pre), median(inv), NAN
                )
            )
    return stages


def _parts(stage: dict) -> tuple[tuple[str, float], ...]:
    """The stage's `preprocess_<part>_ms` p50s, in the file's order (none in older files)."""
    return tuple(
        (key.removeprefix(PART_PREFIX).removesuffix("_ms"), _num(value))
        for key, value in stage.items()
        if key.startswith(PART_PREFIX) and key.endswith("_ms") and key != "preprocess_ms"
    )


def _photos(doc: dict, device: str) -> list[PhotoResult]:
    keys = ("exact_accuracy", "char_accuracy", "single_accuracy", "multi_exact_accuracy")
    return [
        PhotoResult(
            device,
            str(p.get("model", "?")),
            int(p.get("images") or 0),
            *(_num(p.get(k)) for k in keys),
            _num(p.get("preprocess_p50_ms")),
        )
        for p in doc.get("photos") or ()
    ]


def _device_names(docs: Sequence[tuple[str, dict]]) -> list[str]:
    """Name each file's device: Pi model or CPU, numbered when two machines share a name."""
    by_key: dict[tuple, str] = {}
    for _, doc in docs:
        m = doc["machine"]
        key = tuple(str(m.get(k)) for k in IDENTITY)
        if key not in by_key:
            label = str(m.get("pi_model") or m.get("cpu") or m.get("machine") or "unknown device")
            same = sum(1 for v in by_key.values() if v.split(" #")[0] == label)
            by_key[key] = f"{label} #{same + 1}" if same else label
    return [by_key[tuple(str(d["machine"].get(k)) for k in IDENTITY)] for _, d in docs]


def _records(source: str, doc: dict, device: str) -> tuple[list, list, list, list]:
    """One file's results, sweep points, stage timings and photo results."""
    try:
        rows = [
            _result(r, device, source, f"{source}: results[{i}]")
            for i, r in enumerate(doc["results"])
        ]
        return rows, _sweep(doc, device, source), _stages(doc, device), _photos(doc, device)
    except (AttributeError, TypeError, ValueError) as exc:
        raise EdgeError(f"{source} holds a malformed record ({exc}): {FIX}") from None


def _devices(docs: Sequence[tuple[str, dict]], names: list[str], results) -> list[Device]:
    devices = []
    for name in dict.fromkeys(names):
        mine = [(source, doc) for (source, doc), n in zip(docs, names, strict=True) if n == name]
        backends = sorted({r.backend for r in results if r.device == name})
        devices.append(
            Device(name, mine[0][1]["machine"], tuple(s for s, _ in mine), tuple(backends))
        )
    return devices


def merge(docs: Sequence[tuple[str, dict]]) -> Fleet:
    """Merge validated files (name, document) into one Fleet; a later file's row for the same
    (device, model, variant, threads, xnnpack) replaces an earlier one, with a note."""
    names = _device_names(docs)
    results: dict[tuple, Result] = {}
    sweep, stages, photos, warnings, notes, sources = [], [], [], [], [], []
    for (source, doc), device in zip(docs, names, strict=True):
        rows, file_sweep, file_stages, file_photos = _records(source, doc, device)
        for r in rows:
            if r.key in results:
                notes.append(
                    f"{source} replaces {results[r.key].source} for {device} {r.model}/{r.variant}"
                )
            results[r.key] = r
        sweep += file_sweep
        stages += file_stages
        photos += file_photos
        warnings += [(device, source, str(w)) for w in doc.get("warnings") or ()]
        sources.append((source, device, doc["schema_version"], len(rows)))
    order = sorted(results.values(), key=lambda r: (r.device, r.model, r.variant, r.threads or 0))
    devices = _devices(docs, names, order)
    parts = (sources, devices, order, sweep, stages, photos, warnings, notes)
    return Fleet(*(tuple(part) for part in parts))


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (latency, accuracy) points that no other point dominates, fastest first.

    A point dominates another when it is at least as fast and at least as accurate, and
    differs; points with a NaN are left out.
    """
    ok = [i for i, p in enumerate(points) if all(math.isfinite(v) for v in p)]

    def dominated(i: int) -> bool:
        (lat, acc) = points[i]
        return any(
            points[j][0] <= lat and points[j][1] >= acc and points[j] != points[i] for j in ok
        )

    return sorted((i for i in ok if not dominated(i)), key=lambda i: points[i])


def fronts(fleet: Fleet) -> dict[str, list[Result]]:
    """The Pareto front of each device (latencies of different devices do not compare)."""
    out = {}
    for device in fleet.devices:
        rows = [r for r in fleet.results if r.device == device.name]
        out[device.name] = [rows[i] for i in pareto_front([(r.p50, r.accuracy) for r in rows])]
    return out


def _out_dir(path: Path) -> Path:
    """Create the report folder (and parents) or fail with a one-line fix."""
    if path.exists() and not path.is_dir():
        raise EdgeError(f"--out {path} is a file: give a folder for the report")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgeError(
            f"cannot create {path} ({exc.strerror or exc}): choose another --out"
        ) from None
    return path


def _write(out: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        try:
            atomic_write_bytes(out / name, data)
        except OSError as exc:
            raise EdgeError(
                f"cannot write {out / name} ({exc.strerror or exc}): choose another --out"
            ) from None


def cmd_report(args: argparse.Namespace) -> int:
    """`edge report RESULTS.json... --out DIR`: merge, plot, write report.md and report.html."""
    docs = [(str(path), load_file(path)) for path in args.results]
    fleet = merge(docs)
    front = fronts(fleet)
    plots: dict[str, dict[str, bytes]] = {}
    if not args.no_plots:
        from edge.plots import render_plots  # matplotlib only when plotting

        plots = render_plots(fleet, front)
    images = None if args.no_plots else {kind: list(pngs) for kind, pngs in plots.items()}
    sections = build_sections(fleet, front, images)
    out = _out_dir(args.out)
    for pngs in plots.values():
        _write(out, pngs)
    _write(
        out,
        {
            "report.md": render_markdown(args.title, sections).encode("utf-8"),
            "report.html": render_html(args.title, sections).encode("utf-8"),
        },
    )
    print(render_summary(fleet, front, out, sum(len(p) for p in plots.values())))
    return 0
