"""Frame sources: the Pi camera (picamera2, imported lazily), OpenCV cameras, videos, images."""

from __future__ import annotations

import glob
import inspect
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from edge.errors import EdgeError, ImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
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


class CameraError(EdgeError):
    """A frame source cannot be opened or read (no camera, missing file, no images)."""


@dataclass(frozen=True, eq=False)  # eq=False: comparing frames would compare arrays
class Frame:
    """One captured image and where and when it came from.

    Attributes:
        image: BGR uint8 (H, W, 3) or grey uint8 (H, W).
        index: 0, 1, 2 ... in the order the source delivered the frames.
        timestamp: time.perf_counter() when read() had the frame.
        source: where it came from: a file path, "picamera", "opencv:0".
        capture_ms: milliseconds spent in read().
    """

    image: np.ndarray
    index: int
    timestamp: float
    source: str
    capture_ms: float


@runtime_checkable
class FrameSource(Protocol):
    """A context manager that yields frames: `with src: frame = src.read()`."""

    name: str

    def __enter__(self) -> FrameSource: ...

    def __exit__(self, *exc: object) -> None: ...

    def read(self) -> Frame | None:
        """Return the next frame, or None at the end of the stream."""
        ...


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as BGR uint8, with its EXIF rotation applied.

    Args:
        path: image file (PNG, JPEG, ...).

    Returns:
        uint8 array of shape (H, W, 3).

    Raises:
        ImageError: the file is missing, empty or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image {path} not found: check the path")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.size == 0:
        raise ImageError(f"cannot read image {path}: empty or not an image file (use PNG or JPEG)")
    return image


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


class _Source:
    """Shared behaviour: context manager, iteration, frame numbering and timing."""

    name = "source"

    def __init__(self) -> None:
        self._count = 0
        self._open = False

    def open(self) -> _Source:
        """Acquire the device or files; `with source:` calls this."""
        self._open = True
        return self

    def close(self) -> None:
        """Release the device (safe to call twice)."""
        self._open = False

    def __enter__(self) -> _Source:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def read(self) -> Frame | None:
        """Return the next frame, or None at the end of the stream."""
        if not self._open:
            raise CameraError(f"{self.name} is not open: use `with source:` before read()")
        start = time.perf_counter()
        grabbed = self._grab()
        end = time.perf_counter()
        if grabbed is None:
            return None
        frame = Frame(grabbed[0], self._count, end, grabbed[1], (end - start) * 1000.0)
        self._count += 1
        return frame

    def _grab(self) -> tuple[np.ndarray, str] | None:
        raise NotImplementedError


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


def _is_glob(spec: str) -> bool:
    return any(c in spec for c in "*?[")


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


class _CaptureSource(_Source):
    """A cv2.VideoCapture (camera index or video file); a failed read ends the stream."""

    def __init__(self) -> None:
        super().__init__()
        self._cap = None

    def _open_capture(self, target: int | str, error: str) -> None:
        cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            cap.release()
            raise CameraError(error)
        self._cap, self._open = cap, True

    def close(self) -> None:
        """Release the capture."""
        cap, self._cap, self._open = self._cap, None, False
        if cap is not None:
            cap.release()

    def _grab(self) -> tuple[np.ndarray, str] | None:
        ok, image = self._cap.read()
        return (image, self.name) if ok and image is not None else None


class OpenCVSource(_CaptureSource):
    """A camera OpenCV can open by index (USB webcam, /dev/videoN)."""

    def __init__(self, index: int, size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.index, self.size = int(index), size
        self.name = f"opencv:{self.index}"

    def open(self) -> OpenCVSource:
        """Open the camera; raise CameraError when there is none at this index."""
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # no V4L2 warnings
        try:
            self._open_capture(
                self.index,
                f"cannot open camera {self.index}: plug it in (see `ls /dev/video*`), try "
                "another index, or pass --source picamera or --source DIR",
            )
        finally:
            cv2.utils.logging.setLogLevel(level)
        if self.size is not None:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        return self


class VideoSource(_CaptureSource):
    """Frames of a video file, in order, until it ends."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.name = str(self.path)

    def open(self) -> VideoSource:
        """Open the video; raise CameraError when it is missing or unreadable."""
        if not self.path.is_file():
            raise CameraError(f"video {self.path} not found: check the path")
        self._open_capture(
            str(self.path),
            f"cannot read video {self.path}: not a video or no codec for it "
            "(convert it with `ffmpeg -i IN -c:v mjpeg OUT.avi`)",
        )
        return self


class ImageDirSource(_Source):
    """Image files as frames: a folder (sorted by name), a glob pattern or one file."""

    def __init__(self, path_or_glob: str | Path, loop: bool = False) -> None:
        super().__init__()
        self.spec, self.loop = str(path_or_glob), loop
        self.name = self.spec
        self.files: list[Path] = []

    def open(self) -> ImageDirSource:
        """Find the images; raise CameraError when there are none."""
        path = Path(self.spec).expanduser()
        if path.is_dir():
            found = [p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        elif _is_glob(self.spec) and not path.exists():
            found = [Path(p) for p in glob.glob(str(path))]
            found = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
        else:
            found = [path]
        self.files = sorted(p for p in found if p.is_file())
        if not self.files:
            raise CameraError(
                f"no images at {self.spec} ({' '.join(IMAGE_SUFFIXES)}): check the path or pattern"
            )
        self._open = True
        return self

    def _grab(self) -> tuple[np.ndarray, str] | None:
        if self._count >= len(self.files) and not self.loop:
            return None
        path = self.files[self._count % len(self.files)]
        return read_image(path), str(path)


def open_source(spec: str, **options: object) -> FrameSource:
    """Make the frame source a --source value names (not yet opened: use `with`).

    Args:
        spec: "picamera"; a camera index such as "0"; a folder of images, a glob or an
            image file; or a video file.
        **options: options of that source's class (PiCameraSource: size, exposure_us ...;
            ImageDirSource: loop). Options set to None are left out.

    Returns:
        a PiCameraSource, OpenCVSource, ImageDirSource or VideoSource.

    Raises:
        CameraError: the spec names nothing usable, or an option does not apply to it.
    """
    path = Path(spec).expanduser()
    image_like = path.is_dir() or _is_glob(spec) or path.suffix.lower() in IMAGE_SUFFIXES
    if spec.strip().lower() == "picamera":
        cls, args = PiCameraSource, ()
    elif spec.strip().isdigit():
        cls, args = OpenCVSource, (int(spec),)
    elif path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES:
        cls, args = VideoSource, (spec,)
    elif image_like:
        cls, args = ImageDirSource, (spec,)
    else:
        raise CameraError(
            f"--source {spec!r} is not a camera or an existing file or folder: use picamera, "
            "a camera index such as 0, a folder of images, a glob such as 'shots/*.jpg', "
            "an image file or a video file"
        )
    options = {k: v for k, v in options.items() if v is not None}
    params = list(inspect.signature(cls).parameters)[len(args) :]
    wrong = sorted(set(options) - set(params))
    if wrong:
        raise CameraError(
            f"option(s) {', '.join(wrong)} do not apply to --source {spec!r} "
            f"({cls.__name__} takes {', '.join(params) or 'no options'})"
        )
    return cls(*args, **options)
