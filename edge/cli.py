"""`edge classify | bench | info`: the device command line; the only place that prints and exits."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edge.errors import EdgeError, GateError, ImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
EVAL_FILE = "test-split.npz"


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (0 runs or 0 threads is a usage error, not a crash)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the `edge` command."""
    parser = argparse.ArgumentParser(
        prog="edge",
        description="Run and measure exported handwriting models (TFLite) on a "
        "Raspberry Pi or any host, without TensorFlow.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = sub.add_parser("info", help="show a model's sidecar and tensor details")
    info.add_argument("model", type=Path, help="exported .tflite file (sidecar beside it)")
    info.add_argument("--json", type=Path, help="also write the details to this JSON file")

    classify = sub.add_parser(
        "classify", help="read the characters in photos or scans (one or many per image)"
    )
    classify.add_argument("model", type=Path, help="exported .tflite file (sidecar beside it)")
    classify.add_argument("images", type=Path, nargs="+", help="image files or folders of images")
    classify.add_argument(
        "--top-k", type=positive_int, default=3, help="how many classes to show (3)"
    )
    classify.add_argument("--threads", type=positive_int, default=None, help="interpreter threads")
    classify.add_argument("--json", type=Path, help="write predictions to this JSON file")
    classify.add_argument(
        "--single",
        action="store_true",
        help="treat each image as exactly one character (no segmentation)",
    )
    classify.add_argument(
        "--min-confidence",
        type=float,
        default=0.5,
        help="characters below this probability read as '?' (0.5)",
    )
    classify.add_argument(
        "--debug-dir",
        type=Path,
        default=None,
        help="write each image with boxes and every 28x28 crop the model saw",
    )

    bench = sub.add_parser("bench", help="accuracy, latency and memory of one or more models")
    bench.add_argument("models", type=Path, nargs="+", help="exported .tflite files")
    bench.add_argument(
        "--dataset",
        type=str,
        default=None,
        help="dataset name (mnist, usps, emnist-mnist, ...) read from HWR_DATA_DIR, "
        f"or an .npz split; default: the {EVAL_FILE} exported beside each model",
    )
    bench.add_argument("--split", type=str, default="test", help="split of a named dataset (test)")
    bench.add_argument("--runs", type=positive_int, default=1000, help="minimum timed runs (1000)")
    bench.add_argument("--warmup", type=int, default=50, help="untimed warm-up runs (50)")
    bench.add_argument("--min-seconds", type=float, default=1.0, help="minimum timed seconds (1)")
    bench.add_argument("--threads", type=positive_int, default=None, help="interpreter threads")
    bench.add_argument("--json", type=Path, help="write the full results to this JSON file")
    bench.add_argument("--csv", type=Path, help="write the results to this CSV file")
    bench.add_argument(
        "--min-acc",
        type=float,
        default=None,
        help="gate: exit 1 if any model's accuracy (0-1) is below this",
    )
    return parser


def _collect_images(paths: list[Path]) -> list[Path]:
    """Expand folders into their image files; fail when nothing is left."""
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


def read_image(path: Path) -> np.ndarray:
    """Read an image file (EXIF rotation applied) or raise ImageError naming the fix."""
    import cv2

    data = np.fromfile(path, dtype=np.uint8) if path.stat().st_size else np.zeros(0, np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.size == 0:
        raise ImageError(f"cannot read image {path}: empty or not an image file (use PNG or JPEG)")
    return image


def cmd_info(args: argparse.Namespace) -> int:
    from edge.interpreter import Classifier

    clf = Classifier(args.model)
    details = {
        "model": str(args.model),
        "size_bytes": args.model.stat().st_size,
        "backend": f"{clf.backend.name} {clf.backend.version}",
        "input": {k: _jsonable(v) for k, v in clf._input.items() if k != "sparsity_parameters"},
        "output": {k: _jsonable(v) for k, v in clf._output.items() if k != "sparsity_parameters"},
        "sidecar": clf.spec.to_dict(),
    }
    print(json.dumps(details, indent=2))
    if args.json:
        _write(args.json, json.dumps(details, indent=2))
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


def _classify_one(clf, path: Path, args: argparse.Namespace) -> dict:
    """Read one image (as text, or as a single character with --single) and print one line."""
    from edge.pipeline import read_frame
    from edge.preprocess import extract_character

    image = read_image(path)
    try:
        if args.single:
            probs = clf.predict(extract_character(image, clf.spec.preprocess))
            top = clf.top_k(probs, args.top_k)
            print(f"{path}: " + "  ".join(f"{label} {p:.3f}" for label, p in top))
            return {"image": str(path), "text": top[0][0], "top_k": _top(top)}
        reading = read_frame(image, clf, args.min_confidence)
    except ValueError as exc:
        raise ImageError(f"{path}: {exc} (photograph dark ink on light paper)") from None
    if args.debug_dir:
        from edge.debug import write_debug

        write_debug(args.debug_dir, path.stem, image, reading)
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
    if len(reading.chars) == 1:
        print(f"{path}: " + "  ".join(f"{k['label']} {k['p']:.3f}" for k in chars[0]["top_k"]))
    else:
        confidences = " ".join(f"{c.label}:{c.confidence:.2f}" for c in reading.chars)
        shown = reading.text.replace("\n", " / ") or "(no characters found)"
        print(f"{path}: {shown}  [{confidences}]")
    return {"image": str(path), "text": reading.text, "chars": chars}


def _top(pairs: list[tuple[str, float]]) -> list[dict]:
    return [{"label": label, "p": p} for label, p in pairs]


def cmd_classify(args: argparse.Namespace) -> int:
    from edge.interpreter import Classifier

    clf = Classifier(args.model, num_threads=args.threads)
    records = [_classify_one(clf, path, args) for path in _collect_images(args.images)]
    if args.json:
        _write(args.json, json.dumps({"model": str(args.model), "predictions": records}, indent=2))
    return 0


def _eval_split(model: Path, dataset: str | None, split: str):
    from edge.datasets import load_npz_split, load_split

    if dataset is None:
        path = model.parent / EVAL_FILE
        if not path.exists():
            raise EdgeError(
                f"no {EVAL_FILE} beside {model}: pass --dataset NAME (e.g. mnist) or an .npz split"
            )
        return load_npz_split(path)
    if dataset.endswith(".npz"):
        return load_npz_split(Path(dataset))
    return load_split(dataset, split)


def cmd_bench(args: argparse.Namespace) -> int:
    from edge.bench import bench_model, machine_info
    from edge.report import format_table, to_csv, to_json

    rows, cache = [], {}
    for model in args.models:
        key = args.dataset or str(model.parent)
        if key not in cache:
            cache[key] = _eval_split(model, args.dataset, args.split)
        print(
            f"benchmarking {model} on {cache[key].name}/{cache[key].split} "
            f"({len(cache[key].labels)} images) ...",
            file=sys.stderr,
            flush=True,
        )
        rows.append(
            bench_model(
                model,
                cache[key],
                threads=args.threads,
                runs=args.runs,
                warmup=args.warmup,
                min_seconds=args.min_seconds,
            )
        )
    print(format_table(rows))
    settings = {
        k: v
        for k, v in vars(args).items()
        if k in ("runs", "warmup", "min_seconds", "threads", "dataset", "split")
    }
    if args.json:
        _write(args.json, to_json(rows, machine_info(), settings))
    if args.csv:
        _write(args.csv, to_csv(rows))
    failed = [r for r in rows if args.min_acc is not None and not r.accuracy >= args.min_acc]
    if failed:
        names = ", ".join(f"{r.path} ({100 * r.accuracy:.2f}%)" for r in failed)
        raise GateError(f"accuracy below --min-acc {args.min_acc}: {names}")
    return 0


def _check_output(path: Path | None) -> None:
    """Fail before any work when an output file cannot be written where asked."""
    if path is None:
        return
    if not path.parent.is_dir():
        raise EdgeError(f"cannot write {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise EdgeError(f"cannot write {path}: it is a folder, give a file name")


def _write(path: Path, text: str) -> None:
    from edge.report import write_text

    _check_output(path)
    try:
        write_text(path, text)
    except OSError as exc:
        raise EdgeError(
            f"cannot write {path} ({exc.strerror or exc}): choose another path"
        ) from None


COMMANDS = {"info": cmd_info, "classify": cmd_classify, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    """Run the `edge` command line; return the exit code (0 ok, 1 gate failed, 2 bad input)."""
    args = build_parser().parse_args(argv)
    try:
        _check_output(getattr(args, "json", None))
        _check_output(getattr(args, "csv", None))
        return COMMANDS[args.command](args)
    except GateError as exc:
        print(f"edge: gate failed: {exc}", file=sys.stderr)
        return 1
    except EdgeError as exc:
        if args.debug:
            raise
        print(f"edge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edge: interrupted", file=sys.stderr)
        return 130
