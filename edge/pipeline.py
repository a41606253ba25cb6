"""Frame -> characters -> classifier -> text, with per-stage timing (capture, preprocess,
invoke, post)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from edge.errors import ImageError, ModelError
from edge.interpreter import Classifier
from edge.page import Page, find_page
from edge.segment import SEVERAL_ASPECT, Box, find_characters
from edge.spec import SEVERAL_LABEL

# Characters whose top probability is below this are reported as rejected ("?" in the text).
DEFAULT_MIN_CONFIDENCE = 0.5


@dataclass(frozen=True)
class CharResult:
    """One classified character."""

    label: str
    confidence: float
    box: Box
    line: int
    crop: np.ndarray
    probabilities: np.ndarray

    @property
    def accepted(self) -> bool:
        """False when the classifier was not confident enough (shown as "?")."""
        return self.label != "?"


@dataclass(frozen=True)
class Timing:
    """Milliseconds spent in each stage of one frame."""

    capture: float
    preprocess: float
    invoke: float
    post: float
    # preprocess split into `edge.segment.PREPROCESS_PARTS` (a part a frame skipped is absent)
    parts: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def total(self) -> float:
        """Sum of the stages."""
        return self.capture + self.preprocess + self.invoke + self.post


@dataclass(frozen=True)
class Reading:
    """What was read in one frame: text (lines joined by newlines) and each character."""

    text: str
    chars: tuple[CharResult, ...]
    timing: Timing
    page: Page | None = None  # the page the characters were read on, when it was rectified


def crop_roi(image: np.ndarray, roi: Box | None) -> tuple[np.ndarray, Box]:
    """The part of the frame inside `roi` (clipped to the frame) and the clipped box.

    Raises:
        ImageError: the region lies outside the frame.
    """
    h, w = image.shape[:2]
    if roi is None:
        return image, Box(0, 0, w, h)
    x0, y0 = max(0, roi.x), max(0, roi.y)
    x1, y1 = min(w, roi.x + roi.w), min(h, roi.y + roi.h)
    if x1 <= x0 or y1 <= y0:
        raise ImageError(
            f"the region {roi.x},{roi.y},{roi.w},{roi.h} lies outside the {w}x{h} frame: give "
            "--roi X,Y,W,H inside it"
        )
    return image[y0:y1, x0:x1], Box(x0, y0, x1 - x0, y1 - y0)


def _shift(char, roi: Box):
    """A character found in the region, in the coordinates of the image the region is in."""
    whole = char.whole_box.shifted(roi.x, roi.y) if char.whole_box is not None else None
    return replace(char, box=char.box.shifted(roi.x, roi.y), whole_box=whole)


def _unwarp(char, page: Page):
    """A character found on the rectified page, boxed in frame coordinates."""
    whole = page.box_to_frame(char.whole_box) if char.whole_box is not None else None
    return replace(char, box=page.box_to_frame(char.box), whole_box=whole)


def page_view(image: np.ndarray, page: Page | str | None) -> tuple[np.ndarray, Page | None]:
    """The image to read: the rectified page when `page` is a Page, or "auto" and a page is
    found (see `edge.page.find_page`); else the frame itself."""
    if isinstance(page, str):
        page = find_page(image)
    if page is None:
        return image, None
    return page.rectify(image), page


def several_index(clf: Classifier) -> int | None:
    """The output index of the model's several-characters class (`train-host train
    --several`), or None when it has none."""
    labels = list(clf.labels)
    return labels.index(SEVERAL_LABEL) if SEVERAL_LABEL in labels else None


def pieces_win(top: float, least_sure_piece: float, blob: Box, read_as_several: bool) -> bool:
    """Whether a blob split as touching characters is read as its pieces.

    When a model with a several-characters class reads the blob as several
    (`read_as_several`), if every piece reads as a character at least as surely as a reading
    is accepted (DEFAULT_MIN_CONFIDENCE; a loop of an 8 cut off reads as nothing much). Else,
    when the classifier is surer of every piece than of the blob as one character (`top`:
    the blob's top character probability), or as sure and the blob is wider than nearly every
    single character (SEVERAL_ASPECT): an int8 classifier's top probability saturates at
    255/256, so a tie is common, and the blob's width breaks it. `least_sure_piece`: the
    least top character probability of the pieces.
    """
    if read_as_several:
        return least_sure_piece >= DEFAULT_MIN_CONFIDENCE
    wide = blob.w > SEVERAL_ASPECT * blob.h
    return least_sure_piece > top or (least_sure_piece == top and wide)


def top_character_probability(p: np.ndarray, several: int | None) -> float:
    """The highest probability of a character class (the several class left out)."""
    return float(np.delete(p, several).max()) if several is not None else float(p.max())


def keep_surer_reading(
    chars: list, probs: list, clf: Classifier, judge: SeveralTest | None = None
) -> tuple[list, list]:
    """For each blob split as touching characters, keep the pieces where they win (see
    `pieces_win`; `judge`: the several test, when a model has the class); else read the
    blob whole.

    Returns:
        (characters, probabilities), pieces replaced by their blob where it won.
    """
    several = several_index(clf)
    pieces: dict[int, list[int]] = {}
    for i, char in enumerate(chars):
        if char.whole is not None:
            pieces.setdefault(char.group, []).append(i)
    drop, whole_at = set(), {}
    for members in pieces.values():
        first = chars[members[0]]
        p_whole = judge.probabilities(first.whole) if judge else clf.predict(first.whole)
        top = top_character_probability(p_whole, several)
        least_sure = min(top_character_probability(probs[i], several) for i in members)
        read_as_several = judge is not None and judge(first.whole)
        if not pieces_win(top, least_sure, first.whole_box, read_as_several):
            drop.update(members[1:])
            whole_at[members[0]] = (replace(first, box=first.whole_box, crop=first.whole), p_whole)
    kept = [
        whole_at.get(i, (c, p))
        for i, (c, p) in enumerate(zip(chars, probs, strict=True))
        if i not in drop
    ]
    return [c for c, _ in kept], [p for _, p in kept]


def character_probabilities(p: np.ndarray, several: int | None) -> np.ndarray:
    """The probabilities of the characters alone: once segmentation has had its say (a blob
    read as several characters that could not be split stays one), the several class is left
    out and the rest renormalised."""
    if several is None:
        return p
    chars = p.copy()
    chars[several] = 0.0
    total = chars.sum()
    return chars / total if total > 0 else chars


class SeveralTest:
    """Does a model with a several-characters class (the reader itself, or a separate
    splitter) read a blob's crop as several characters? `find_characters` splits such
    blobs. It keeps each crop's probabilities, so a crop is classified once by each model."""

    def __init__(self, judge: Classifier, several: int, reader: Classifier):
        self.judge, self.several, self.reader = judge, several, reader
        self.seen: dict[int, tuple] = {}

    def _predict(self, clf: Classifier, crop: np.ndarray) -> np.ndarray:
        key = (id(clf), id(crop))
        hit = self.seen.get(key)
        if hit is None or hit[0] is not crop:
            hit = self.seen[key] = (crop, clf.predict(crop))
        return hit[1]

    def __call__(self, crop: np.ndarray) -> bool:
        return int(np.argmax(self._predict(self.judge, crop))) == self.several

    def probabilities(self, crop: np.ndarray) -> np.ndarray:
        """The reader's probabilities for a crop (classified once)."""
        return self._predict(self.reader, crop)


def several_test(clf: Classifier, splitter: Classifier | None = None) -> SeveralTest | None:
    """The several test of a reading: by `splitter` (a model trained with `--several`) when
    given, else by the reader itself when it has the class; None when neither has it.

    Raises:
        ModelError: the splitter has no several class, or takes other input than the reader.
    """
    judge = splitter or clf
    several = several_index(judge)
    if splitter is not None:
        if several is None:
            raise ModelError(
                f"{splitter.model_path} has no {SEVERAL_LABEL} class to split with: train it "
                "with `train-host train --several 0.1`"
            )
        if not splitter.spec.preprocess.same_input(clf.spec.preprocess):
            raise ModelError(
                f"{splitter.model_path} takes other input than {clf.model_path} (preprocess "
                "in their sidecars): use a splitter trained on the reader's data set"
            )
    return None if several is None else SeveralTest(judge, several, clf)


def read_frame(
    image: np.ndarray,
    clf: Classifier,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    capture_ms: float = 0.0,
    ink: str = "auto",
    roi: Box | None = None,
    page: Page | str | None = None,
    splitter: Classifier | None = None,
) -> Reading:
    """Segment, classify and assemble the text of one frame.

    Args:
        image: BGR or grey frame.
        clf: the loaded classifier.
        min_confidence: characters below this top probability are read as "?".
        capture_ms: time the frame took to capture, for the timing record.
        ink: "dark", "light" or "auto" (see `edge.preprocess.ink_is_dark`).
        roi: read only this region of the frame, or of the rectified page when there is one.
        page: correct the page's perspective first: a Page (fixed corners), "auto" (find the
            sheet in each frame) or None. Boxes are always in frame coordinates.
        splitter: a model with a several-characters class (`train-host train --several`)
            that decides which blobs are touching characters to split; `clf` reads them.

    Returns:
        The Reading. With a several-characters model the blobs too narrow to split for their
        width are classified during segmentation (their time counts as preprocess), once.
    """
    clock = time.perf_counter
    t0 = clock()
    view, page = page_view(image, page)
    region, roi = crop_roi(view, roi)
    judge = several_test(clf, splitter)
    parts: dict[str, float] = {}
    found = find_characters(region, clf.spec.preprocess, ink, judge, parts)
    chars = [_shift(c, roi) for c in found]
    if page is not None:
        chars = [_unwarp(c, page) for c in chars]
    t1 = clock()
    predict = judge.probabilities if judge is not None else clf.predict
    probs = [predict(c.crop) for c in chars]
    chars, probs = keep_surer_reading(chars, probs, clf, judge)
    t2 = clock()
    results, lines, several = [], {}, several_index(clf)
    for char, p in zip(chars, probs, strict=True):
        p_char = character_probabilities(p, several)
        best = int(np.argmax(p_char))
        label = clf.labels[best] if p_char[best] >= min_confidence else "?"
        results.append(CharResult(label, float(p_char[best]), char.box, char.line, char.crop, p))
        lines.setdefault(char.line, []).append(label)
    text = "\n".join("".join(lines[k]) for k in sorted(lines))
    t3 = clock()
    timing = Timing(capture_ms, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, parts)
    return Reading(text, tuple(results), timing, page)


def run(
    source,
    clf: Classifier,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    max_frames: int | None = None,
    ink: str = "auto",
    roi: Box | None = None,
    page: Page | str | None = None,
    splitter: Classifier | None = None,
) -> Iterator[tuple[object, Reading]]:
    """Read frames from a source until it ends (or `max_frames`), yielding (frame, reading).

    Args:
        source: an open `edge.camera.FrameSource`.
        clf: the loaded classifier.
        min_confidence: see `read_frame`.
        max_frames: stop after this many frames (None: until the source ends).
        ink, roi, page, splitter: see `read_frame`.
    """
    count = 0
    while max_frames is None or count < max_frames:
        frame = source.read()
        if frame is None:
            return
        reading = read_frame(
            frame.image, clf, min_confidence, frame.capture_ms, ink, roi, page, splitter
        )
        yield frame, reading
        count += 1
