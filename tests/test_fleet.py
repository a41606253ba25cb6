"""edge report (edge.fleet, edge.fleet_render, edge.plots): merging bench JSON files of schema 1
and 2 from several devices, the Pareto front, Markdown/HTML tables, PNG plots, bad input."""

from __future__ import annotations

import contextlib
import io
import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.cli import main
from edge.fleet import load_file, merge, pareto_front

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOST = {
    "cpu": "AMD EPYC 7B13",
    "cores": 2,
    "machine": "x86_64",
    "os": "Linux-6.1.0-x86_64-with-glibc2.36",
    "python": "3.11.7",
    "numpy": "2.1.3",
}
PI = {
    "cpu": "Cortex-A72",
    "cores": 4,
    "machine": "aarch64",
    "os": "Linux-6.6.51+rpt-rpi-v8-aarch64-with-glibc2.36",
    "python": "3.11.2",
    "numpy": "1.24.2",
    "pi_model": "Raspberry Pi 4 Model B Rev 1.4",
    "governor": "ondemand",
    "frequency_mhz": 1500.0,
    "temperature_c": 61.3,
}
WARNINGS = [
    "throttled: under-voltage detected (throttled=0x50005)",
    "CPU clock dropped from 1800 to 1500 MHz during the run",
]


FLOAT_CNN_OPS = ["CONV_2D", "MAX_POOL_2D", "CONV_2D", "FULLY_CONNECTED", "SOFTMAX"]
ISLAND_OPS = ["DEQUANTIZE", "ELU", "QUANTIZE"]  # an int8 model with a float island


def _latency(p50: float, spread: float = 0.2, runs: int = 1000) -> dict:
    return {
        "runs": runs,
        "p50": p50,
        "p90": p50 * (1 + spread),
        "p99": p50 * (1 + 3 * spread),
        "mean": p50 * 1.05,
        "std": p50 * spread / 2,
        "min": p50 * 0.9,
        "max": p50 * (1 + 6 * spread),
    }


def _row(model: str, variant: str, acc: float, p50: float, size: int, **extra) -> dict:
    """One BenchRow as `edge bench --json` writes it (schema 1 keys; schema 2 adds `extra`)."""
    return {
        "model": model,
        "path": f"artifacts/{model}/{variant}.tflite",
        "variant": variant,
        "backend": "ai_edge_litert",
        "backend_version": "1.2.0",
        "threads": extra.pop("threads", None),
        "size_bytes": size,
        "dataset": "mnist/test",
        "accuracy": acc,
        "samples": 10000,
        "load_ms": 3.1,
        "first_inference_ms": 0.4,
        "latency": _latency(p50),
        "raw_invoke": _latency(p50 * 0.95),
        "overhead_ratio": 1.05,
        "peak_rss_mb": 61.2,
    } | extra


def _schema2_row(
    model: str, variant: str, acc: float, p50: float, size: int, seed: int, float_ops: list
) -> dict:
    samples = np.random.default_rng(seed).lognormal(np.log(p50), 0.15, 400)
    return _row(
        model,
        variant,
        acc,
        p50,
        size,
        threads=4,
        xnnpack=True,
        tensor_bytes=12_544,
        accuracy_ci95=[acc - 0.0016, acc + 0.0013],
        measure_cost_ms=0.0004,
        rss_growth_mb=0.3,
        latency_samples_ms=np.round(samples, 5).tolist(),
        float_ops=float_ops,
    )


def host_doc() -> dict:
    """Schema 1: the host, three models, no samples, no sweep, no warnings."""
    return {
        "schema_version": 1,
        "machine": HOST,
        "settings": {"dataset": "mnist", "runs": 1000, "threads": None},
        "results": [
            _row("mnist-cnn", "int8", 0.9949, 0.180, 57_200),
            _row("mnist-cnn", "float32", 0.9950, 0.092, 198_372),
            _row("mnist-pca-mlp", "int8", 0.9883, 0.017, 105_600),
        ],
        "photos": [],
    }


def pi_doc() -> dict:
    """Schema 2: a Pi 4 with samples, CI, a thread sweep, camera-path stages and warnings."""
    sweep = [
        {"model": "mnist-cnn", "variant": "int8", "threads": t, "xnnpack": x, "p50": p50}
        | {"p90": p50 * 1.2, "p99": p50 * 1.6, "mean": p50 * 1.05, "runs": 1000}
        for x, base in ((True, 2.4), (False, 3.9))
        for t, p50 in zip((1, 2, 3, 4), (base, base / 1.7, base / 2.2, base / 2.5), strict=True)
    ]
    stage = {"model": "artifacts/mnist-cnn/int8.tflite", "source": "frames/", "frames": 40}
    stage |= {"passes": 3, "capture_ms": 8.1, "preprocess_ms": 21.4, "invoke_ms": 2.3}
    stage |= {"post_ms": 0.2, "total_ms": 32.0, "stats": {}}
    stage |= {"preprocess_ink_ms": 6.5, "preprocess_threshold_ms": 4.25, "preprocess_rules_ms": 7.0}
    return {
        "schema_version": 2,
        "machine": PI,
        "settings": {"dataset": "mnist", "runs": 1000, "threads": 4, "sweep": True},
        "warnings": WARNINGS,
        "results": [
            _schema2_row("mnist-cnn", "int8", 0.9949, 2.41, 57_200, seed=1, float_ops=[]),
            _schema2_row("mnist-cnn", "float32", 0.9950, 4.85, 198_372, 2, FLOAT_CNN_OPS),
            _schema2_row("mnist-pca-mlp", "int8", 0.9883, 0.31, 105_600, 3, ISLAND_OPS),
        ],
        "sweep": sweep,
        "photos": [],
        "stages": [stage],
    }


def write(folder: Path, name: str, doc: dict | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str, list[Path]]:
    """One report over both files (paths with spaces): (out folder, stdout, inputs)."""
    # The plots need the report extra, which a Pi's edge-only install lacks (make verify-arm64).
    pytest.importorskip("matplotlib", reason="edge report's plots need matplotlib (report extra)")
    folder = tmp_path_factory.mktemp("fleet") / "bench runs"
    files = [write(folder, "host run.json", host_doc()), write(folder, "pi 4.json", pi_doc())]
    out = folder / "report out" / "nested"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["report", *map(str, files), "--out", str(out), "--title", "Fleet"])
    assert code == 0
    return out, stdout.getvalue(), files


def test_pareto_front_hand_made():
    points = [
        (1.0, 0.90),  # 0 front
        (2.0, 0.95),  # 1 front
        (1.5, 0.89),  # 2 slower and less accurate than 0
        (3.0, 0.95),  # 3 as accurate as 1, slower
        (0.5, 0.80),  # 4 front: the fastest
        (4.0, 0.99),  # 5 front: the most accurate
        (float("nan"), 1.0),  # 6 not measured: left out
        (1.0, 0.85),  # 7 as fast as 0, less accurate
    ]
    assert pareto_front(points) == [4, 0, 1, 5]
    assert pareto_front([(1.0, 0.9), (1.0, 0.9)]) == [0, 1]  # ties dominate neither
    assert pareto_front([]) == []


def test_report_files_and_pngs(report):
    out, _, _ = report
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"pareto.png", "stages.png", "threads.png"} <= set(pngs)
    assert len([p for p in pngs if p.startswith("latency-")]) == 3  # the Pi rows with samples
    for name in pngs:
        data = (out / name).read_bytes()
        assert data[:8] == PNG_SIGNATURE, name
        width, height = struct.unpack(">II", data[16:24])  # IHDR
        assert width >= 400 and height >= 200 and len(data) > 5000, name
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for name in pngs:
        assert f"({name})" in md and f'src="{name}"' in html


def test_report_tables(report):
    out, _, files = report
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert md.startswith("# Fleet\n") and "<title>Fleet</title>" in html
    for device in ("AMD EPYC 7B13", "Raspberry Pi 4 Model B Rev 1.4"):
        assert f"| {device} |" in md.split("## Devices")[1].split("## ")[0]
        assert f"<td>{device}</td>" in html
    for f in files:
        assert str(f) in md
    results = md.split("## Results")[1].split("## ")[0]
    assert results.count("| mnist-") == 6  # one row per (device, model, variant, threads)
    assert "99.33-99.62%" in results  # the schema-2 CI; schema 1 shows "-"
    assert "61 MB (+0.3)" in results
    assert "| 4 | on |" in results  # threads, XNNPACK
    cells = [line.strip("| ").split(" | ") for line in results.splitlines() if "| mnist-" in line]
    kernels = {(c[0][:3], c[1], c[2]): c[-1] for c in cells}  # schema 1 (the host): "-"
    assert kernels == {
        ("AMD", "mnist-cnn", "int8"): "-",
        ("AMD", "mnist-cnn", "float32"): "-",
        ("AMD", "mnist-pca-mlp", "int8"): "-",
        ("Ras", "mnist-cnn", "int8"): "integer only",
        ("Ras", "mnist-cnn", "float32"): "5 in float",
        ("Ras", "mnist-pca-mlp", "int8"): "3 in float",
    }
    island = "mnist-pca-mlp int8 on Raspberry Pi 4 Model B Rev 1.4: DEQUANTIZE x1, ELU x1"
    assert f"int8 models that still compute in float: {island}, QUANTIZE x1." in md
    for warning in WARNINGS:
        assert f"Raspberry Pi 4 Model B Rev 1.4 ({files[1]}): {warning}" in md
        assert warning in html
    assert "3 of 6 results carry no raw latency samples" in md
    assert "| 8.10 | 21.40 | 2.30 | 0.20 |" in md  # stages
    assert (
        "Preprocess by part on Raspberry Pi 4 Model B Rev 1.4, artifacts/mnist-cnn/int8.tflite "
        "(p50 ms): ink 6.50, threshold 4.25, rules 7.00." in md
    )
    assert md.split("## Thread scaling")[1].count("| mnist-cnn | int8 |") == 8


def test_report_pareto_front_per_device(report):
    out, stdout, _ = report
    front = (out / "report.md").read_text().split("## Pareto front")[1].split("## ")[0]
    rows = [line for line in front.splitlines() if line.startswith("| ") and "mnist" in line]
    # Per device: the PCA-MLP is fastest, the float32 CNN most accurate; the int8 CNN is
    # slower than the float32 CNN on the host (dominated) but faster on the Pi (kept).
    assert [r.split(" | ")[1:3] for r in rows] == [
        ["mnist-pca-mlp", "int8"],
        ["mnist-cnn", "float32"],
        ["mnist-pca-mlp", "int8"],
        ["mnist-cnn", "int8"],
        ["mnist-cnn", "float32"],
    ]
    assert "report: " in stdout and "report.md" in stdout
    assert "devices: AMD EPYC 7B13, Raspberry Pi 4 Model B Rev 1.4" in stdout
    assert "warnings: 2" in stdout


def test_merge_same_device_and_replaced_rows(tmp_path):
    first = write(tmp_path, "a.json", pi_doc())
    again = pi_doc() | {"warnings": [], "sweep": [], "stages": []}
    again["results"] = again["results"][:1]
    second = write(tmp_path, "b.json", again)
    fleet = merge([(str(p), load_file(p)) for p in (first, second)])
    assert [d.name for d in fleet.devices] == ["Raspberry Pi 4 Model B Rev 1.4"]
    assert fleet.devices[0].sources == (str(first), str(second))
    assert len(fleet.results) == 3
    assert fleet.notes == (f"{second} replaces {first} for {fleet.devices[0].name} mnist-cnn/int8",)
    other_pi = pi_doc() | {"machine": PI | {"os": "Linux-6.12-rpi-2712", "cores": 4}}
    fleet = merge([("x", pi_doc()), ("y", other_pi)])
    assert [d.name for d in fleet.devices] == [PI["pi_model"], PI["pi_model"] + " #2"]


def test_schema1_optional_keys_absent(tmp_path):
    doc = host_doc()
    for row in doc["results"]:
        del row["peak_rss_mb"], row["overhead_ratio"], row["size_bytes"]
    fleet = merge([("h.json", load_file(write(tmp_path, "h.json", doc)))])
    assert all(math.isnan(r.size_bytes) and r.ci95 is None for r in fleet.results)
    assert not fleet.sweep and not fleet.stages and not fleet.warnings


def test_no_plots_writes_no_png(tmp_path, capsys):
    src = write(tmp_path, "pi.json", pi_doc())
    out = tmp_path / "out"
    assert main(["report", str(src), "--out", str(out), "--no-plots"]) == 0
    assert not list(out.glob("*.png"))
    md = (out / "report.md").read_text()
    assert "Plots skipped (--no-plots)" in md and ".png" not in md
    assert "(0 plots)" in capsys.readouterr().out


def test_missing_matplotlib_names_the_fix(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    src = write(tmp_path, "pi.json", pi_doc())
    assert main(["report", str(src), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "pip install matplotlib" in err and "--no-plots" in err
    assert not (tmp_path / "out").exists()


BAD_FILES = {
    "corrupt": ("{'schema_version': 1, machine: }", "is not JSON"),
    "truncated": (json.dumps(pi_doc(), indent=2)[:700], "is truncated"),
    "schema 99": (json.dumps(host_doc() | {"schema_version": 99}), "schema_version 99"),
    "no machine": (json.dumps({"schema_version": 1, "results": []}), "lacks 'machine'"),
    "no results": (json.dumps({"schema_version": 2, "machine": HOST}), "lacks 'results'"),
    "empty": ("", "is empty"),
    "bad row": (json.dumps(host_doc() | {"results": [{"model": "m"}]}), "lacks 'latency'"),
    "bad number": (
        json.dumps(host_doc() | {"results": [_row("m", "int8", 0.9, 1.0, 1) | {"threads": "x"}]}),
        "malformed record",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, case):
    text, expected = BAD_FILES[case]
    good = write(tmp_path, "good.json", host_doc())
    bad = write(tmp_path / "runs dir", "bad run.json", text)
    out = tmp_path / "out"
    assert main(["report", str(good), str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("edge: error: ")
    assert str(bad) in err and expected in err
    assert not out.exists()  # nothing written before every file is read


def test_missing_file_and_out_is_a_file(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert main(["report", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert str(missing) in capsys.readouterr().err
    src = write(tmp_path, "h.json", host_doc())
    assert main(["report", str(src), "--out", str(src), "--no-plots"]) == 2
    assert "give a folder" in capsys.readouterr().err


def test_import_edge_cli_loads_no_matplotlib():
    code = "import sys, edge.cli; print(sorted(m for m in ('matplotlib', 'edge.plots') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
