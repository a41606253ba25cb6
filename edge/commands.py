"""The `edge info | classify | bench` commands (part of the command line: they print)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edge.errors import EdgeError, ImageError

EVAL_FILE = "test-split.npz"


def _collect_images(paths: list[Path]) -> list[Path]:
    """Expand folders into their image files; fail when nothing is left."""
    from edge.camera import IMAGE_SUFFIXES

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
            if not found:
                raise ImageError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ImageError(f"image {path} not found: check the path")
    return files


def cmd_info(args: argparse.Namespace) -> int:
    from edge.interpreter import Classifier

    clf = Classifier(args.model)
    details = {
        "model": str(args.model),
        "size_bytes": args.model.stat().st_size,
        "backend": f"{clf.backend.name} {clf.backend.version}",
        "input": {k: _jsonable(v) for k, v in clf._input.items() if k != "sparsity_parameters"},
        "output": {k: _jsonable(v) for k, v in clf._output.items() if k != "sparsity_parameters"},
        "float_ops": clf.float_ops(),  # read from the file: older sidecars lack it
        "sidecar": clf.spec.to_dict(),
    }
    print(json.dumps(details, indent=2))
    if args.json:
        write_output(args.json, json.dumps(details, indent=2))
    return 0


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, type):
        return np.dtype(value).name
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def load_splitter(args: argparse.Namespace, clf):
    """The `--splitter` model, checked against the reader (None without the option)."""
    from edge.interpreter import Classifier
    from edge.pipeline import several_test

    if args.splitter is None:
        return None
    splitter = Classifier(args.splitter, num_threads=args.threads)
    several_test(clf, splitter)  # a one-line error now rather than on the first frame
    return splitter


def _classify_one(clf, path: Path, args: argparse.Namespace, splitter=None) -> dict:
    """Read one image (as text, or as one character with --single) and print one line."""
    from edge.camera import read_image
    from edge.pipeline import read_frame
    from edge.preprocess import extract_character

    image = read_image(path)
    try:
        if args.single:
            probs = clf.predict(extract_character(image, clf.spec.preprocess, args.ink))
            chars = [
                {
                    "label": clf.labels[int(np.argmax(probs))],
                    "confidence": float(probs.max()),
                    "line": 0,
                    "box": [0, 0, image.shape[1], image.shape[0]],
                    "top_k": _top(clf.top_k(probs, args.top_k)),
                }
            ]
            text = chars[0]["label"]
        else:
            reading = read_frame(
                image,
                clf,
                args.min_confidence,
                ink=args.ink,
                roi=args.roi,
                page=args.page,
                splitter=splitter,
            )
            text = reading.text
            chars = [
                {
                    "label": c.label,
                    "confidence": c.confidence,
                    "line": c.line,
                    "box": [c.box.x, c.box.y, c.box.w, c.box.h],
                    "top_k": _top(clf.top_k(c.probabilities, args.top_k)),
                }
                for c in reading.chars
            ]
    except ValueError as exc:
        raise ImageError(f"{path}: {exc} (photograph dark ink on light paper)") from None
    except ImageError as exc:  # a --roi outside this image
        raise ImageError(f"{path}: {exc}") from None
    if not chars:
        raise ImageError(
            f"{path}: no characters found (photograph dark ink on light paper, "
            "fill more of the frame with the writing)"
        )
    if args.debug_dir and not args.single:
        from edge.debug import write_debug

        write_debug(args.debug_dir, path.stem, image, reading)
    if len(chars) == 1:
        print(f"{path}: " + "  ".join(f"{k['label']} {k['p']:.3f}" for k in chars[0]["top_k"]))
    else:
        confidences = " ".join(f"{c['label']}:{c['confidence']:.2f}" for c in chars)
        print(f"{path}: {text.replace(chr(10), ' / ')}  [{confidences}]")
    return {"image": str(path), "text": text, "chars": chars}


def _top(pairs: list[tuple[str, float]]) -> list[dict]:
    return [{"label": label, "p": p} for label, p in pairs]


def cmd_classify(args: argparse.Namespace) -> int:
    from edge.interpreter import Classifier

    clf = Classifier(args.model, num_threads=args.threads)
    splitter = load_splitter(args, clf)
    paths = _collect_images(args.images)
    records = [_classify_or_skip(clf, path, args, splitter, len(paths) > 1) for path in paths]
    if args.json:
        write_output(
            args.json, json.dumps({"model": str(args.model), "predictions": records}, indent=2)
        )
    failed = sum("error" in r for r in records)
    if failed:
        saved = f"; the readings are in {args.json}" if args.json else ""
        raise ImageError(
            f"{failed} of {len(records)} images gave no reading (each named above){saved}: "
            "photograph dark ink on light paper, or leave those files out"
        )
    return 0


def _classify_or_skip(clf, path: Path, args, splitter, several: bool) -> dict:
    """`_classify_one`; in a batch of several images, an image that gives no reading is
    named on stderr and recorded with its error, and the batch goes on."""
    try:
        return _classify_one(clf, path, args, splitter)
    except ImageError as exc:
        if not several:
            raise
        print(f"edge: skipped {exc}", file=sys.stderr)
        return {"image": str(path), "text": None, "chars": [], "error": str(exc)}


def check_output(path: Path | None) -> None:
    """Fail before any work when an output file cannot be written where asked."""
    if path is None:
        return
    if not path.parent.is_dir():
        raise EdgeError(f"cannot write {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise EdgeError(f"cannot write {path}: it is a folder, give a file name")


def check_folder(path: Path | None, flag: str) -> None:
    """Fail before any work when a folder option names a file or lies under one."""
    if path is None:
        return
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        where = "" if existing == path else f" ({existing} is one)"
        raise EdgeError(f"{flag} {path} is not a folder{where}: give a folder (new or existing)")


def write_output(path: Path, text: str) -> None:
    from edge.report import write_text

    check_output(path)
    try:
        write_text(path, text)
    except OSError as exc:
        raise EdgeError(
            f"cannot write {path} ({exc.strerror or exc}): choose another path"
        ) from None
