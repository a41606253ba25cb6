"""Camera-like changes of a photo (scale, tilt, exposure, contrast, noise, compression, focus,
shadow, colour), to measure how a reading holds up on cameras and scenes not seen: the same
labelled photos are read as taken and after each change (`edge bench --photos DIR
--conditions all`). Pure functions (numpy + OpenCV); noise is seeded per photo.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from edge.errors import EdgeError

AS_TAKEN = "as-taken"
# The frame side most conditions start from: a Pi camera's 640x480 preview.
FRAME_SIDE = 640


def longest_side(image: np.ndarray, side: int) -> np.ndarray:
    """The image shrunk (area averaging) so its longer side is at most `side` pixels."""
    factor = side / max(image.shape[:2])
    if factor >= 1:
        return image
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


def rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    """The image turned about its centre, its corners filled from its edges (bilinear)."""
    h, w = image.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, turn, (w, h), borderMode=cv2.BORDER_REPLICATE)


def with_gamma(image: np.ndarray, gamma: float) -> np.ndarray:
    """Exposure changed by a gamma curve (above 1: darker, below 1: brighter)."""
    curve = 255.0 * (np.arange(256) / 255.0) ** gamma
    return cv2.LUT(image, np.clip(np.round(curve), 0, 255).astype(np.uint8))


def with_contrast(image: np.ndarray, factor: float) -> np.ndarray:
    """Contrast scaled about mid-grey (a hazy lens, a flat exposure)."""
    return cv2.convertScaleAbs(image, alpha=factor, beta=128.0 * (1.0 - factor))


def with_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian sensor noise of `sigma` grey levels, on every channel."""
    noisy = image.astype(np.float32) + rng.normal(0.0, sigma, image.shape).astype(np.float32)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def as_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """The image after a round trip through JPEG at `quality` (blocks, ringing)."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise EdgeError("OpenCV could not encode JPEG: reinstall opencv-python-headless")
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def with_shadow(image: np.ndarray, darkest: float = 0.45) -> np.ndarray:
    """Light falling off across the frame, left to right, to `darkest` of its level."""
    ramp = np.linspace(1.0, darkest, image.shape[1], dtype=np.float32)
    ramp = ramp[None, :, None] if image.ndim == 3 else ramp[None, :]
    return (image * ramp).astype(np.uint8)


def in_grey(image: np.ndarray) -> np.ndarray:
    """A monochrome camera's frame (still three channels where the photo had them)."""
    if image.ndim == 2:
        return image
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def keystoned(image: np.ndarray, squeeze: float = 0.15) -> np.ndarray:
    """The frame of a camera tilted back from the page: the far (top) edge narrower by
    `squeeze` of the width on each side, the near edge as it was (corners filled from the
    edges)."""
    h, w = image.shape[:2]
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    seen = np.float32([[squeeze * w, 0], [(1 - squeeze) * w, 0], [w, h], [0, h]])
    warp = cv2.getPerspectiveTransform(corners, seen)
    return cv2.warpPerspective(image, warp, (w, h), borderMode=cv2.BORDER_REPLICATE)


def shaken(image: np.ndarray, length: int = 7) -> np.ndarray:
    """A camera moving sideways during the exposure: a level motion blur `length` px long."""
    kernel = np.full((1, length), 1.0 / length, np.float32)
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REPLICATE)


def _framed(change: Callable[[np.ndarray], np.ndarray]) -> Callable:
    """A change applied to the photo brought to a FRAME_SIDE frame first."""
    return lambda image, rng: change(longest_side(image, FRAME_SIDE))


CONDITIONS: dict[str, tuple[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]]] = {
    AS_TAKEN: ("the photo as it is", lambda image, rng: image),
    "frame640": (f"longer side {FRAME_SIDE} px", _framed(lambda i: i)),
    "frame400": ("longer side 400 px", lambda image, rng: longest_side(image, 400)),
    "tilt+8": ("640 px, turned 8 degrees anticlockwise", _framed(lambda i: rotated(i, 8))),
    "tilt-8": ("640 px, turned 8 degrees clockwise", _framed(lambda i: rotated(i, -8))),
    "dark": ("640 px, under-exposed (gamma 2.2)", _framed(lambda i: with_gamma(i, 2.2))),
    "bright": ("640 px, over-exposed (gamma 0.5)", _framed(lambda i: with_gamma(i, 0.5))),
    "flat": ("640 px, half the contrast", _framed(lambda i: with_contrast(i, 0.5))),
    "noise8": (
        "640 px, sensor noise of 8 grey levels",
        lambda image, rng: with_noise(longest_side(image, FRAME_SIDE), 8.0, rng),
    ),
    "jpeg20": ("640 px, JPEG quality 20", _framed(lambda i: as_jpeg(i, 20))),
    "blur": (
        "640 px, out of focus (Gaussian, sigma 1.5 px)",
        _framed(lambda i: cv2.GaussianBlur(i, (0, 0), 1.5)),
    ),
    "keystone": ("640 px, seen from a camera tilted back (top 30% narrower)", _framed(keystoned)),
    "shake": ("640 px, sideways motion blur of 7 px", _framed(shaken)),
    "shadow": ("640 px, light falling to 45% across the frame", _framed(with_shadow)),
    "grey": ("640 px, monochrome", _framed(in_grey)),
}


def parse_conditions(text: str) -> list[str]:
    """Condition names from a comma-separated list, or every condition for "all"."""
    names = list(CONDITIONS) if text.strip() == "all" else [n.strip() for n in text.split(",")]
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown or not names:
        raise EdgeError(
            f"unknown condition {', '.join(unknown) or repr(text)}: use 'all' or some of "
            f"{', '.join(CONDITIONS)}"
        )
    return names


def apply_condition(name: str, image: np.ndarray, seed: int = 0) -> np.ndarray:
    """The photo under the named condition (see CONDITIONS); `seed` fixes its noise."""
    return CONDITIONS[name][1](image, np.random.default_rng(seed))
