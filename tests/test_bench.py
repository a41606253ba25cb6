"""edge.bench and edge.report: statistics, the timing loop, one model's BenchRow, table/CSV/JSON."""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import replace

import numpy as np
import pytest

from edge.bench import (
    BenchRow,
    LatencyStats,
    bench_model,
    check_split,
    machine_info,
    measurement_cost_ms,
    p50_drift,
    sweep_model,
    sweep_settings,
    time_calls,
    wilson_interval,
)
from edge.bench_command import float_warnings
from edge.camera import read_image
from edge.datasets import Split
from edge.errors import EdgeError
from edge.interpreter import ops_in_float
from edge.preprocess import extract_character
from edge.report import COLUMNS, format_parts, format_stage_table, format_table, to_csv, to_json
from edge.segment import PREPROCESS_PARTS
from edge.spec import load_spec


def test_latency_stats_from_ns():
    stats = LatencyStats.from_ns(np.arange(1, 11) * 1_000_000)  # 1..10 ms
    assert stats.runs == 10
    assert stats.p50 == pytest.approx(5.5)
    assert stats.p90 == pytest.approx(9.1)
    assert stats.p99 == pytest.approx(9.91)
    assert stats.mean == pytest.approx(5.5)
    assert stats.std == pytest.approx(np.sqrt(8.25))  # population std
    assert (stats.min, stats.max) == (1.0, 10.0)


def test_latency_stats_single_sample():
    stats = LatencyStats.from_ns(np.array([2_500_000]))
    assert (stats.p50, stats.p99, stats.mean, stats.std) == (2.5, 2.5, 2.5, 0.0)


def test_time_calls_counts_warmup_and_runs():
    seen = []
    samples = time_calls(seen.append, ["a", "b", "c"], warmup=4, runs=7, min_seconds=0.0)
    assert len(seen) == 11 and len(samples) == 7
    assert seen == ["a", "b", "c", "a"] + ["a", "b", "c", "a", "b", "c", "a"]
    assert samples.dtype == np.int64 and (samples >= 0).all()


def test_time_calls_respects_min_seconds():
    start = time.perf_counter()
    samples = time_calls(lambda _: time.sleep(0.002), [0], warmup=0, runs=2, min_seconds=0.06)
    elapsed = time.perf_counter() - start
    assert elapsed >= 0.06
    assert len(samples) > 2  # kept going past `runs` until min_seconds
    assert samples.sum() >= 0.9 * 0.002 * 1e9 * len(samples)  # each sample covers the call


@pytest.fixture(scope="module")
def golden_split(golden_model, golden_dir, golden_expected) -> Split:
    """The golden images, preprocessed as `edge classify` does, labelled, as a Split."""
    model_spec = load_spec(golden_model)
    spec, labels = model_spec.preprocess, list(model_spec.labels)
    chars = [extract_character(read_image(golden_dir / e["image"]), spec) for e in golden_expected]
    return Split(
        "golden",
        "test",
        np.stack(chars),
        np.array([labels.index(e["label"]) for e in golden_expected], np.int64),
        tuple(labels),
    )


@pytest.fixture(scope="module")
def row(golden_model, golden_split) -> BenchRow:
    return bench_model(golden_model, golden_split, runs=30, warmup=3, min_seconds=0.02)


def test_bench_model_on_golden(row, golden_model, golden_split, golden_expected, golden_sidecar):
    assert row.samples == len(golden_split)
    correct = [e["predicted"] == e["label"] for e in golden_expected]
    assert row.accuracy == pytest.approx(np.mean(correct))  # the golden predictions, counted
    assert 0.0 <= row.accuracy <= 1.0
    assert row.path == str(golden_model)
    assert row.size_bytes == golden_model.stat().st_size
    assert row.dataset == "golden/test"
    assert row.variant == golden_sidecar.get("variant", golden_model.stem)
    assert row.backend in ("ai_edge_litert", "tflite_runtime", "tensorflow") and row.backend_version
    assert row.latency.runs >= 30 and row.raw_invoke.runs >= 30
    assert row.latency.p50 <= row.latency.p90 <= row.latency.p99 <= row.latency.max
    assert row.overhead_ratio > 0 and row.peak_rss_mb > 0
    assert row.load_ms > 0 and row.first_inference_ms > 0


@pytest.mark.parametrize(
    ("images", "classes", "message"),
    [
        (np.zeros((0, 28, 28), np.uint8), tuple("0123456789"), "no images"),
        (np.zeros((2, 16, 16), np.uint8), tuple("0123456789"), "16"),
        (np.zeros((2, 28, 28), np.uint8), tuple("ABCDEFGHIJ"), "classes"),
    ],
    ids=["empty", "wrong-size", "other-classes"],
)
def test_bench_refuses_mismatched_split(golden_model, images, classes, message):
    from edge.interpreter import Classifier

    split = Split("bad", "test", images, np.zeros(len(images), np.int64), classes)
    with pytest.raises(EdgeError, match=message):
        check_split(Classifier(golden_model), split)


def test_fewer_classes_than_labels_is_allowed(golden_model, golden_split):
    from edge.interpreter import Classifier

    few = replace(golden_split, classes=golden_split.classes[:5])
    check_split(Classifier(golden_model), few)  # a digits split for a model of more classes


def test_format_table(row):
    second = replace(row, model="other model", accuracy=0.5)
    lines = format_table([row, second]).splitlines()
    assert len(lines) == 6
    assert "load" in lines[4] and "timer cost" in lines[4] and "RSS growth" in lines[4]
    lines = lines[:4]
    for column in COLUMNS:
        assert column in lines[0]
    assert set(lines[1]) <= {"-", " "} and "-" in lines[1]
    assert lines[2].startswith(row.model) and lines[3].startswith("other model")
    assert "50.00% (" in lines[3]
    assert len({len(line) for line in lines}) == 1  # aligned: every cell padded to its column


def test_to_csv_flattens_latency(row):
    text = to_csv([row, row])
    records = list(csv.DictReader(io.StringIO(text)))
    assert len(records) == 2
    assert "latency" not in records[0] and "raw_invoke" not in records[0]
    for key in ("latency_p50", "latency_p99", "latency_std", "raw_invoke_p50", "accuracy"):
        assert key in records[0]
    assert "latency_samples_ms" not in records[0]  # samples live in the JSON only
    assert float(records[0]["accuracy_ci95_low"]) <= row.accuracy
    assert float(records[0]["latency_p50"]) == pytest.approx(row.latency.p50)
    assert to_csv([]) == ""


def test_to_json(row):
    doc = json.loads(to_json({"rows": [row]}, machine_info(), {"runs": 30}, ["hot"]))
    assert doc["schema_version"] == 2 and doc["settings"] == {"runs": 30}
    assert doc["warnings"] == ["hot"] and doc["sweep"] == [] and doc["stages"] == []
    assert {"cpu", "cores", "python", "numpy"} <= set(doc["machine"])
    (result,) = doc["results"]
    assert result["latency"]["p50"] == pytest.approx(row.latency.p50)
    assert result["accuracy"] == pytest.approx(row.accuracy)
    assert len(result["latency_samples_ms"]) == row.latency.runs
    assert np.median(result["latency_samples_ms"]) == pytest.approx(row.latency.p50, rel=1e-3)


def test_bench_row_extras(row, golden_split):
    low, high = row.accuracy_ci95
    assert low <= row.accuracy <= high and high - low < 0.5  # 20-odd images: a wide interval
    assert row.tensor_bytes > 0 and row.xnnpack is None
    assert 0 < row.measure_cost_ms < row.latency.p50
    assert row.measure_cost_ratio == pytest.approx(row.measure_cost_ms / row.latency.p50)
    assert abs(row.rss_growth_mb) < 50
    assert row.float_ops == ()  # the golden int8 model runs on integer kernels only
    assert "integer kernels only" in format_table([row])
    assert "ELU x2" in float_warnings([replace(row, float_ops=("ELU", "DEQUANTIZE", "ELU"))])[0]
    assert float_warnings([row, replace(row, variant="float32", float_ops=("ADD",))]) == []
    unlisted = replace(row, float_ops=None)  # a backend without `_get_ops_details`
    assert ops_in_float(object()) is None
    assert "kernels not listed" in format_table([unlisted]) and not float_warnings([unlisted])
    assert list(csv.DictReader(io.StringIO(to_csv([unlisted]))))[0]["float_ops"] == ""


@pytest.mark.parametrize(
    ("correct", "total", "low", "high"),
    # reference values from the Wilson score formula (z = 1.96)
    [
        (95, 100, 0.8882, 0.9785),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (9949, 10000, 0.9933, 0.9961),
    ],
)
def test_wilson_interval(correct, total, low, high):
    lo, hi = wilson_interval(correct, total)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_interval_empty():
    assert all(np.isnan(v) for v in wilson_interval(0, 0))


def test_measurement_cost_is_small():
    assert 0 < measurement_cost_ms() < 0.05  # clock reads and one call: well under 50 us


def test_sweep_settings_cover_threads_and_xnnpack():
    settings = sweep_settings(cores=3)
    assert [(t, x) for t, x in settings if x] == [(1, True), (2, True), (3, True)]
    assert {t for t, x in settings if not x} in (set(), {1, 2, 3})  # off only where possible


def test_sweep_model(golden_model, golden_split):
    settings = [(1, True), (2, True)]
    points = sweep_model(golden_model, golden_split, settings, runs=20, warmup=2, min_seconds=0)
    assert [(p.threads, p.xnnpack) for p in points] == settings
    for point in points:
        assert point.latency.runs >= 20 and point.latency.p50 <= point.latency.p99
        assert point.model and point.variant


def test_xnnpack_off_gives_the_same_predictions(golden_model, golden_split):
    from edge.interpreter import Classifier, load_backend

    if not load_backend().can_disable_xnnpack:
        pytest.skip("this backend cannot turn XNNPACK off")
    on, off = Classifier(golden_model), Classifier(golden_model, xnnpack=False)
    for image in golden_split.images:
        assert np.argmax(on.predict(image)) == np.argmax(off.predict(image))


def test_bench_frames_stages(golden_model, golden_dir):
    from edge.camera_bench import bench_frames
    from edge.interpreter import Classifier

    bench = bench_frames(Classifier(golden_model), str(golden_dir / "images"), passes=2)
    assert bench.frames == len(list((golden_dir / "images").iterdir())) and bench.passes == 2
    parts = tuple(f"preprocess_{part}" for part in PREPROCESS_PARTS)
    assert tuple(bench.stages) == ("capture", "preprocess", "invoke", "post", "total", *parts)
    assert bench.stages["capture"].runs == bench.frames  # the first pass is not timed
    assert bench.stages["total"].p50 >= bench.stages["invoke"].p50 > 0
    assert bench.stages["preprocess_threshold"].p50 > 0
    assert sum(bench.stages[p].mean for p in parts) <= bench.stages["preprocess"].mean
    table = format_stage_table([bench])
    assert table.splitlines()[-1] == f"  {golden_model}: " + format_parts(bench.stages)
    assert "preprocess p50 by part: ink " in table and ", crops " in table


def test_p50_drift():
    steady = np.full(100, 1_000_000)
    assert p50_drift(steady) == 0.0
    slowing = np.concatenate([np.full(50, 1_000_000), np.full(50, 1_500_000)])
    assert p50_drift(slowing) == pytest.approx(0.5 / 1.25)  # block medians 1.0 and 1.5 ms
    assert np.isnan(p50_drift(np.ones(5)))
