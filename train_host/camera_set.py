"""Camera-realistic evaluation set: test-split characters rendered as ink on photographed paper.

Each image goes through what a Pi camera sees: pen thickness, ink colour, paper tint and
texture, ruled lines (or squared paper), uneven light and a shadow, rotation, perspective,
blur, sensor noise and JPEG. With `sheet`, the paper is a whole sheet on a desk seen at an angle (for
`--page auto`); without it the frame is all paper. Seeded and reproducible; `labels.csv`
(file,label,kind) lies beside the images, the format `edge bench --camera-set DIR` reads.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.atomic import atomic_write_bytes
from edge.datasets import Split


@dataclass(frozen=True)
class CameraSetConfig:
    """What to render: counts, string lengths, frame size and the seed."""

    singles: int = 300
    strings: int = 100
    min_length: int = 2
    max_length: int = 8
    touching: bool = False
    sheet: bool = False
    squared: bool = False
    size: tuple[float, float] = (
        0.25,
        0.55,
    )  # a character's box, as a fraction of the frame's height
    frame: tuple[int, int] = (640, 480)
    seed: int = 0


def ink_glyph(digit: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 ink-high character scaled to `height` px, with a random pen: thin to marker."""
    big = cv2.resize(digit, (height, height), interpolation=cv2.INTER_CUBIC)
    mask = (big > 100).astype(np.uint8) * 255
    pen = rng.choice(["thin", "pen", "marker"], p=[0.35, 0.4, 0.25])
    size = max(1, round(height * {"thin": 0.03, "pen": 0.0, "marker": 0.05}[pen]))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    if pen == "thin":
        mask = cv2.erode(mask, kernel)
        if cv2.countNonZero(mask) < 0.3 * np.count_nonzero(big > 100):
            mask = (big > 100).astype(np.uint8) * 255
    elif pen == "marker":
        mask = cv2.dilate(mask, kernel)
    return cv2.GaussianBlur(mask, (3, 3), 0)


RULE_COLOUR = np.array([0.85, 0.6, 0.45], np.float32)  # pale blue (BGR)


def paper(
    shape: tuple[int, int], rng: np.random.Generator, line_gap: int, squared: bool = False
) -> np.ndarray:
    """Tinted, textured paper (float BGR in 0..1), sometimes ruled; with `squared`, always
    squared: thin lines both ways, half a rule's gap apart (about one character a cell)."""
    h, w = shape
    tint = np.array([rng.uniform(0.82, 0.97) for _ in range(3)], np.float32)
    low = cv2.resize(rng.normal(0, 1, (8, 8)).astype(np.float32), (w, h))
    page = tint[None, None, :] * (1 + 0.03 * low[..., None] + rng.normal(0, 0.01, (h, w, 1)))
    if squared:
        cell = max(8, line_gap // 2)
        for y in range(int(rng.integers(0, cell)), h, cell):
            page[y : y + 1] *= RULE_COLOUR
        for x in range(int(rng.integers(0, cell)), w, cell):
            page[:, x : x + 1] *= RULE_COLOUR
    elif rng.random() < 0.4:
        offset = int(rng.integers(0, line_gap))
        for y in range(offset, h, line_gap):
            page[y : y + max(1, line_gap // 40)] *= RULE_COLOUR
    return page.astype(np.float32)


def lighting(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Uneven light: a gradient across the frame and, half the time, a soft shadow."""
    h, w = shape
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = np.cos(angle) * xs / w + np.sin(angle) * ys / h
    light = rng.uniform(0.75, 1.0) - rng.uniform(0.0, 0.35) * (ramp - ramp.min())
    if rng.random() < 0.5:
        shadow = np.zeros((h, w), np.float32)
        corner = rng.integers(0, [w, h])
        cv2.circle(
            shadow, (int(corner[0]), int(corner[1])), int(rng.uniform(0.3, 0.7) * w), 1.0, -1
        )
        shadow = cv2.GaussianBlur(shadow, (0, 0), w / 30)
        light *= 1 - rng.uniform(0.2, 0.5) * shadow
    return np.clip(light, 0.2, 1.0)[..., None]


def _advances(glyphs: list[np.ndarray], touching: bool, rng: np.random.Generator) -> list[int]:
    """Horizontal step from each glyph's left edge to the next one's.

    Normally a gap of 0.05-0.35 glyph heights between the 28x28 boxes (whose margins keep
    the ink apart); with `touching`, the next glyph's ink starts where this one's ends, up to
    5% of a height earlier, so neighbouring strokes touch or cross.
    """
    if not touching:
        return [g.shape[1] + int(rng.uniform(0.05, 0.35) * g.shape[0]) for g in glyphs]
    extents = [np.flatnonzero(g.max(axis=0) > 0) for g in glyphs]
    steps = []
    for (a, b), g in zip(zip(extents, extents[1:] + extents[:1], strict=True), glyphs, strict=True):
        overlap = int(rng.uniform(0.0, 0.05) * g.shape[0])
        steps.append(int(a[-1]) + 1 - int(b[0]) - overlap)
    return steps


def place_string(
    glyphs: list[np.ndarray],
    shape: tuple[int, int],
    rng: np.random.Generator,
    touching: bool = False,
) -> np.ndarray:
    """Lay glyphs left to right on one wavy baseline, centred in the frame; ink coverage 0..1."""
    h, w = shape
    steps = _advances(glyphs, touching, rng)
    total = sum(steps[:-1]) + glyphs[-1].shape[1]
    ink = np.zeros((h, w), np.float32)
    x = max(0, (w - total) // 2)
    base = h // 2 + int(rng.uniform(-0.1, 0.1) * h)
    for glyph, step in zip(glyphs, steps, strict=True):
        gh, gw = glyph.shape
        y = int(np.clip(base - gh // 2 + rng.normal(0, 0.05 * gh), 0, h - gh))
        if x + gw > w:
            raise ValueError(f"{len(glyphs)} glyphs of {gh} px do not fit a {w} px frame")
        ink[y : y + gh, x : x + gw] = np.maximum(ink[y : y + gh, x : x + gw], glyph / 255.0)
        x += step
    return ink


def sheet_on_desk(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The page as a whole sheet lying on a darker desk, seen by a camera at an angle: shrunk
    to 55-80% of the frame, its far edge narrower (keystone), turned up to 12 degrees."""
    h, w = page.shape[:2]
    scale = rng.uniform(0.55, 0.8)
    sw, sh = w * scale, h * scale
    cx, cy = w / 2 + rng.uniform(-0.08, 0.08) * w, h / 2 + rng.uniform(-0.08, 0.08) * h
    squeeze = rng.uniform(0.0, 0.18) * sw  # the far edge is this much shorter on each side
    corners = np.float32(
        [
            [cx - sw / 2 + squeeze, cy - sh / 2],
            [cx + sw / 2 - squeeze, cy - sh / 2],
            [cx + sw / 2, cy + sh / 2],
            [cx - sw / 2, cy + sh / 2],
        ]
    )
    turn = cv2.getRotationMatrix2D((float(cx), float(cy)), rng.uniform(-12, 12), 1.0)
    corners = cv2.transform(corners[None], turn)[0].astype(np.float32)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    matrix = cv2.getPerspectiveTransform(src, corners)
    sheet = cv2.warpPerspective(page, matrix, (w, h))
    inside = cv2.warpPerspective(np.ones((h, w), np.float32), matrix, (w, h))[..., None]
    tone = np.array([rng.uniform(0.15, 0.5) for _ in range(3)], np.float32)  # wood, grey, cloth
    grain = cv2.resize(rng.normal(0, 1, (12, 12)).astype(np.float32), (w, h))[..., None]
    desk = tone * (1 + 0.08 * grain + rng.normal(0, 0.02, (h, w, 1)).astype(np.float32))
    return inside * sheet + (1 - inside) * desk


def camera_effects(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotation, perspective, defocus blur and sensor noise on a float BGR image (0..1)."""
    h, w = image.shape[:2]
    jitter = 0.06 * min(h, w)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + rng.uniform(-jitter, jitter, src.shape).astype(np.float32)
    rotate = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-8, 8), 1.0)
    warp = np.vstack([rotate, [0, 0, 1]]) @ cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(image, warp, (w, h), borderMode=cv2.BORDER_REPLICATE)
    sigma = rng.uniform(0.0, 1.5)
    if sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    return out + rng.normal(0, rng.uniform(0.005, 0.025), out.shape).astype(np.float32)


def render(digits: list[np.ndarray], config: CameraSetConfig, rng: np.random.Generator) -> bytes:
    """Render digits as one line of handwriting photographed by a camera; returns JPEG bytes."""
    w, h = config.frame
    # Glyphs are square and gaps at most 0.35 of a glyph: n glyphs need 1.35 n heights.
    widest = w * 0.9 / (1.35 * len(digits))
    height = int(min(rng.uniform(*config.size) * h, widest))
    glyphs = [ink_glyph(d, height, rng) for d in digits]
    ink = place_string(glyphs, (h, w), rng, config.touching)
    colour = np.array(
        rng.choice([[0.1, 0.1, 0.1], [0.45, 0.15, 0.1], [0.15, 0.15, 0.35]]), np.float32
    )  # black, blue, dark red ink (BGR)
    strength = rng.uniform(0.75, 1.0)
    page = paper((h, w), rng, int(height * rng.uniform(1.2, 1.6)), config.squared)
    image = page * (1 - strength * ink[..., None]) + colour * strength * ink[..., None] * page
    if config.sheet:
        image = sheet_on_desk(image, rng)
    image = camera_effects(image * lighting((h, w), rng), rng)
    quality = int(rng.integers(55, 95))
    ok, jpeg = cv2.imencode(
        ".jpg", np.clip(image * 255, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return jpeg.tobytes()


def build_camera_set(
    split: Split, out_dir: str | Path, config: CameraSetConfig = CameraSetConfig(), progress=None
) -> Path:
    """Render the set into `out_dir` (images, labels.csv, config.json); returns labels.csv.

    Args:
        split: the test split whose characters are rendered (never training data).
        out_dir: output folder (created).
        config: counts, lengths, frame size, seed.
        progress: optional callable wrapping an iterable (e.g. tqdm).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    jobs = [1] * config.singles + list(
        rng.integers(config.min_length, config.max_length + 1, config.strings)
    )
    rows = []
    for i, length in enumerate(progress(jobs) if progress else jobs):
        picks = rng.integers(0, len(split.labels), int(length))
        label = "".join(split.classes[split.labels[p]] for p in picks)
        kind = "single" if length == 1 else "string"
        name = f"{kind}_{i:05d}_{label}.jpg"
        atomic_write_bytes(out / name, render([split.images[p] for p in picks], config, rng))
        rows.append({"file": name, "label": label, "kind": kind})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["file", "label", "kind"])
    writer.writeheader()
    writer.writerows(rows)
    record = asdict(config) | {
        "dataset": split.name,
        "split": split.split,
        "split_sha256": split.sha256,
    }
    atomic_write_bytes(out / "config.json", json.dumps(record, indent=2).encode())
    return atomic_write_bytes(out / "labels.csv", text.getvalue().encode())
