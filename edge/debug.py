"""Show what the model saw: frames annotated with boxes and labels, and every 28x28 crop."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.pipeline import Reading
from edge.preprocess import to_grey

ACCEPTED = (0, 170, 0)
REJECTED = (0, 0, 230)
PAGE = (230, 120, 0)


def annotate(image: np.ndarray, reading: Reading) -> np.ndarray:
    """Return a BGR copy of the frame with each character's box, label and confidence."""
    out = cv2.cvtColor(to_grey(image), cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    thickness = max(1, round(max(out.shape[:2]) / 500))
    if reading.page is not None:
        corners = np.round(reading.page.corners).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(out, [corners], True, PAGE, thickness)
    for char in reading.chars:
        b = char.box
        color = ACCEPTED if char.accepted else REJECTED
        cv2.rectangle(out, (b.x, b.y), (b.x + b.w, b.y + b.h), color, thickness)
        scale = min(2.0, max(0.4, b.h / 120.0))
        cv2.putText(
            out,
            f"{char.label} {char.confidence:.2f}",
            (b.x, max(0, b.y - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            color,
            thickness,
            cv2.LINE_AA,
        )
    return out


def write_debug(folder: Path, stem: str, image: np.ndarray, reading: Reading) -> list[Path]:
    """Write `<stem>_boxes.jpg` and `<stem>_char<N>_<label>.png` (the exact model inputs).

    Args:
        folder: output folder (created).
        stem: name prefix, e.g. the image's stem or a frame number.
        image: the frame.
        reading: what was read in it.

    Returns:
        The files written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / f"{stem}_boxes.jpg"]
    cv2.imwrite(str(written[0]), annotate(image, reading))
    for i, char in enumerate(reading.chars):
        label = char.label if char.label.isalnum() else "rejected"
        path = folder / f"{stem}_char{i:02d}_{label}.png"
        cv2.imwrite(str(path), char.crop)
        written.append(path)
    return written
