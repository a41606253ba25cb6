"""Plots of merged benchmark results for `edge report`, each rendered to PNG bytes.

matplotlib is imported lazily (the `report` extra), so the Pi runtime never needs it.
"""

from __future__ import annotations

import io
import math
import re
from typing import TYPE_CHECKING

from edge.bench import FRAME_STAGES
from edge.errors import EdgeError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from edge.fleet import Fleet, Result, StageTiming, SweepPoint

MISSING = (
    "matplotlib is not installed: pip install matplotlib "
    "(or sudo apt install python3-matplotlib), or pass --no-plots"
)
STAGES = tuple(f"{stage}_ms" for stage in FRAME_STAGES)  # as bench JSON names them
DPI = 110


def new_figure(width: float = 8.0, height: float = 5.0) -> Figure:
    """A matplotlib Figure on the Agg backend (no display needed).

    Raises:
        EdgeError: matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError:
        raise EdgeError(MISSING) from None
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def to_png(fig: Figure) -> bytes:
    """Render a figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _scatter_device(ax, device: str, rows: list[Result], colour: str, biggest: float) -> None:
    """One device's results, marker area by file size, labels staggered so neighbours do not
    overlap."""
    area = [20 + 380 * (r.size_bytes / biggest if math.isfinite(r.size_bytes) else 0) for r in rows]
    ax.scatter(
        [r.p50 for r in rows],
        [100 * r.accuracy for r in rows],
        s=area,
        alpha=0.5,
        color=colour,
        edgecolors="k",
        linewidths=0.5,
        label=device,
    )
    for k, r in enumerate(rows):
        ax.annotate(
            f"{r.model}/{r.variant}",
            (r.p50, 100 * r.accuracy),
            fontsize=7,
            xytext=(5, 3 + 9 * (k % 3)),
            textcoords="offset points",
        )


def _plain():
    """A tick formatter that writes 0.01 and 100, not 10^-2 and 10^2."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:g}")


def _latency_axis(ax, latencies: list[float]) -> None:
    """Log scale when latencies span more than 20x, with plain tick labels."""
    positive = [v for v in latencies if v > 0]
    if positive and max(positive) / min(positive) > 20:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(_plain())


def pareto_png(results: list[Result], fronts: dict[str, list[Result]]) -> bytes:
    """Accuracy vs p50 latency, one colour per device, marker area by model size, and each
    device's Pareto front as a step line."""
    fig = new_figure(9, 6)
    ax = fig.subplots()
    biggest = max((r.size_bytes for r in results if math.isfinite(r.size_bytes)), default=1.0)
    for i, (device, front) in enumerate(fronts.items()):
        rows = [r for r in results if r.device == device and math.isfinite(r.accuracy)]
        _scatter_device(ax, device, sorted(rows, key=lambda r: r.p50), f"C{i}", biggest)
        if front:
            ax.step(
                [r.p50 for r in front],
                [100 * r.accuracy for r in front],
                where="post",
                color=f"C{i}",
                linewidth=1.5,
                label=f"{device}: Pareto front",
            )
    _latency_axis(ax, [r.p50 for r in results])
    ax.margins(x=0.08, y=0.12)  # room for the labels above the points
    ax.set_xlabel("p50 latency per image (ms)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy vs latency (marker area: model file size)")
    ax.grid(True, alpha=0.3)
    fig.legend(fontsize=8, loc="outside lower center", ncols=2, markerscale=0.5, frameon=False)
    return to_png(fig)


def latency_png(result: Result) -> bytes:
    """Histogram of one result's raw latency samples, with its p50/p90/p99 marked."""
    fig = new_figure(7, 4)
    ax = fig.subplots()
    ax.hist(result.samples_ms, bins=80, color="C0", alpha=0.8)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_plain())
    for name, value, style in (
        ("p50", result.p50, "-"),
        ("p90", result.p90, "--"),
        ("p99", result.p99, ":"),
    ):
        if math.isfinite(value):
            ax.axvline(value, color="C3", linestyle=style, label=f"{name} {value:.3f} ms")
    threads = "default" if result.threads is None else result.threads
    ax.set_title(f"{result.device}: {result.model}/{result.variant}, threads {threads}")
    ax.set_xlabel(f"latency per image (ms), {len(result.samples_ms)} runs")
    ax.set_ylabel("runs (log)")
    ax.legend(fontsize=8)
    return to_png(fig)


def stages_png(stages: list[StageTiming]) -> bytes:
    """Stacked horizontal bars of camera-path stage p50s, one bar per device and model."""
    fig = new_figure(9, 1.8 + 0.5 * len(stages))
    ax = fig.subplots()
    labels = [f"{s.device}: {s.model}" for s in stages]
    left = [0.0] * len(stages)
    for i, key in enumerate(STAGES):
        widths = [getattr(s, key) if math.isfinite(getattr(s, key)) else 0.0 for s in stages]
        ax.barh(labels, widths, left=left, color=f"C{i}", label=key.removesuffix("_ms"))
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for y, total in enumerate(left):
        ax.text(total, y, f" {total:.1f} ms", va="center", fontsize=8)
    ax.set_xlim(0, 1.15 * max(left, default=1.0) or 1.0)
    ax.invert_yaxis()
    ax.set_xlabel("p50 per frame (ms)")
    ax.set_title("Camera-path time per stage")
    fig.legend(fontsize=8, ncols=4, loc="outside lower center", frameon=False)
    return to_png(fig)


def threads_png(sweep: list[SweepPoint]) -> bytes:
    """p50 latency vs interpreter threads, one line per device, model, variant and XNNPACK."""
    fig = new_figure(8, 5)
    ax = fig.subplots()
    lines: dict[str, list[SweepPoint]] = {}
    for s in sweep:
        xnn = "" if s.xnnpack is None else f" xnnpack {'on' if s.xnnpack else 'off'}"
        lines.setdefault(f"{s.device}: {s.model}/{s.variant}{xnn}", []).append(s)
    for label, points in lines.items():
        points = sorted(points, key=lambda s: s.threads)
        ax.plot([s.threads for s in points], [s.p50 for s in points], marker="o", label=label)
    ax.set_xticks(sorted({s.threads for s in sweep}))
    ax.set_xlabel("interpreter threads")
    ax.set_ylabel("p50 latency per image (ms)")
    ax.set_title("Thread scaling")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return to_png(fig)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._]+", "-", text.lower()).strip("-")[:60]


def render_plots(fleet: Fleet, fronts: dict[str, list[Result]]) -> dict[str, dict[str, bytes]]:
    """Every plot the fleet's data allows, by kind (pareto, latency, stages, threads): name -> PNG.

    Raises:
        EdgeError: matplotlib is not installed.
    """
    new_figure()  # fail before any work when matplotlib is missing
    plots: dict[str, dict[str, bytes]] = {}
    if fleet.results:
        plots["pareto"] = {"pareto.png": pareto_png(list(fleet.results), fronts)}
    with_samples = [r for r in fleet.results if r.samples_ms]
    plots["latency"] = {
        f"latency-{i:02d}-{_slug(f'{r.device}-{r.model}-{r.variant}-t{r.threads}')}.png": latency_png(
            r
        )
        for i, r in enumerate(with_samples, 1)
    }
    if fleet.stages:
        plots["stages"] = {"stages.png": stages_png(list(fleet.stages))}
    if fleet.sweep:
        plots["threads"] = {"threads.png": threads_png(list(fleet.sweep))}
    return plots
