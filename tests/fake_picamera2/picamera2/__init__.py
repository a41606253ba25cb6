"""A fake picamera2 for tests: the part of the API the edge runtime uses, no camera needed.

Capture arrays look like the real ones: capture_array("lores") of a YUV420 stream is
(h * 3 // 2, stride) with the stride w rounded up to a multiple of 64 and the padding
bytes set to 255, and its Y plane holds `y_pattern(w, h)` (no value is 255).

Simulations (class attributes, or environment variables for subprocesses):
    Picamera2.no_camera = "runtime" | "index"   (FAKE_PICAMERA2_NO_CAMERA): the constructor
        raises RuntimeError / IndexError as the real one does when no camera is attached,
        and Picamera2.global_camera_info() lists no camera.
    Picamera2.autofocus = False   (FAKE_PICAMERA2_NO_AUTOFOCUS=1): no "AfMode"/"LensPosition".
    Picamera2.fail_start = True   (FAKE_PICAMERA2_FAIL_START=1): start() raises RuntimeError.
Every instance is appended to Picamera2.instances and records its method calls in `calls`.
"""

from __future__ import annotations

import os

import numpy as np

__version__ = "0.0-fake"

# name -> (min, max, default), as Picamera2.camera_controls reports them.
COMMON_CONTROLS = {
    "AeEnable": (False, True, None),
    "ExposureTime": (26, 220417486, 20000),
    "AnalogueGain": (1.12, 16.0, None),
    "AwbEnable": (False, True, None),
    "FrameDurationLimits": (33333, 120000, None),
}
AF_CONTROLS = {"AfMode": (0, 2, 0), "LensPosition": (0.0, 15.0, 1.0)}
# One entry of Picamera2.global_camera_info(): a Camera Module 3 on the first connector.
CAMERA_INFO = {
    "Model": "imx708",
    "Location": 2,
    "Rotation": 180,
    "Id": "/base/soc/i2c0mux/i2c@1/imx708@1a",
    "Num": 0,
}


def y_pattern(width: int, height: int) -> np.ndarray:
    """The luminance the fake camera sees: a diagonal ramp, values 0..250 (never 255)."""
    rows = np.arange(height, dtype=np.int64)[:, None]
    cols = np.arange(width, dtype=np.int64)[None, :]
    return ((3 * rows + 5 * cols) % 251).astype(np.uint8)


def bgr_pattern(width: int, height: int) -> np.ndarray:
    """The main stream in "RGB888" (pixels [B, G, R]): B = ramp, G = 100, R = 200."""
    image = np.empty((height, width, 3), np.uint8)
    image[..., 0] = y_pattern(width, height)
    image[..., 1] = 100
    image[..., 2] = 200
    return image


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


class Picamera2:
    """Stands in for picamera2.Picamera2."""

    no_camera: str | None = None
    autofocus: bool = True
    fail_start: bool = False
    instances: list[Picamera2] = []

    def __init__(self, camera_num: int = 0) -> None:
        mode = self.no_camera or os.environ.get("FAKE_PICAMERA2_NO_CAMERA")
        if mode == "index":
            raise IndexError("list index out of range")
        if mode:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        self.camera_num = camera_num
        self.calls: list[str] = []
        self.controls_set: dict[str, object] = {}
        has_af = self.autofocus and not _flag("FAKE_PICAMERA2_NO_AUTOFOCUS")
        self.camera_controls = dict(COMMON_CONTROLS, **(AF_CONTROLS if has_af else {}))
        self.camera_config: dict | None = None
        self.started = False
        self.frames = 0
        Picamera2.instances.append(self)

    @staticmethod
    def global_camera_info() -> list[dict]:
        """The attached cameras, as the real static method lists them (none with no_camera)."""
        if Picamera2.no_camera or os.environ.get("FAKE_PICAMERA2_NO_CAMERA"):
            return []
        return [dict(CAMERA_INFO)]

    def _make_config(self, main, lores, default_main, controls) -> dict:
        config = {"main": {"format": default_main[0], "size": default_main[1]}}
        config["main"].update(main or {})
        config["lores"] = None
        if lores is not None:
            config["lores"] = {"format": "YUV420", "size": config["main"]["size"]}
            config["lores"].update(lores)
        config["controls"] = dict(controls or {})
        return config

    def create_preview_configuration(self, main=None, lores=None, controls=None, **_) -> dict:
        """A preview configuration (main 640x480 XBGR8888 unless given)."""
        self.calls.append("create_preview_configuration")
        return self._make_config(main, lores, ("XBGR8888", (640, 480)), controls)

    def create_still_configuration(self, main=None, lores=None, controls=None, **_) -> dict:
        """A still configuration (main 4608x2592 BGR888 unless given)."""
        self.calls.append("create_still_configuration")
        return self._make_config(main, lores, ("BGR888", (4608, 2592)), controls)

    def configure(self, config: dict) -> None:
        """Check and apply a configuration; fill in each stream's stride as the real one does."""
        self.calls.append("configure")
        main, lores = config["main"], config.get("lores")
        for stream in (main, lores):
            if stream is None:
                continue
            w, h = stream["size"]
            stream["size"] = (w - w % 2, h - h % 2)
            w = stream["size"][0]
            stream["stride"] = -(-w // 64) * 64 if stream["format"] == "YUV420" else w * 3
        if lores is not None and (
            lores["size"][0] > main["size"][0] or lores["size"][1] > main["size"][1]
        ):
            raise RuntimeError("lores stream dimensions may not exceed main stream")
        self.camera_config = config

    def camera_configuration(self) -> dict | None:
        """The configuration in use."""
        return self.camera_config

    def set_controls(self, controls: dict) -> None:
        """Record controls; an unknown one raises RuntimeError as libcamera's does."""
        self.calls.append("set_controls")
        for name in controls:
            if name not in self.camera_controls:
                raise RuntimeError(f"Control {name} is not advertised by libcamera")
        self.controls_set.update(controls)

    def start(self, config: dict | None = None, show_preview: bool = False) -> None:
        """Start the camera (configures a preview configuration when none was set)."""
        self.calls.append("start")
        if config is not None or self.camera_config is None:
            self.configure(config or self.create_preview_configuration())
        if self.fail_start or _flag("FAKE_PICAMERA2_FAIL_START"):
            raise RuntimeError("Failed to start camera: Device or resource busy")
        self.started = True

    def capture_array(self, name: str = "main") -> np.ndarray:
        """One frame of a stream: (h, w, 3) for RGB formats, (h * 3 // 2, stride) for YUV420."""
        self.calls.append(f"capture_array:{name}")
        if not self.started:
            raise RuntimeError("camera is not started")
        stream = self.camera_config.get(name)
        if stream is None:
            raise KeyError(f"stream {name!r} is not configured")
        self.frames += 1
        (w, h), stride = stream["size"], stream["stride"]
        if stream["format"] != "YUV420":
            return bgr_pattern(w, h)
        array = np.full((h * 3 // 2, stride), 255, np.uint8)
        array[:h, :w] = y_pattern(w, h)
        # U then V: h/2 rows of stride/2 each, packed two to an array row; 128 = no colour.
        array[h:, : w // 2] = 128
        array[h:, stride // 2 : stride // 2 + w // 2] = 128
        return array

    def stop(self) -> None:
        """Stop the camera (a no-op when not started, as in picamera2)."""
        self.calls.append("stop")
        self.started = False

    def close(self) -> None:
        """Close the camera."""
        self.calls.append("close")
        self.started = False
