"""Preprocessing: MNIST's own recipe reproduced, photos brought to the same format, golden vectors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.camera import read_image
from edge.preprocess import (
    MNIST_STROKE_RATIO,
    PreprocessSpec,
    binarize,
    extract_character,
    fit_into_box,
    ink_intensity,
    ink_is_dark,
    label_components,
    local_noise_floor,
    noise_floor,
    noise_residual,
    normalize_character,
    normalize_stroke_width,
    pixel_noise,
    place_in_canvas,
    stroke_width,
    to_grey,
    to_model_input,
    uint8_median,
)

GOLDEN = Path(__file__).parent / "fixtures" / "golden model"


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(image.shape)
    total = image.sum(dtype=np.float64)
    return float((ys * image).sum() / total), float((xs * image).sum() / total)


def test_normalizing_mnist_gives_back_mnist(shared_data):
    """MNIST was made by fitting into 20x20 and centring by mass: redoing it changes little."""
    from edge.datasets import load_split

    images = load_split("mnist", "test", shared_data).images[:500]
    diffs = np.array([np.abs(extract_character(im).astype(int) - im).mean() for im in images])
    assert np.mean(diffs == 0) >= 0.6
    assert diffs.mean() < 0.5


def test_character_fits_20_box_and_centres_mass_at_14():
    glyph = np.zeros((90, 40), np.uint8)
    cv2.line(glyph, (20, 5), (20, 85), 255, 6)
    cv2.line(glyph, (20, 5), (5, 25), 255, 6)
    out = normalize_character(glyph)
    assert out.shape == (28, 28)
    ys, xs = np.nonzero(out)
    assert ys.max() - ys.min() + 1 in (20, 21)
    cy, cx = centre_of_mass(out.astype(np.float64))
    assert abs(cy - 14) <= 0.5 + 1e-9 and abs(cx - 14) <= 0.5 + 1e-9


def test_aspect_ratio_is_kept():
    wide = np.zeros((10, 60), np.uint8)
    wide[3:7, :] = 255
    fitted = fit_into_box(wide, 20)
    assert fitted.shape[1] == 20 and fitted.shape[0] <= 4


def test_polarity_detection():
    """Small dataset-style crops by their majority; frames as pen on paper unless told."""
    crop = np.full((28, 28), 220, np.uint8)
    crop[10:18, 5:20] = 30
    assert ink_is_dark(crop)
    assert not ink_is_dark(255 - crop)
    frame = np.full((50, 50), 220, np.uint8)
    frame[20:30, 10:40] = 30
    assert ink_is_dark(frame) and ink_is_dark(255 - frame)
    assert not ink_is_dark(255 - frame, ink="light")
    with pytest.raises(ValueError):
        ink_is_dark(frame, ink="blue")


def test_dark_ink_on_uneven_paper_matches_white_on_black():
    """A photo-like image (dark ink, light gradient, noise) gives nearly the MNIST-like result."""
    rng = np.random.default_rng(0)
    clean = np.zeros((200, 200), np.uint8)
    cv2.circle(clean, (100, 100), 60, 255, 14)
    light = np.linspace(240, 150, 200)[None, :] * np.ones((200, 1))
    photo = np.clip(light * (1 - 0.75 * clean / 255.0) + rng.normal(0, 5, clean.shape), 0, 255)
    got = extract_character(photo.astype(np.uint8)).astype(np.float64)
    want = extract_character(clean, ink="light").astype(np.float64)
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.9


def test_thick_marker_strokes_survive_background_flattening():
    image = np.full((300, 300), 230, np.uint8)
    cv2.circle(image, (150, 150), 90, 20, 40)
    ink = ink_intensity(image)
    assert ink[150, 60] > 200  # inside the stroke
    assert ink[150, 150] < 30  # the hole of the ring


def ring(stroke: int, size: int = 200) -> np.ndarray:
    """A 0/255 ring filling a size x size mask, its stroke `stroke` px wide."""
    mask = np.zeros((size, size), np.uint8)
    cv2.circle(mask, (size // 2, size // 2), (size - stroke) // 2, 255, stroke)
    return mask


def test_strokes_thicker_than_mnists_are_thinned_and_mnist_like_ones_kept():
    target = MNIST_STROKE_RATIO * 200  # 23 px
    marker = normalize_stroke_width(ring(40))  # 1.7 x the median: beyond MNIST's 95th pct
    assert abs(stroke_width(marker) - target) < 0.25 * target
    usual = ring(27)  # within MNIST's interquartile range
    assert np.array_equal(normalize_stroke_width(usual), usual)


def test_specks_and_page_edges_are_dropped():
    image = np.full((200, 200), 230, np.uint8)
    cv2.line(image, (100, 40), (100, 160), 20, 10)
    image[:, :6] = 40  # a dark page edge touching the border
    image[20, 20] = 0  # a speck
    out = extract_character(image)
    ys, xs = np.nonzero(out > 40)
    assert xs.max() - xs.min() <= 8  # only the vertical stroke is left


def floors_of(ink: np.ndarray) -> tuple[float, np.ndarray]:
    """The frame-wide and the local noise floor of an ink-high image without ink."""
    residual = noise_residual(ink)
    sigma = pixel_noise(ink, residual)
    floor = noise_floor(ink, sigma)
    return floor, local_noise_floor(ink, np.zeros_like(ink), residual, floor, sigma)


def test_the_noise_floor_follows_a_shadows_grainier_paper():
    """Paper under a shadow reads higher and noisier in the ink image (its grain divided by a
    darker paper): the local floor rises there, and stays the frame's in even light."""
    rng = np.random.default_rng(0)
    even = np.clip(rng.normal(30, 4, (240, 320)), 0, 255).astype(np.uint8)
    floor, local = floors_of(even)
    assert np.abs(local.astype(float) - floor).max() <= 5  # one sigma of the noise
    shadowed = even.astype(np.float32)
    shadowed[:, :160] = rng.normal(45, 12, (240, 160))
    floor, local = floors_of(np.clip(shadowed, 0, 255).astype(np.uint8))
    assert local[:, :120].min() > floor + 15  # well inside the shadow
    assert local[:, 200:].max() < floor  # the frame's figures are raised by the shadow


def test_paper_stretched_from_few_grey_levels_is_not_ink():
    """A tiny character on a large, even page: the ink image is stretched from the few grey
    levels the paper holds, its noise comes in steps of the gain, and the median of the
    noise residual is 0. Noise is at least one such step, so the paper stays paper."""
    rng = np.random.default_rng(0)
    raw = np.clip(np.round(rng.normal(2, 0.6, (480, 640))), 0, 255)
    raw[230:250, 310:316] = 21  # a small stroke
    stretched = np.clip(raw * 12, 0, 255).astype(np.uint8)  # gain 12, as ink_intensity does
    mask = binarize(stretched)
    assert (mask[230:250, 310:316] > 0).all()
    assert cv2.countNonZero(mask) < 2 * 20 * 6


def test_a_thin_stroke_under_a_hand_shadow_is_one_character(shared_data):
    """Real photo: a thin-pen 1 under a soft hand shadow, whose paper grain the frame-wide
    floor let through as specks that merged into three "characters" (read 411)."""
    from edge.segment import find_characters

    photo = read_image(shared_data / "photos" / "single" / "012_1.jpg")
    assert len(find_characters(photo)) == 1


@pytest.mark.parametrize("bad", [np.zeros((0, 0), np.uint8), np.full((60, 60), 128, np.uint8)])
def test_empty_or_blank_image_raises(bad):
    with pytest.raises(ValueError):
        extract_character(bad)


def test_to_grey_accepts_bgr_bgra_and_grey():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    assert np.array_equal(to_grey(bgr), grey)
    assert np.array_equal(to_grey(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)), grey)
    assert np.array_equal(to_grey(grey[..., None]), grey)


def test_model_input_scaling():
    chars = np.full((2, 28, 28), 255, np.uint8)
    assert to_model_input(chars).shape == (2, 28, 28, 1)
    assert to_model_input(chars).max() == 1.0
    assert to_model_input(chars, PreprocessSpec(polarity="ink_low")).max() == 0.0
    assert to_model_input(chars[0] * 0, PreprocessSpec(scale="symmetric")).min() == -1.0


def test_transposed_spec_transposes():
    glyph = np.zeros((40, 40), np.uint8)
    glyph[5:35, 18:22] = 255
    glyph[5:9, 18:35] = 255
    plain = normalize_character(glyph)
    assert np.array_equal(normalize_character(glyph, PreprocessSpec(transposed=True)), plain.T)


def test_place_in_canvas_rejects_oversized_glyph():
    with pytest.raises(ValueError):
        place_in_canvas(np.ones((30, 10), np.uint8))


def test_golden_vectors():
    """Pinned 28x28 crops of the golden images: a change here changes what models see."""
    expected = np.load(GOLDEN / "expected_inputs.npz")
    assert len(expected.files) == 20
    for name in expected.files:
        got = extract_character(read_image(GOLDEN / "images" / name))
        assert np.array_equal(got, expected[name]), name


def test_label_components_match_opencv_and_number_any_count():
    """16-bit labels where they suffice (the usual frame), 32-bit ones past 65,535 components
    (a frame of isolated noise pixels), the same components either way."""
    rng = np.random.default_rng(0)
    strokes = (rng.random((120, 160)) < 0.3).astype(np.uint8) * 255
    noise = np.zeros((480, 640), np.uint8)
    noise[::2, ::2] = 255  # 76,800 one-pixel components
    for mask in (strokes, noise):
        count, labels, stats = label_components(mask)
        want_count, want_labels, want_stats, _ = cv2.connectedComponentsWithStats(
            mask, connectivity=8
        )
        assert count == want_count
        assert np.array_equal(labels, want_labels) and np.array_equal(stats, want_stats)
    assert label_components(strokes)[1].dtype == np.uint16
    assert label_components(noise)[1].dtype == np.int32


def test_uint8_median_is_numpys_median_of_the_masked_pixels():
    rng = np.random.default_rng(1)
    for count in (1, 2, 7, 500):  # odd and even counts: numpy averages the middle two
        image = rng.integers(0, 256, (40, 30), dtype=np.uint8)
        mask = np.zeros(image.shape, np.uint8)
        mask.flat[rng.choice(mask.size, count, replace=False)] = 255
        assert uint8_median(image, mask) == float(np.median(image[mask > 0]))


def test_dataset_spec_is_emnists_for_emnist_sets_only():
    from edge.spec import DEFAULT_SPEC, EMNIST_SPEC, dataset_spec

    assert dataset_spec("emnist-letters") == EMNIST_SPEC
    assert dataset_spec("emnist-balanced+emnist-mnist") == EMNIST_SPEC
    assert EMNIST_SPEC.box == 24 and not EMNIST_SPEC.center_of_mass and EMNIST_SPEC.blur > 0
    for name in ("mnist", "usps28", "digits", "mnist+emnist-mnist"):
        assert dataset_spec(name) == DEFAULT_SPEC


def _recropped_correlation(images: np.ndarray, spec: PreprocessSpec) -> float:
    """Mean correlation of each image with its camera-path crop: seen 4x larger, thresholded,
    cropped and brought back to 28x28 as `spec` says."""
    from edge.preprocess import character_glyph

    scores = []
    for image in images:
        big = cv2.resize(image, (112, 112), interpolation=cv2.INTER_CUBIC)
        _, mask = cv2.threshold(big, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        crop = normalize_character(character_glyph(big, mask, spec.box), spec)
        scores.append(np.corrcoef(crop.ravel(), image.ravel())[0, 1])
    return float(np.mean(scores))


@pytest.mark.parametrize("dataset", ["mnist", "emnist-letters"])
def test_crops_are_made_as_each_data_set_was(shared_data, dataset):
    """A camera crop of a training image matches the image best in its own set's format:
    MNIST's 20 px box by centre of mass, EMNIST's 24 px box by its centre."""
    from edge.spec import DEFAULT_SPEC, EMNIST_SPEC, dataset_spec
    from train_host.data import load_dataset

    if (
        dataset.startswith("emnist")
        and not (shared_data / "emnist/emnist-byclass-test-images-idx3-ubyte.gz").is_file()
    ):
        pytest.skip("no EMNIST ByClass test files (set HWR_DATA_DIR)")
    split = load_dataset(dataset, "train")
    images = split.images[np.random.default_rng(0).choice(len(split.labels), 300, replace=False)]
    own = _recropped_correlation(images, dataset_spec(dataset))
    other = EMNIST_SPEC if dataset_spec(dataset) == DEFAULT_SPEC else DEFAULT_SPEC
    assert own > 0.8
    assert own > _recropped_correlation(images, other) + 0.1


def test_emnist_crops_match_better_blurred(shared_data):
    """EMNIST's images are softer than a camera crop: the spec's blur brings the crop nearer."""
    from dataclasses import replace

    from edge.spec import EMNIST_SPEC
    from train_host.data import load_dataset

    if not (shared_data / "emnist/emnist-byclass-test-images-idx3-ubyte.gz").is_file():
        pytest.skip("no EMNIST ByClass test files (set HWR_DATA_DIR)")
    split = load_dataset("emnist-letters", "train")
    images = split.images[np.random.default_rng(1).choice(len(split.labels), 300, replace=False)]
    sharp = _recropped_correlation(images, replace(EMNIST_SPEC, blur=0.0))
    assert _recropped_correlation(images, EMNIST_SPEC) > sharp + 0.01


def test_blur_is_applied_after_placing():
    glyph = np.zeros((40, 30), np.uint8)
    glyph[5:35, 12:18] = 255
    sharp = normalize_character(glyph, PreprocessSpec(box=24, center_of_mass=False))
    soft = normalize_character(glyph, PreprocessSpec(box=24, center_of_mass=False, blur=0.8))
    assert soft.shape == sharp.shape == (28, 28)
    assert np.count_nonzero(soft) > np.count_nonzero(sharp)
    assert abs(int(soft.sum()) - int(sharp.sum())) < 0.02 * sharp.sum()
