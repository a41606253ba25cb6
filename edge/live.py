"""The `edge live` command: read frames from a source until it ends or Ctrl-C, with a status
line every N frames and a summary (part of the command line: it prints)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from edge.commands import write_output
from edge.errors import EdgeError

# Frames per second recorded in --save-video files (a camera loop runs at about this rate).
VIDEO_FPS = 10


def _live_status(index: int, reading, seconds: float) -> str:
    t = reading.timing
    text = reading.text.replace("\n", " / ") or "-"
    return (
        f"frame {index}: {text!r}  capture {t.capture:.1f} ms  preprocess {t.preprocess:.1f} ms"
        f"  invoke {t.invoke:.1f} ms  post {t.post:.2f} ms  ({index / seconds:.1f} fps)"
    )


def cmd_live(args: argparse.Namespace) -> int:
    import time

    from edge.bench import PART_PREFIX
    from edge.camera import open_source
    from edge.camera_bench import stage_summary
    from edge.commands import load_splitter
    from edge.interpreter import Classifier
    from edge.pipeline import run
    from edge.report import format_parts

    clf = Classifier(args.model, num_threads=args.threads)
    splitter = load_splitter(args, clf)
    writer = _FrameWriter(args.save_dir, args.show, args.save_video)
    timings, last, start = [], None, time.perf_counter()
    try:
        with open_source(args.source, **({"loop": True} if args.loop else {})) as source:
            for frame, reading in run(
                source,
                clf,
                args.min_confidence,
                args.frames,
                args.ink,
                args.roi,
                args.page,
                splitter,
            ):
                timings.append(reading.timing)
                last = reading
                writer.write(frame, reading)
                if len(timings) % args.every == 0:
                    print(
                        _live_status(len(timings), reading, time.perf_counter() - start), flush=True
                    )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    except ValueError as exc:  # a frame the page or region cannot be taken from
        raise EdgeError(f"{exc}: check --page and --roi against the frame") from None
    finally:
        writer.close()
    seconds = time.perf_counter() - start
    stats = stage_summary(timings)
    summary = {
        "frames": len(timings),
        "seconds": seconds,
        "fps": len(timings) / seconds if seconds else 0.0,
        "last_text": last.text if last else "",
        "stages_ms": {k: asdict(v) for k, v in stats.items()},
    }
    stages = "  ".join(
        f"{k} p50 {v.p50:.1f} ms" for k, v in stats.items() if not k.startswith(PART_PREFIX)
    )
    print(
        f"summary: {summary['frames']} frames in {seconds:.1f} s ({summary['fps']:.1f} fps)  "
        f"{stages}"
    )
    if stats:
        print(f"  {format_parts(stats)}")
    if args.json:
        write_output(args.json, json.dumps(summary, indent=2))
    return 0


class _FrameWriter:
    """Optional outputs of `edge live`: annotated frames on disk, a video file, a window."""

    def __init__(self, folder: Path | None, show: bool, video: Path | None = None):
        self.folder, self.show, self.video_path = folder, show, video
        self.video = None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def write(self, frame, reading) -> None:
        if self.folder is None and not self.show and self.video_path is None:
            return
        import cv2

        from edge.debug import annotate

        image = annotate(frame.image, reading)
        if self.folder is not None:
            cv2.imwrite(str(self.folder / f"frame_{frame.index:06d}.jpg"), image)
        if self.video_path is not None:
            self._write_video(image)
        if self.show:
            cv2.imshow("edge live", image)
            if cv2.waitKey(1) & 0xFF == ord("q"):
                raise KeyboardInterrupt

    def _write_video(self, image) -> None:
        """Append a frame (resized to the first frame's size) to the MJPG video."""
        import cv2

        if self.video is None:
            size = (image.shape[1], image.shape[0])
            fourcc = cv2.VideoWriter_fourcc(*"MJPG")
            self.video = cv2.VideoWriter(str(self.video_path), fourcc, VIDEO_FPS, size)
            if not self.video.isOpened():
                raise EdgeError(
                    f"cannot write video {self.video_path}: use an .avi file name "
                    "in an existing folder"
                )
            self.size = size
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)
        self.video.write(image)

    def close(self) -> None:
        if self.video is not None:
            self.video.release()
        if self.show:
            import cv2

            cv2.destroyAllWindows()
