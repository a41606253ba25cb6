"""edge.camera: frame sources, with a fake picamera2 (never the real one) and files in tmp."""

from __future__ import annotations

import dataclasses
import importlib
import struct
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from edge.camera import (
    CameraError,
    Frame,
    FrameSource,
    ImageDirSource,
    OpenCVSource,
    PiCameraSource,
    VideoSource,
    open_source,
    read_image,
    y_plane,
)
from edge.errors import EdgeError, ImageError

FAKE_DIR = Path(__file__).parent / "fake_picamera2"


@pytest.fixture
def picam(monkeypatch):
    """The fake picamera2 module, importable as `picamera2` for this test only."""
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    monkeypatch.syspath_prepend(str(FAKE_DIR))
    for name in ("FAKE_PICAMERA2_NO_CAMERA", "FAKE_PICAMERA2_NO_AUTOFOCUS"):
        monkeypatch.delenv(name, raising=False)
    module = importlib.import_module("picamera2")
    assert Path(module.__file__).is_relative_to(FAKE_DIR), "the real picamera2 was imported"
    monkeypatch.setattr(module.Picamera2, "instances", [])
    yield module
    sys.modules.pop("picamera2", None)  # monkeypatch then restores any earlier module


def last_camera(picam):
    return picam.Picamera2.instances[-1]


# --- PiCameraSource with the fake picamera2 -------------------------------------------


def test_lores_y_plane_drops_the_stride_padding(picam):
    with PiCameraSource(size=(320, 240), lores=(100, 60)) as cam:
        frames = [cam.read(), cam.read()]
        fake = last_camera(picam)
        raw = fake.capture_array("lores")
    assert fake.camera_config["lores"]["format"] == "YUV420"
    assert raw.shape == (90, 128) and (raw[:60, 100:] == 255).all()  # the padding is there
    for i, frame in enumerate(frames):
        assert frame.image.shape == (60, 100) and frame.image.dtype == np.uint8
        np.testing.assert_array_equal(frame.image, picam.y_pattern(100, 60))
        assert frame.image.flags.c_contiguous and 255 not in frame.image
        assert (frame.index, frame.source) == (i, "picamera") and frame.capture_ms >= 0
    assert frames[0].timestamp <= frames[1].timestamp <= time.perf_counter()


def test_use_main_returns_the_rgb888_stream_as_bgr(picam):
    with PiCameraSource(size=(96, 64), lores=(64, 48), use_main=True) as cam:
        frame = cam.read()
    assert last_camera(picam).camera_config["main"]["format"] == "RGB888"
    np.testing.assert_array_equal(frame.image, picam.bgr_pattern(96, 64))


def test_y_plane_rejects_a_frame_smaller_than_the_stream():
    with pytest.raises(CameraError, match="does not fit"):
        y_plane(np.zeros((90, 64), np.uint8), (100, 60))


def test_autofocus_camera_gets_continuous_af(picam):
    with PiCameraSource() as cam:
        assert last_camera(picam).controls_set == {"AfMode": 2}
        assert cam.unsupported == []


def test_lens_position_exposure_and_gain(picam):
    with PiCameraSource(focus=4.0, exposure_us=8000, gain=2.0) as cam:
        fake = last_camera(picam)
        assert fake.calls.index("set_controls") < fake.calls.index("start")
    assert fake.controls_set == {
        "AfMode": 0,
        "LensPosition": 4.0,
        "AeEnable": False,
        "ExposureTime": 8000,
        "AnalogueGain": 2.0,
    }
    assert cam.controls == fake.controls_set


def test_fixed_focus_camera_gets_no_focus_controls(picam, monkeypatch):
    monkeypatch.setattr(picam.Picamera2, "autofocus", False)
    with PiCameraSource() as cam:  # focus "auto" on a fixed-focus lens: nothing to set
        assert "set_controls" not in last_camera(picam).calls and cam.unsupported == []
    with PiCameraSource(focus="2.5", gain=1.5) as cam:  # the fake rejects unknown controls
        assert last_camera(picam).controls_set == {"AnalogueGain": 1.5}
        assert cam.unsupported == ["AfMode", "LensPosition"]


@pytest.mark.parametrize("focus", ["near", -1.0])
def test_bad_focus_fails_early(focus):
    with pytest.raises(CameraError, match="focus"):
        PiCameraSource(focus=focus)


def test_stop_and_close_when_the_with_block_raises(picam):
    with pytest.raises(ZeroDivisionError), PiCameraSource() as cam:
        cam.read()
        1 / 0  # noqa: B018
    assert last_camera(picam).calls[-2:] == ["stop", "close"]
    with pytest.raises(CameraError, match="not open"):
        cam.read()


def test_stop_and_close_when_start_fails(picam, monkeypatch):
    monkeypatch.setattr(picam.Picamera2, "fail_start", True)
    with pytest.raises(CameraError, match="did not start") as info, PiCameraSource():
        pytest.fail("the with-block must not run")
    assert last_camera(picam).calls[-2:] == ["stop", "close"]
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("mode", ["runtime", "index"])
def test_no_camera(picam, monkeypatch, mode):
    monkeypatch.setattr(picam.Picamera2, "no_camera", mode)
    with pytest.raises(CameraError) as info, PiCameraSource():
        pass
    message = str(info.value)
    assert message.startswith("No camera found") and "\n" not in message
    assert "raspi-config" in message and "--source" in message
    assert isinstance(info.value, EdgeError) and picam.Picamera2.instances == []


def test_no_camera_by_environment_variable(picam, monkeypatch):
    monkeypatch.setenv("FAKE_PICAMERA2_NO_CAMERA", "1")
    with pytest.raises(CameraError, match="No camera found"):
        PiCameraSource().open()


def test_picamera2_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` fail
    with pytest.raises(CameraError) as info, PiCameraSource():
        pass
    message = str(info.value)
    assert "python3-picamera2" in message and "--system-site-packages" in message
    assert "\n" not in message


def test_opening_twice_keeps_one_camera(picam):
    with PiCameraSource(lores=(64, 48)) as cam:
        cam.open()
        assert len(picam.Picamera2.instances) == 1 and cam.read().index == 0
    cam.close()  # closing again is harmless
    assert picam.Picamera2.instances[0].calls.count("close") == 1


def test_frames_are_frozen_records(picam):
    with PiCameraSource(lores=(64, 48)) as cam:
        frame = cam.read()
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.index = 5


# --- images, videos, OpenCV cameras ----------------------------------------------------


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """A folder with a space in its name: a.jpg (40x30), b.png (20x10), c.jpeg, notes.txt."""
    folder = tmp_path / "shots dir"
    folder.mkdir()
    for name, (w, h) in {"b.png": (20, 10), "a.jpg": (40, 30), "c.jpeg": (12, 16)}.items():
        assert cv2.imwrite(str(folder / name), np.full((h, w, 3), 200, np.uint8))
    (folder / "notes.txt").write_text("not an image")
    return folder


def exif_jpeg(image: np.ndarray, orientation: int) -> bytes:
    """Encode `image` as JPEG with an APP1 Exif segment holding one IFD0 entry: Orientation."""
    ok, jpeg = cv2.imencode(".jpg", image)
    assert ok
    entry = struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)  # tag, SHORT, count, value
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    data = jpeg.tobytes()
    assert data[:2] == b"\xff\xd8"
    return data[:2] + segment + data[2:]


def test_image_dir_frames_in_sorted_order(image_dir):
    with ImageDirSource(image_dir) as src:
        frames = list(src)
        assert src.read() is None
    assert [Path(f.source).name for f in frames] == ["a.jpg", "b.png", "c.jpeg"]
    assert [f.image.shape for f in frames] == [(30, 40, 3), (10, 20, 3), (16, 12, 3)]
    assert [f.index for f in frames] == [0, 1, 2]
    assert all(f.image.dtype == np.uint8 and f.capture_ms >= 0 for f in frames)


def test_exif_orientation_is_applied(tmp_path):
    image = np.zeros((20, 40, 3), np.uint8)  # wide; Orientation 6 = rotate 90 degrees
    image[:, :10] = 255
    path = tmp_path / "phone shot.jpg"
    path.write_bytes(exif_jpeg(image, 6))
    assert read_image(path).shape == (40, 20, 3)
    with ImageDirSource(path) as src:
        frame = src.read()
    assert frame.image.shape == (40, 20, 3)
    assert frame.image[:10].mean() > 200 and frame.image[-10:].mean() < 50  # left -> top


def test_read_image_errors_name_the_fix(tmp_path):
    bad = tmp_path / "bad file.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ImageError, match="not an image file"):
        read_image(bad)
    with pytest.raises(ImageError, match="not found"):
        read_image(tmp_path / "missing.png")


def test_folder_without_images(tmp_path):
    (tmp_path / "empty dir").mkdir()
    (tmp_path / "empty dir" / "readme.txt").write_text("x")
    for spec in (tmp_path / "empty dir", tmp_path / "no such dir", tmp_path / "*.png"):
        with pytest.raises(CameraError, match="no images"), ImageDirSource(spec):
            pass


def test_glob_source(image_dir):
    with ImageDirSource(f"{image_dir}/*.jp*g") as src:
        assert [Path(f.source).name for f in src] == ["a.jpg", "c.jpeg"]


def test_brackets_in_a_real_file_name_are_not_a_glob(image_dir):
    literal = image_dir / "shot [1].png"
    assert cv2.imwrite(str(literal), np.zeros((8, 8, 3), np.uint8))
    with open_source(str(literal)) as src:
        assert [f.source for f in src] == [str(literal)]


def test_loop_repeats_the_images(image_dir):
    with ImageDirSource(image_dir / "*.png", loop=True) as src:
        frames = [src.read() for _ in range(3)]
    with ImageDirSource(image_dir, loop=True) as src:
        names = [Path(src.read().source).name for _ in range(5)]
    assert [f.index for f in frames] == [0, 1, 2]
    assert names == ["a.jpg", "b.png", "c.jpeg", "a.jpg", "b.png"]


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """A 3-frame 64x48 MJPG .avi in a folder with a space (skip if OpenCV cannot write it)."""
    path = tmp_path / "clip dir" / "clip.avi"
    path.parent.mkdir()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG .avi")
    for value in (30, 120, 220):
        writer.write(np.full((48, 64, 3), value, np.uint8))
    writer.release()
    return path


def test_video_source(video):
    with VideoSource(video) as src:
        frames = list(src)
        assert src.read() is None
    assert len(frames) == 3 and all(f.image.shape == (48, 64, 3) for f in frames)
    assert [round(float(f.image.mean()) / 10) for f in frames] == [3, 12, 22]
    assert {f.source for f in frames} == {str(video)}


def test_missing_or_unreadable_video(tmp_path):
    with pytest.raises(CameraError, match="not found"), VideoSource(tmp_path / "none.avi"):
        pass
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video" * 10)
    with pytest.raises(CameraError, match="cannot read video") as info, VideoSource(junk):
        pass
    assert "\n" not in str(info.value)


def test_opencv_camera_index_without_a_device():
    start = time.perf_counter()
    with pytest.raises(CameraError, match="cannot open camera 99"), OpenCVSource(99):
        pass
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("api", ["cv2.utils.logging", "cv2.setLogLevel", "none"])
def test_opencv_camera_quiets_logging_with_any_opencv(monkeypatch, api):
    """OpenCV >= 4.12 has cv2.utils.logging only; 4.11 (pip's pick beside Bookworm's numpy
    1.24, found by `make verify-arm64`) has cv2.getLogLevel/setLogLevel only."""
    levels = [3]
    fake = SimpleNamespace(getLogLevel=lambda: levels[-1], setLogLevel=levels.append)
    monkeypatch.delattr(cv2.utils, "logging", raising=False)
    for name in ("getLogLevel", "setLogLevel"):
        monkeypatch.delattr(cv2, name, raising=False)
    if api == "cv2.utils.logging":
        monkeypatch.setattr(cv2.utils, "logging", fake, raising=False)
    elif api == "cv2.setLogLevel":
        monkeypatch.setattr(cv2, "getLogLevel", fake.getLogLevel, raising=False)
        monkeypatch.setattr(cv2, "setLogLevel", fake.setLogLevel, raising=False)
    with pytest.raises(CameraError, match="cannot open camera 99"), OpenCVSource(99):
        pass
    assert levels == ([3] if api == "none" else [3, 2, 3])  # quiet while opening, then restored


# --- open_source -----------------------------------------------------------------------


def test_open_source_dispatch(image_dir, video, tmp_path):
    assert isinstance(open_source("picamera", exposure_us=500), PiCameraSource)
    cam = open_source("0", size=(640, 480))
    assert isinstance(cam, OpenCVSource) and cam.index == 0
    assert isinstance(open_source(str(image_dir), loop=True), ImageDirSource)
    assert isinstance(open_source(f"{image_dir}/*.png"), ImageDirSource)
    assert isinstance(open_source(str(image_dir / "a.jpg")), ImageDirSource)
    assert isinstance(open_source(str(video), exposure_us=None), VideoSource)  # None: dropped
    for source in (PiCameraSource(), OpenCVSource(0), ImageDirSource("x"), VideoSource(video)):
        assert isinstance(source, FrameSource)


def test_open_source_rejects_unknown_specs_and_options(image_dir, tmp_path):
    with pytest.raises(CameraError, match="picamera, a camera index") as info:
        open_source(str(tmp_path / "nothing here"))
    assert "\n" not in str(info.value)
    with pytest.raises(CameraError, match="exposure_us do not apply"):
        open_source(str(image_dir), exposure_us=1000)


def test_frames_compare_by_identity_not_by_pixels():
    frame = Frame(np.zeros((2, 2), np.uint8), 0, 1.0, "x", 0.5)
    assert frame == frame and frame != dataclasses.replace(frame)  # no array truth-value error
