"""`edge classify | bench | info`: the device command line; the only place that prints and exits."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edge.errors import EdgeError, GateError, ImageError

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


def _add_ink_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ink",
        type=str,
        default="auto",
        choices=("auto", "dark", "light"),
        help="ink darker than the paper (dark), lighter (light), or auto: photos and frames "
        "are read as dark ink on paper, small dataset-style crops by their majority (auto)",
    )


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

    live = sub.add_parser("live", help="read handwriting from a camera, video or image folder")
    live.add_argument("model", type=Path, help="exported .tflite file (sidecar beside it)")
    live.add_argument(
        "--source",
        type=str,
        default="picamera",
        help="picamera (default), a webcam index (0), a video file, or a folder or glob of images",
    )
    live.add_argument(
        "--frames",
        type=positive_int,
        default=None,
        help="stop after this many frames (default: until the source ends or Ctrl-C)",
    )
    live.add_argument(
        "--every", type=positive_int, default=10, help="print a status line every N frames (10)"
    )
    live.add_argument(
        "--min-confidence",
        type=float,
        default=0.5,
        help="characters below this probability read as '?' (0.5)",
    )
    live.add_argument("--threads", type=positive_int, default=None, help="interpreter threads")
    live.add_argument(
        "--save-dir",
        type=Path,
        default=None,
        help="write every frame, annotated with boxes and labels, to this folder",
    )
    live.add_argument("--show", action="store_true", help="show annotated frames in a window")
    live.add_argument("--loop", action="store_true", help="repeat an image folder forever")
    live.add_argument("--json", type=Path, help="write the run's summary to this JSON file")

    bench = sub.add_parser("bench", help="accuracy, latency and memory of one or more models")
    bench.add_argument("models", type=Path, nargs="+", help="exported .tflite files")
    bench.add_argument(
        "--dataset",
        type=str,
        default=None,
        help="dataset name (mnist, usps, emnist-mnist, ...) read from HWR_DATA_DIR, "
        f"or an .npz split; default: the {EVAL_FILE} exported beside each model",
    )
    bench.add_argument(
        "--photos",
        "--camera-set",
        dest="photos",
        type=Path,
        default=None,
        help="folder with labels.csv (file,label) and photos: accuracy through the full camera "
        "path (segmentation included); alone, it skips the dataset benchmark",
    )
    bench.add_argument(
        "--min-confidence",
        type=float,
        default=0.0,
        help="with --photos: characters below this read as '?' (0)",
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
    for command in (classify, live, bench):
        _add_ink_option(command)
    return parser


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
            reading = read_frame(image, clf, args.min_confidence, ink=args.ink)
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


def _bench_split(args: argparse.Namespace) -> list:
    """Benchmark every model on its evaluation split: accuracy, latency, memory."""
    from edge.bench import bench_model

    rows, cache = [], {}
    for model in args.models:
        key = args.dataset or str(model.parent)
        if key not in cache:
            cache[key] = _eval_split(model, args.dataset, args.split)
        split = cache[key]
        print(
            f"benchmarking {model} on {split.name}/{split.split} ({len(split.labels)} images) ...",
            file=sys.stderr,
            flush=True,
        )
        rows.append(
            bench_model(
                model,
                split,
                threads=args.threads,
                runs=args.runs,
                warmup=args.warmup,
                min_seconds=args.min_seconds,
            )
        )
    return rows


def _bench_photos(args: argparse.Namespace) -> list:
    """Read a folder of labelled photos through the full camera path with every model."""
    from edge.bench import bench_photos
    from edge.interpreter import Classifier

    results = []
    for model in args.models:
        print(f"reading {args.photos} with {model} ...", file=sys.stderr, flush=True)
        clf = Classifier(model, num_threads=args.threads)
        results.append(bench_photos(clf, args.photos, args.min_confidence, ink=args.ink))
    return results


def cmd_bench(args: argparse.Namespace) -> int:
    from edge.bench import machine_info
    from edge.report import format_photo_table, format_table, to_csv, to_json

    rows = _bench_split(args) if args.dataset or not args.photos else []
    photos = _bench_photos(args) if args.photos else []
    if rows:
        print(format_table(rows))
    if photos:
        print(format_photo_table(photos))
    settings = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if k
        in (
            "runs",
            "warmup",
            "min_seconds",
            "threads",
            "dataset",
            "split",
            "photos",
            "min_confidence",
        )
    }
    if args.json:
        _write(args.json, to_json(rows, machine_info(), settings, photos))
    if args.csv and rows:
        _write(args.csv, to_csv(rows))
    accuracies = [(r.path, r.accuracy) for r in rows] + [
        (p.model, p.exact_accuracy) for p in photos
    ]
    failed = [(m, a) for m, a in accuracies if args.min_acc is not None and not a >= args.min_acc]
    if failed:
        names = ", ".join(f"{m} ({100 * a:.2f}%)" for m, a in failed)
        raise GateError(f"accuracy below --min-acc {args.min_acc}: {names}")
    return 0


def _live_status(index: int, reading, seconds: float) -> str:
    t = reading.timing
    text = reading.text.replace("\n", " / ") or "-"
    return (
        f"frame {index}: {text!r}  capture {t.capture:.1f} ms  preprocess {t.preprocess:.1f} ms"
        f"  invoke {t.invoke:.1f} ms  post {t.post:.2f} ms  ({index / seconds:.1f} fps)"
    )


def cmd_live(args: argparse.Namespace) -> int:
    import time

    from edge.bench import stage_summary
    from edge.camera import open_source
    from edge.interpreter import Classifier
    from edge.pipeline import run

    clf = Classifier(args.model, num_threads=args.threads)
    writer = _FrameWriter(args.save_dir, args.show)
    timings, last, start = [], None, time.perf_counter()
    try:
        with open_source(args.source, **({"loop": True} if args.loop else {})) as source:
            for frame, reading in run(source, clf, args.min_confidence, args.frames, args.ink):
                timings.append(reading.timing)
                last = reading
                writer.write(frame, reading)
                if len(timings) % args.every == 0:
                    print(
                        _live_status(len(timings), reading, time.perf_counter() - start), flush=True
                    )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        writer.close()
    seconds = time.perf_counter() - start
    summary = {
        "frames": len(timings),
        "seconds": seconds,
        "fps": len(timings) / seconds if seconds else 0.0,
        "last_text": last.text if last else "",
        "stages_ms": {k: asdict(v) for k, v in stage_summary(timings).items()},
    }
    stages = "  ".join(f"{k} p50 {v['p50']:.1f} ms" for k, v in summary["stages_ms"].items())
    print(
        f"summary: {summary['frames']} frames in {seconds:.1f} s ({summary['fps']:.1f} fps)  "
        f"{stages}"
    )
    if args.json:
        _write(args.json, json.dumps(summary, indent=2))
    return 0


class _FrameWriter:
    """Optional outputs of `edge live`: annotated frames on disk and a window."""

    def __init__(self, folder: Path | None, show: bool):
        self.folder, self.show = folder, show
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def write(self, frame, reading) -> None:
        if self.folder is None and not self.show:
            return
        import cv2

        from edge.debug import annotate

        image = annotate(frame.image, reading)
        if self.folder is not None:
            cv2.imwrite(str(self.folder / f"frame_{frame.index:06d}.jpg"), image)
        if self.show:
            cv2.imshow("edge live", image)
            if cv2.waitKey(1) & 0xFF == ord("q"):
                raise KeyboardInterrupt

    def close(self) -> None:
        if self.show:
            import cv2

            cv2.destroyAllWindows()


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


COMMANDS = {"info": cmd_info, "classify": cmd_classify, "bench": cmd_bench, "live": cmd_live}


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
