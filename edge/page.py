"""Page perspective correction: find the sheet of paper in a frame (or take its corners from
a fixed camera rig) and warp it to a rectangle, so a page shot at an angle reads as if seen
from above. Pure numpy + OpenCV, no I/O.

Detection finds the largest bright quadrilateral in view (Otsu on a shrunk, blurred frame,
writing closed over and bridges to bright desk opened away, the outline's convex hull reduced
to four corners; failing that, the closed outlines of Canny edges). A sheet with one corner
beyond the frame's edge is completed: its outline is three corners and a stretch of the
border, and the missing corner is where the two edges running into the border meet. A frame
that is all paper, any other bright region reaching the border (the lit part of a page under
a shadow), a page smaller than PAGE_MIN_FRACTION of the frame or an outline that is not four
corners gives no page, and the frame is read as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.preprocess import to_grey
from edge.segment import Box

# A page covers at least this fraction of the frame (else it is a card, a label, a screen) ...
PAGE_MIN_FRACTION = 0.2
# ... and at most this: a frame that is nearly all paper has no page edge to correct by.
PAGE_MAX_FRACTION = 0.95
# Detection runs on the frame shrunk to this longer side: the page is the largest thing in it.
DETECT_SIDE = 400
# The outline is reduced to four corners within these fractions of its perimeter.
CORNER_TOLERANCES = (0.02, 0.035, 0.05)
# The four corners must cover this fraction of the outline's convex hull (a quadrilateral).
QUAD_MIN_COVER = 0.9
# The rectified page is cut this fraction inside the detected edge, so the edge is not ink.
EDGE_MARGIN = 0.015


@dataclass(frozen=True)
class Page:
    """A page in a frame: its corners (top-left, top-right, bottom-right, bottom-left, in
    frame pixels) and the size (width, height) of the rectified page."""

    corners: np.ndarray
    size: tuple[int, int]
    margin: float = EDGE_MARGIN

    def homography(self) -> np.ndarray:
        """The 3x3 matrix taking frame pixels to rectified-page pixels."""
        w, h = self.size
        mx, my = self.margin * w, self.margin * h
        target = np.float32(
            [[-mx, -my], [w - 1 + mx, -my], [w - 1 + mx, h - 1 + my], [-mx, h - 1 + my]]
        )
        return cv2.getPerspectiveTransform(np.float32(self.corners), target)

    def rectify(self, image: np.ndarray) -> np.ndarray:
        """The page warped to a `size` rectangle (the paper outside it is replicated)."""
        return cv2.warpPerspective(
            image,
            self.homography(),
            self.size,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )

    def box_to_frame(self, box: Box) -> Box:
        """A box on the rectified page as the frame box that holds it."""
        points = np.float32(
            [
                [box.x, box.y],
                [box.x + box.w, box.y],
                [box.x + box.w, box.y + box.h],
                [box.x, box.y + box.h],
            ]
        ).reshape(-1, 1, 2)
        back = cv2.perspectiveTransform(points, np.linalg.inv(self.homography())).reshape(-1, 2)
        x0, y0 = np.floor(back.min(axis=0)).astype(int)
        x1, y1 = np.ceil(back.max(axis=0)).astype(int)
        return Box(int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def order_corners(points: np.ndarray) -> np.ndarray:
    """Four points as top-left, top-right, bottom-right, bottom-left (float32, shape (4, 2)):
    sorted by angle around their centre, starting from the one nearest the top-left."""
    points = np.asarray(points, dtype=np.float32).reshape(4, 2)
    centre = points.mean(axis=0)
    angles = np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0])
    ring = points[np.argsort(angles)]  # clockwise on screen (y down), from the left
    start = int(np.argmin(ring.sum(axis=1)))
    return np.roll(ring, -start, axis=0)


def page_from_corners(corners) -> Page:
    """The Page with these four corners (any order); its size keeps the longer of each pair of
    opposite sides, so no resolution is lost.

    Raises:
        ValueError: the corners do not enclose an area.
    """
    tl, tr, br, bl = ordered = order_corners(corners)
    width = max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))
    height = max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))
    if width < 8 or height < 8 or cv2.contourArea(ordered) < 64:
        raise ValueError("the page corners enclose no area: give four corners of the sheet")
    return Page(ordered, (int(round(width)), int(round(height))))


def parse_corners(text: str) -> Page:
    """A Page from "X1,Y1,X2,Y2,X3,Y3,X4,Y4" (frame pixels, any order).

    Raises:
        ValueError: not eight numbers, or the corners enclose no area.
    """
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 8:
        raise ValueError(f"{text!r} is not X1,Y1,X2,Y2,X3,Y3,X4,Y4 (eight numbers)")
    return page_from_corners(np.array(values).reshape(4, 2))


def find_page(image: np.ndarray) -> Page | None:
    """The sheet of paper in a frame, or None when there is no page edge to correct by."""
    grey = to_grey(image)
    scale = min(1.0, DETECT_SIDE / max(grey.shape))
    small = grey
    if scale < 1.0:
        small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (5, 5), 0)
    for outline in _outlines(small):
        quad = _sheet_corners(outline, small.shape)
        if quad is not None:
            return page_from_corners(quad / scale)
    return None


def _outlines(small: np.ndarray):
    """Candidate sheet outlines, largest first: the bright region (Otsu, writing closed
    over), then the closed edges (Canny) for a sheet that a shadow or a pale desk splits."""
    kernel = np.ones((7, 7), np.uint8)
    _, bright = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, kernel)
    # Opening cuts the narrow bridges by which bright patches of desk join the sheet.
    bright = cv2.morphologyEx(bright, cv2.MORPH_OPEN, np.ones((15, 15), np.uint8))
    edges = cv2.dilate(cv2.Canny(small, 30, 90), np.ones((3, 3), np.uint8))
    # Every outline of the edges, holes too: the inside of the sheet's edge is one, even
    # where desk texture joins the edge's outside to the frame border.
    for mask, mode in ((bright, cv2.RETR_EXTERNAL), (edges, cv2.RETR_LIST)):
        contours, _ = cv2.findContours(mask, mode, cv2.CHAIN_APPROX_SIMPLE)
        yield from sorted(contours, key=cv2.contourArea, reverse=True)[:4]


def _sheet_corners(outline: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
    """The outline's four corners when it is a whole sheet in view of a plausible size."""
    hull = cv2.convexHull(outline)
    fraction = cv2.contourArea(hull) / float(shape[0] * shape[1])
    if not PAGE_MIN_FRACTION <= fraction <= PAGE_MAX_FRACTION:
        return None
    if not _cut_by_frame(hull, shape):
        return _four_corners(hull)
    quad = _corner_beyond_frame(hull, shape)
    if quad is None:
        quad = _four_corners(hull)  # a corner just at the frame's edge, and no other
        if quad is not None and _on_border(quad, shape).sum() > 1:
            return None
    return quad


def _cut_by_frame(outline: np.ndarray, shape: tuple[int, int]) -> bool:
    """Whether the outline reaches the frame's border: then it is not a whole sheet in view
    (a lit part of a page with a shadow across it, or a sheet larger than the frame)."""
    x, y, w, h = cv2.boundingRect(outline)
    return x <= 1 or y <= 1 or x + w >= shape[1] - 1 or y + h >= shape[0] - 1


def _corner_beyond_frame(hull: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
    """The four corners of a sheet with one corner out of view, or None.

    Such a sheet's outline is its three corners in view and a stretch of the frame's border
    (two points on one side, or three round a frame corner). The missing corner is where the
    two sheet edges that run into the border meet, beyond it. Any other shape reaching the
    border (a lit part of a page with a shadow across it has two or more frame corners, or
    fewer than three of its own) is no sheet.
    """
    h, w = shape
    perimeter = cv2.arcLength(hull, True)
    for tolerance in (0.005, 0.01, *CORNER_TOLERANCES):
        poly = cv2.approxPolyDP(hull, tolerance * perimeter, True).reshape(-1, 2)
        poly = poly.astype(np.float64)
        border = _on_border(poly, shape)
        if (~border).sum() != 3 or not 2 <= border.sum() <= 3:
            continue
        # Turn the ring so the three corners in view come first, the border stretch last.
        start = next(i for i in range(len(poly)) if border[i - 1] and not border[i])
        ring = np.roll(poly, -start, axis=0)
        if np.roll(border, -start)[:3].any():
            return None  # the border points are not one stretch
        missing = _intersection(ring[2], ring[3], ring[0], ring[-1])
        if missing is None or (0 <= missing[0] < w and 0 <= missing[1] < h):
            return None
        if np.hypot(*(missing - ring[0])) > max(h, w) or np.hypot(*(missing - ring[2])) > max(h, w):
            return None
        quad = np.float32([ring[0], ring[1], ring[2], missing])
        if cv2.contourArea(quad) < cv2.contourArea(hull.astype(np.float32)):
            return None
        return quad
    return None


def _on_border(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Which of the (N, 2) points lie on the frame's border (within a pixel)."""
    h, w = shape
    x, y = points[:, 0], points[:, 1]
    return (x <= 1) | (y <= 1) | (x >= w - 2) | (y >= h - 2)


def _intersection(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray | None:
    """Where the line from a through b meets the line from c through d, beyond b and d
    (None for parallel lines or a meeting point behind them)."""
    r, s = b - a, d - c
    cross = r[0] * s[1] - r[1] * s[0]
    if abs(cross) < 1e-9:
        return None
    t = ((c[0] - a[0]) * s[1] - (c[1] - a[1]) * s[0]) / cross
    u = ((c[0] - a[0]) * r[1] - (c[1] - a[1]) * r[0]) / cross
    if t < 1.0 or u < 1.0:
        return None
    return a + t * r


def _four_corners(hull: np.ndarray) -> np.ndarray | None:
    """The hull reduced to four corners covering most of it, or None."""
    perimeter = cv2.arcLength(hull, True)
    for tolerance in CORNER_TOLERANCES:
        quad = cv2.approxPolyDP(hull, tolerance * perimeter, True)
        if len(quad) == 4:
            if cv2.contourArea(quad) >= QUAD_MIN_COVER * cv2.contourArea(hull):
                return quad.reshape(4, 2).astype(np.float32)
            return None
    return None
