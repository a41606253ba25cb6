"""The Raspberry Pi camera through picamera2 (imported lazily): grey frames from lores Y."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from edge.camera import CameraError, _Source

AF_CONTINUOUS, AF_MANUAL = 2, 0  # libcamera's AfModeEnum values
NO_CAMERA = (
    "No camera found: enable it with raspi-config (Bookworm: it is on by default; check "
    "`rpicam-hello --list-cameras`), check the ribbon cable, close other programs using it, "
    "or pass --source DIR"
)
NO_PICAMERA2 = (
    "picamera2 is not installed: run `sudo apt install python3-picamera2` and make the venv "
    "with `python3 -m venv --system-site-packages`, or pass --source DIR"
)


def y_plane(yuv420: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Cut the grey (Y) image out of a picamera2 YUV420 array, dropping the stride padding.

    Args:
        yuv420: array of shape (h * 3 // 2, stride) as capture_array returns it; stride >= w.
        size: (w, h) of the stream.

    Returns:
        contiguous uint8 array of shape (h, w).
    """
    w, h = size
    if yuv420.ndim != 2 or yuv420.shape[0] < h * 3 // 2 or yuv420.shape[1] < w:
        raise CameraError(f"YUV420 frame of shape {yuv420.shape} does not fit a {w}x{h} stream")
    return np.ascontiguousarray(yuv420[:h, :w])


def camera_control_values(
    available: Mapping[str, object],
    exposure_us: int | None,
    gain: float | None,
    focus: str | float,
) -> tuple[dict[str, object], list[str]]:
    """Choose picamera2 controls for the settings, keeping only those the camera has.

    Args:
        available: the camera's `camera_controls` (name -> (min, max, default)).
        exposure_us: fixed exposure in microseconds (turns auto exposure off), or None.
        gain: fixed analogue gain, or None.
        focus: "auto" (continuous autofocus) or a lens position in dioptres (1/metres).

    Returns:
        (controls to set, names of requested controls this camera lacks).
    """
    wanted: dict[str, object] = {}
    if focus == "auto":
        wanted["AfMode"] = AF_CONTINUOUS
    else:
        wanted.update(AfMode=AF_MANUAL, LensPosition=float(focus))
    if exposure_us is not None:
        wanted.update(AeEnable=False, ExposureTime=int(exposure_us))
    if gain is not None:
        wanted["AnalogueGain"] = float(gain)
    chosen = {k: v for k, v in wanted.items() if k in available}
    missing = [k for k in wanted if k not in available and not (k == "AfMode" and focus == "auto")]
    return chosen, missing


def _import_picamera2():
    try:
        import picamera2
    except ImportError as exc:
        raise CameraError(f"{NO_PICAMERA2} ({exc})") from None
    return picamera2


class PiCameraSource(_Source):
    """The Raspberry Pi camera through picamera2: grey frames from the lores Y plane.

    Attributes:
        controls: the controls set on the camera (after open()).
        unsupported: requested controls the camera does not have (e.g. LensPosition on a
            fixed-focus Camera Module 2); they were skipped.
    """

    name = "picamera"

    def __init__(
        self,
        size: tuple[int, int] = (1280, 960),
        lores: tuple[int, int] = (640, 480),
        exposure_us: int | None = None,
        gain: float | None = None,
        focus: str | float = "auto",
        use_main: bool = False,
    ) -> None:
        super().__init__()
        if lores[0] > size[0] or lores[1] > size[1]:
            raise CameraError(f"lores size {lores} is larger than the main size {size}: shrink it")
        if focus != "auto":
            try:
                focus = float(focus)
            except (TypeError, ValueError):
                raise CameraError(
                    f"focus {focus!r}: use 'auto' or a lens position in dioptres (4.0 = 25 cm)"
                ) from None
            if focus < 0:
                raise CameraError(f"focus {focus}: dioptres must be >= 0 (0 = infinity)")
        self.size, self.lores, self.use_main = tuple(size), tuple(lores), use_main
        self.exposure_us, self.gain, self.focus = exposure_us, gain, focus
        self.controls: dict[str, object] = {}
        self.unsupported: list[str] = []
        self._cam = None
        self._stream_size = self.lores

    def open(self) -> PiCameraSource:
        """Open, configure and start the camera (stopped and closed again on any failure)."""
        if self._cam is not None:
            return self
        picamera2 = _import_picamera2()
        try:
            self._cam = picamera2.Picamera2()
        except (RuntimeError, IndexError) as exc:
            raise CameraError(f"{NO_CAMERA} (picamera2: {exc!r})") from None
        try:
            self._start(self._cam)
        except BaseException as exc:
            self.close()
            if isinstance(exc, RuntimeError):
                raise CameraError(
                    f"camera did not start ({exc!r}): close other programs using it "
                    "(rpicam-*, another edge) or reboot"
                ) from None
            raise
        return self

    def _start(self, cam) -> None:
        config = cam.create_preview_configuration(
            main={"size": self.size, "format": "RGB888"},
            lores={"size": self.lores, "format": "YUV420"},
        )
        cam.configure(config)
        try:  # configure() may align the size; the configured one is what arrives
            self._stream_size = tuple(config["lores"]["size"])
        except (KeyError, TypeError):
            self._stream_size = self.lores
        self.controls, self.unsupported = camera_control_values(
            cam.camera_controls, self.exposure_us, self.gain, self.focus
        )
        if self.controls:
            cam.set_controls(self.controls)
        cam.start()
        self._open = True

    def close(self) -> None:
        """Stop and close the camera, even when it never started."""
        cam, self._cam = self._cam, None
        self._open = False
        if cam is not None:
            try:
                cam.stop()
            finally:
                cam.close()

    def _grab(self) -> tuple[np.ndarray, str]:
        if self.use_main:
            # picamera2's "RGB888" is [B, G, R] per pixel in numpy: OpenCV's BGR as it is.
            return self._cam.capture_array("main"), self.name
        return y_plane(self._cam.capture_array("lores"), self._stream_size), self.name
