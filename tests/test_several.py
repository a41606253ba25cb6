"""The several-characters class: composites of touching training characters, a model trained
with them, and a reader that never prints the class."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.preprocess import ink_bounding_box
from edge.spec import SEVERAL_LABEL


def test_composites_are_seeded_wide_mnist_format_images(mnist_digits):
    from train_host.several import several_characters

    images, _ = mnist_digits
    first = several_characters(images, 40, seed=3)
    assert first.shape == (40, 28, 28) and first.dtype == np.uint8
    assert np.array_equal(first, several_characters(images, 40, seed=3))
    assert not np.array_equal(first, several_characters(images, 40, seed=4))
    # fitted into the 20x20 box by their longer side, like MNIST's digits
    boxes = [ink_bounding_box(c) for c in first]
    assert all(max(w, h) <= 21 for _, _, w, h in boxes)
    # most are wider than tall: two or three characters side by side
    assert np.mean([w > h for _, _, w, h in boxes]) > 0.8
    singles = [ink_bounding_box(c) for c in images[:40]]
    assert np.median([w / h for _, _, w, h in boxes]) > 1.5 * np.median(
        [w / h for _, _, w, h in singles]
    )


def test_touching_strip_lets_each_character_keep_half_its_columns():
    from train_host.several import touching_strip

    one, wide = np.full((20, 4), 255, np.uint8), np.full((20, 16), 255, np.uint8)
    for seed in range(20):
        strip = touching_strip([wide, one, wide], np.random.default_rng(seed))
        # the narrow stroke in the middle may be overlapped by at most half its width a side
        assert strip.shape[1] >= 16 + 16 + 4 - 2 * 2


@pytest.mark.host
def test_train_with_several_adds_the_class_and_the_reader_never_prints_it(tmp_path, golden_model):
    pytest.importorskip("tensorflow")
    import cv2

    from edge.interpreter import Classifier
    from edge.pipeline import read_frame, several_index
    from train_host.cli import main
    from train_host.export import export_run

    out = tmp_path / "several"
    args = ["train", "--dataset", "digits", "--epochs", "2", "--several", "0.1"]
    assert main([*args, "--out", str(out)]) == 0
    record = json.loads((out / "train.json").read_text())
    assert record["classes"][-1] == SEVERAL_LABEL and record["num_classes"] == 11
    assert 0.0 <= record["several_val_accuracy"] <= 1.0
    export_run(out, variants=("int8",), progress=lambda line: None)
    clf = Classifier(out / "int8.tflite")
    assert clf.labels[-1] == SEVERAL_LABEL and several_index(clf) == 10
    page = np.full((200, 400), 225, np.uint8)
    cv2.putText(page, "1234", (40, 140), cv2.FONT_HERSHEY_SIMPLEX, 3, 30, 9)
    reading = read_frame(page, clf, 0.0)
    assert SEVERAL_LABEL not in reading.text and reading.chars
    assert all(c.label != SEVERAL_LABEL for c in reading.chars)
    # as the splitter of a plain reader
    split = read_frame(page, Classifier(golden_model), 0.0, splitter=clf)
    assert split.chars and SEVERAL_LABEL not in split.text


def test_train_rejects_a_negative_several(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from train_host.cli import main

    args = ["train", "--dataset", "digits", "--out", str(tmp_path / "x"), "--several"]
    with pytest.raises(SystemExit) as stop:  # a usage error: usage, then one line
        main([*args, "-0.1"])
    assert stop.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.endswith("argument --several: must be more than 0.0, got -0.1")
    assert main([*args, "1.5"]) == 2  # more than the whole split
    err = capsys.readouterr().err
    assert "--several 1.5" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_the_several_test_classifies_each_crop_once_by_each_model(golden_model):
    from edge.interpreter import Classifier
    from edge.pipeline import SeveralTest

    reader, judge = Classifier(golden_model), Classifier(golden_model)
    calls = {"reader": 0, "judge": 0}
    for name, clf in (("reader", reader), ("judge", judge)):
        predict = clf.predict
        clf.predict = lambda crop, name=name, predict=predict: (
            calls.__setitem__(name, calls[name] + 1) or predict(crop)
        )
    crop = np.zeros((28, 28), np.uint8)
    crop[6:22, 12:16] = 255
    alone = SeveralTest(reader, 3, reader)  # the reader has the class itself
    alone(crop)
    alone.probabilities(crop)
    assert calls == {"reader": 1, "judge": 0}
    split = SeveralTest(judge, 3, reader)  # a separate splitter
    split(crop)
    split(crop)
    split.probabilities(crop)
    split.probabilities(crop.copy())  # another array: classified anew
    assert calls == {"reader": 3, "judge": 1}


def test_a_splitter_without_the_class_or_for_other_input_is_a_one_line_error(
    golden_model, tmp_path, capsys
):
    from edge.cli import main

    image = tmp_path / "page.png"
    import cv2

    cv2.imwrite(str(image), np.full((100, 100), 220, np.uint8))
    assert main(["classify", str(golden_model), str(image), "--splitter", str(golden_model)]) == 2
    err = capsys.readouterr().err
    assert "--several" in err and len(err.strip().splitlines()) == 1
