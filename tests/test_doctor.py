"""`edge doctor`: one line per check, a FAIL exits 1, missing packages are lines, not tracebacks."""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import types
from pathlib import Path

import pytest

from edge import doctor, telemetry
from edge.doctor import Check, camera_option, check_camera, check_model, run_checks
from edge.errors import ModelError

FAKE_DIR = Path(__file__).parent / "fake_picamera2"
LINE = re.compile(r"^(ok  |warn|FAIL|skip) [a-z0-9 ]+: \S.*$")


@pytest.fixture(autouse=True)
def default_backend(monkeypatch):
    """Every test sees edge's default backend order."""
    monkeypatch.delenv("HWR_BACKEND", raising=False)


@pytest.fixture
def picam(monkeypatch):
    """The fake picamera2 module, importable as `picamera2` for this test only."""
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    monkeypatch.syspath_prepend(str(FAKE_DIR))
    monkeypatch.delenv("FAKE_PICAMERA2_NO_CAMERA", raising=False)
    module = importlib.import_module("picamera2")
    assert Path(module.__file__).is_relative_to(FAKE_DIR), "the real picamera2 was imported"
    yield module
    sys.modules.pop("picamera2", None)  # monkeypatch then restores any earlier module


@pytest.fixture
def no_picamera2(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` fail


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_this_machine_has_numpy_a_backend_and_opencv():
    checks = run_checks(camera="none")
    assert len(by_name(checks)) == len(checks), "check names are unique"
    found = by_name(checks)
    for name in ("python", "numpy", "tflite backend", "opencv"):
        assert found[name].status == "ok", found[name]
    assert found["model"].status == "skip" and found["camera"].status == "skip"


def test_the_golden_model_loads_and_runs(golden_model):
    check = check_model(golden_model)
    assert check.status == "ok", check
    assert golden_model.name in check.detail and "predict" in check.detail


def test_a_garbage_model_fails(tmp_path):
    path = tmp_path / "x.tflite"
    path.write_bytes(b"\x00garbage, not a flatbuffer" * 10)
    check = check_model(path)
    assert check.status == "FAIL" and "x.tflite" in check.detail


def test_a_corrupt_model_beside_its_sidecar_fails_naming_the_fix(golden_copy):
    model = golden_copy / "int8.tflite"
    model.write_bytes(b"\x00garbage" * 50)
    check = check_model(model)
    assert check.status == "FAIL" and "SHA-256" in check.detail and "again" in check.detail


def test_cli_exits_1_on_a_corrupt_model(tmp_path, run_edge):
    path = tmp_path / "x.tflite"
    path.write_bytes(b"garbage" * 20)
    code, out, _ = run_edge(["doctor", "--model", path, "--camera", "none"])
    assert code == 1
    assert any(line.startswith("FAIL model: ") for line in out.splitlines())


def test_cli_prints_one_line_per_check_and_exits_0(golden_model, run_edge, tmp_path):
    report = tmp_path / "doctor report.json"
    code, out, _ = run_edge(
        ["doctor", "--model", golden_model, "--camera", "none", "--json", report]
    )
    lines = out.splitlines()
    assert code == 0, out
    assert len(lines) == len(run_checks(camera="none"))
    for line in lines:
        assert LINE.match(line), line
    assert "ok   model: int8.tflite" in out
    checks = json.loads(report.read_text())["checks"]
    assert [c["name"] for c in checks] == [line.split(":")[0][5:] for line in lines]
    assert set(checks[0]) == {"name", "status", "detail", "fix"}


def test_cli_help(run_edge):
    code, out, _ = run_edge(["doctor", "--help"])
    assert code == 0 and "--model" in out and "--camera" in out
    code, out, _ = run_edge(["--help"])
    assert code == 0 and "doctor" in out and "one line per fix" in out


def test_camera_option():
    assert [camera_option(t) for t in ("auto", "picamera", "none", "0", "2")] == [
        "auto",
        "picamera",
        "none",
        0,
        2,
    ]
    for bad in ("-1", "usb", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            camera_option(bad)


def test_cli_rejects_a_bad_camera(run_edge):
    code, _, err = run_edge(["doctor", "--camera", "usb"])
    assert code == 2 and "webcam index" in err


def test_missing_picamera2_is_a_warn_not_a_crash(no_picamera2):
    found = by_name(run_checks())
    assert found["picamera2"].status == "warn"
    assert "--system-site-packages" in found["picamera2"].fix
    assert found["camera"].status == "warn" and "--camera 0" in found["camera"].fix
    forced = check_camera("picamera")
    assert forced.status == "FAIL" and "python3-picamera2" in forced.fix


def test_the_pi_camera_is_found(picam):
    assert doctor.check_picamera2().status == "ok"
    for camera in ("picamera", "auto"):
        check = check_camera(camera)
        assert check.status == "ok" and "imx708" in check.detail


def test_no_pi_camera_attached(picam, monkeypatch):
    monkeypatch.setattr(picam.Picamera2, "no_camera", "runtime")
    check = check_camera("picamera")
    assert check.status == "FAIL" and check.detail == "no camera detected"
    assert "ribbon cable" in check.fix and "rpicam-hello" in check.fix


def test_a_camera_listing_that_raises_is_a_fail(picam, monkeypatch):
    def broken():
        raise RuntimeError("libcamera\nexploded")

    monkeypatch.setattr(picam.Picamera2, "global_camera_info", staticmethod(broken))
    check = check_camera("auto")
    assert check.status == "FAIL" and "libcamera exploded" in check.detail


def _fake_cv2(opened: bool) -> types.ModuleType:
    class Capture:
        def __init__(self, index: int) -> None:
            self.index = index

        def isOpened(self) -> bool:  # OpenCV's spelling
            return opened

        def release(self) -> None:
            pass

    return types.SimpleNamespace(VideoCapture=Capture, __version__="4.0-fake")


@pytest.mark.parametrize(("opened", "status"), [(True, "ok"), (False, "FAIL")])
def test_webcam_index(monkeypatch, opened, status):
    monkeypatch.setitem(sys.modules, "cv2", _fake_cv2(opened))
    check = check_camera(1)
    assert check.status == status and "webcam 1" in check.detail


def test_missing_packages_are_fails_with_the_install_line(monkeypatch):
    for module in ("numpy", "cv2"):
        monkeypatch.setitem(sys.modules, module, None)
    assert doctor.check_numpy().status == "FAIL"
    assert "python3-numpy" in doctor.check_numpy().fix
    assert doctor.check_opencv().status == "FAIL"
    assert "opencv-python-headless" in doctor.check_opencv().fix
    webcam = check_camera(0)
    assert webcam.status == "FAIL" and "python3-opencv" in webcam.fix


def test_no_tflite_backend(monkeypatch):
    import edge.interpreter

    def nothing(name=None):
        raise ModelError("no TFLite backend is installed")

    monkeypatch.setattr(edge.interpreter, "load_backend", nothing)
    check = doctor.check_backend()
    assert check.status == "FAIL" and "ai-edge-litert" in check.fix


def test_python_version():
    assert doctor.check_python((3, 9, 2)).status == "FAIL"
    assert doctor.check_python((3, 10, 0)).status == "ok"


@pytest.mark.parametrize(
    ("governor", "status"),
    [("performance", "ok"), ("ondemand", "warn"), ("schedutil", "warn"), (None, "skip")],
)
def test_governor(monkeypatch, governor, status):
    monkeypatch.setattr(telemetry, "read_governor", lambda: governor)
    check = doctor.check_governor()
    assert check.status == status
    assert ("scaling_governor" in check.fix) == (status == "warn")


@pytest.mark.parametrize(("celsius", "status"), [(55.0, "ok"), (81.5, "warn"), (None, "skip")])
def test_temperature(monkeypatch, celsius, status):
    monkeypatch.setattr(telemetry, "read_temperature_c", lambda: celsius)
    assert doctor.check_temperature().status == status


@pytest.mark.parametrize(
    ("flags", "status", "fix"),
    [
        (0x0, "ok", ""),
        (0x40000, "ok", ""),  # throttled before, not now
        (0x4, "warn", "heatsink"),
        (0x10000, "warn", "5V/3A"),
        (None, "skip", ""),
    ],
)
def test_throttling(monkeypatch, flags, status, fix):
    monkeypatch.setattr(telemetry, "read_throttled", lambda: flags)
    check = doctor.check_throttling()
    assert check.status == status and fix in check.fix


@pytest.mark.parametrize(("mb", "status"), [(2048.0, "ok"), (50.0, "warn"), (None, "skip")])
def test_memory(monkeypatch, mb, status):
    monkeypatch.setattr(telemetry, "read_mem_available_mb", lambda: mb)
    assert doctor.check_memory().status == status


def test_format_keeps_each_check_on_one_line():
    lines = doctor.format_checks(
        [
            Check("numpy", "ok", "2.0"),
            Check("camera", "FAIL", "no\ncamera", "check the\nribbon cable"),
            Check("model", "skip", "not checked", "ignored for skip"),
        ]
    ).splitlines()
    assert lines == [
        "ok   numpy: 2.0",
        "FAIL camera: no camera -> check the ribbon cable",
        "skip model: not checked",
    ]


def test_a_check_refuses_an_unknown_status():
    with pytest.raises(ValueError, match="status"):
        Check("numpy", "fine", "2.0")
