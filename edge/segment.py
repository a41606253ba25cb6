"""Find the characters on a page: ink mask, ruled lines removed, components merged into
characters, non-characters rejected, lines of writing ordered top to bottom, left to right.

Pure functions (numpy + OpenCV), no I/O. Each character comes out as the exact 28x28 crop
`edge.preprocess` makes for a single character, so training and device agree.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from edge.preprocess import (
    DEFAULT_SPEC,
    MIN_INK_PIXELS,
    MNIST_STROKE_RATIO,
    THICK_STROKE_FACTOR,
    PreprocessSpec,
    binarize,
    character_glyph,
    even_ink,
    label_components,
    normalize_character,
    stretch_contrast,
    to_grey,
    uint8_median,
    uint8_percentiles,
)
from edge.rules import (
    RULE_MIN_FRACTION,
    erase_rules,
    find_rules,
    is_ruling,
    is_squared,
    remove_rules,
)

# Frames are segmented at most this large (a 12 MP phone photo is shrunk 2.5x): characters
# stay tens of pixels tall, and the work stays bounded.
MAX_FRAME_SIDE = 1600
# Only the largest components are considered: a textured page can hold thousands of specks.
MAX_COMPONENTS = 400
# Neighbours in a line of writing overlap vertically by at least this fraction of the
# smaller one, even when the line tilts by 10 degrees or wobbles.
LINE_OVERLAP = 0.3
# Components merge into one character when their columns overlap by this fraction of the
# narrower one (the dot of an i, a broken 5).
MERGE_OVERLAP = 0.5
# A group shorter than this fraction of its neighbour, within FRAGMENT_GAP of its height, is
# a piece of that character (strokes that do not touch), not a character of its own.
FRAGMENT_HEIGHT = 0.6
FRAGMENT_GAP = 0.2
# When nothing in a frame clears the noise floor, its ink may be too sparse for the usual
# stretch (under 0.1% of the frame: one small character), which clips it with the paper's
# brightest noise; the frame is stretched again up to this percentile, which keeps the ink.
SPARSE_INK_TOP = 99.99
# No character is read below this height in pixels (the model's glyph is 20 px tall).
MIN_CHARACTER_HEIGHT = 8
# Blobs shorter than this fraction of the median character height are specks, not characters.
MIN_HEIGHT_FRACTION = 0.4
# Wider than this many times its height, a blob is a stroke or a line, not a character
# (checked on components, and again on each character after touching ones are split).
MAX_ASPECT = 4.0
# MNIST digits: median width/height 0.8, 90th percentile 1.0, 99th 1.43 (10,000 training
# digits). A blob wider than SPLIT_ASPECT heights may be touching characters: it is split,
# and the reader keeps the split only where the pieces win (see `edge.pipeline.pieces_win`).
CHAR_ASPECT = 0.8
SPLIT_ASPECT = 1.1
# A blob wider than 99 in 100 MNIST digits is more likely several characters than one: where
# the classifier is as sure of its pieces as of the blob, the pieces are read.
SEVERAL_ASPECT = 1.43
# ... but only when every piece is at least this fraction of the blob's height.
PIECE_MIN_HEIGHT = 0.6
# A hole in a character's mask is a hollow stroke's inside, not a loop, when its grey lies
# within this fraction of the way from the character's ink to the paper around it.
INK_HOLE = 0.25
# A character's ink stands out from the paper at least this fraction as much as the
# strongest character's of the frame (see `as_dark_as_the_writing`).
INK_CONTRAST = 0.5
# A blob up to this wide (about ten touching characters) is split; a wider one is a line.
MAX_BLOB_ASPECT = 8.0
# The parts of `find_characters`, timed in this order (see `Laps`): the ink image (grey,
# working resolution, light evened out, contrast), the threshold, the rules taken out (and
# the components labelled), characters made of components, and each character's 28x28 crop
# (touching characters split first).
PREPROCESS_PARTS = ("ink", "threshold", "rules", "characters", "crops")


class Laps:
    """Milliseconds between calls, added up by name in `parts` (nothing when it is None)."""

    def __init__(self, parts: dict[str, float] | None) -> None:
        self.parts = parts
        self.last = time.perf_counter()

    def __call__(self, name: str) -> None:
        if self.parts is not None:
            now = time.perf_counter()
            self.parts[name] = self.parts.get(name, 0.0) + (now - self.last) * 1e3
            self.last = now


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in frame pixels."""

    x: int
    y: int
    w: int
    h: int

    @property
    def cy(self) -> float:
        """Vertical centre."""
        return self.y + self.h / 2.0

    @property
    def window(self) -> tuple[slice, slice]:
        """The (rows, columns) slices of an image that the box covers."""
        return slice(self.y, self.y + self.h), slice(self.x, self.x + self.w)

    def scaled(self, factor: float) -> Box:
        """The box in a frame `factor` times larger."""
        if factor == 1.0:
            return self
        return Box(*(round(v * factor) for v in (self.x, self.y, self.w, self.h)))

    def shifted(self, dx: int, dy: int) -> Box:
        """The box moved by (dx, dy)."""
        return Box(self.x + dx, self.y + dy, self.w, self.h) if dx or dy else self

    def union(self, other: Box) -> Box:
        """The smallest box holding both."""
        x0, y0 = min(self.x, other.x), min(self.y, other.y)
        x1 = max(self.x + self.w, other.x + other.w)
        y1 = max(self.y + self.h, other.y + other.h)
        return Box(x0, y0, x1 - x0, y1 - y0)


@dataclass(frozen=True)
class Character:
    """One segmented character: its box, line number and model-ready 28x28 crop.

    Pieces of a blob split as touching characters share `group` and carry the blob's own box
    and crop in `whole_box` and `whole`, so a reader can keep the blob whole where the pieces
    do not win (see `edge.pipeline.pieces_win`; None for characters not split).
    """

    box: Box
    line: int
    crop: np.ndarray
    group: int = 0
    whole_box: Box | None = None
    whole: np.ndarray | None = None


def compact_height(stats: np.ndarray) -> float:
    """Ink-weighted median height of the compact components (not long thin runs): about the
    height of the characters, measured before anything is removed.

    Args:
        stats: connectedComponentsWithStats stats of the mask, background row included.
    """
    w, h = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    compact = (w <= MAX_ASPECT * h) & (h <= MAX_ASPECT * w)
    if not compact.any():
        return 0.0
    return weighted_median(h[compact], stats[1:, cv2.CC_STAT_AREA][compact])


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value below which half of the total weight lies."""
    order = np.argsort(values)
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64)[order])
    return float(np.asarray(values)[order][np.searchsorted(cumulative, cumulative[-1] / 2.0)])


def character_height(mask: np.ndarray, stats: np.ndarray) -> float:
    """The characters' height (see `compact_height`). When every character touches a rule,
    no component is compact but specks: the height (none, or under MIN_CHARACTER_HEIGHT) is
    then measured on the mask opened with a vertical line a hundredth of the frame tall,
    which takes out thin rules (and thin level strokes) but keeps the characters' upright
    strokes, the ones that give them their height."""
    height = compact_height(stats)
    if height >= MIN_CHARACTER_HEIGHT:
        return height
    k = max(3, round(min(mask.shape) / 100))
    upright = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((k, 1), np.uint8))
    return compact_height(label_components(upright)[2])


def working_resolution(grey: np.ndarray) -> tuple[np.ndarray, float]:
    """Shrink frames larger than MAX_FRAME_SIDE (area averaging); returns (image, scale back)."""
    side = max(grey.shape)
    if side <= MAX_FRAME_SIDE:
        return grey, 1.0
    factor = MAX_FRAME_SIDE / side
    size = (round(grey.shape[1] * factor), round(grey.shape[0] * factor))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA), 1.0 / factor


def unruled(mask: np.ndarray, stats: np.ndarray) -> np.ndarray | None:
    """The mask without its rules (see `remove_rules`), or None when it has none.

    The rules' length bar grows with the characters' height (so a character's own strokes
    stay), and that height is measured on the components. On squared paper the grid's lines
    cross and are one component as large as the frame, and its height is no character's.
    When the characters would be as tall as a rule must be long (RULE_MIN_FRACTION of the
    frame), the lines long for the frame alone are looked for; if they are a ruling (see
    `is_ruling`: one character filling the frame is not) and characters shorter than a rule
    are left without them, they are taken out, and the rules are then found again against
    the height of what is left.
    """
    height = character_height(mask, stats)
    if height >= RULE_MIN_FRACTION * min(mask.shape):
        rules = find_rules(mask, 0.0, widen=True)
        if rules is not None and is_ruling(rules[0], mask.shape):
            lined = erase_rules(mask, *rules)
            left = character_height(lined, components(lined)[2])
            if MIN_CHARACTER_HEIGHT <= left < RULE_MIN_FRACTION * min(mask.shape):
                again = remove_rules(lined, left, squared=is_squared(rules[0], mask.shape))
                return lined if again is None else again
    return remove_rules(mask, height)


def components(mask: np.ndarray) -> tuple[list[Box], np.ndarray, np.ndarray]:
    """Connected components of a mask: their boxes, the label image (label i+1 = box i) and
    the stats (background row first)."""
    count, labels, stats = label_components(mask)
    boxes = [
        Box(
            int(s[cv2.CC_STAT_LEFT]),
            int(s[cv2.CC_STAT_TOP]),
            int(s[cv2.CC_STAT_WIDTH]),
            int(s[cv2.CC_STAT_HEIGHT]),
        )
        for s in stats[1:count]
    ]
    return boxes, labels, stats


def _column_overlap(a: Box, b: Box) -> float:
    overlap = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    return overlap / max(1, min(a.w, b.w))


def merge_into_characters(
    boxes: list[Box], areas: list[int], frame_shape: tuple[int, int]
) -> list[tuple[Box, list[int]]]:
    """Group component indices into characters: components sharing a column and close
    vertically (within the taller one's height) belong together. Ink cut by the frame's edge
    (a rule running out of view, a shadow) is not joined to a character inside the frame.

    Returns:
        (box, component indices) per character.
    """
    groups: list[tuple[Box, list[int]]] = []
    for i in sorted(range(len(boxes)), key=lambda k: -areas[k]):
        box = boxes[i]
        at_edge = _touches_edge(box, frame_shape)
        for g, (gbox, members) in enumerate(groups):
            gap = max(gbox.y - (box.y + box.h), box.y - (gbox.y + gbox.h), 0)
            if at_edge != _touches_edge(gbox, frame_shape):
                continue
            if _column_overlap(gbox, box) >= MERGE_OVERLAP and gap <= max(gbox.h, box.h) * 0.5:
                groups[g] = (gbox.union(box), [*members, i])
                break
        else:
            groups.append((box, [i]))
    return groups


def ink_weighted_median_height(
    groups: list[tuple[Box, list[int]]], ink: np.ndarray, kept: list[int]
) -> float:
    """Typical character height: the median of group heights weighted by their ink, so many
    small specks of paper texture do not pull it down. Groups under MIN_CHARACTER_HEIGHT are
    no character at any scale and count only when there is nothing else: around a small
    character, hundreds of specks of noise outweigh its ink."""
    heights = np.array([box.h for box, _ in groups], dtype=np.float64)
    weights = np.array(
        [sum(ink[kept[m] + 1] for m in members) for _, members in groups], dtype=np.float64
    )
    tall = heights >= MIN_CHARACTER_HEIGHT
    if tall.any():
        heights, weights = heights[tall], weights[tall]
    return weighted_median(heights, weights)


def _is_fragment_of(small: Box, big: Box) -> bool:
    """A piece shorter than a character, beside one and within its height (an open 4's arm).

    A piece of a character is also no wider than the character is tall: a longer run beside
    it is the remnant of a rule or an underline, and joining it would carry the character
    to the frame edge, where it is rejected as cut off.
    """
    gap = max(big.x - (small.x + small.w), small.x - (big.x + big.w))
    inside = small.y >= big.y - 0.1 * big.h and small.y + small.h <= big.y + 1.1 * big.h
    short = small.h < FRAGMENT_HEIGHT * big.h and small.w <= big.h
    return short and gap <= FRAGMENT_GAP * big.h and inside


def attach_fragments(groups: list[tuple[Box, list[int]]]) -> list[tuple[Box, list[int]]]:
    """Join each fragment group to the neighbouring character it belongs to (see _is_fragment_of).

    A fragment is judged beside the character's own box, not the box grown by fragments
    already joined: otherwise a row of specks (what is left of a rule beside a character)
    joins one by one, each bringing the next within reach.
    """
    order = sorted(range(len(groups)), key=lambda g: -groups[g][0].h)
    merged: dict[int, tuple[Box, list[int]]] = {}
    for g in order:
        box, members = groups[g]
        host = next((h for h in merged if _is_fragment_of(box, groups[h][0])), None)
        if host is None:
            merged[g] = (box, members)
        else:
            merged[host] = (merged[host][0].union(box), merged[host][1] + members)
    return list(merged.values())


def is_character(box: Box, median_height: float, frame_shape: tuple[int, int]) -> bool:
    """Reject specks (under MIN_CHARACTER_HEIGHT, or a fraction of the characters' height),
    long strokes and blobs cut by the frame edge."""
    too_short = max(MIN_CHARACTER_HEIGHT, MIN_HEIGHT_FRACTION * median_height)
    if box.h < too_short or box.w > MAX_BLOB_ASPECT * box.h:
        return False
    return not _touches_edge(box, frame_shape)


def _touches_edge(box: Box, frame_shape: tuple[int, int]) -> bool:
    """Whether the box reaches the frame's edge (its ink may go on beyond it)."""
    h, w = frame_shape
    return box.x == 0 or box.y == 0 or box.x + box.w >= w or box.y + box.h >= h


def order_lines(boxes: list[Box]) -> list[list[int]]:
    """Group boxes into lines of writing and order them: lines top to bottom, boxes left to right.

    A box joins the line whose nearest member (in x) overlaps it vertically by LINE_OVERLAP
    of the smaller height, so tilted or wavy lines stay together.
    """
    lines: list[list[int]] = []
    for i in sorted(range(len(boxes)), key=lambda k: boxes[k].x):
        b = boxes[i]
        for line in lines:
            last = boxes[line[-1]]
            overlap = min(b.y + b.h, last.y + last.h) - max(b.y, last.y)
            if overlap >= LINE_OVERLAP * min(b.h, last.h):
                line.append(i)
                break
        else:
            lines.append([i])
    lines.sort(key=lambda line: np.mean([boxes[k].cy for k in line]))
    return lines


def find_characters(
    image: np.ndarray,
    spec: PreprocessSpec = DEFAULT_SPEC,
    ink: str = "auto",
    several: Callable[[np.ndarray], bool] | None = None,
    parts: dict[str, float] | None = None,
) -> list[Character]:
    """Segment every character in a frame and bring each to the model's input format.

    Args:
        image: BGR or grey frame (dark ink on paper, or light on dark).
        spec: the model's preprocessing spec.
        ink: "dark", "light" or "auto" (see `edge.preprocess.ink_is_dark`).
        several: whether a blob's crop shows several characters (a model trained with a
            several class); a blob too narrow to be split for its width is split when it
            does, its crop kept as the whole.
        parts: when given, the milliseconds of each of PREPROCESS_PARTS are added to it.

    Returns:
        Characters in reading order (line by line, left to right); empty if there is no ink.
    """
    if image.size == 0:
        raise ValueError("the image is empty")
    if min(image.shape[:2]) < 2:  # a line of pixels holds no character (and OpenCV takes a
        return []  # 1x1 array for a scalar: its compare with 0 then fails)
    lap = Laps(parts)
    grey, scale = working_resolution(to_grey(image))
    even = even_ink(grey, ink)
    strokes = stretch_contrast(even)
    lap("ink")
    mask = binarize(strokes, spec.threshold)
    if not cv2.countNonZero(mask):  # nothing cleared the noise floor: was the ink clipped?
        strokes = stretch_contrast(even, SPARSE_INK_TOP)
        mask = binarize(strokes, spec.threshold)
    lap("threshold")
    boxes, labels, stats = components(mask)
    without_rules = unruled(mask, stats)
    paper = cv2.compare(mask, 0, cv2.CMP_EQ)  # neither ink nor rule: what fills hollow strokes
    if without_rules is not None:
        mask = without_rules
        paper &= cv2.compare(mask, 0, cv2.CMP_EQ)
        boxes, labels, stats = components(mask)
    lap("rules")
    areas = [b.w * b.h for b in boxes]
    kept = sorted(range(len(boxes)), key=lambda i: -areas[i])[:MAX_COMPONENTS]
    kept = sorted(i for i in kept if areas[i] >= MIN_INK_PIXELS)
    groups = merge_into_characters([boxes[i] for i in kept], [areas[i] for i in kept], mask.shape)
    groups = attach_fragments(groups)
    if not groups:
        return []
    median_h = ink_weighted_median_height(groups, stats[:, cv2.CC_STAT_AREA], kept)
    chars = [
        (box, [kept[m] + 1 for m in members])
        for box, members in groups
        if is_character(box, median_h, mask.shape)
    ]
    if not chars and groups:  # a single character filling the frame: keep the largest group
        box, members = max(groups, key=lambda g: g[0].w * g[0].h)
        chars = [(box, [kept[m] + 1 for m in members])]
    chars = as_dark_as_the_writing(chars, labels, even)
    lap("characters")
    pieces = []  # (box, own mask, group, (blob box, blob crop) when split, crop when made)
    for group, (box, members) in enumerate(chars):
        split = split_touching(labels, box, members)
        whole, crop = (None, None), None
        if len(split) > 1:
            blob = group_pixels(labels, box, members)
            whole = (
                box.scaled(scale),
                character_crop(strokes, blob.astype(np.uint8) * 255, box, spec, grey, paper),
            )
        elif several is not None:
            crop = character_crop(strokes, split[0][1], box, spec, grey, paper)
            forced = split_touching(labels, box, members, force=True) if several(crop) else []
            if len(forced) > 1:
                split, whole, crop = forced, (box.scaled(scale), crop), None
        pieces += [(piece_box, own, group, whole, crop) for piece_box, own in split]
    pieces = [p for p in pieces if p[0].w <= MAX_ASPECT * p[0].h]
    out = []
    for line_no, line in enumerate(order_lines([p[0] for p in pieces])):
        for k in line:
            box, own, group, (whole_box, whole_crop), crop = pieces[k]
            if crop is None:
                crop = character_crop(strokes, own, box, spec, grey, paper)
            out.append(Character(box.scaled(scale), line_no, crop, group, whole_box, whole_crop))
    lap("crops")
    return out


def as_dark_as_the_writing(
    chars: list[tuple[Box, list[int]]], labels: np.ndarray, even: np.ndarray
) -> list[tuple[Box, list[int]]]:
    """The characters whose strokes stand out from the paper at least INK_CONTRAST as much as
    the strongest character's (see `stroke_level`, above the paper's median level).

    The writing of one page shares a pen, and the reflectance image (`even`: see
    `edge.preprocess.even_ink`) gives its ink one strength in shadow and in light: blobs
    much fainter than the writing are paper texture or blotches that cleared the noise
    floor, or writing showing through the sheet, not characters. The image is taken before
    the contrast stretch, which clips a small character's ink to the level of the brightest
    texture around it and would make the two look alike."""
    if len(chars) < 2:
        return chars
    paper = float(uint8_percentiles(np.ascontiguousarray(even[::4, ::4]), [50])[0])
    contrast = [stroke_level(even, labels, box, members) - paper for box, members in chars]
    strongest = max(contrast)
    return [c for c, k in zip(chars, contrast, strict=True) if k >= INK_CONTRAST * strongest]


def group_pixels(labels: np.ndarray, box: Box, members: list[int]) -> np.ndarray:
    """Which pixels of `box` belong to the group of components `members` (labels in `labels`)."""
    window = labels[box.window]
    return window == members[0] if len(members) == 1 else np.isin(window, members)


def stroke_level(strokes: np.ndarray, labels: np.ndarray, box: Box, members: list[int]) -> float:
    """The ink level of the middle of a character's strokes: the 90th percentile of the ink
    image over its own pixels (components `members` in `labels`, inside `box`). Unlike the
    median, it does not fall where a stroke is thin for the camera's blur."""
    ink = strokes[box.window][group_pixels(labels, box, members)]
    rank = int(0.9 * (len(ink) - 1))
    return float(np.partition(ink, rank)[rank])


def split_touching(
    labels: np.ndarray, box: Box, members: list[int], force: bool = False
) -> list[tuple[Box, np.ndarray]]:
    """Split a blob wider than one character could be into characters, at the thinnest columns.

    Nine in ten MNIST digits are at most SPLIT_ASPECT times as wide as tall (median
    CHAR_ASPECT 0.8), so a wider blob may be characters that touch: it is cut into
    round(aspect / CHAR_ASPECT) parts, each cut at the column with the least ink within a
    quarter of a part of where it would fall with equal widths. If a piece is much shorter
    than the blob, the blob is kept whole. `force`: split whatever the width (into at least
    two parts), for a blob the model reads as several characters.

    Returns:
        (tight box, 0/255 mask of that box) per character.
    """
    own = group_pixels(labels, box, members).astype(np.uint8) * 255
    aspect = box.w / max(1, box.h)
    if aspect <= SPLIT_ASPECT and not force:
        return [(box, own)]
    parts = max(2, round(aspect / CHAR_ASPECT))
    profile = np.count_nonzero(own, axis=0)
    step = box.w / parts
    cuts = [0]
    for i in range(1, parts):
        lo, hi = int(i * step - step / 4), int(i * step + step / 4) + 1
        cuts.append(lo + int(np.argmin(profile[lo:hi])))
    cuts.append(box.w)
    pieces = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        ys, xs = np.nonzero(own[:, a:b])
        if len(xs) < MIN_INK_PIXELS:
            continue
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, a + xs.min(), a + xs.max() + 1
        piece = own[y0:y1, x0:x1].copy()  # columns x0..x1 lie inside this part's a..b
        pieces.append((Box(box.x + int(x0), box.y + int(y0), int(x1 - x0), int(y1 - y0)), piece))
    # Touching characters each fill most of the line's height; a short piece means the blob is
    # one character with a tail (a rule remnant, a flourish): keep it whole.
    if any(piece.h < PIECE_MIN_HEIGHT * box.h for piece, _ in pieces):
        return [(box, own)]
    return pieces


def character_crop(
    ink: np.ndarray,
    own: np.ndarray,
    box: Box,
    spec: PreprocessSpec,
    grey: np.ndarray,
    paper: np.ndarray | None = None,
) -> np.ndarray:
    """The 28x28 model crop of one character: only its own ink (`own`, the box's mask, its
    hollow strokes filled: see `fill_hollow_strokes`; `paper`, the frame's pixels that are
    neither ink nor rule, may fill them)."""
    window = box.window
    own = fill_hollow_strokes(own, grey[window], None if paper is None else paper[window])
    pad = max(2, box.h // 10)
    own = cv2.copyMakeBorder(own, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    crop = cv2.copyMakeBorder(ink[window], pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    return normalize_character(character_glyph(crop, own, spec.box), spec)


def fill_hollow_strokes(
    own: np.ndarray, grey: np.ndarray, paper: np.ndarray | None = None
) -> np.ndarray:
    """Fill the holes of a character's mask that are ink, not paper.

    Where the paper-brightness estimate is narrower than a broad marker's stroke, the
    middle of the stroke reads as paper and only its outline is ink: a marker's 1 becomes a
    0. The frame itself tells the two apart: inside a loop the grey is the paper's, inside a
    hollow stroke it is the ink's. A hole is filled when its median grey lies much nearer the
    character's ink than the paper around the character (INK_HOLE of the way; a small loop
    that the camera's blur darkens stays nearer the paper). Given `paper`, hollows that are
    not closed holes are filled too (see `_fill_open_hollows`).

    Args:
        own: uint8 0/255 mask of the character in its box.
        grey: the frame's grey levels in the same box.
        paper: optional, the box's pixels the frame's threshold found neither ink nor rule.
    """
    contours, hierarchy = cv2.findContours(own, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    holes = (
        []
        if hierarchy is None
        else [c for c, row in zip(contours, hierarchy[0], strict=True) if row[3] >= 0]
    )
    if not holes and paper is None:
        return own
    inside = np.zeros_like(own)
    cv2.drawContours(inside, holes, -1, 255, cv2.FILLED)
    outside = cv2.bitwise_not(cv2.bitwise_or(own, inside))
    if not cv2.countNonZero(outside) or not cv2.countNonZero(own):
        return own
    ink_level, paper_level = uint8_median(grey, own), uint8_median(grey, outside)
    ink = own > 0
    if paper_level - ink_level < 1:
        return own
    filled = own.copy()
    darkest = ink_level + INK_HOLE * (paper_level - ink_level)
    for hole in holes:
        x, y, w, h = cv2.boundingRect(hole)
        window = (slice(y, y + h), slice(x, x + w))
        area = np.zeros((h, w), np.uint8)
        cv2.drawContours(area, [hole], -1, 255, cv2.FILLED, offset=(-x, -y))
        pixels = (area > 0) & ~ink[window]
        if pixels.any() and np.median(grey[window][pixels]) < darkest:
            filled[window] |= area
    return filled if paper is None else _fill_open_hollows(filled, grey, paper, darkest)


def _fill_open_hollows(
    own: np.ndarray, grey: np.ndarray, paper: np.ndarray, darkest: float
) -> np.ndarray:
    """A hollow stroke cut open (by a rule, or where the paper estimate half-reached it) is no
    hole, but its inside is still nearly enclosed by the character's own ink and as dark as
    that ink: pixels the threshold called paper that lie within the character's closing by
    the widest MNIST stroke (THICK_STROKE_FACTOR x MNIST_STROKE_RATIO of its longer side) and
    are darker than `darkest` are filled. A loop's or a bay's inside is paper-bright."""
    dark_paper = (paper > 0) & (grey < darkest)
    if not dark_paper.any():  # the usual case: nothing to fill, no closing needed
        return own
    side = int(THICK_STROKE_FACTOR * MNIST_STROKE_RATIO * max(own.shape)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    reach = cv2.morphologyEx(own, cv2.MORPH_CLOSE, kernel)
    return np.where((reach > 0) & dark_paper, 255, own).astype(np.uint8)
