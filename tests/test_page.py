"""Page perspective correction: a sheet shot at an angle is found, rectified and read; frames
without a page edge are read as they are; bad corners give a clear error."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.interpreter import Classifier
from edge.page import find_page, order_corners, page_from_corners, parse_corners
from edge.pipeline import read_frame
from tests.test_segment import render_page

# Where the sheet's corners land in the 640x480 frame: a strong keystone and a slight turn.
CORNERS = np.float32([[150, 70], [540, 110], [590, 420], [70, 400]])


def sheet_in_frame(sheet: np.ndarray, corners=CORNERS, size=(640, 480)) -> np.ndarray:
    """The flat sheet warped onto a darker, textured desk at `corners`."""
    h, w = sheet.shape
    source = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    matrix = cv2.getPerspectiveTransform(source, corners)
    desk = np.random.default_rng(1).normal(80, 6, (size[1], size[0]))
    warped = cv2.warpPerspective(sheet.astype(np.float32), matrix, size, flags=cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(np.ones_like(sheet, np.float32), matrix, size)
    frame = inside * warped + (1 - inside) * desk
    return np.clip(frame, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tilted_sheet(mnist_digits):
    images, labels = mnist_digits
    sheet = render_page(list(images[:4]), per_line=4)
    return sheet_in_frame(sheet), "".join(str(v) for v in labels[:4])


def test_find_page_finds_the_corners_of_a_tilted_sheet(tilted_sheet):
    frame, _ = tilted_sheet
    page = find_page(frame)
    assert page is not None
    assert np.abs(page.corners - CORNERS).max() < 6  # pixels, detected on a 400 px copy
    assert page.size[0] > page.size[1]  # a landscape sheet stays landscape


def test_read_frame_reads_the_rectified_page_and_boxes_in_frame_pixels(tilted_sheet, golden_model):
    frame, truth = tilted_sheet
    reading = read_frame(frame, Classifier(golden_model), 0.0, page="auto")
    assert reading.page is not None and reading.text == truth
    quad = CORNERS.reshape(-1, 1, 2)
    for char in reading.chars:  # every box centre lies on the sheet, in frame coordinates
        centre = (char.box.x + char.box.w / 2, char.box.y + char.box.h / 2)
        assert cv2.pointPolygonTest(quad, centre, False) > 0


def test_fixed_corners_give_the_same_reading(tilted_sheet, golden_model):
    frame, truth = tilted_sheet
    corners = ",".join(str(int(v)) for v in CORNERS[[2, 0, 3, 1]].ravel())  # any order
    reading = read_frame(frame, Classifier(golden_model), 0.0, page=parse_corners(corners))
    assert reading.text == truth


def test_frames_without_a_page_edge_are_read_as_they_are(mnist_digits, golden_model):
    images, labels = mnist_digits
    paper = render_page(list(images[:3]), per_line=3)  # all paper: no edge
    assert find_page(paper) is None
    assert find_page(np.zeros((240, 320), np.uint8)) is None
    clf = Classifier(golden_model)
    auto, plain = read_frame(paper, clf, 0.0, page="auto"), read_frame(paper, clf, 0.0)
    assert auto.page is None and auto.text == plain.text


# The same sheet with its bottom-right corner beyond the frame's right edge.
CORNER_OUT = np.float32([[150, 70], [540, 110], [690, 430], [70, 400]])


def test_a_sheet_with_a_corner_out_of_view_is_completed(mnist_digits, golden_model):
    images, labels = mnist_digits
    frame = sheet_in_frame(render_page(list(images[:4]), per_line=4), CORNER_OUT)
    page = find_page(frame)
    assert page is not None
    assert np.abs(page.corners - CORNER_OUT).max() < 10  # the missing one from two edges
    reading = read_frame(frame, Classifier(golden_model), 0.0, page=page)
    assert reading.text == "".join(str(v) for v in labels[:4])


def test_a_shadow_across_all_paper_is_no_page():
    paper = np.full((480, 640), 200, np.uint8)
    paper[:, 420:] = 110  # a hard shadow: the lit part reaches the border on three sides
    tilted = np.full((480, 640), 200, np.uint8)
    cv2.fillPoly(tilted, [np.int32([[400, 0], [640, 0], [640, 480], [250, 480]])], 110)
    assert find_page(paper) is None and find_page(tilted) is None


def test_order_corners_from_any_order():
    shuffled = CORNERS[[3, 1, 0, 2]]
    assert np.array_equal(order_corners(shuffled), CORNERS)


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d,e,f,g,h", "0,0,10,10,20,20,30,30"])
def test_bad_corners_are_a_clear_error(text):
    with pytest.raises(ValueError, match="X1,Y1|no area"):
        parse_corners(text)


def test_page_from_corners_keeps_the_longer_sides():
    page = page_from_corners(CORNERS)
    tl, tr, br, bl = CORNERS
    width = max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))  # 520 (the bottom)
    height = max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))  # 340 (the left)
    assert page.size == (round(float(width)), round(float(height))) == (520, 340)


def test_cli_page_option(tmp_path, tilted_sheet, golden_model, capsys):
    frame, truth = tilted_sheet
    image = tmp_path / "sheet.png"
    cv2.imwrite(str(image), frame)
    assert main(["classify", str(golden_model), str(image), "--page", "auto"]) == 0
    assert f": {truth}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", str(golden_model), str(image), "--page", "1,2,3"])
    assert exit_info.value.code == 2
    assert "X1,Y1,X2,Y2,X3,Y3,X4,Y4" in capsys.readouterr().err
