"""Find the characters on a page: ink mask, ruled lines removed, components merged into
characters, non-characters rejected, lines of writing ordered top to bottom, left to right.

Pure functions (numpy + OpenCV), no I/O. Each character comes out as the exact 28x28 crop
`edge.preprocess` makes for a single character, so training and device agree.
"""

from __future__ import annotations

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
    ink_intensity,
    normalize_character,
    to_grey,
)

# A ruled or grid line is a straight segment at least this fraction of the frame's shorter
# side (a stroke of a character in a tight crop is shorter) ...
RULE_MIN_FRACTION = 0.6
# ... and is longer than any straight stroke inside a character: a segment within a box no
# wider than tall is at most its diagonal, 1.42 heights.
RULE_MIN_HEIGHTS = 1.5
# Frames are segmented at most this large (a 12 MP phone photo is shrunk 2.5x): characters
# stay tens of pixels tall, and the work stays bounded.
MAX_FRAME_SIDE = 1600
# A ruling (see `is_ruling`): parallel lines crossing this much of the frame, this parallel.
RULING_SPAN = 0.9
RULING_ANGLE = 3.0
RULING_APART = 0.1
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
# No character is read below this height in pixels (the model's glyph is 20 px tall).
MIN_CHARACTER_HEIGHT = 8
# Blobs shorter than this fraction of the median character height are specks, not characters.
MIN_HEIGHT_FRACTION = 0.4
# Wider than this many times its height, a blob is a stroke or a line, not a character
# (checked on components, and again on each character after touching ones are split).
MAX_ASPECT = 4.0
# MNIST digits: median width/height 0.8, 90th percentile 1.0, 99th 1.43 (10,000 training
# digits). A blob wider than SPLIT_ASPECT heights may be touching characters: it is split,
# and the reader keeps the split only where the classifier is surer of the pieces.
CHAR_ASPECT = 0.8
SPLIT_ASPECT = 1.1
# ... but only when every piece is at least this fraction of the blob's height.
PIECE_MIN_HEIGHT = 0.6
# A hole in a character's mask is a hollow stroke's inside, not a loop, when its grey lies
# within this fraction of the way from the character's ink to the paper around it.
INK_HOLE = 0.25
# A blob up to this wide (about ten touching characters) is split; a wider one is a line.
MAX_BLOB_ASPECT = 8.0


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
    and crop in `whole_box` and `whole`, so a reader can keep the blob whole when the
    classifier is surer of it than of its pieces (None for characters not split).
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
    return compact_height(cv2.connectedComponentsWithStats(upright, connectivity=8)[2])


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
                again = remove_rules(lined, left, squared=is_ruling(_steep(rules[0]), mask.shape))
                return lined if again is None else again
    return remove_rules(mask, height)


def _steep(segments: np.ndarray) -> np.ndarray:
    """The segments (x0, y0, x1, y1 rows) nearer upright than level."""
    return segments[
        np.abs(segments[:, 3] - segments[:, 1]) > np.abs(segments[:, 2] - segments[:, 0])
    ]


def is_ruling(segments: np.ndarray, shape: tuple[int, int]) -> bool:
    """Whether rules (followed segments, x0, y0, x1, y1 rows) are a ruling, not one character's
    strokes: two of them cross the whole frame (RULING_SPAN of its width, or of its height for
    steep ones) side by side, parallel (within RULING_ANGLE degrees) and RULING_APART of the
    frame apart, as the lines of ruled or squared paper are."""
    h, w = shape
    dx, dy = segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1]
    steep = np.abs(dy) > np.abs(dx)
    spans = np.where(steep, np.abs(dy) / h, np.abs(dx) / w) >= RULING_SPAN
    angles = np.degrees(np.arctan2(dy, dx)) % 180
    mid_x, mid_y = (segments[:, 0] + segments[:, 2]) / 2, (segments[:, 1] + segments[:, 3]) / 2
    i, j = np.triu_indices(len(segments), 1)  # every pair
    turn = np.abs(angles[i] - angles[j])
    apart = np.where(steep[i], np.abs(mid_x[i] - mid_x[j]) / w, np.abs(mid_y[i] - mid_y[j]) / h)
    parallel = (steep[i] == steep[j]) & (np.minimum(turn, 180 - turn) <= RULING_ANGLE)
    return bool((spans[i] & spans[j] & parallel & (apart >= RULING_APART)).any())


def remove_rules(mask: np.ndarray, char_height: float, squared: bool = False) -> np.ndarray | None:
    """Remove long straight lines (ruled paper, grids, box edges), tilted ones too.

    A rule is a straight segment (probabilistic Hough) crossing at least RULE_MIN_FRACTION
    of the frame and RULE_MIN_HEIGHTS times longer than the characters are tall, so a
    character's own strokes stay; each segment found is followed along its rule's whole run
    (see `follow_rules`). Strokes that cross a rule are bridged again.

    Squared paper's thin lines drift off the one-pixel walk of the Hough search: where the
    steep rules found are a ruling (see `is_ruling`), or `squared` says so, the search runs on
    the ink widened by a pixel all round.

    Args:
        mask: uint8 0/255 ink mask.
        char_height: typical character height in pixels (see `compact_height`).
        squared: the mask is known to be squared paper.

    Returns:
        The mask without the rules, or None when there are none.
    """
    rules = find_rules(mask, char_height, widen=squared)
    if rules is not None and not squared and is_ruling(_steep(rules[0]), mask.shape):
        rules = find_rules(mask, char_height, widen=True)  # squared paper: its lines are thin
    return None if rules is None else erase_rules(mask, *rules)


def find_rules(
    mask: np.ndarray, char_height: float, widen: bool = False
) -> tuple[np.ndarray, float] | None:
    """The rules of a mask (see `remove_rules`): their followed segments (x0, y0, x1, y1 rows)
    and the length bar they passed, or None when there are none."""
    h, w = mask.shape
    length = max(RULE_MIN_FRACTION * min(h, w), RULE_MIN_HEIGHTS * char_height)
    if length < 8:
        return None
    # Faint rules break up and characters interrupt them: bridge gaps of half a character.
    gap = max(2, int(0.5 * char_height), int(length / 50))
    candidates = rule_candidates(mask, length, gap)
    if candidates is None:
        return None
    if widen:
        candidates = cv2.dilate(candidates, np.ones((3, 3), np.uint8))
    segments = cv2.HoughLinesP(
        candidates,
        1,
        np.pi / 360,
        threshold=int(length * 0.5),
        minLineLength=int(length),
        maxLineGap=gap,
    )
    if segments is None:
        return None
    segments = follow_rules(mask, segments.reshape(-1, 4), gap)
    return (complete_ruling(mask, segments, gap) if widen else segments), length


def complete_ruling(mask: np.ndarray, segments: np.ndarray, gap: int) -> np.ndarray:
    """The rules with the lines of their ruling that the search missed.

    Squared paper's lines are evenly spaced. A line cut short by a corner of the frame is
    shorter than a rule, and a faint one may not be found; either lies a whole number of
    spacings from the lines across the frame that were. Where ink runs along such a line for
    at least half of its stretch in the frame, it is a rule too (followed like the others).
    """
    h, w = mask.shape
    steep = np.abs(segments[:, 3] - segments[:, 1]) > np.abs(segments[:, 2] - segments[:, 0])
    added = []
    for upright in (False, True):
        family = segments[(steep == upright) & _spans_frame(segments, mask.shape)]
        for offset, direction in _missing_lines(family, upright, mask.shape):
            centre = (offset, h / 2) if upright else (w / 2, offset)
            far = 2.0 * (h + w)
            ends = (
                (round(centre[0] - far * direction[0]), round(centre[1] - far * direction[1])),
                (round(centre[0] + far * direction[0]), round(centre[1] + far * direction[1])),
            )
            inside, a, b = cv2.clipLine((0, 0, w, h), *ends)
            chord = float(np.hypot(b[0] - a[0], b[1] - a[1]))
            if not inside or chord < 8:
                continue
            rule = np.array([a[0], a[1], b[0], b[1]], np.float64)
            xs, ys = _ink_along(mask, rule)
            across = (ys - a[1]) * direction[0] - (xs - a[0]) * direction[1]
            along = (xs - a[0]) * direction[0] + (ys - a[1]) * direction[1]
            covered = np.unique(np.round(along[np.abs(across) <= 3.0]))
            if len(covered) >= 0.5 * chord:
                added.append(_follow((xs, ys), rule, gap))
    return np.vstack([segments, *added]) if added else segments


def _spans_frame(segments: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Which segments cross RULING_SPAN of the frame (of its width, or its height if steep)."""
    h, w = shape
    dx, dy = np.abs(segments[:, 2] - segments[:, 0]), np.abs(segments[:, 3] - segments[:, 1])
    return np.where(dy > dx, dy / h, dx / w) >= RULING_SPAN


def _missing_lines(family: np.ndarray, upright: bool, shape: tuple[int, int]):
    """(offset, unit direction) of the lines a family of parallel lines across the frame leaves
    out at its spacing (the median gap between neighbours): between them and up to the frame's
    edges. The offset is where a line crosses the frame's middle row (upright) or column."""
    h, w = shape
    if len(family) < 2:
        return []
    dx, dy = family[:, 2] - family[:, 0], family[:, 3] - family[:, 1]
    if upright:
        offsets = family[:, 0] + (h / 2 - family[:, 1]) * dx / dy
    else:
        offsets = family[:, 1] + (w / 2 - family[:, 0]) * dy / dx
    norms = np.hypot(dx, dy)
    directions = (
        np.stack([dx / norms, dy / norms], axis=1) * np.sign(dy if upright else dx)[:, None]
    )
    order = np.argsort(offsets)
    lines = []  # (offset, direction), one per line (near-identical offsets are one line)
    for k in order:
        if not lines or offsets[k] - lines[-1][0] > 3.0:
            lines.append((float(offsets[k]), directions[k]))
    if len(lines) < 2:
        return []
    spacing = float(np.median(np.diff([o for o, _ in lines])))
    if spacing < 8:
        return []
    missing = []
    for (a, da), (b, _) in zip(lines, lines[1:], strict=False):
        parts = round((b - a) / spacing)
        missing += [(a + k * (b - a) / parts, da) for k in range(1, parts)]
    extent = w if upright else h
    first, d_first = lines[0]
    last, d_last = lines[-1]
    k = 1
    while first - k * spacing > -spacing:
        missing.append((first - k * spacing, d_first))
        k += 1
    k = 1
    while last + k * spacing < extent + spacing:
        missing.append((last + k * spacing, d_last))
        k += 1
    return missing


def erase_rules(mask: np.ndarray, segments: np.ndarray, length: float) -> np.ndarray:
    """The mask without the rules (followed segments, see `find_rules`), each as thick as the
    ink along it; strokes that cross a rule are bridged across it again.

    Strokes are bridged down the rules' band. Steep rules that are a ruling of their own
    (squared paper's upright lines, see `is_ruling`) cut level strokes: their band is bridged
    along its rows instead. A lone steep "rule" is more often a character's upright stroke
    drawn on into the level rules, and is bridged down like the rest, which keeps it.
    """
    steep = np.abs(segments[:, 3] - segments[:, 1]) > np.abs(segments[:, 2] - segments[:, 0])
    upright = steep if is_ruling(_steep(segments), mask.shape) else np.zeros_like(steep)
    bands = [_drawn(mask.shape, segments[~upright]), _drawn(mask.shape, segments[upright])]
    thickness = _rule_thickness(mask, cv2.bitwise_or(*bands))
    pen = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (thickness, thickness))
    bands = [cv2.dilate(band, pen) for band in bands]
    kept = cv2.bitwise_and(mask, cv2.bitwise_not(cv2.bitwise_or(*bands)))
    out = kept.copy()
    for band, along_rows in ((bands[0], False), (bands[1], True)):
        if not (upright.any() if along_rows else not upright.all()):
            continue  # no rule in this band
        across = max(thickness, band_height(band.T if along_rows else band, length)) + 2
        bridge = cv2.getStructuringElement(
            cv2.MORPH_RECT, (across, 1) if along_rows else (1, across)
        )
        out |= cv2.bitwise_and(cv2.morphologyEx(kept, cv2.MORPH_CLOSE, bridge), band)
    return out


def _drawn(shape: tuple[int, int], segments: np.ndarray) -> np.ndarray:
    """A 0/255 image of the segments (x0, y0, x1, y1 rows) drawn 1 px wide."""
    image = np.zeros(shape, np.uint8)
    for x0, y0, x1, y1 in segments:
        cv2.line(image, (round(x0), round(y0)), (round(x1), round(y1)), 255, 1)
    return image


def follow_rules(mask: np.ndarray, rules: np.ndarray, gap: int) -> np.ndarray:
    """Each rule's whole run along its line, refitted to the ink.

    HoughLinesP walks a rule one pixel wide at its quantised angle; on a faint, dashed rule a
    pixel of drift ends the walk, and the rest of the rule is shorter than a rule, so it was
    kept and joined the characters it touches. Here the ink within a few pixels of each
    segment's line, across the whole frame, is fitted with a straight line (twice, the second
    time on the ink within 1.5 px of the first fit), and the segment becomes the run of that
    ink, breaks no longer than `gap`, that holds it.

    Args:
        mask: uint8 0/255 ink mask.
        rules: (N, 4) Hough segments x0, y0, x1, y1.
        gap: longest break in a rule.

    Returns:
        (N, 4) float segments.
    """
    return np.array([_follow(_ink_along(mask, rule), rule, gap) for rule in rules]).reshape(-1, 4)


def _ink_along(
    mask: np.ndarray, rule: np.ndarray, margin: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """The x and y (float32) of the ink of the strip of rows (or columns, for a steep rule) the
    rule's line crosses, extended over the whole frame, `margin` px either side."""
    x0, y0, x1, y1 = (float(v) for v in rule)
    h, w = mask.shape
    steep = abs(y1 - y0) > abs(x1 - x0)
    if steep:  # the same, transposed: x as a function of y
        x0, y0, x1, y1, h, w = y0, x0, y1, x1, w, h
    slope = (y1 - y0) / (x1 - x0) if x1 != x0 else 0.0
    ends = (y0 - slope * x0, y0 + slope * (w - 1 - x0))
    lo = max(0, int(np.floor(min(ends))) - margin)
    hi = min(h, int(np.ceil(max(ends))) + margin + 1)
    strip = mask[:, lo:hi] if steep else mask[lo:hi]
    found = cv2.findNonZero(np.ascontiguousarray(strip))
    if found is None:
        return np.empty(0, np.float32), np.empty(0, np.float32)
    xs, ys = found[:, 0, 0].astype(np.float32), found[:, 0, 1].astype(np.float32)
    return (xs, ys + lo) if not steep else (xs + lo, ys)


def _follow(points: tuple[np.ndarray, np.ndarray], rule: np.ndarray, gap: int) -> np.ndarray:
    """One rule's run (see follow_rules): refit its line to the ink near it, then take the
    run of that ink, breaks up to `gap`, that overlaps the Hough segment."""
    xs, ys = points
    x0, y0, x1, y1 = (float(v) for v in rule)
    length = max(float(np.hypot(x1 - x0, y1 - y0)), 1e-9)
    dx, dy = (x1 - x0) / length, (y1 - y0) / length
    for tolerance in (3.0, 1.5):
        along = (xs - x0) * dx + (ys - y0) * dy
        across = (ys - y0) * dx - (xs - x0) * dy
        near = np.abs(across) <= tolerance
        if np.count_nonzero(near) < 2:
            return np.asarray(rule, dtype=np.float64)
        xs, ys, along, across = xs[near], ys[near], along[near], across[near]
        mean_along, mean_across = float(along.mean()), float(across.mean())
        centred = along - mean_along
        spread = float(centred @ centred)
        slope = float(centred @ (across - mean_across)) / spread if spread > 0 else 0.0
        shift = mean_across - slope * mean_along  # the fit: across = shift + slope * along
        x0, y0 = x0 - shift * dy, y0 + shift * dx
        dx, dy = dx - slope * dy, dy + slope * dx
        norm = float(np.hypot(dx, dy))
        dx, dy = dx / norm, dy / norm
    along = np.sort((xs - x0) * dx + (ys - y0) * dy)
    breaks = np.flatnonzero(np.diff(along) > gap)
    first, last = along[np.r_[0, breaks + 1]], along[np.r_[breaks, len(along) - 1]]
    holds = (last >= 0) & (first <= length)
    lo, hi = (first[holds].min(), last[holds].max()) if holds.any() else (0.0, length)
    return np.array([x0 + lo * dx, y0 + lo * dy, x0 + hi * dx, y0 + hi * dy])


def band_height(band: np.ndarray, length: float) -> int:
    """The tallest run of the rules' band down any column, runs shorter than a rule only (a
    vertical rule's band runs its whole length down a column). Near-parallel segments through one
    rule, fanned out by a thick stroke lying on it, widen the band beyond one rule's thickness:
    strokes crossing it must be bridged over its whole height."""
    columns = np.pad(band.T > 0, ((0, 0), (1, 1))).astype(np.int8)  # one row per column
    steps = np.diff(columns, axis=1).ravel()  # in column order, so starts and ends pair up
    runs = np.flatnonzero(steps == -1) - np.flatnonzero(steps == 1)
    runs = runs[runs < length]
    return int(runs.max()) if len(runs) else 0


def rule_candidates(mask: np.ndarray, length: float, gap: int) -> np.ndarray | None:
    """The ink of every run, its breaks no longer than `gap`, that spans `length` (None when
    there is none): only it can hold a rule. Runs are found on the mask shrunk by half the gap
    (so the breaks close); the costly Hough search then sees the rules and what touches them,
    not every character of the frame, and frames without a rule skip it."""
    h, w = mask.shape
    k = max(1, gap // 2)
    small = mask
    if k > 1:
        small = cv2.resize(mask, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
    small = cv2.dilate(
        cv2.threshold(small, 0, 255, cv2.THRESH_BINARY)[1], np.ones((3, 3), np.uint8)
    )
    count, labels, stats, _ = cv2.connectedComponentsWithStats(small, connectivity=8)
    spans = np.hypot(stats[1:count, cv2.CC_STAT_WIDTH], stats[1:count, cv2.CC_STAT_HEIGHT])
    long = np.flatnonzero(spans * k >= 0.9 * length) + 1
    if not len(long):
        return None
    region = (np.isin(labels, long) * 255).astype(np.uint8)
    region = cv2.resize(region, (w, h), interpolation=cv2.INTER_NEAREST)
    return cv2.bitwise_and(mask, region)


def _rule_thickness(mask: np.ndarray, lines: np.ndarray) -> int:
    """Odd kernel size that covers the rules drawn (1 px) in `lines`: ink near them per length."""
    near = cv2.dilate(lines, np.ones((9, 9), np.uint8))
    ink = cv2.countNonZero(cv2.bitwise_and(mask, near))
    per_length = ink / max(1, cv2.countNonZero(lines))
    return int(2 * round(min(per_length, 8.0) / 2) + 3)


def components(mask: np.ndarray) -> tuple[list[Box], np.ndarray, np.ndarray]:
    """Connected components of a mask: their boxes, the label image (label i+1 = box i) and
    the stats (background row first)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
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
    small specks of paper texture do not pull it down."""
    heights = np.array([box.h for box, _ in groups], dtype=np.float64)
    weights = np.array(
        [sum(ink[kept[m] + 1] for m in members) for _, members in groups], dtype=np.float64
    )
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
    """Reject specks, long strokes and blobs cut by the frame edge."""
    if box.h < MIN_HEIGHT_FRACTION * median_height or box.w > MAX_BLOB_ASPECT * box.h:
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
    image: np.ndarray, spec: PreprocessSpec = DEFAULT_SPEC, ink: str = "auto"
) -> list[Character]:
    """Segment every character in a frame and bring each to the model's input format.

    Args:
        image: BGR or grey frame (dark ink on paper, or light on dark).
        spec: the model's preprocessing spec.
        ink: "dark", "light" or "auto" (see `edge.preprocess.ink_is_dark`).

    Returns:
        Characters in reading order (line by line, left to right); empty if there is no ink.
    """
    if image.size == 0:
        raise ValueError("the image is empty")
    grey, scale = working_resolution(to_grey(image))
    strokes = ink_intensity(grey, ink)
    mask = binarize(strokes, spec.threshold)
    boxes, labels, stats = components(mask)
    without_rules = unruled(mask, stats)
    paper = cv2.compare(mask, 0, cv2.CMP_EQ)  # neither ink nor rule: what fills hollow strokes
    if without_rules is not None:
        mask = without_rules
        paper &= cv2.compare(mask, 0, cv2.CMP_EQ)
        boxes, labels, stats = components(mask)
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
    pieces = []  # (box, own mask, group, (blob box, blob crop) when the blob was split)
    for group, (box, members) in enumerate(chars):
        split = split_touching(labels, box, members)
        whole = (None, None)
        if len(split) > 1:
            blob = np.isin(labels[box.y : box.y + box.h, box.x : box.x + box.w], members)
            whole = (
                box.scaled(scale),
                character_crop(strokes, blob.astype(np.uint8) * 255, box, spec, grey, paper),
            )
        pieces += [(piece_box, own, group, whole) for piece_box, own in split]
    pieces = [p for p in pieces if p[0].w <= MAX_ASPECT * p[0].h]
    out = []
    for line_no, line in enumerate(order_lines([p[0] for p in pieces])):
        for k in line:
            box, own, group, (whole_box, whole_crop) = pieces[k]
            crop = character_crop(strokes, own, box, spec, grey, paper)
            out.append(Character(box.scaled(scale), line_no, crop, group, whole_box, whole_crop))
    return out


def split_touching(
    labels: np.ndarray, box: Box, members: list[int]
) -> list[tuple[Box, np.ndarray]]:
    """Split a blob wider than one character could be into characters, at the thinnest columns.

    Nine in ten MNIST digits are at most SPLIT_ASPECT times as wide as tall (median
    CHAR_ASPECT 0.8), so a wider blob may be characters that touch: it is cut into
    round(aspect / CHAR_ASPECT) parts, each cut at the column with the least ink within a
    quarter of a part of where it would fall with equal widths. If a piece is much shorter
    than the blob, the blob is kept whole.

    Returns:
        (tight box, 0/255 mask of that box) per character.
    """
    window = (slice(box.y, box.y + box.h), slice(box.x, box.x + box.w))
    own = np.isin(labels[window], members).astype(np.uint8) * 255
    aspect = box.w / max(1, box.h)
    if aspect <= SPLIT_ASPECT:
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
    window = (slice(box.y, box.y + box.h), slice(box.x, box.x + box.w))
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
    outside = (own == 0) & (inside == 0)
    ink = own > 0
    if not outside.any() or not ink.any():
        return own
    ink_level, paper_level = float(np.median(grey[ink])), float(np.median(grey[outside]))
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
