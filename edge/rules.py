"""Ruled and squared paper: find its lines (long straight runs of ink, tilted ones too),
follow each along its whole run, and take them out of an ink mask with the strokes that
cross them bridged again. Pure functions (numpy + OpenCV) on 0/255 masks.
"""

from __future__ import annotations

import cv2
import numpy as np

# A ruled or grid line is a straight segment at least this fraction of the frame's shorter
# side (a stroke of a character in a tight crop is shorter) ...
RULE_MIN_FRACTION = 0.6
# ... and is longer than any straight stroke inside a character: a segment within a box no
# wider than tall is at most its diagonal, 1.42 heights.
RULE_MIN_HEIGHTS = 1.5
# A ruling (see `is_ruling`): parallel lines crossing this much of the frame, this parallel.
RULING_SPAN = 0.9
RULING_ANGLE = 3.0
RULING_APART = 0.1
# A line of a ruling predicted from its spacing is looked for this near (px) where predicted.
NEAR_PREDICTED = 6
# The Hough search looks for rules in the rule candidates shrunk this many times (see
# `coarse_segments`); every rule found is then refitted to the full-resolution ink.
HOUGH_SHRINK = 2
# A rule's line is centred on its ink (see `_centred`) from this many columns (or rows), on
# the run of ink within this many px of the line.
CENTRING_SAMPLES = 64
CENTRING_REACH = 10


def _is_steep(segments: np.ndarray) -> np.ndarray:
    """Which segments (x0, y0, x1, y1 rows) are nearer upright than level."""
    return np.abs(segments[:, 3] - segments[:, 1]) > np.abs(segments[:, 2] - segments[:, 0])


def is_squared(segments: np.ndarray, shape: tuple[int, int]) -> bool:
    """Whether the steep ones of the rules are a ruling (see `is_ruling`): squared paper."""
    return is_ruling(segments[_is_steep(segments)], shape)


def is_ruling(segments: np.ndarray, shape: tuple[int, int]) -> bool:
    """Whether rules (followed segments, x0, y0, x1, y1 rows) are a ruling, not one character's
    strokes: two of them cross the whole frame (RULING_SPAN of its width, or of its height for
    steep ones) side by side, parallel (within RULING_ANGLE degrees) and RULING_APART of the
    frame apart, as the lines of ruled or squared paper are."""
    h, w = shape
    steep, spans = _is_steep(segments), _spans_frame(segments, shape)
    angles = np.degrees(
        np.arctan2(segments[:, 3] - segments[:, 1], segments[:, 2] - segments[:, 0])
    )
    angles %= 180
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
    if rules is not None and not squared and is_squared(rules[0], mask.shape):
        segments, length = rules  # squared paper: its lines are thin
        if _searches_widened(length, widen=False):  # the ink was widened for the search already
            rules = complete_ruling(mask, segments, _rule_gap(char_height, length)), length
        else:
            rules = find_rules(mask, char_height, widen=True)
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
    gap = _rule_gap(char_height, length)
    candidates = rule_candidates(mask, length, gap)
    if candidates is None:
        return None
    segments = coarse_segments(candidates, length, gap, widen)
    if segments is None:
        return None
    segments = follow_rules(mask, segments, gap)
    segments = segments[_inked_enough(mask, segments, length)]
    if not len(segments):
        return None
    return (complete_ruling(mask, segments, gap) if widen else segments), length


def _rule_gap(char_height: float, length: float) -> int:
    """The longest break bridged in a rule: faint rules break up and characters interrupt
    them, so half a character (and a fiftieth of the rule)."""
    return max(2, int(0.5 * char_height), int(length / 50))


def _shrink(length: float) -> int:
    """How many times the Hough search shrinks the rule candidates (see `coarse_segments`):
    HOUGH_SHRINK, unless a rule would be shorter than 16 px shrunk."""
    return HOUGH_SHRINK if length / HOUGH_SHRINK >= 16 else 1


def _searches_widened(length: float, widen: bool) -> bool:
    """Whether the Hough search runs on the candidates widened by a pixel all round: when
    asked to (squared paper), and always when it shrinks them (see `coarse_segments`)."""
    return widen or _shrink(length) > 1


def _inked_enough(mask: np.ndarray, segments: np.ndarray, length: float) -> np.ndarray:
    """Which rules (followed segments) to keep: all those of a ruling (see `is_ruling`, level
    and steep families apart), and a lone one only where ink runs along at least `length` of
    its line. The search bridges breaks of half a character, so a character's upright stroke
    and the break down to a rule below it could pass for a rule; its ink is one stroke long."""
    keep = np.ones(len(segments), dtype=bool)
    steep = _is_steep(segments)
    for family in (steep, ~steep):
        if family.any() and not is_ruling(segments[family], mask.shape):
            keep[family] = [
                _coverage(_ink_along(mask, rule), rule, 2.0) >= length for rule in segments[family]
            ]
    return keep


def coarse_segments(
    candidates: np.ndarray, length: float, gap: int, widen: bool = False
) -> np.ndarray | None:
    """Straight segments at least `length` long, breaks up to `gap` (probabilistic Hough, 0.5
    degree steps), as float x0, y0, x1, y1 rows in the mask's pixels, or None.

    The search votes every ink pixel at every angle, so its cost grows with the ink. It runs
    on the candidates shrunk HOUGH_SHRINK times, a pixel of it ink where any pixel within one
    of those it covers is: a rule keeps its length in the shrunk frame's terms and loses most
    of its pixels, and a line one pixel wide comes out two wide, so the search's walk, one
    pixel wide, does not drift off a faint rule in dashes. The segments found are only where
    to look; `follow_rules` refits each to the full mask.
    """
    k = _shrink(length)
    small = candidates
    if _searches_widened(length, widen):
        small = cv2.dilate(candidates, np.ones((3, 3), np.uint8))
    if k > 1:
        size = (candidates.shape[1] // k, candidates.shape[0] // k)
        small = cv2.resize(small, size, interpolation=cv2.INTER_AREA)
        small = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY)[1]
    segments = cv2.HoughLinesP(
        small,
        1,
        np.pi / 360,
        threshold=int(length / k * 0.5),
        minLineLength=int(length / k),
        maxLineGap=max(1, gap // k),
    )
    if segments is None:
        return None
    return segments.reshape(-1, 4).astype(np.float64) * k + (k - 1) / 2


def complete_ruling(mask: np.ndarray, segments: np.ndarray, gap: int) -> np.ndarray:
    """The rules with the lines of their ruling that the search missed.

    Squared paper's lines are evenly spaced. A line cut short by a corner of the frame is
    shorter than a rule, and a faint one may not be found; either lies a whole number of
    spacings from the lines across the frame that were, leaning as its neighbours lean (in
    perspective both change steadily across the frame). Where ink runs along such a line for
    at least half of its stretch in the frame, it is a rule too (refitted to that ink and
    followed like the others).
    """
    steep, spans = _is_steep(segments), _spans_frame(segments, mask.shape)
    added = []
    for upright in (False, True):
        family = segments[(steep == upright) & spans]
        for offset, slope in _missing_lines(family, upright, mask.shape):
            line = _inked_line(mask, offset, slope, upright, gap)
            if line is not None:
                added.append(line)
    return np.vstack([segments, *added]) if added else segments


def _inked_line(
    mask: np.ndarray, offset: float, slope: float, upright: bool, gap: int
) -> np.ndarray | None:
    """The followed run (x0, y0, x1, y1) of the ink along a predicted line, or None when ink
    lies along less than half of its stretch in the frame. The line crosses the frame's middle
    row (upright) or column at `offset`, with x = offset + slope * (y - h / 2) (upright) or
    y = offset + slope * (x - w / 2): it is looked for within NEAR_PREDICTED px, refitted to
    the ink there, and checked again within 2 px of the refitted run."""
    h, w = mask.shape
    if upright:
        ends = [(offset + slope * (y - h / 2), y) for y in (-h, 2 * h)]
    else:
        ends = [(x, offset + slope * (x - w / 2)) for x in (-w, 2 * w)]
    inside, a, b = cv2.clipLine((0, 0, w, h), *[(round(x), round(y)) for x, y in ends])
    chord = float(np.hypot(b[0] - a[0], b[1] - a[1]))
    if not inside or chord < 8:
        return None
    rule = np.array([a[0], a[1], b[0], b[1]], np.float64)
    points = _ink_along(mask, rule, margin=NEAR_PREDICTED)
    if _coverage(points, rule, NEAR_PREDICTED) < 0.5 * chord:
        return None
    run = _follow(points, rule, gap)
    return run if _coverage(points, run, 2.0) >= 0.5 * chord else None


def _coverage(points: tuple[np.ndarray, np.ndarray], line: np.ndarray, within: float) -> int:
    """How many whole pixels along `line` (x0, y0, x1, y1) have ink within `within` px of it."""
    xs, ys = points
    x0, y0, x1, y1 = (float(v) for v in line)
    length = max(float(np.hypot(x1 - x0, y1 - y0)), 1e-9)
    dx, dy = (x1 - x0) / length, (y1 - y0) / length
    along = (xs - x0) * dx + (ys - y0) * dy
    near = np.abs((ys - y0) * dx - (xs - x0) * dy) <= within
    return len(np.unique(np.round(along[near & (along >= 0) & (along <= length)])))


def _spans_frame(segments: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Which segments cross RULING_SPAN of the frame (of its width, or its height if steep)."""
    h, w = shape
    dx, dy = np.abs(segments[:, 2] - segments[:, 0]), np.abs(segments[:, 3] - segments[:, 1])
    return np.where(_is_steep(segments), dy / h, dx / w) >= RULING_SPAN


def _missing_lines(family: np.ndarray, upright: bool, shape: tuple[int, int]):
    """(offset, slope) of the lines a family of parallel lines across the frame leaves out:
    between them (gaps a whole number of the median spacing wide) and out to the frame's
    edges (at the spacing of the two outermost lines on that side). The offset is where a
    line crosses the frame's middle row (upright) or column; the slope is its lean (dx/dy
    upright, dy/dx level), a straight function of the offset fitted to the lines found."""
    h, w = shape
    if len(family) < 2:
        return []
    dx, dy = family[:, 2] - family[:, 0], family[:, 3] - family[:, 1]
    slopes = dx / dy if upright else dy / dx
    if upright:
        offsets = family[:, 0] + (h / 2 - family[:, 1]) * slopes
    else:
        offsets = family[:, 1] + (w / 2 - family[:, 0]) * slopes
    order = np.argsort(offsets)
    keep = [order[0]]  # one per line: near-identical offsets are one line
    for k in order[1:]:
        if offsets[k] - offsets[keep[-1]] > 3.0:
            keep.append(k)
    lines = offsets[keep]
    if len(lines) < 2:
        return []
    gaps = np.diff(lines)
    spacing = float(np.median(gaps))
    if spacing < 8:
        return []
    lean = np.polyfit(lines, slopes[keep], 1 if len(lines) >= 3 else 0)
    missing = []
    for a, b in zip(lines, lines[1:], strict=False):
        parts = round((b - a) / spacing)
        missing += [a + k * (b - a) / parts for k in range(1, parts)]
    extent = w if upright else h
    for edge, step in ((lines[0], -gaps[0]), (lines[-1], gaps[-1])):
        step = step if abs(step) < 1.5 * spacing else np.sign(step) * spacing
        k = 1
        while -spacing < edge + k * step < extent + spacing:
            missing.append(edge + k * step)
            k += 1
    return [(float(o), float(np.polyval(lean, o))) for o in missing]


def erase_rules(mask: np.ndarray, segments: np.ndarray, length: float) -> np.ndarray:
    """The mask without the rules (followed segments, see `find_rules`), each as thick as the
    ink along it; strokes that cross a rule are bridged across it again.

    Strokes are bridged down the rules' band. Steep rules that are a ruling of their own
    (squared paper's upright lines, see `is_ruling`) cut level strokes: their band is bridged
    along its rows instead. A lone steep "rule" is more often a character's upright stroke
    drawn on into the level rules, and is bridged down like the rest, which keeps it.
    """
    steep = _is_steep(segments)
    upright = steep if is_squared(segments, mask.shape) else np.zeros_like(steep)
    bands = [_drawn(mask.shape, segments[~upright]), _drawn(mask.shape, segments[upright])]
    thickness = rule_thickness(mask, segments)
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
    kept and joined the characters it touches. Here each segment is first moved onto the
    middle of its rule's ink (see `_centred`: a segment from the shrunk search, or one through
    the edge of a thick rule, is a pixel or two off it); then the ink within a few pixels of
    its line, across the whole frame, is fitted with a straight line (twice, the second time
    on the ink within 1.5 px of the first fit), and the segment becomes the run of that ink,
    breaks no longer than `gap`, that holds it.

    Args:
        mask: uint8 0/255 ink mask.
        rules: (N, 4) Hough segments x0, y0, x1, y1.
        gap: longest break in a rule.

    Returns:
        (N, 4) float segments.
    """
    centred = _centred(mask, np.asarray(rules, dtype=np.float64).reshape(-1, 4))
    return np.array([_follow(_ink_along(mask, rule), rule, gap) for rule in centred]).reshape(-1, 4)


def _centred(mask: np.ndarray, rules: np.ndarray) -> np.ndarray:
    """The rules' segments (x0, y0, x1, y1 rows) moved onto the middle of their ink, one per
    line: level ones first, then steep ones.

    Down CENTRING_SAMPLES columns each segment crosses (rows, for a steep one) the run of
    ink it passes through, within CENTRING_REACH px, has a middle; a straight line is fitted
    to the middles (twice). Runs that fill the reach, or are over twice the segment's median
    run, are strokes crossing the rule and do not count. A window fitted to a rule thicker
    than the window holds still wherever it starts inside the rule; the middles of its runs
    do not depend on the start. The search finds a rule as several segments, which once
    centred lie on one line: they are made one (see `_one_per_line`). Each segment comes
    back with its ends in reading order along its main axis.
    """
    steep = _is_steep(rules)
    families = []
    for upright, image, axes in ((False, mask, [0, 1, 2, 3]), (True, mask.T, [1, 0, 3, 2])):
        family = rules[steep == upright][:, axes]
        if len(family):
            families.append(_one_per_line(_centre_level(image, family), image.shape[1])[:, axes])
    return np.vstack(families) if families else rules


def _one_per_line(segments: np.ndarray, width: int) -> np.ndarray:
    """Level segments (x0 <= x1) within a pixel of each other where they cross the first and
    the last of `width` columns, made one: the first one's line over all their stretches."""
    slope = (segments[:, 3] - segments[:, 1]) / np.maximum(segments[:, 2] - segments[:, 0], 1e-9)
    start = segments[:, 1] - slope * segments[:, 0]
    ends = np.stack([start, start + slope * (width - 1.0)], axis=1)
    kept: list[int] = []
    for i in range(len(segments)):
        same = [k for k in kept if np.abs(ends[k] - ends[i]).max() <= 1.0]
        if not same:
            kept.append(i)
            continue
        k = same[0]
        x0, x1 = min(segments[k, 0], segments[i, 0]), max(segments[k, 2], segments[i, 2])
        segments[k] = [x0, start[k] + slope[k] * x0, x1, start[k] + slope[k] * x1]
    return segments[kept]


def _centre_level(image: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """`_centred` for segments nearer level than upright, all at once."""
    flip = segments[:, 2] < segments[:, 0]
    segments = np.where(flip[:, None], segments[:, [2, 3, 0, 1]], segments)
    x0, y0, x1, y1 = segments.T
    h, w = image.shape
    first = np.clip(np.ceil(x0), 0, w - 1)
    last = np.clip(np.floor(x1), 0, w - 1)
    usable = last - first >= 8
    cols = np.rint(first[:, None] + (last - first)[:, None] * np.linspace(0, 1, CENTRING_SAMPLES))
    cols = cols.astype(np.int64)
    offsets = np.arange(-CENTRING_REACH, CENTRING_REACH + 1)
    slope = (y1 - y0) / np.where(x1 > x0, x1 - x0, 1.0)
    intercept = y0 - slope * x0
    for _ in range(2):
        rows = np.rint(intercept[:, None] + slope[:, None] * cols).astype(np.int64)
        grid = rows[..., None] + offsets
        inside = (grid >= 0) & (grid < h)
        window = (image[np.clip(grid, 0, h - 1), cols[..., None]] > 0) & inside
        middle = rows + _run_middles(window)
        keep = np.isfinite(middle)
        n = keep.sum(axis=1)
        xs, ys = np.where(keep, cols, 0.0), np.where(keep, middle, 0.0)
        sx, sy = xs.sum(axis=1), ys.sum(axis=1)
        sxx, sxy = (xs * xs).sum(axis=1), (xs * ys).sum(axis=1)
        spread = n * sxx - sx * sx
        fitted = usable & (n >= 8) & (spread > 0)
        safe = np.where(fitted, spread, 1.0)
        new_slope = (n * sxy - sx * sy) / safe
        new_intercept = (sy - new_slope * sx) / np.maximum(n, 1)
        slope = np.where(fitted, new_slope, slope)
        intercept = np.where(fitted, new_intercept, intercept)
    return np.stack([x0, intercept + slope * x0, x1, intercept + slope * x1], axis=1)


def _run_middles(window: np.ndarray) -> np.ndarray:
    """For windows (segments x samples x 2 * CENTRING_REACH + 1) of ink across rules, their
    lines at the middle index: the offset of the middle of the run of ink the line passes
    through (or touches, 1 px off); NaN where there is none, where the run reaches the
    window's edge, or where it is over twice its segment's median run."""
    reach = CENTRING_REACH
    starts = window & ~np.pad(window, ((0, 0), (0, 0), (1, 0)))[..., :-1]
    run_id = np.cumsum(starts, axis=-1)
    at = np.where(window[..., reach], reach, np.where(window[..., reach - 1], reach - 1, reach + 1))
    hit = np.take_along_axis(window, at[..., None], axis=-1)[..., 0]
    own = np.take_along_axis(run_id, at[..., None], axis=-1)
    run = window & (run_id == own)
    first = np.argmax(run, axis=-1)
    last = run.shape[-1] - 1 - np.argmax(run[..., ::-1], axis=-1)
    length = (last - first + 1).astype(np.float64)
    ok = hit & (first > 0) & (last < run.shape[-1] - 1)
    ok &= length <= 2 * _row_medians(np.where(ok, length, np.inf), ok.sum(axis=-1))[:, None]
    return np.where(ok, (first + last) / 2.0 - reach, np.nan)


def _row_medians(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The median of the first `counts[i]` smallest values of each row (the others are inf);
    inf where a row has none."""
    ordered = np.sort(values, axis=-1)
    rows = np.arange(len(values))
    low = ordered[rows, np.maximum(counts - 1, 0) // 2]
    high = ordered[rows, np.maximum(counts, 1) // 2]
    return np.where(counts > 0, (low + high) / 2.0, np.inf)


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
    all_xs, all_ys = points
    x0, y0, x1, y1 = (float(v) for v in rule)
    length = max(float(np.hypot(x1 - x0, y1 - y0)), 1e-9)
    dx, dy = (x1 - x0) / length, (y1 - y0) / length
    for tolerance in (3.0, 1.5):  # each fit from all the ink near the line before it
        along = (all_xs - x0) * dx + (all_ys - y0) * dy
        across = (all_ys - y0) * dx - (all_xs - x0) * dy
        near = np.abs(across) <= tolerance
        if np.count_nonzero(near) < 2:
            return np.asarray(rule, dtype=np.float64)
        xs, ys, along, across = all_xs[near], all_ys[near], along[near], across[near]
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
    # Padded to whole blocks of k: OpenCV's area resize is several times faster by a whole factor.
    padded = cv2.copyMakeBorder(mask, 0, -h % k, 0, -w % k, cv2.BORDER_CONSTANT, value=0)
    size = (padded.shape[1] // k, padded.shape[0] // k)
    small = cv2.resize(padded, size, interpolation=cv2.INTER_AREA) if k > 1 else padded
    small = cv2.dilate(
        cv2.threshold(small, 0, 255, cv2.THRESH_BINARY)[1], np.ones((3, 3), np.uint8)
    )
    count, labels, stats, _ = cv2.connectedComponentsWithStats(small, connectivity=8)
    spans = np.hypot(stats[1:count, cv2.CC_STAT_WIDTH], stats[1:count, cv2.CC_STAT_HEIGHT])
    long = np.flatnonzero(spans * k >= 0.9 * length) + 1
    if not len(long):
        return None
    region = (np.isin(labels, long) * 255).astype(np.uint8)
    region = cv2.resize(region, padded.shape[::-1], interpolation=cv2.INTER_NEAREST)[:h, :w]
    return cv2.bitwise_and(mask, region)


def rule_thickness(mask: np.ndarray, segments: np.ndarray) -> int:
    """Odd kernel size that covers the rules (followed segments): the ink near them per pixel
    of their length. One rule is often found as several segments a pixel or two apart; they
    are counted once (the length is the number of rows, or columns, the rules cross; lines
    under 5 px apart are one)."""
    steep = _is_steep(segments)
    level, upright = _drawn(mask.shape, segments[~steep]), _drawn(mask.shape, segments[steep])
    near = cv2.dilate(cv2.bitwise_or(level, upright), np.ones((9, 9), np.uint8))
    ink = cv2.countNonZero(cv2.bitwise_and(mask, near))
    length = _runs_down(cv2.dilate(level, np.ones((5, 1), np.uint8))) + _runs_down(
        cv2.dilate(upright, np.ones((1, 5), np.uint8)).T
    )
    per_length = ink / max(1, length)
    return int(2 * round(min(per_length, 8.0) / 2) + 3)


def _runs_down(image: np.ndarray) -> int:
    """How many runs of non-zero pixels the columns of an image hold, all columns together."""
    on = image > 0
    return int(np.count_nonzero(on[0]) + np.count_nonzero(on[1:] & ~on[:-1]))
