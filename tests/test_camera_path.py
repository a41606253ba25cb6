"""The camera path end to end: `edge live`, `edge bench --photos`, the camera-realistic set."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.camera_bench import bench_photos, edit_distance
from edge.interpreter import Classifier
from tests.test_segment import render_page

FAKE_PICAMERA2 = Path(__file__).parent / "fake_picamera2"


@pytest.fixture
def pages(shared_data, tmp_path) -> tuple[Path, list[str]]:
    """A folder (name with a space) of three rendered pages of MNIST digits and their labels."""
    from edge.datasets import load_split

    test = load_split("mnist", "test", shared_data)
    folder = tmp_path / "page photos"
    folder.mkdir()
    labels = []
    for i, (start, count) in enumerate([(0, 1), (1, 4), (5, 6)]):
        digits = test.images[start : start + count]
        cv2.imwrite(str(folder / f"page {i}.jpg"), render_page(list(digits), per_line=count))
        labels.append("".join(str(v) for v in test.labels[start : start + count]))
    rows = ["file,label"] + [f"page {i}.jpg,{label}" for i, label in enumerate(labels)]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder, labels


def test_live_on_an_image_folder(run_edge, golden_model, pages, tmp_path):
    folder, labels = pages
    saved, summary = tmp_path / "saved frames", tmp_path / "live summary.json"
    code, out, err = run_edge(
        [
            "live",
            golden_model,
            "--source",
            str(folder),
            "--every",
            "1",
            "--save-dir",
            saved,
            "--json",
            summary,
            "--min-confidence",
            "0",
        ]
    )
    assert code == 0, err
    status = [line for line in out.splitlines() if line.startswith("frame ")]
    assert len(status) == 3 and "preprocess" in status[0] and "invoke" in status[0]
    assert "summary: 3 frames" in out
    assert out.splitlines()[-1].startswith("  preprocess p50 by part: ink ")
    assert len(list(saved.glob("frame_*.jpg"))) == 3
    doc = json.loads(summary.read_text())
    assert doc["frames"] == 3 and set(doc["stages_ms"]) >= {"capture", "preprocess", "invoke"}
    assert {"preprocess_ink", "preprocess_crops"} <= set(doc["stages_ms"])
    read = [line.split("'")[1] for line in status]
    assert sum(edit_distance(r, t) for r, t in zip(read, labels, strict=True)) <= 1


def test_live_stops_after_frames(run_edge, golden_model, pages):
    folder, _ = pages
    code, out, _ = run_edge(
        ["live", golden_model, "--source", str(folder), "--loop", "--frames", "5", "--every", "100"]
    )
    assert code == 0 and "summary: 5 frames" in out


def test_live_with_the_pi_camera(run_edge, golden_model, monkeypatch):
    """The fake picamera2 gives a grey ramp: frames flow, nothing is read, the camera closes."""
    monkeypatch.syspath_prepend(str(FAKE_PICAMERA2))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    code, out, err = run_edge(["live", golden_model, "--frames", "3", "--every", "1"])
    assert code == 0, err
    assert "summary: 3 frames" in out
    import picamera2

    assert picamera2.Picamera2.instances[-1].calls[-2:] == ["stop", "close"]


def test_live_without_a_camera_names_the_fix(run_edge, golden_model, monkeypatch):
    monkeypatch.syspath_prepend(str(FAKE_PICAMERA2))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    code, _, err = run_edge(
        ["live", golden_model, "--frames", "1"], env={"FAKE_PICAMERA2_NO_CAMERA": "runtime"}
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "No camera found" in lines[0] and "--source" in lines[0]


def test_bench_photos(run_edge, golden_model, pages, tmp_path):
    folder, _ = pages
    report = tmp_path / "photo bench.json"
    code, out, err = run_edge(["bench", golden_model, "--photos", str(folder), "--json", report])
    assert code == 0, err
    assert "Exact" in out and "Char acc" in out
    doc = json.loads(report.read_text())
    photos = doc["photos"][0]
    assert photos["images"] == 3 and len(photos["results"]) == 3
    assert photos["char_accuracy"] >= 10 / 11


def test_bench_photos_after_camera_like_changes(run_edge, golden_model, pages, tmp_path):
    folder, _ = pages
    report = tmp_path / "conditions.json"
    code, out, err = run_edge(
        ["bench", golden_model, "--photos", str(folder), "--conditions", "as-taken,tilt+8,jpeg20"]
        + ["--json", report]
    )
    assert code == 0, err
    assert "Condition" in out and "tilt+8" in out
    photos = json.loads(report.read_text())["photos"]
    assert [p["condition"] for p in photos] == ["as-taken", "tilt+8", "jpeg20"]
    assert all(p["images"] == 3 for p in photos) and photos[0]["char_accuracy"] >= 10 / 11


def test_unknown_conditions_and_conditions_without_photos_name_the_fix(
    run_edge, golden_model, pages
):
    folder, _ = pages
    code, _, err = run_edge(["bench", golden_model, "--photos", str(folder), "--conditions", "fog"])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "fog" in lines[0] and "tilt+8" in lines[0]
    code, _, err = run_edge(["bench", golden_model, "--conditions", "all"])
    assert code == 2 and "--photos" in err


def test_conditions_are_seeded_and_keep_the_photo_a_photo():
    from edge.conditions import CONDITIONS, apply_condition, parse_conditions

    rng = np.random.default_rng(0)
    photo = rng.integers(120, 230, (900, 1200, 3)).astype(np.uint8)
    assert parse_conditions("all") == list(CONDITIONS)
    for name in CONDITIONS:
        changed = apply_condition(name, photo, seed=3)
        assert changed.dtype == np.uint8 and changed.ndim == 3 and changed.shape[2] == 3
        assert max(changed.shape[:2]) <= (1200 if name == "as-taken" else 640)
        assert np.array_equal(changed, apply_condition(name, photo, seed=3))
    assert not np.array_equal(
        apply_condition("noise8", photo, 1), apply_condition("noise8", photo, 2)
    )


def test_bench_photos_without_labels(run_edge, golden_model, tmp_path):
    (tmp_path / "no labels").mkdir()
    code, _, err = run_edge(["bench", golden_model, "--photos", str(tmp_path / "no labels")])
    assert code == 2 and "labels.csv" in err


@pytest.mark.parametrize(
    "content, message",
    [
        (b"file,label\na.png\n", "line 2: give both a file and its label"),
        (b"file,label\na.png,3\nb.png,\n", "line 3: give both a file and its label"),
        (b"\xff\xfe\x00file", "is not a UTF-8 CSV file"),
        (b"name,text\na.png,3\n", "needs a header with columns file,label"),
    ],
)
def test_bench_photos_with_a_bad_labels_file(run_edge, golden_model, tmp_path, content, message):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "labels.csv").write_bytes(content)
    code, _, err = run_edge(["bench", golden_model, "--photos", str(folder)])
    lines = [line for line in err.strip().splitlines() if line.startswith("edge: ")]
    assert code == 2 and "Traceback" not in err
    assert len(lines) == 1 and message in lines[0]


def test_edit_distance():
    assert edit_distance("1234", "1234") == 0
    assert edit_distance("1234", "124") == 1
    assert edit_distance("", "12") == 2
    assert edit_distance("5685567", "8556756") == 4


@pytest.mark.host
def test_camera_set_is_reproducible_and_labelled(shared_data, tmp_path):
    pytest.importorskip("tensorflow")
    from edge.datasets import load_split
    from train_host.camera_set import CameraSetConfig, build_camera_set

    split = load_split("mnist", "test", shared_data)
    config = CameraSetConfig(singles=3, strings=3, min_length=2, max_length=8, seed=7)
    first = build_camera_set(split, tmp_path / "set one", config)
    second = build_camera_set(split, tmp_path / "set two", config)
    rows = first.read_text().splitlines()[1:]
    assert len(rows) == 6 and rows == second.read_text().splitlines()[1:]
    for row in rows:
        name, label, kind = row.split(",")
        assert (kind == "single") == (len(label) == 1) and 1 <= len(label) <= 8
        a, b = (tmp_path / d / name for d in ("set one", "set two"))
        assert a.read_bytes() == b.read_bytes()
        assert cv2.imread(str(a)).shape == (480, 640, 3)
    assert json.loads((tmp_path / "set one" / "config.json").read_text())["seed"] == 7


@pytest.mark.host
def test_camera_set_of_validation_digits_for_choosing_settings(shared_data, tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    from train_host.cli import main
    from train_host.data import load_dataset, train_val_split

    monkeypatch.setenv("HWR_DATA_DIR", str(shared_data))
    out = tmp_path / "val set"
    args = ["camera-set", "--split", "val", "--singles", "2", "--strings", "0", "--out", str(out)]
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())
    val = train_val_split(load_dataset("mnist", "train", shared_data))[1]
    assert config["split"] == "val" and config["split_sha256"] == val.sha256
    assert len((out / "labels.csv").read_text().splitlines()) == 3


@pytest.mark.host
def test_camera_set_of_other_writers_digits(shared_data, tmp_path, monkeypatch):
    """USPS digits (other writers than MNIST's) render through the same command."""
    pytest.importorskip("tensorflow")
    from train_host.cli import main

    monkeypatch.setenv("HWR_DATA_DIR", str(shared_data))
    out = tmp_path / "usps set"
    args = ["camera-set", "--dataset", "usps28", "--singles", "2", "--strings", "1"]
    assert main([*args, "--min-length", "4", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["dataset"] == "usps28"
    rows = (out / "labels.csv").read_text().splitlines()[1:]
    labels = [row.split(",")[1] for row in rows]
    assert len(rows) == 3 and all(label.isdigit() for label in labels) and len(labels[2]) >= 4
    for row in rows:
        assert cv2.imread(str(out / row.split(",")[0])).shape == (480, 640, 3)


@pytest.mark.host
def test_camera_set_on_squared_paper(shared_data, tmp_path, monkeypatch):
    """`--squared` puts every frame on squared paper: thin lines both ways, about a
    character a cell."""
    pytest.importorskip("tensorflow")
    from train_host.camera_set import paper
    from train_host.cli import main

    page = paper((480, 640), np.random.default_rng(0), 120, squared=True)
    for profile in (page.mean(axis=(0, 2)), page.mean(axis=(1, 2))):  # columns, rows
        lines = np.flatnonzero(profile < 0.9 * np.median(profile))
        assert len(lines) in (len(profile) // 60, len(profile) // 60 + 1)
        assert set(np.diff(lines)) == {60}
    monkeypatch.setenv("HWR_DATA_DIR", str(shared_data))
    out = tmp_path / "squared set"
    args = ["camera-set", "--squared", "--singles", "2", "--strings", "0", "--out", str(out)]
    assert main(args) == 0
    assert json.loads((out / "config.json").read_text())["squared"] is True


@pytest.mark.host
def test_camera_set_of_small_writing(shared_data, tmp_path, monkeypatch, capsys):
    """`--size LO,HI` draws each frame's characters between those fractions of its height
    (writing seen from far off); a size that is not two fractions is one line naming the fix."""
    pytest.importorskip("tensorflow")
    from train_host import camera_set
    from train_host.cli import main

    heights, draw = [], camera_set.ink_glyph
    monkeypatch.setattr(
        camera_set, "ink_glyph", lambda d, h, rng: heights.append(h) or draw(d, h, rng)
    )
    monkeypatch.setenv("HWR_DATA_DIR", str(shared_data))
    out = tmp_path / "small set"
    args = ["camera-set", "--size", "0.08,0.1", "--singles", "3", "--strings", "0"]
    assert main([*args, "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["size"] == [0.08, 0.1]
    assert len(heights) == 3 and all(0.08 * 480 - 1 <= h <= 0.1 * 480 for h in heights)
    for bad in ("0.3", "0.5,0.2", "big,small"):
        assert main(["camera-set", "--size", bad, "--out", str(tmp_path / "no")]) == 2
        assert "--size" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_classify_reads_only_the_region(run_edge, golden_model, shared_data, tmp_path):
    from edge.datasets import load_split

    test = load_split("mnist", "test", shared_data)
    page = tmp_path / "four digits.png"
    cv2.imwrite(str(page), render_page(list(test.images[1:5]), per_line=4))
    report = tmp_path / "roi.json"
    # render_page puts digit i at x = 30 + 110 i: the region holds the first two digits.
    code, out, err = run_edge(
        [
            "classify",
            golden_model,
            page,
            "--roi",
            "0,0,250,200",
            "--min-confidence",
            "0",
            "--json",
            report,
        ]
    )
    assert code == 0, err
    chars = json.loads(report.read_text())["predictions"][0]["chars"]
    assert len(chars) == 2 and all(c["box"][0] < 250 for c in chars)
    code, _, err = run_edge(["classify", golden_model, page, "--roi", "5000,0,10,10"])
    assert code == 2 and err.strip().splitlines() == [
        f"edge: error: {page}: the region 5000,0,10,10 lies outside the 500x210 frame: give "
        "--roi X,Y,W,H inside it"
    ]
    code, _, err = run_edge(["live", golden_model, "--source", page, "--roi", "5000,0,10,10"])
    assert code == 2 and "lies outside the 500x210 frame: give --roi" in err
    code, _, _ = run_edge(["classify", golden_model, page, "--roi", "1,2,3"])
    assert code == 2


def test_live_writes_a_video(run_edge, golden_model, pages, tmp_path):
    folder, _ = pages
    video = tmp_path / "live run.avi"
    code, _, err = run_edge(["live", golden_model, "--source", str(folder), "--save-video", video])
    assert code == 0, err
    capture = cv2.VideoCapture(str(video))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames == 3


def _hand_in_view(rng) -> np.ndarray:
    """Paper with a few digits and a skin-toned hand with fingers and its shadow over it."""
    frame = np.full((480, 640, 3), (200, 205, 210), np.uint8)
    cv2.putText(frame, "3 7", (60, 200), cv2.FONT_HERSHEY_SIMPLEX, 3, (40, 40, 40), 6)
    cv2.ellipse(frame, (520, 420), (220, 160), 30, 0, 360, (90, 110, 140), -1)  # shadow
    cv2.ellipse(frame, (500, 400), (200, 140), 30, 0, 360, (150, 170, 215), -1)  # palm
    for k in range(4):
        cv2.line(frame, (380 + 40 * k, 330), (300 + 50 * k, 120), (150, 170, 215), 34)
    return cv2.add(frame, rng.integers(0, 12, frame.shape, dtype=np.uint8))


@pytest.mark.parametrize(
    "kind",
    ["black", "white", "over-exposed", "empty paper", "hand", "noise", "tiny", "one pixel", "grey"],
)
def test_no_crash_on_any_frame(golden_model, kind):
    """Whatever the camera sends, the reader returns a reading (perhaps empty), never raises."""
    from edge.interpreter import Classifier
    from edge.pipeline import read_frame

    rng = np.random.default_rng(0)
    frames = {
        "black": np.zeros((480, 640, 3), np.uint8),
        "white": np.full((480, 640, 3), 255, np.uint8),
        "over-exposed": np.clip(rng.normal(250, 6, (480, 640, 3)), 0, 255).astype(np.uint8),
        "empty paper": np.clip(rng.normal(200, 4, (480, 640, 3)), 0, 255).astype(np.uint8),
        "hand": _hand_in_view(rng),
        "noise": rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
        "tiny": np.full((3, 2, 3), 128, np.uint8),
        "one pixel": np.full((1, 1, 3), 128, np.uint8),  # OpenCV once took it for a scalar
        "grey": np.full((480, 640), 90, np.uint8),
    }
    reading = read_frame(frames[kind], Classifier(golden_model), min_confidence=0.5)
    assert isinstance(reading.text, str)
    if kind in ("black", "white", "empty paper", "tiny", "one pixel", "grey"):
        assert reading.text == ""  # nothing to read is read as nothing
    for char in reading.chars:
        assert char.crop.shape == (28, 28)


def test_a_sheet_on_a_desk_is_read_with_page_correction(shared_data, golden_model, tmp_path):
    """`--sheet` renders whole sheets on a desk at an angle: the desk is dark ink to a reader
    that takes the frame as paper, and `page="auto"` finds the sheet and reads it."""
    pytest.importorskip("tensorflow")
    from edge.datasets import load_split
    from edge.page import find_page
    from train_host.camera_set import CameraSetConfig, build_camera_set

    split = load_split("mnist", "test", shared_data)
    config = CameraSetConfig(singles=12, strings=0, sheet=True, seed=5)
    folder = tmp_path / "sheets"
    build_camera_set(split, folder, config)
    frames = sorted(folder.glob("*.jpg"))
    found = sum(find_page(cv2.imread(str(f))) is not None for f in frames)
    clf = Classifier(golden_model)
    plain, straightened = bench_photos(clf, folder), bench_photos(clf, folder, page="auto")
    assert found >= 8, found  # a sheet partly out of view is not found, by design
    assert straightened.exact_accuracy >= plain.exact_accuracy + 0.4, (plain, straightened)
