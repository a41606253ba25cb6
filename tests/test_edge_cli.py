"""The `edge` command line: bad input -> exit 2 and one line naming the fix; good input -> output.

Commands run in-process through `edge.cli.main` (the `run_edge` fixture), except where the
test is about the process itself (`python -m edge`, `--debug` tracebacks).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.datasets import Split, save_npz_split
from edge.spec import file_sha256

REPO_ROOT = Path(__file__).resolve().parents[1]
FAST_BENCH = ["--runs", "50", "--warmup", "5", "--min-seconds", "0.05"]


def assert_one_error_line(code: int, err: str, match: str = "") -> str:
    """Exit 2, exactly one stderr line starting 'edge: error:', no traceback; return the line."""
    lines = err.strip().splitlines()
    assert code == 2, f"exit {code}, stderr: {err!r}"
    assert "Traceback" not in err
    assert len(lines) == 1, f"expected one stderr line, got {lines}"
    assert lines[0].startswith("edge: error: "), lines[0]
    if match:
        assert match.lower() in lines[0].lower(), f"{match!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """An empty folder for --json/--csv outputs: it must stay empty when a command fails."""
    folder = tmp_path / "out dir"
    folder.mkdir()
    return folder


@pytest.fixture
def image(golden_dir, golden_expected) -> Path:
    """One golden image."""
    return golden_dir / golden_expected[0]["image"]


def edit_sidecar(folder: Path, change) -> None:
    """Apply `change(dict)` to folder/int8.json."""
    path = folder / "int8.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def replace_model(folder: Path, data: bytes) -> None:
    """Write new model bytes and update the sidecar's SHA-256 to match (so only the
    interpreter can refuse the file)."""
    (folder / "int8.tflite").write_bytes(data)
    edit_sidecar(folder, lambda d: d.update(sha256=file_sha256(folder / "int8.tflite")))


def _size(folder: Path) -> int:
    return (folder / "int8.tflite").stat().st_size


def _cut(folder: Path) -> None:
    data = (folder / "int8.tflite").read_bytes()
    (folder / "int8.tflite").write_bytes(data[: len(data) // 2])


# name -> (change the golden copy, text the error line must contain)
MODEL_FAULTS = {
    "missing tflite": (lambda d: (d / "int8.tflite").rename(d / "other.tflite"), "not found"),
    "tflite and sidecar missing": (
        lambda d: [(d / name).unlink() for name in ("int8.tflite", "int8.json")],
        "not found",  # a wrong model path is not reported as a missing sidecar
    ),
    "empty tflite": (lambda d: (d / "int8.tflite").write_bytes(b""), "is empty"),
    "truncated tflite": (_cut, "SHA-256"),
    "random bytes, sha updated": (
        lambda d: replace_model(d, np.random.default_rng(0).bytes(60_000)),
        "does not load",
    ),
    "truncated, sha updated": (
        lambda d: replace_model(d, (d / "int8.tflite").read_bytes()[: _size(d) // 2]),
        "does not load",
    ),
    "missing sidecar": (lambda d: (d / "int8.json").unlink(), "no sidecar"),
    "sidecar not json": (lambda d: (d / "int8.json").write_text("{'labels': ["), "not valid JSON"),
    "sidecar lacks key": (lambda d: edit_sidecar(d, lambda s: s.pop("labels")), "'labels'"),
    "input shape differs": (
        lambda d: edit_sidecar(d, lambda s: s["input"].update(shape=[1, 32, 32, 1])),
        "input does not match its sidecar (shape",
    ),
    "input dtype differs": (
        lambda d: edit_sidecar(d, lambda s: s["input"].update(dtype="float32")),
        "dtype",
    ),
    "input scale differs": (
        lambda d: edit_sidecar(d, lambda s: s["input"].update(scale=2 * s["input"]["scale"])),
        "input does not match its sidecar (quantization",
    ),
    "output zero point differs": (
        lambda d: edit_sidecar(d, lambda s: s["output"].update(zero_point=0)),
        "output does not match its sidecar (quantization",
    ),
    "label count differs": (
        lambda d: edit_sidecar(d, lambda s: s["labels"].pop()),
        "labels",
    ),
}


@pytest.mark.parametrize("command", ["info", "classify"])
@pytest.mark.parametrize("fault", list(MODEL_FAULTS))
def test_bad_model_or_sidecar(run_edge, golden_copy, out_dir, image, command, fault):
    change, message = MODEL_FAULTS[fault]
    change(golden_copy)
    args = [command, golden_copy / "int8.tflite"] + ([image] if command == "classify" else [])
    code, out, err = run_edge([*args, "--json", out_dir / "result.json"])
    assert_one_error_line(code, err, message)
    assert out == ""
    assert list(out_dir.iterdir()) == []


def _write_grey(path: Path) -> None:
    cv2.imwrite(str(path), np.full((64, 64), 128, np.uint8))


@pytest.mark.parametrize(
    "given, message",
    [
        (".", "is a folder: pass a .tflite file in it (here: int8.tflite)"),
        ("int8.json", "is a sidecar, not a model: pass the model beside it"),
    ],
)
def test_a_folder_or_sidecar_given_as_the_model(run_edge, golden_copy, image, given, message):
    for command in (["info"], ["classify", image], ["bench"]):
        code, out, err = run_edge([command[0], golden_copy / given, *command[1:]])
        assert_one_error_line(code, err, message)
        assert out == ""


@pytest.mark.parametrize("flag", ["--debug-dir", "--save-dir"])
@pytest.mark.parametrize("under", [False, True])
def test_a_file_as_output_folder_fails_before_work(
    run_edge, golden_model, image, tmp_path, flag, under
):
    afile = tmp_path / "taken.png"
    afile.write_bytes(b"keep me")
    folder = afile / "sub" if under else afile
    if flag == "--debug-dir":
        command = ["classify", golden_model, image]
    else:
        command = ["live", golden_model, "--source", image]
    code, out, err = run_edge([*command, flag, folder])
    assert_one_error_line(code, err, f"{flag} {folder} is not a folder")
    assert out == "" and afile.read_bytes() == b"keep me"


IMAGE_FAULTS = {
    "text as png": (
        lambda d: (d / "note.png").write_text("not an image\n"),
        "note.png",
        "cannot read",
    ),
    "empty png": (lambda d: (d / "empty.png").write_bytes(b""), "empty.png", "cannot read"),
    "no ink": (lambda d: _write_grey(d / "grey.png"), "grey.png", "no characters found"),
    "folder without images": (lambda d: (d / "notes.txt").write_text("x"), ".", "holds no images"),
    "folder with only a folder": (lambda d: (d / "sub.png").mkdir(), ".", "holds no images"),
    "missing image": (lambda d: None, "missing.png", "not found"),
}


@pytest.mark.parametrize("fault", list(IMAGE_FAULTS))
def test_bad_image(run_edge, golden_model, tmp_path, out_dir, fault):
    folder = tmp_path / "images dir"
    folder.mkdir()
    make, name, message = IMAGE_FAULTS[fault]
    make(folder)
    target = folder if name == "." else folder / name
    code, out, err = run_edge(["classify", golden_model, target, "--json", out_dir / "p.json"])
    line = assert_one_error_line(code, err, message)
    assert str(target) in line
    assert list(out_dir.iterdir()) == []


def test_a_batch_reads_past_images_without_a_reading(
    run_edge, golden_model, golden_dir, golden_expected, tmp_path, out_dir
):
    """Several images: one that cannot be read or holds no ink is named on stderr and recorded
    with its error, the others are read and saved, and the exit code says some failed."""
    good = [golden_dir / e["image"] for e in golden_expected[:2]]
    bad = tmp_path / "bad image.png"
    bad.write_text("nope")
    _write_grey(tmp_path / "grey.png")
    images = [good[0], bad, tmp_path / "grey.png", good[1]]
    code, out, err = run_edge(["classify", golden_model, *images, "--json", out_dir / "p.json"])
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"edge: skipped cannot read image {bad}: empty or not an image file (use PNG or JPEG)",
        f"edge: skipped {tmp_path / 'grey.png'}: no characters found (photograph dark ink on "
        "light paper, fill more of the frame with the writing)",
        f"edge: error: 2 of 4 images gave no reading (each named above); the readings are in "
        f"{out_dir / 'p.json'}: photograph dark ink on light paper, or leave those files out",
    ]
    assert [line.split(": ")[0] for line in out.splitlines()] == [str(p) for p in good]
    records = json.loads((out_dir / "p.json").read_text())["predictions"]
    assert [r["image"] for r in records] == [str(p) for p in images]
    assert [bool(r["chars"]) for r in records] == [True, False, False, True]
    assert ["error" in r for r in records] == [False, True, True, False]


def test_an_undecodable_video_gives_our_line_only(golden_model, tmp_path):
    """FFmpeg's own complaint about a file that is not a video is not printed beside ours."""
    (tmp_path / "clip.mp4").write_text("not a video\n")
    args = ["-m", "edge", "live", str(golden_model), "--source", "clip.mp4", "--frames", "1"]
    run = _python(args, cwd=tmp_path)
    lines = [line for line in run.stderr.splitlines() if not line.startswith("INFO: ")]
    assert run.returncode == 2
    assert len(lines) == 1 and lines[0].startswith("edge: error: cannot read video clip.mp4")


def test_an_undecodable_image_gives_our_line_only(golden_model, tmp_path):
    """OpenCV's own decoder message (a PGM header cut short) is not printed beside ours."""
    (tmp_path / "cut.png").write_bytes(b"P5\n")
    run = _python(["-m", "edge", "classify", str(golden_model), "cut.png"], cwd=tmp_path)
    lines = [line for line in run.stderr.splitlines() if not line.startswith("INFO: ")]
    assert run.returncode == 2
    assert lines == [
        "edge: error: cannot read image cut.png: empty or not an image file (use PNG or JPEG)"
    ]


def _corrupt_mnist(shared_data: Path, root: Path) -> None:
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (root / "mnist").mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / "mnist" / name, root / "mnist" / name)
    images = root / "mnist" / "t10k-images-idx3-ubyte.gz"
    data = bytearray(images.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    images.write_bytes(bytes(data))


def test_bench_dataset_missing(run_edge, golden_model, data_root, out_dir):
    code, out, err = run_edge(
        ["bench", golden_model, "--dataset", "mnist", *FAST_BENCH, "--json", out_dir / "b.json"],
        env={"HWR_DATA_DIR": data_root},
    )
    assert_one_error_line(code, err, "MNIST file missing")
    assert out == "" and list(out_dir.iterdir()) == []


def test_bench_dataset_checksum_failure(run_edge, golden_model, shared_data, data_root, out_dir):
    _corrupt_mnist(shared_data, data_root)
    code, out, err = run_edge(
        ["bench", golden_model, "--dataset", "mnist", *FAST_BENCH, "--csv", out_dir / "b.csv"],
        env={"HWR_DATA_DIR": data_root},
    )
    assert_one_error_line(code, err, "SHA-256")
    assert out == "" and list(out_dir.iterdir()) == []


def _npz(path: Path, images: np.ndarray, labels, classes=tuple("0123456789")) -> Path:
    split = Split("synthetic", "test", images, np.asarray(labels, np.int64), classes)
    return save_npz_split(split, path)


NPZ_FAULTS = {
    "wrong image size": (lambda p: _npz(p, np.zeros((3, 16, 16), np.uint8), [0, 1, 2]), "16"),
    "other classes": (
        lambda p: _npz(p, np.zeros((2, 28, 28), np.uint8), [0, 1], tuple("ABCDEFGHIJ")),
        "classes",
    ),
    "no images": (lambda p: _npz(p, np.zeros((0, 28, 28), np.uint8), []), "no images"),
    "not an npz": (lambda p: p.write_text("hello"), "not a readable evaluation file"),
    "missing npz": (lambda p: None, "evaluation file missing"),
}


@pytest.mark.parametrize("fault", list(NPZ_FAULTS))
def test_bench_bad_evaluation_file(run_edge, golden_model, tmp_path, out_dir, fault):
    make, message = NPZ_FAULTS[fault]
    path = tmp_path / "eval set.npz"
    make(path)
    code, out, err = run_edge(
        ["bench", golden_model, "--dataset", path, *FAST_BENCH, "--json", out_dir / "b.json"]
    )
    # bench reports which model it starts on; the error is the one other, last, line
    lines = err.strip().splitlines()
    assert all(line.startswith("benchmarking ") for line in lines[:-1]), lines
    assert_one_error_line(code, lines[-1], message)
    assert out == "" and list(out_dir.iterdir()) == []


def test_bench_unknown_dataset_suggests(run_edge, golden_model):
    code, _, err = run_edge(["bench", golden_model, "--dataset", "mnsit", *FAST_BENCH])
    assert_one_error_line(code, err, "did you mean 'mnist'")


def test_bench_without_eval_file_names_dataset_flag(run_edge, golden_copy):
    code, _, err = run_edge(["bench", golden_copy / "int8.tflite", *FAST_BENCH])
    assert_one_error_line(code, err, "--dataset")


@pytest.mark.parametrize(
    ("command", "flag"),
    [("info", "--json"), ("classify", "--json"), ("bench", "--json"), ("bench", "--csv")],
)
def test_output_into_missing_folder_fails_before_work(
    run_edge, golden_model, image, tmp_path, command, flag
):
    target = tmp_path / "no such dir" / "out.json"
    extra = {"info": [], "classify": [image], "bench": ["--dataset", "mnist", *FAST_BENCH]}
    code, out, err = run_edge([command, golden_model, *extra[command], flag, target])
    assert_one_error_line(code, err, "does not exist")
    assert out == ""  # nothing measured or printed before the path was checked
    assert not target.parent.exists()


def test_output_onto_a_folder_fails(run_edge, golden_model, out_dir):
    code, out, err = run_edge(["info", golden_model, "--json", out_dir])
    assert_one_error_line(code, err, "is a folder")


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["bench", "M", "--runs", "0", "--min-seconds", "0"], "--runs"),
        (["bench", "M", "--threads", "0"], "--threads"),
        (["classify", "M", "I", "--top-k", "0"], "--top-k"),
        (["classify", "M", "I", "--top-k", "three"], "--top-k"),
        (["explode", "M"], "invalid choice"),
        ([], "required"),
    ],
    ids=["runs-0", "threads-0", "top-k-0", "top-k-word", "unknown-command", "no-command"],
)
def test_usage_errors_exit_2(run_edge, golden_model, image, args, flag):
    args = [{"M": golden_model, "I": image}.get(a, a) for a in args]
    code, out, err = run_edge(args)
    assert code == 2
    assert "Traceback" not in err and err.startswith("usage: edge")
    assert flag in err.strip().splitlines()[-1]
    assert out == ""


def _python(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_debug_shows_traceback(golden_copy, tmp_path):
    missing = golden_copy / "missing.tflite"
    plain = _python(["-m", "edge", "info", str(missing)], cwd=tmp_path)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    debug = _python(["-m", "edge", "--debug", "info", str(missing)], cwd=tmp_path)
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr and "ModelError" in debug.stderr


def test_debug_in_process_raises(golden_copy):
    from edge.cli import main
    from edge.errors import ModelError

    with pytest.raises(ModelError, match="not found"):
        main(["--debug", "info", str(golden_copy / "missing.tflite")])


def test_help_runs_as_module_and_as_function(tmp_path):
    module = _python(["-m", "edge", "--help"], cwd=tmp_path)
    assert module.returncode == 0, module.stderr
    for command in ("classify", "bench", "info"):
        assert command in module.stdout
    code = "import sys; from edge.cli import main; sys.exit(main(['bench', '--help']))"
    function = _python(["-c", code], cwd=tmp_path)
    assert function.returncode == 0, function.stderr
    assert "--min-acc" in function.stdout


def test_info_prints_json_with_sidecar(run_edge, golden_model, golden_sidecar, out_dir):
    report = out_dir / "info.json"
    code, out, err = run_edge(["info", golden_model, "--json", report])
    assert code == 0, err
    details = json.loads(out)
    assert json.loads(report.read_text()) == details
    assert details["sidecar"]["sha256"] == golden_sidecar["sha256"]
    assert details["sidecar"]["labels"] == golden_sidecar["labels"]
    assert details["size_bytes"] == golden_model.stat().st_size
    assert details["input"]["shape"] == golden_sidecar["input"]["shape"]
    assert details["float_ops"] == []  # the golden int8 model needs no float kernel
    assert details["backend"].split()[0] in ("ai_edge_litert", "tflite_runtime", "tensorflow")


def test_bench_table_json_csv(run_edge, golden_model, eval_npz, out_dir):
    report, table_csv = out_dir / "bench.json", out_dir / "bench.csv"
    code, out, err = run_edge(
        ["bench", golden_model, "--dataset", eval_npz, *FAST_BENCH, "--json", report]
        + ["--csv", table_csv]
    )
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 4 and "p50 ms" in lines[0] and set(lines[1]) <= {"-", " "}
    doc = json.loads(report.read_text())
    assert {"schema_version", "machine", "settings", "results"} <= set(doc)
    assert doc["settings"]["runs"] == 50 and doc["settings"]["dataset"] == str(eval_npz)
    (result,) = doc["results"]
    assert result["samples"] == 40 and 0.0 <= result["accuracy"] <= 1.0
    assert {"p50", "p90", "p99", "mean", "std"} <= set(result["latency"])
    assert result["latency"]["runs"] >= 50
    assert result["latency"]["p50"] <= result["latency"]["p90"] <= result["latency"]["p99"]
    (row,) = list(csv.DictReader(io.StringIO(table_csv.read_text())))
    assert float(row["latency_p50"]) == pytest.approx(result["latency"]["p50"])
    assert sorted(p.name for p in out_dir.iterdir()) == ["bench.csv", "bench.json"]


def test_bench_gate(run_edge, golden_model, eval_npz, out_dir):
    report = out_dir / "bench.json"
    code, out, err = run_edge(
        ["bench", golden_model, "--dataset", eval_npz, *FAST_BENCH, "--min-acc", "1.01"]
        + ["--json", report]
    )
    assert code == 1
    assert "gate failed" in err.strip().splitlines()[-1]
    assert "Traceback" not in err
    assert report.exists()  # the measurements are kept even when the gate fails
    passed, _, _ = run_edge(
        ["bench", golden_model, "--dataset", eval_npz, *FAST_BENCH, "--min-acc", "0"]
    )
    assert passed == 0


@pytest.mark.parametrize(
    ("gate", "value", "reason"),
    [("--max-p99-ms", "0.000001", "p99 above"), ("--max-rss-mb", "1", "peak RSS above")],
)
def test_bench_latency_and_memory_gates(run_edge, golden_model, eval_npz, gate, value, reason):
    code, _, err = run_edge(
        ["bench", golden_model, "--dataset", eval_npz, *FAST_BENCH, gate, value]
    )
    assert code == 1
    assert reason in err.strip().splitlines()[-1] and "Traceback" not in err
    code, _, err = run_edge(
        ["bench", golden_model, "--dataset", eval_npz, *FAST_BENCH, gate, "1e9"]
    )
    assert code == 0, err


def test_bench_sweep_and_frames_json(run_edge, golden_model, golden_dir, eval_npz, out_dir):
    report = out_dir / "bench.json"
    code, out, err = run_edge(
        ["bench", golden_model, "--dataset", eval_npz, *FAST_BENCH, "--sweep", "--json", report]
        + ["--frames", str(golden_dir / "images"), "--passes", "2"]
    )
    assert code == 0, err
    doc = json.loads(report.read_text())
    assert doc["schema_version"] == 2 and isinstance(doc["warnings"], list)
    assert {p["threads"] for p in doc["sweep"]} == set(range(1, (os.cpu_count() or 1) + 1))
    assert all(p["p50"] > 0 for p in doc["sweep"])
    (stages,) = doc["stages"]
    assert stages["frames"] == len(list((golden_dir / "images").iterdir()))
    assert 0 < stages["invoke_ms"] <= stages["total_ms"]
    assert "XNNPACK" in out and "capture p50/p99 ms" in out


def test_bench_frames_missing_fails_before_timing(run_edge, golden_model, eval_npz, tmp_path):
    code, out, err = run_edge(
        ["bench", golden_model, "--dataset", eval_npz, "--frames", str(tmp_path / "nothing")]
    )
    assert code == 2 and out == ""
    assert "nothing" in err and "folder of images" in err and len(err.strip().splitlines()) == 1


def test_bench_corrupt_model_fails_before_its_data_set(run_edge, golden_model, tmp_path):
    model = tmp_path / golden_model.name  # no test-split.npz beside it: the data set would fail
    model.write_bytes(golden_model.read_bytes()[: golden_model.stat().st_size // 2])
    shutil.copy(golden_model.with_suffix(".json"), model.with_suffix(".json"))
    code, out, err = run_edge(["bench", model])
    assert code == 2 and out == ""
    assert "does not match the SHA-256" in err and len(err.strip().splitlines()) == 1


def test_bench_no_xnnpack(run_edge, golden_model, eval_npz, out_dir):
    from edge.interpreter import load_backend

    report = out_dir / "bench.json"
    code, _, err = run_edge(
        [
            "bench",
            golden_model,
            "--dataset",
            eval_npz,
            *FAST_BENCH,
            "--no-xnnpack",
            "--json",
            report,
        ]
    )
    if not load_backend().can_disable_xnnpack:
        assert code == 2 and "XNNPACK" in err
        return
    assert code == 0, err
    assert json.loads(report.read_text())["results"][0]["xnnpack"] is False
