"""Frame sources: OpenCV cameras, videos, images; the Pi camera lives in edge.picamera."""

from __future__ import annotations

import glob
import inspect
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from edge.errors import EdgeError, ImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
# Names that moved to edge.picamera (which imports this module), re-exported lazily.
_PICAMERA_NAMES = frozenset(
    ("PiCameraSource", "camera_control_values", "y_plane", "AF_CONTINUOUS", "AF_MANUAL")
    + ("NO_CAMERA", "NO_PICAMERA2")
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
    with opencv_log_level(OPENCV_LOG_LEVEL_SILENT):  # its own message for a bad file: ours below
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.size == 0:
        raise ImageError(f"cannot read image {path}: empty or not an image file (use PNG or JPEG)")
    return image


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


def _is_glob(spec: str) -> bool:
    return any(c in spec for c in "*?[")


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


FFMPEG_QUIET = -8  # AV_LOG_QUIET
OPENCV_LOG_LEVEL_SILENT = 0  # cv::utils::logging::LOG_LEVEL_SILENT
OPENCV_LOG_LEVEL_ERROR = 2  # cv::utils::logging::LOG_LEVEL_ERROR


def opencv_log_level_functions() -> tuple:
    """OpenCV's (getLogLevel, setLogLevel), or (None, None) where it has neither.

    The wheels from 4.12 have them in `cv2.utils.logging` only; 4.11 and older (what pip picks
    beside Raspberry Pi OS Bookworm's numpy 1.24) as `cv2.getLogLevel` / `cv2.setLogLevel`.
    """
    logging = getattr(cv2.utils, "logging", None)
    if logging is not None and hasattr(logging, "setLogLevel"):
        return logging.getLogLevel, logging.setLogLevel
    if hasattr(cv2, "getLogLevel") and hasattr(cv2, "setLogLevel"):
        return cv2.getLogLevel, cv2.setLogLevel
    return None, None


@contextmanager
def opencv_log_level(level: int) -> Iterator[None]:
    """OpenCV logs at `level` inside the block (unchanged where it cannot be set)."""
    get_level, set_level = opencv_log_level_functions()
    before = get_level() if get_level is not None else None
    if before is not None:
        set_level(level)
    try:
        yield
    finally:
        if before is not None:
            set_level(before)


class OpenCVSource(_CaptureSource):
    """A camera OpenCV can open by index (USB webcam, /dev/videoN)."""

    def __init__(self, index: int, size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.index, self.size = int(index), size
        self.name = f"opencv:{self.index}"

    def open(self) -> OpenCVSource:
        """Open the camera; raise CameraError when there is none at this index."""
        with opencv_log_level(OPENCV_LOG_LEVEL_ERROR):  # no V4L2 warnings
            self._open_capture(
                self.index,
                f"cannot open camera {self.index}: plug it in (see `ls /dev/video*`), try "
                "another index, or pass --source picamera or --source DIR",
            )
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
        # FFmpeg's own complaint about a bad file ("moov atom not found") would print beside
        # ours; quiet unless the user asks (read when OpenCV first starts FFmpeg)
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", str(FFMPEG_QUIET))
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
        from edge.picamera import PiCameraSource  # edge.picamera imports this module

        cls, args = PiCameraSource, ()
    elif spec.strip().isdigit():
        cls, args = OpenCVSource, (int(spec),)
    elif path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES:
        cls, args = VideoSource, (spec,)
    elif image_like:
        cls, args = ImageDirSource, (spec,)
    else:
        raise CameraError(
            f"{spec!r} is not a camera or an existing file or folder: use picamera, "
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


def __getattr__(name: str) -> object:
    """Resolve `edge.camera.PiCameraSource` and the other names moved to edge.picamera."""
    if name in _PICAMERA_NAMES:
        from edge import picamera

        return getattr(picamera, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
