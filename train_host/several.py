"""The "several characters" class: 2-3 training characters written touching, normalised as
one character would be, so a model can say that a blob is not one character.

A camera frame's touching characters reach the classifier as one blob; a 10-class model
reads it as some digit, often as sure as of a real one (an int8 top probability saturates
at 255/256). Trained with this class it can say "several" instead, and the reader then
takes the blob's pieces (`edge.pipeline`). The composites are made in the data set's own
format from the split being trained on (training composites from training characters,
validation ones from validation characters): neighbours abut or overlap by up to
MAX_OVERLAP of a height, sit up to VERTICAL_JITTER of a height above or below each other
and differ in size by up to SIZE_JITTER. The camera path brings a blob's strokes to MNIST's
width for the blob's longer side (`edge.preprocess.normalize_stroke_width`), so a crop of
two touching digits has strokes about twice as thick for their height as one digit's; the
composites are thickened the same way (a grey dilation), then fitted into the 20x20 box and
centred by mass in 28x28, as MNIST made each digit.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.preprocess import (
    PreprocessSpec,
    fit_into_box,
    ink_bounding_box,
    place_in_canvas,
    stroke_growth,
)

THREE_FRACTION = 0.25  # composites of three characters; the others have two
MAX_OVERLAP = 0.25  # how far a character's ink may reach into its neighbour's, in heights
VERTICAL_JITTER = 0.08  # standard deviation of each character's vertical offset, in heights
SIZE_JITTER = 0.12  # each character's height varies by up to this fraction


def _ink(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A character's ink cropped to its box, scaled by a random size factor."""
    box = ink_bounding_box(image)
    if box is None:
        return np.zeros((1, 1), np.uint8)
    x, y, w, h = box
    factor = 1.0 + rng.uniform(-SIZE_JITTER, SIZE_JITTER)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(image[y : y + h, x : x + w], size, interpolation=cv2.INTER_LINEAR)


def touching_strip(glyphs: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Write cropped glyphs left to right on one line, each one's ink reaching up to
    MAX_OVERLAP of a height (and at most half the narrower one's width) into the previous
    one's; ink is the maximum where they cross."""
    height = max(g.shape[0] for g in glyphs)
    offsets = [round(rng.normal(0, VERTICAL_JITTER) * height) for _ in glyphs]
    lift = min(0, *offsets)
    xs, x = [0], 0
    for g, nxt in zip(glyphs, glyphs[1:], strict=False):
        # each keeps at least half its columns clear of its neighbour
        most = min(g.shape[1], nxt.shape[1]) // 2
        x += g.shape[1] - min(round(rng.uniform(0, MAX_OVERLAP) * height), most)
        xs.append(x)
    top = [height // 2 - g.shape[0] // 2 + o - lift for g, o in zip(glyphs, offsets, strict=True)]
    rows = max(t + g.shape[0] for t, g in zip(top, glyphs, strict=True))
    canvas = np.zeros(
        (rows, max(x0 + g.shape[1] for x0, g in zip(xs, glyphs, strict=True))), np.uint8
    )
    for g, x0, y0 in zip(glyphs, xs, top, strict=True):
        view = canvas[y0 : y0 + g.shape[0], x0 : x0 + g.shape[1]]
        np.maximum(view, g, out=view)
    return canvas


def camera_stroke_width(strip: np.ndarray) -> np.ndarray:
    """Grey strokes thickened as the camera path thickens a blob's (see the module's doc)."""
    grow = stroke_growth(cv2.threshold(strip, 127, 255, cv2.THRESH_BINARY)[1])
    if grow < 1:
        return strip
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow + 1, grow + 1))
    return cv2.dilate(
        cv2.copyMakeBorder(strip, grow, grow, grow, grow, cv2.BORDER_CONSTANT), kernel
    )


def several_characters(
    images: np.ndarray, count: int, seed: int, spec: PreprocessSpec | None = None
) -> np.ndarray:
    """`count` composites of 2 or 3 of `images` (uint8, ink high, upright as a Split holds
    them) written touching, each brought to the data set's format (`spec`'s box, canvas and
    centring; MNIST's by default)."""
    spec = spec or PreprocessSpec()
    rng = np.random.default_rng(seed)
    out = np.empty((count, spec.size, spec.size), np.uint8)
    for k in range(count):
        n = 3 if rng.random() < THREE_FRACTION else 2
        glyphs = [_ink(images[i], rng) for i in rng.choice(len(images), n, replace=False)]
        glyph = fit_into_box(camera_stroke_width(touching_strip(glyphs, rng)), spec.box)
        out[k] = place_in_canvas(glyph, spec.size, spec.center_of_mass)
    return out
