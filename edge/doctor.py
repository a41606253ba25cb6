"""`edge doctor`: check that this machine (a Raspberry Pi) has what edge needs, one line per fix.

Every import is lazy and guarded: a missing package is a FAIL or warn line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType

from edge import telemetry

STATUSES = ("ok", "warn", "FAIL", "skip")
MIN_PYTHON = (3, 10)
MIN_FREE_MB = 100.0
CAMERA_WORDS = ("auto", "picamera", "none")

PYTHON_FIX = "install Python 3.10 or newer (Raspberry Pi OS Bookworm ships 3.11)"
NUMPY_FIX = "sudo apt install python3-numpy or pip install numpy"
BACKEND_FIX = "pip install ai-edge-litert (or tflite-runtime on older Pis)"
OPENCV_FIX = "sudo apt install python3-opencv or pip install opencv-python-headless"
PICAMERA2_FIX = "sudo apt install python3-picamera2 and create the venv with --system-site-packages"
NO_CAMERA_FIX = "check the ribbon cable, then run rpicam-hello"
FLOAT_OPS_FIX = (
    "fine on a Pi's CPU; for integer-only hardware re-export with `train-host export`, "
    "replacing layers TFLite cannot run in int8"
)
WEBCAM_FIX = "check the USB cable and `ls /dev/video*`, or try another index"
MODEL_RUN_FIX = "re-export it with `train-host export` or use a newer runtime"
MEMORY_FIX = "close other programs (a desktop, a browser) or add swap"
QUIET_ENV = {"LIBCAMERA_LOG_LEVELS": "*:ERROR", "OPENCV_LOG_LEVEL": "ERROR"}


@dataclass(frozen=True)
class Check:
    """One line of the report: status is ok, warn, FAIL or skip; fix says what to do."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")


def camera_option(text: str) -> str | int:
    """argparse type: auto, picamera, none, or a webcam index (0, 1, ...)."""
    if text in CAMERA_WORDS:
        return text
    if not text.isdecimal():
        raise argparse.ArgumentTypeError(f"{text!r}: use auto, picamera, none or a webcam index")
    return int(text)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _import(name: str) -> tuple[ModuleType | None, str]:
    """Import a module; return (module, "") or (None, the reason it failed in one line)."""
    try:
        return importlib.import_module(name), ""
    except Exception as exc:  # a broken install raises more than ImportError
        if isinstance(exc, ModuleNotFoundError) and exc.name == name:
            return None, "not installed"
        return None, _one_line(f"{type(exc).__name__}: {exc}")


def _version(module: ModuleType, distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return str(getattr(module, "__version__", "unknown"))


def check_python(version: tuple[int, ...] | None = None) -> Check:
    """Python 3.10 or newer (`version` defaults to this interpreter's)."""
    version = tuple(version or sys.version_info[:3])
    text = ".".join(str(v) for v in version)
    if tuple(version[:2]) < MIN_PYTHON:
        return Check("python", "FAIL", f"{text} is too old (3.10 or newer needed)", PYTHON_FIX)
    return Check("python", "ok", text)


def check_numpy() -> Check:
    """numpy imports."""
    numpy, reason = _import("numpy")
    if numpy is None:
        return Check("numpy", "FAIL", f"does not import ({reason})", NUMPY_FIX)
    return Check("numpy", "ok", numpy.__version__)


def check_backend() -> Check:
    """A TFLite interpreter, found in edge's order: ai_edge_litert, tflite_runtime, tensorflow."""
    forced = os.environ.get("HWR_BACKEND")
    fix = f"unset HWR_BACKEND or {BACKEND_FIX}" if forced else BACKEND_FIX
    try:
        from edge.interpreter import load_backend

        backend = load_backend()
    except Exception as exc:  # ModelError when none imports; a broken install raises others
        return Check("tflite backend", "FAIL", _one_line(exc), fix)
    detail = f"{backend.name} {backend.version}"
    if backend.name == "tensorflow":
        return Check("tflite backend", "warn", f"{detail} (works, but heavy on a Pi)", fix)
    return Check("tflite backend", "ok", detail)


def check_opencv() -> Check:
    """OpenCV (cv2) imports: photos, webcams and video files need it."""
    cv2, reason = _import("cv2")
    if cv2 is None:
        return Check("opencv", "FAIL", f"cv2 does not import ({reason})", OPENCV_FIX)
    return Check("opencv", "ok", cv2.__version__)


def check_picamera2() -> Check:
    """picamera2 (and libcamera under it); only a warn: webcams and files work without it."""
    picamera2, reason = _import("picamera2")
    if picamera2 is None:
        detail = f"{reason}, so no Pi camera (webcams and files still work)"
        return Check("picamera2", "warn", detail, PICAMERA2_FIX)
    return Check("picamera2", "ok", _version(picamera2, "picamera2"))


def _check_picamera() -> Check:
    picamera2, reason = _import("picamera2")
    if picamera2 is None:
        return Check("camera", "FAIL", f"picamera2 does not import ({reason})", PICAMERA2_FIX)
    try:
        cameras = list(picamera2.Picamera2.global_camera_info())
    except Exception as exc:  # libcamera failures surface as many exception types
        return Check("camera", "FAIL", f"cannot list cameras ({_one_line(exc)})", NO_CAMERA_FIX)
    if not cameras:
        return Check("camera", "FAIL", "no camera detected", NO_CAMERA_FIX)
    names = ", ".join(
        f"{c.get('Model', '?')} (camera {c.get('Num', i)})" for i, c in enumerate(cameras)
    )
    return Check("camera", "ok", f"Pi camera: {names}")


def _check_webcam(index: int) -> Check:
    cv2, reason = _import("cv2")
    if cv2 is None:
        return Check("camera", "FAIL", f"cv2 does not import ({reason})", OPENCV_FIX)
    try:
        capture = cv2.VideoCapture(index)
        opened = capture.isOpened()
        capture.release()
    except Exception as exc:  # a camera driver can raise cv2.error or worse
        return Check("camera", "FAIL", f"webcam {index}: {_one_line(exc)}", WEBCAM_FIX)
    if not opened:
        return Check("camera", "FAIL", f"webcam {index} does not open", WEBCAM_FIX)
    return Check("camera", "ok", f"webcam {index} opens")


def check_camera(camera: str | int = "auto") -> Check:
    """A camera is attached: the Pi camera (picamera), a webcam index, or auto."""
    if camera == "none":
        return Check("camera", "skip", "not checked (--camera none)")
    if isinstance(camera, int):
        return _check_webcam(camera)
    if camera == "picamera" or _import("picamera2")[0] is not None:
        return _check_picamera()
    fix = "pass --camera 0 to check a USB webcam, or --camera none"
    return Check("camera", "warn", "not checked (picamera2 not importable)", fix)


def check_model(path: Path | None = None) -> Check:
    """The model loads with its sidecar and runs once on a blank image."""
    if path is None:
        return Check("model", "skip", "not checked (pass --model MODEL.tflite)")
    try:
        import numpy as np

        from edge.errors import EdgeError
        from edge.interpreter import Classifier
    except Exception as exc:  # numpy missing: already its own FAIL line
        return Check("model", "FAIL", f"edge does not import ({_one_line(exc)})", NUMPY_FIX)
    try:
        start = time.perf_counter()
        clf = Classifier(path)
        load_ms = (time.perf_counter() - start) * 1e3
        size = clf.spec.preprocess.size
        start = time.perf_counter()
        clf.predict(np.zeros((size, size), np.uint8))
        predict_ms = (time.perf_counter() - start) * 1e3
    except EdgeError as exc:  # its message names the fix
        return Check("model", "FAIL", _one_line(exc))
    except (RuntimeError, ValueError) as exc:
        return Check("model", "FAIL", f"{path} does not run ({_one_line(exc)})", MODEL_RUN_FIX)
    detail = f"{path.name} loads in {load_ms:.0f} ms ({clf.backend.name}), first predict"
    detail = f"{detail} {predict_ms:.2f} ms"
    if clf.spec.extra.get("variant") == "int8":
        return _check_integer_only(clf, detail)
    return Check("model", "ok", detail)


def _check_integer_only(clf, detail: str) -> Check:
    """An int8 model should need no float kernel: warn, naming them, where it does."""
    from edge.interpreter import count_ops, describe_kernels

    float_ops = clf.float_ops()
    if not float_ops:  # none, or not listed by this backend
        return Check("model", "ok", f"{detail}, {describe_kernels(float_ops)}")
    detail = f"{detail}; {len(float_ops)} ops compute in float ({count_ops(float_ops)})"
    return Check("model", "warn", detail, FLOAT_OPS_FIX)


def check_governor() -> Check:
    """The cpufreq governor: performance gives stable timings."""
    governor = telemetry.read_governor()
    if governor is None:
        return Check("cpu governor", "skip", "not exposed by this machine")
    if governor == "performance":
        return Check("cpu governor", "ok", governor)
    detail = f"{governor}: the clock follows the load"
    return Check("cpu governor", "warn", detail, telemetry.GOVERNOR_FIX)


def check_temperature() -> Check:
    """SoC temperature below the throttling region."""
    celsius = telemetry.read_temperature_c()
    if celsius is None:
        return Check("temperature", "skip", "not exposed by this machine")
    if celsius >= telemetry.HOT_C:
        detail = f"{celsius:.1f} C (throttling starts at {telemetry.HOT_C:.0f} C)"
        return Check("temperature", "warn", detail, telemetry.COOLING_FIX)
    return Check("temperature", "ok", f"{celsius:.1f} C")


def check_throttling() -> Check:
    """Firmware throttle flags: under-voltage ever, or throttling now."""
    flags = telemetry.read_throttled()
    if flags is None:
        return Check("throttling", "skip", "not exposed (no vcgencmd or firmware get_throttled)")
    detail = f"0x{flags:x}: {', '.join(telemetry.describe_throttled(flags)) or 'none since boot'}"
    if flags & telemetry.UNDER_VOLTAGE_MASK:
        return Check("throttling", "warn", detail, telemetry.POWER_FIX)
    if flags & telemetry.NOW_MASK:
        return Check("throttling", "warn", detail, telemetry.COOLING_FIX)
    return Check("throttling", "ok", detail)


def check_memory() -> Check:
    """Enough free memory to load a model and read frames."""
    available = telemetry.read_mem_available_mb()
    if available is None:
        return Check("memory", "skip", "MemAvailable not reported")
    detail = f"{available:.0f} MB available"
    if available < MIN_FREE_MB:
        return Check("memory", "warn", f"{detail} (under {MIN_FREE_MB:.0f} MB)", MEMORY_FIX)
    return Check("memory", "ok", detail)


def run_checks(model: Path | None = None, camera: str | int = "auto") -> list[Check]:
    """Run every check in order.

    Args:
        model: a .tflite file to load and run once (None: skipped).
        camera: "auto", "picamera", "none", or a webcam index.

    Returns:
        One Check per line of the report.
    """
    return [
        check_python(),
        check_numpy(),
        check_backend(),
        check_opencv(),
        check_picamera2(),
        check_camera(camera),
        check_model(model),
        check_governor(),
        check_temperature(),
        check_throttling(),
        check_memory(),
    ]


def format_check(check: Check) -> str:
    """`ok   name: detail`, or `warn name: detail -> fix` (always one line)."""
    line = f"{check.status:<4} {check.name}: {_one_line(check.detail)}"
    if check.fix and check.status in ("warn", "FAIL"):
        line += f" -> {_one_line(check.fix)}"
    return line


def format_checks(checks: list[Check]) -> str:
    """The report: one line per check."""
    return "\n".join(format_check(c) for c in checks)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print the checks (and write them as JSON with --json); exit 1 if any FAILed."""
    for name, value in QUIET_ENV.items():  # keep libcamera and OpenCV log lines out of the report
        os.environ.setdefault(name, value)
    checks = run_checks(args.model, args.camera)
    print(format_checks(checks))
    if args.json:
        from edge.commands import write_output

        write_output(args.json, json.dumps({"checks": [asdict(c) for c in checks]}, indent=2))
    return 1 if any(c.status == "FAIL" for c in checks) else 0
