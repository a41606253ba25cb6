"""`edge info | classify | live | bench | doctor`: the parser and entry point of the device
command line (with edge/commands.py and edge/live.py, the only code that prints and exits)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.allocator import keep_freed_memory
from edge.arg_types import positive_int
from edge.bench_command import cmd_bench
from edge.commands import EVAL_FILE, check_folder, check_output, cmd_classify, cmd_info
from edge.doctor import camera_option, cmd_doctor
from edge.errors import EdgeError, GateError
from edge.fleet import cmd_report
from edge.live import cmd_live


def region(text: str):
    """argparse type: X,Y,W,H in frame pixels (a region of interest)."""
    from edge.segment import Box

    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not X,Y,W,H (four integers)") from None
    if w < 1 or h < 1 or x < 0 or y < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: X and Y must be >= 0, W and H >= 1")
    return Box(x, y, w, h)


def page_option(text: str):
    """argparse type: "auto" (find the sheet in each frame) or its corners X1,Y1,...,X4,Y4."""
    from edge.page import parse_corners

    if text == "auto":
        return text
    try:
        return parse_corners(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, or auto") from None


def _add_page_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--page",
        type=page_option,
        default=None,
        metavar="auto|X1,Y1,...,X4,Y4",
        help="correct the perspective of a sheet of paper seen at an angle before reading: "
        "auto finds the sheet (the largest bright four-cornered shape; frames without one are "
        "read as they are), or give its four corners in frame pixels (a fixed camera rig)",
    )


def _add_ink_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ink",
        type=str,
        default="auto",
        choices=("auto", "dark", "light"),
        help="ink darker than the paper (dark), lighter (light), or auto: photos and frames "
        "are read as dark ink on paper, small dataset-style crops by their majority (auto)",
    )


def _add_report_parser(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser(
        "report", help="merge bench JSON files from many runs and devices into one report"
    )
    report.add_argument(
        "results",
        type=Path,
        nargs="+",
        metavar="RESULTS.json",
        help="JSON files written by edge bench --json",
    )
    report.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for report.md, report.html and the PNG plots (created if missing)",
    )
    report.add_argument(
        "--title", type=str, default="Benchmark report", help="report title (Benchmark report)"
    )
    report.add_argument(
        "--no-plots", action="store_true", help="write the tables only (no matplotlib needed)"
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

    doctor = sub.add_parser(
        "doctor",
        help="check that this machine (a Raspberry Pi) has what edge needs, one line per fix",
    )
    doctor.add_argument(
        "--model", type=Path, default=None, help="also check that this .tflite loads and runs"
    )
    doctor.add_argument(
        "--camera",
        type=camera_option,
        default="auto",
        help="picamera, a webcam index (0), none, or auto (default: the Pi camera when "
        "picamera2 is installed)",
    )
    doctor.add_argument("--json", type=Path, help="also write the checks to this JSON file")

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
        help="dataset name (mnist, usps, emnist-letters, emnist-balanced, ...) read from "
        f"HWR_DATA_DIR, or an .npz split; default: the {EVAL_FILE} exported beside each model",
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
        "--conditions",
        default=None,
        metavar="NAMES",
        help="with --photos: read the photos after camera-like changes instead of as taken, "
        "one row each: 'all', or comma-separated names (as-taken, frame640, frame400, tilt+8, "
        "tilt-8, dark, bright, flat, noise8, jpeg20, blur, keystone, shake, shadow, grey; "
        "see edge/conditions.py), "
        "to see how the reading holds up on cameras and scenes not seen",
    )
    bench.add_argument(
        "--min-confidence",
        type=float,
        default=0.0,
        help="with --photos: characters below this read as '?' (0)",
    )
    bench.add_argument(
        "--split",
        type=str,
        default="test",
        help="split of a named dataset (test; emnist-letters/-balanced also test-6to1)",
    )
    bench.add_argument("--runs", type=positive_int, default=1000, help="minimum timed runs (1000)")
    bench.add_argument("--warmup", type=int, default=50, help="untimed warm-up runs (50)")
    bench.add_argument("--min-seconds", type=float, default=1.0, help="minimum timed seconds (1)")
    bench.add_argument("--threads", type=positive_int, default=None, help="interpreter threads")
    bench.add_argument("--json", type=Path, help="write the full results to this JSON file")
    bench.add_argument("--csv", type=Path, help="write the results to this CSV file")
    bench.add_argument(
        "--no-xnnpack",
        dest="xnnpack",
        action="store_const",
        const=False,
        default=None,
        help="build the interpreter without the XNNPACK delegate (backend default: on)",
    )
    bench.add_argument(
        "--sweep",
        action="store_true",
        help="also time each model at 1 to all cores, XNNPACK on and off, interleaved",
    )
    bench.add_argument(
        "--frames",
        type=str,
        default=None,
        metavar="SOURCE",
        help="recorded frames (folder, glob or video): steady-state per-stage timing of the "
        "full camera path (capture = read and decode)",
    )
    bench.add_argument(
        "--passes",
        type=positive_int,
        default=3,
        help="with --frames: passes over the frames, the first untimed (3)",
    )
    bench.add_argument(
        "--min-acc",
        type=float,
        default=None,
        help="gate: exit 1 if any model's accuracy (0-1) is below this",
    )
    bench.add_argument(
        "--max-p99-ms",
        type=float,
        default=None,
        help="gate: exit 1 if any model's p99 latency (ms) is above this",
    )
    bench.add_argument(
        "--max-rss-mb",
        type=float,
        default=None,
        help="gate: exit 1 if any model's peak RSS (MiB) is above this",
    )
    for command in (classify, live, bench):
        _add_ink_option(command)
        _add_page_option(command)
        command.add_argument(
            "--splitter",
            type=Path,
            default=None,
            metavar="MODEL",
            help="a model trained with a several-characters class (`train-host train "
            "--several 0.1`) that decides which blobs are touching characters to split; the "
            "MODEL reads the characters (touching writing: 58 -> 70%% exact on our held-out set)",
        )
    for command in (classify, live):
        command.add_argument(
            "--roi",
            type=region,
            default=None,
            metavar="X,Y,W,H",
            help="read only this region of each image or frame (pixels)",
        )
    live.add_argument(
        "--save-video",
        type=Path,
        default=None,
        help="write the annotated frames to this video file (.avi, MJPG)",
    )
    _add_report_parser(sub)
    return parser


COMMANDS = {
    "info": cmd_info,
    "classify": cmd_classify,
    "bench": cmd_bench,
    "live": cmd_live,
    "doctor": cmd_doctor,
    "report": cmd_report,
}


def main(argv: list[str] | None = None) -> int:
    """Run the `edge` command line; return the exit code (0 ok, 1 gate failed, 2 bad input)."""
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # frames reuse the memory the last one freed (see edge.allocator)
    try:
        check_output(getattr(args, "json", None))
        check_output(getattr(args, "csv", None))
        check_folder(getattr(args, "debug_dir", None), "--debug-dir")
        check_folder(getattr(args, "save_dir", None), "--save-dir")
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
