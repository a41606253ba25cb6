"""Pure preprocessing: an image of handwriting -> the exact 28x28 input the model was trained on.

Every function here is pure (no I/O, no globals) and uses numpy and OpenCV only. The same
functions build the training sets on the host and prepare camera frames on the Pi.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edge.spec import (  # noqa: F401 (re-exported: the preprocessing contract)
    DEFAULT_SPEC,
    PREPROCESS_VERSION,
    PreprocessSpec,
    to_model_input,
)

# MNIST's stroke width as a fraction of the glyph's longer side: median over 5,000 training
# digits, measured at 8x resolution as 2 x area / perimeter (interquartile range 0.10-0.14).
MNIST_STROKE_RATIO = 0.117
# MNIST's 95th percentile of that ratio is 0.18 (5th: 0.08, measured the same way on 3,000
# training digits): strokes thicker than this many times the median are outside what the
# model saw, and are eroded towards the median.
THICK_STROKE_FACTOR = 1.55
# Crops at least this many times the box side are binarised at full resolution and
# anti-aliased by the downscale itself, as MNIST was made from bilevel NIST scans.
BILEVEL_MIN_SCALE = 2.0

INK_CHOICES = ("auto", "dark", "light")
# No pen stroke is wider than this fraction of the frame (MNIST strokes are 10-16% of the
# glyph, and a glyph is at most the frame): a wider "stroke" is a shadow or a light edge.
STROKE_MAX_FRACTION = 0.16
# Ink must stand this many robust standard deviations above the paper (see noise_floor).
NOISE_SIGMAS = 6.0

# The background mesh of `local_noise_floor`: cells along the frame's longer side, the
# cells its averages are smoothed over, the least share of paper that gives a cell its own
# figures, and the least image side that has a mesh (smaller crops use the frame's floor).
MESH_CELLS = 80
MESH_SMOOTH = 5
MESH_MIN_PAPER = 0.002
MESH_MIN_SIDE = 32
# Ink fraction below which a threshold result is treated as "no ink" (an empty page).
MIN_INK_PIXELS = 4


def to_grey(image: np.ndarray) -> np.ndarray:
    """Convert a BGR, BGRA or grey image to a 2-D uint8 grey image.

    Args:
        image: array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4).

    Returns:
        uint8 array of shape (H, W).
    """
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    if image.ndim != 2:
        raise ValueError(f"expected an image of shape (H, W[, C]), got {image.shape}")
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image


def label_components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components of a 0/255 mask: (count with the background, label image,
    stats), as `cv2.connectedComponentsWithStats`. Labels are 16-bit, which writes half the
    memory of 32-bit ones (0.95 -> 0.66 ms on a 640x480 frame on the development host); a
    mask with more components than 16 bits can number (noise, never characters) is labelled
    in 32 bits."""
    try:
        count, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
            mask, 8, cv2.CV_16U, cv2.CCL_DEFAULT
        )
    except cv2.error:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    return count, labels, stats


def uint8_histogram(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The 256-bin histogram of a uint8 image (float32 counts), of the pixels where the uint8
    `mask` is not 0 if one is given."""
    return cv2.calcHist([np.ascontiguousarray(image)], [0], mask, [256], [0, 256]).ravel()


def uint8_median(image: np.ndarray, mask: np.ndarray) -> float:
    """np.median of a uint8 image's pixels where the uint8 `mask` is not 0 (some must be), from
    their histogram."""
    return float(uint8_percentiles(image, [50], uint8_histogram(image, mask))[0])


def uint8_percentiles(image: np.ndarray, percents, hist: np.ndarray | None = None) -> np.ndarray:
    """Percentiles of a uint8 image from its histogram (`hist`, when known already), equal to
    np.percentile's (linear interpolation between ranks) at a fraction of the cost of sorting
    the pixels."""
    hist = uint8_histogram(image) if hist is None else hist
    cumulative = np.cumsum(hist)
    ranks = np.asarray(percents, dtype=np.float64) / 100.0 * (cumulative[-1] - 1)
    below = np.searchsorted(cumulative, np.floor(ranks), side="right")
    above = np.searchsorted(cumulative, np.ceil(ranks), side="right")
    return below + (above - below) * (ranks - np.floor(ranks))


def ink_is_dark(grey: np.ndarray, ink: str = "auto") -> bool:
    """Is the ink darker than the paper?

    Args:
        grey: uint8 grey image.
        ink: "dark" (pen on paper), "light" (chalk, white marker on dark) or "auto": small
            dataset-style crops (under 32 px) by their majority, larger frames taken as pen on
            paper. Shadows and tinted light make any global guess unreliable on real photos,
            so a camera frame of light ink must say so.

    Returns:
        True when ink is darker than the background.
    """
    if ink not in INK_CHOICES:
        raise ValueError(f"unknown ink {ink!r}: use one of {', '.join(INK_CHOICES)}")
    if ink != "auto":
        return ink == "dark"
    if min(grey.shape) >= 32:
        return True
    lo, hi = int(grey.min()), int(grey.max())
    return float(uint8_percentiles(grey, [50])[0]) > (lo + hi) / 2.0


def stroke_width(mask: np.ndarray) -> float:
    """Estimate the stroke width of a 0/255 ink mask: 2 x area / perimeter (a long thin stroke
    of width w and length L has area wL and perimeter about 2L)."""
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    return 2.0 * cv2.countNonZero(mask) / perimeter if perimeter > 0 else 1.0


def _background_kernel(ink: np.ndarray) -> np.ndarray:
    """A square kernel wider than the strokes of an ink-high image.

    Strokes are measured on an Otsu mask; when its "strokes" are wider than a character's
    could be (STROKE_MAX_FRACTION of the frame) it has split light from shadow rather than
    ink from paper, and a local threshold (brighter than the neighbourhood mean by several
    noise sigmas) is used instead.
    """
    _, mask = cv2.threshold(ink, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    width = stroke_width(mask)
    if width > STROKE_MAX_FRACTION * min(mask.shape):
        block = max(3, (min(ink.shape) // 10) | 1)
        offset = NOISE_SIGMAS * pixel_noise(ink)
        mask = cv2.adaptiveThreshold(
            ink, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, -offset
        )
        width = stroke_width(mask)
    side = int(2 * width + 3) | 1
    return cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))


def flatten_background(ink: np.ndarray) -> np.ndarray:
    """Subtract uneven background from an ink-high image (light ink on a dark ground).

    A grey opening wider than the strokes keeps only the background; the kernel is sized
    from the stroke width, so thick marker strokes survive whatever the image scale.
    """
    kernel = _background_kernel(ink)
    background = cv2.blur(cv2.morphologyEx(ink, cv2.MORPH_OPEN, kernel), kernel.shape)
    return cv2.subtract(ink, background)


def paper_reflectance_ink(grey: np.ndarray) -> np.ndarray:
    """Ink of dark-on-paper images as 1 - reflectance: grey divided by the local paper brightness.

    Light falls on paper and ink alike, so dividing by the paper (a grey closing wider than
    the strokes) gives the same ink strength in shadow and in full light.
    """
    kernel = _background_kernel(255 - grey)
    paper = cv2.blur(cv2.morphologyEx(grey, cv2.MORPH_CLOSE, kernel), kernel.shape)
    ink = 1.0 - cv2.divide(grey, cv2.max(paper, 1), dtype=cv2.CV_32F)  # 1 - reflectance
    ink *= 255.0
    return np.clip(ink, 0, 255, out=ink).astype(np.uint8)


def even_ink(grey: np.ndarray, ink: str = "auto") -> np.ndarray:
    """Ink high and paper low, uneven light divided out (dark ink, `paper_reflectance_ink`) or
    subtracted (light ink, `flatten_background`), not yet stretched: levels compare across
    the frame, and no ink is clipped.

    Args:
        grey: uint8 grey image, either polarity.
        ink: "dark", "light" or "auto" (see `ink_is_dark`).
    """
    dark_ink = ink_is_dark(grey, ink)
    if min(grey.shape) < 32:
        return 255 - grey if dark_ink else grey.copy()
    return paper_reflectance_ink(grey) if dark_ink else flatten_background(grey)


def stretch_contrast(ink: np.ndarray, top: float = 99.9) -> np.ndarray:
    """Stretch an ink-high image from its 1st to its `top` percentile onto 0-255 (all zero
    when it is flat). Where ink covers under 100 - `top` % of the image (a small character
    in a large frame), the brightest paper texture and the ink both come out at 255."""
    lo, hi = uint8_percentiles(ink, [1, top])
    if hi - lo < 1:
        return np.zeros_like(ink)
    levels = (np.arange(256, dtype=np.float32) - lo) * (255.0 / (hi - lo))
    return cv2.LUT(ink, np.clip(levels, 0, 255).astype(np.uint8))


def ink_intensity(grey: np.ndarray, ink: str = "auto") -> np.ndarray:
    """Return an image where ink is bright and paper is dark, with uneven light flattened.

    Args:
        grey: uint8 grey image, either polarity.
        ink: "dark", "light" or "auto" (see `ink_is_dark`).

    Returns:
        uint8 image, ink high (255) on a dark (0) background, contrast stretched.
    """
    return stretch_contrast(even_ink(grey, ink))


def noise_floor(
    ink: np.ndarray, sigma: float, sigmas: float = NOISE_SIGMAS, hist: np.ndarray | None = None
) -> float:
    """The level paper texture and sensor noise stay under: median + k robust sigmas.

    When ink covers a tiny part of a frame, Otsu splits the paper's own noise in two; ink
    must also stand out from the paper by several standard deviations of its pixel noise.
    `hist`: the ink's histogram, when known already.
    """
    return float(uint8_percentiles(ink, [50], hist)[0]) + sigmas * sigma


def noise_residual(image: np.ndarray) -> np.ndarray:
    """|image - its 5x5 median|: pixel-level noise, without smooth shading or wide strokes."""
    return cv2.absdiff(image, cv2.medianBlur(image, 5))


def pixel_noise(image: np.ndarray, residual: np.ndarray | None = None) -> float:
    """Robust sigma of pixel-level noise: the median absolute deviation of the image minus
    its 5x5 median, so smooth shading and the few ink pixels do not count (at least 1)."""
    residual = noise_residual(image) if residual is None else residual
    return max(1.0, 1.4826 * float(uint8_percentiles(residual, [50])[0]))


def paper_level_step(ink: np.ndarray, below: int, hist: np.ndarray | None = None) -> float:
    """The typical step between the grey levels the paper holds (those under `below`, the
    Otsu level): 1 in a camera frame, the gain in an ink image stretched from few levels (a
    tiny character on a large, even page), where noise finer than a step cannot be measured
    and the median of the noise residual comes out as nothing. `hist`: the ink's histogram,
    when known already."""
    hist = uint8_histogram(ink) if hist is None else hist
    levels = np.flatnonzero(hist[: max(below, 0)])
    return max(1.0, float(np.median(np.diff(levels)))) if len(levels) > 1 else 1.0


def local_noise_floor(
    ink: np.ndarray, mask: np.ndarray, residual: np.ndarray, floor: float, sigma: float
) -> np.ndarray:
    """The noise floor of every pixel, from the paper around it: a background mesh.

    Under a shadow the camera's noise and the paper's texture are divided by a darker paper
    (see `paper_reflectance_ink`): the ink image's paper is higher and noisier there than
    in full light, and a frame-wide floor lets its texture through as specks. As in
    astronomical source detection, the paper's level and noise are averaged over a coarse
    mesh (MESH_CELLS along the longer side, smoothed over MESH_SMOOTH cells) from paper
    pixels only: the ink already found, widened by a stroke width all round, is left out,
    so neither strokes nor their blurred rims count. Where the mesh has too little paper,
    the frame's figures stand in. In even light the floor is the frame's (`noise_floor`).

    Args:
        ink: uint8 ink-high image.
        mask: uint8 0/255 mask of the ink found with the frame-wide threshold.
        residual: `noise_residual(ink)`.
        floor: the frame-wide floor (`noise_floor`), NOISE_SIGMAS x `sigma` over the paper.
        sigma: the frame's pixel noise (`pixel_noise`).

    Returns:
        uint8 array of ink's shape: the least ink level of each pixel.
    """
    side = int(2 * stroke_width(mask) + 1) | 1
    halo = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_RECT, (side, side)))
    paper = cv2.compare(halo, 0, cv2.CMP_EQ) // 255
    cells = MESH_CELLS / max(ink.shape)
    size = (max(1, round(ink.shape[1] * cells)), max(1, round(ink.shape[0] * cells)))
    level, noise, weight = (
        cv2.blur(
            cv2.resize(channel.astype(np.float32), size, interpolation=cv2.INTER_AREA),
            (MESH_SMOOTH, MESH_SMOOTH),
        )
        for channel in (ink * paper, residual * paper, paper)
    )
    if weight.sum() <= 0:
        return np.full_like(ink, min(255, math.ceil(floor)))
    known = weight > MESH_MIN_PAPER
    level = np.where(known, level / np.maximum(weight, 1e-6), 0.0)
    noise = np.where(known, noise / np.maximum(weight, 1e-6), 0.0)
    frame_level, frame_noise = (float(np.average(a, weights=weight)) for a in (level, noise))
    gain = np.where(known, noise / max(frame_noise, 1e-6), 1.0)
    local = floor + NOISE_SIGMAS * sigma * (gain - 1.0) + np.where(known, level - frame_level, 0.0)
    local = np.clip(np.ceil(local), 0, 255).astype(np.uint8)
    return cv2.resize(local, ink.shape[::-1], interpolation=cv2.INTER_LINEAR)


def binarize(ink: np.ndarray, method: str = "otsu") -> np.ndarray:
    """Threshold an ink-high image into a 0/255 mask.

    Args:
        ink: uint8 image with ink high (see `ink_intensity`).
        method: "otsu" (global, for even light) or "adaptive" (local Gaussian mean).

    Returns:
        uint8 mask, 255 where there is ink.
    """
    if method == "otsu":
        otsu, _ = cv2.threshold(ink, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        residual, hist = noise_residual(ink), uint8_histogram(ink)
        sigma = max(pixel_noise(ink, residual), paper_level_step(ink, int(otsu), hist))
        floor = noise_floor(ink, sigma, hist=hist)
        _, mask = cv2.threshold(ink, max(otsu, floor), 255, cv2.THRESH_BINARY)
        if min(ink.shape) >= MESH_MIN_SIDE:
            local = local_noise_floor(ink, mask, residual, floor, sigma)
            mask &= cv2.compare(ink, local, cv2.CMP_GT)
    elif method == "adaptive":
        block = max(3, (min(ink.shape) // 4) | 1)
        mask = cv2.adaptiveThreshold(
            ink, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, block, -10
        )
    else:
        raise ValueError(f"unknown threshold method {method!r}: use 'otsu' or 'adaptive'")
    return mask


def ink_bounding_box(ink: np.ndarray, level: int = 0) -> tuple[int, int, int, int] | None:
    """Return the (x, y, w, h) box around pixels brighter than `level`, or None if there are none."""
    ys, xs = np.nonzero(ink > level)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def fit_into_box(ink: np.ndarray, box: int = 20) -> np.ndarray:
    """Crop to the ink and scale so the longer side is `box` pixels, keeping the aspect ratio.

    Args:
        ink: uint8 image, ink high, any size, with some ink in it.
        box: side of the target box (20 for MNIST).

    Returns:
        uint8 image whose longer side is `box` (anti-aliased grey levels, as MNIST).
    """
    bbox = ink_bounding_box(ink)
    if bbox is None:
        raise ValueError("no ink in the image: nothing to fit")
    x, y, w, h = bbox
    crop = ink[y : y + h, x : x + w]
    factor = box / max(w, h)
    new_w, new_h = max(1, round(w * factor)), max(1, round(h * factor))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    return cv2.resize(crop, (new_w, new_h), interpolation=interpolation)


def place_in_canvas(glyph: np.ndarray, size: int = 28, center_of_mass: bool = True) -> np.ndarray:
    """Place a fitted glyph in a size x size canvas, centred by centre of mass (as MNIST) or box.

    Args:
        glyph: uint8 glyph no larger than `size` on either side.
        size: canvas side.
        center_of_mass: shift so the intensity centre of mass lands on the canvas centre.

    Returns:
        uint8 array of shape (size, size).
    """
    h, w = glyph.shape
    if h > size or w > size:
        raise ValueError(f"glyph {glyph.shape} does not fit a {size}x{size} canvas")
    if center_of_mass and glyph.sum() > 0:
        ys, xs = np.indices(glyph.shape, dtype=np.float64)
        total = glyph.sum(dtype=np.float64)
        cy, cx = (ys * glyph).sum() / total, (xs * glyph).sum() / total
    else:
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    centre = size / 2.0  # MNIST's centres of mass lie in [13.5, 14.5]: pixel 14, not 13.5
    shift = np.float32([[1, 0, round(centre - cx)], [0, 1, round(centre - cy)]])
    return cv2.warpAffine(glyph, shift, (size, size), flags=cv2.INTER_NEAREST, borderValue=0)


def normalize_character(ink: np.ndarray, spec: PreprocessSpec = DEFAULT_SPEC) -> np.ndarray:
    """Bring one character (ink high, any size) to the dataset's format, as MNIST was made.

    Fit into a `spec.box` square keeping aspect, then place in a `spec.size` canvas by
    centre of mass (or box centre), blur as the spec says; transpose when the dataset stores
    images transposed.

    Args:
        ink: uint8 image of one character, ink high, background 0.
        spec: the model's preprocessing spec.

    Returns:
        uint8 array (spec.size, spec.size), ink high.
    """
    out = place_in_canvas(fit_into_box(ink, spec.box), spec.size, spec.center_of_mass)
    if spec.blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), spec.blur)
    return np.ascontiguousarray(out.T) if spec.transposed else out


def keep_character_components(mask: np.ndarray, min_fraction: float = 0.05) -> np.ndarray:
    """Keep the connected components that make up the main character, dropping specks.

    Components smaller than `min_fraction` of the largest are noise (paper grain, dust);
    components touching the image border are dropped when others remain (page edges, shadows).

    Args:
        mask: uint8 0/255 ink mask.
        min_fraction: smallest kept component area as a fraction of the largest.

    Returns:
        uint8 0/255 mask of the kept components.
    """
    count, labels, stats = label_components(mask)
    if count <= 1:
        return np.zeros_like(mask)
    areas = stats[1:, cv2.CC_STAT_AREA]
    h, w = mask.shape
    x0, y0 = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
    x1, y1 = x0 + stats[1:, cv2.CC_STAT_WIDTH], y0 + stats[1:, cv2.CC_STAT_HEIGHT]
    touches = (x0 == 0) | (y0 == 0) | (x1 == w) | (y1 == h)
    big = areas >= max(MIN_INK_PIXELS, min_fraction * areas.max())
    keep = big & ~touches if (big & ~touches).any() else big
    return np.where(np.isin(labels, np.flatnonzero(keep) + 1), 255, 0).astype(np.uint8)


def stroke_growth(mask: np.ndarray, ratio: float = MNIST_STROKE_RATIO, width=None) -> int:
    """Pixels to add to the strokes of a 0/255 glyph mask for them to be `ratio` of its
    longer side wide (0 or less: wide enough). `width`: its stroke width, when known."""
    width = stroke_width(mask) if width is None else width
    return int(round(ratio * max(mask.shape) - width))


def normalize_stroke_width(mask: np.ndarray, ratio: float = MNIST_STROKE_RATIO) -> np.ndarray:
    """Bring the strokes of a bilevel glyph to MNIST's stroke/size ratio.

    Thin strokes (ballpoint, pencil) are dilated to the target; strokes thicker than nearly
    all of MNIST's (THICK_STROKE_FACTOR times the target: broad markers, which fill loops)
    are eroded towards it, as long as the erosion keeps most of the ink (a thin part of the
    glyph must not vanish).

    Args:
        mask: uint8 0/255 mask cropped to one character.
        ratio: target stroke width as a fraction of the glyph's longer side.

    Returns:
        The mask with strokes about `ratio` of its size wide.
    """
    target = ratio * max(mask.shape)
    width = stroke_width(mask)
    grow = stroke_growth(mask, ratio, width)
    if grow >= 1:
        padded = cv2.copyMakeBorder(mask, grow, grow, grow, grow, cv2.BORDER_CONSTANT, value=0)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow + 1, grow + 1))
        return cv2.dilate(padded, kernel)
    if width > THICK_STROKE_FACTOR * target:
        shrink = int(round(width - target))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (shrink + 1, shrink + 1))
        thinner = cv2.erode(mask, kernel)
        if cv2.countNonZero(thinner) >= 0.3 * cv2.countNonZero(mask):
            return thinner
    return mask


def character_glyph(ink: np.ndarray, mask: np.ndarray, box: int = 20) -> np.ndarray:
    """The ink of one character, ready for `normalize_character`.

    Large crops become a bilevel glyph with MNIST's stroke width (the downscale anti-aliases
    it); small ones keep their grey levels.

    Args:
        ink: uint8 ink-high image.
        mask: uint8 0/255 mask of the character's components in `ink`.
        box: side of the box the glyph will be fitted into.
    """
    bbox = ink_bounding_box(mask)
    if bbox is None:
        raise ValueError("no ink found in the image")
    x, y, w, h = bbox
    if max(w, h) >= BILEVEL_MIN_SCALE * box:
        return normalize_stroke_width(mask[y : y + h, x : x + w])
    near = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    return cv2.bitwise_and(ink, near)


def extract_character(
    image: np.ndarray, spec: PreprocessSpec = DEFAULT_SPEC, ink: str = "auto"
) -> np.ndarray:
    """Turn an image of one handwritten character (any size, either polarity) into model format.

    Grey -> ink high with even light -> threshold -> main connected components -> glyph
    (see `character_glyph`) -> fit 20x20 keeping aspect -> 28x28 by centre of mass.

    Args:
        image: BGR or grey image of a single character.
        spec: the model's preprocessing spec.
        ink: "dark", "light" or "auto" (see `ink_is_dark`).

    Returns:
        uint8 array (spec.size, spec.size), ink high.

    Raises:
        ValueError: the image is empty or has no ink.
    """
    if image.size == 0:
        raise ValueError("the image is empty")
    strokes = ink_intensity(to_grey(image), ink)
    mask = keep_character_components(binarize(strokes, spec.threshold))
    if cv2.countNonZero(mask) < MIN_INK_PIXELS:
        raise ValueError("no ink found in the image")
    return normalize_character(character_glyph(strokes, mask, spec.box), spec)
