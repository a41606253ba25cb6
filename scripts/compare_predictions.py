#!/usr/bin/env python3
"""Predict a dataset with exported models on one machine, then compare two machines' runs.

`make verify-arm64` (scripts/verify_arm64.sh) runs `predict` once on the host and once in the
emulated arm64 system, over the same images and the same .tflite files, then `compare`:

    python scripts/compare_predictions.py predict MODEL_OR_DIR... --dataset mnist --out host.npz
    python scripts/compare_predictions.py compare host.npz arm64.npz --require-identical int8

Needs numpy and the edge runtime only (no TensorFlow), so it runs on a Pi as it is.

`predict` feeds each model the dataset's uint8 images through `Classifier.predict` (as
`edge bench` measures accuracy) and writes, per model, the top-1 class and the class
probabilities to one .npz, with a JSON record of the models (name, variant, SHA-256), the data
(SHA-256 of images and labels), the backend, numpy and the machine. A model is named
`FOLDER/STEM` (`mnist-cnn/int8`), so runs from different paths line up; identical files are
predicted once.

`compare` reports, per model present in both runs, the share of images whose top-1 class is
the same, the number that differ, the largest absolute difference of any class probability,
and each run's accuracy. Exit 1 when a model of a `--require-identical` variant differs in
any top-1 class, when a model or the data differ between the runs, or when a model is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

VARIANT_ORDER = ("float32", "float16", "dynamic", "int8")


@dataclass(frozen=True)
class Row:
    """One model compared between a reference run and another run."""

    name: str
    variant: str
    images: int
    top1_match: float  # share of images with the same top-1 class (0-1)
    mismatches: int
    images_any_diff: int  # images with any class probability not exactly the same
    max_prob_diff: float  # largest |p_ref - p_other| over every image and class
    mean_prob_diff: float
    accuracy_ref: float
    accuracy_other: float
    same_model: bool  # the .tflite files had the same SHA-256


def model_files(paths: list[str]) -> list[Path]:
    """Expand folders into their .tflite files (float32, float16, dynamic, int8, then others)."""

    def order(path: Path) -> tuple:
        stem = path.stem
        return (VARIANT_ORDER.index(stem) if stem in VARIANT_ORDER else len(VARIANT_ORDER), stem)

    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(path.glob("*.tflite"), key=order)
            if not found:
                raise SystemExit(f"compare_predictions: no .tflite in {path}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise SystemExit(f"compare_predictions: {path} not found")
    return files


def model_name(path: Path) -> str:
    """`FOLDER/STEM`: the same on every machine, whatever the folder's location."""
    return f"{path.parent.name}/{path.stem}"


def load_images(dataset: str, split: str):
    """The dataset's Split: a name from edge.datasets (HWR_DATA_DIR), or an .npz split file."""
    from edge.datasets import load_npz_split, load_split

    if dataset.endswith(".npz"):
        return load_npz_split(dataset)
    return load_split(dataset, split)


def machine() -> dict:
    from edge.interpreter import load_backend

    backend = load_backend()
    return {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_file": str(Path(np.__file__).parent),
        "backend": backend.name,
        "backend_version": backend.version,
        "qemu_cpu": os.environ.get("QEMU_CPU", ""),
        "platform": platform.platform(),
    }


def predict(
    paths: list[str],
    dataset: str,
    split: str,
    out: str,
    limit: int | None = None,
    variants: list[str] | None = None,
) -> dict:
    """Predict `dataset` with every model and write top-1 classes and probabilities to `out`.

    Args:
        variants: only the models of these variants (sidecar "variant", else the file stem).

    Returns:
        The run's metadata (also stored in the .npz under "meta").
    """
    from edge.interpreter import Classifier

    data = load_images(dataset, split)
    images, labels = data.images, np.asarray(data.labels, dtype=np.int64)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    arrays: dict[str, np.ndarray] = {"labels": labels}
    models, done = [], {}  # done: sha256 -> array index
    for path in model_files(paths):
        clf = Classifier(path)
        variant = str(clf.spec.extra.get("variant", path.stem))
        if variants and variant not in variants:
            continue
        sha = clf.spec.sha256
        name = model_name(path)
        seconds = 0.0
        if sha not in done:
            start = time.perf_counter()
            probs = clf.predict_batch(images).astype(np.float32)
            seconds = time.perf_counter() - start
            done[sha] = len(done)
            arrays[f"probs_{done[sha]}"] = probs
            arrays[f"top1_{done[sha]}"] = np.argmax(probs, axis=1).astype(np.int64)
        index = done[sha]
        top1 = arrays[f"top1_{index}"]
        accuracy = float(np.mean(top1 == labels)) if len(labels) else 0.0
        models.append(
            {
                "name": name,
                "variant": variant,
                "sha256": sha,
                "index": index,
                "accuracy": accuracy,
                "seconds": round(seconds, 3),
            }
        )
        note = f"{seconds:.1f} s" if seconds else "same file as an earlier model"
        print(f"  {name}: {len(labels)} images, accuracy {accuracy:.2%} ({note})", file=sys.stderr)
    meta = {
        "dataset": dataset if dataset.endswith(".npz") else f"{dataset}/{split}",
        "data_sha256": data.sha256 if limit is None else f"{data.sha256}[:{limit}]",
        "images": len(labels),
        "models": models,
        **machine(),
    }
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = Path(f"{out}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, out)
    return meta


def load_run(path: str | Path) -> dict:
    """A run written by `predict`: {"meta": dict, "labels": array, "models": {name: entry}},
    each entry with its variant, sha256, top1 (N,) and probs (N, C)."""
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        run = {"meta": meta, "labels": npz["labels"], "models": {}}
        for model in meta["models"]:
            i = model["index"]
            run["models"][model["name"]] = {
                **model,
                "top1": npz[f"top1_{i}"],
                "probs": npz[f"probs_{i}"],
            }
    return run


def compare_runs(reference: dict, other: dict) -> list[Row]:
    """Compare every model of `reference` that `other` has too (see `missing_models`)."""
    if reference["labels"].shape != other["labels"].shape or not np.array_equal(
        reference["labels"], other["labels"]
    ):
        raise ValueError("the two runs predicted different data: compare runs of one dataset")
    labels = reference["labels"]
    rows = []
    for name, ref in reference["models"].items():
        oth = other["models"].get(name)
        if oth is None:
            continue
        same = ref["top1"] == oth["top1"]
        diff = np.abs(ref["probs"].astype(np.float64) - oth["probs"].astype(np.float64))
        n = len(labels)
        rows.append(
            Row(
                name=name,
                variant=ref["variant"],
                images=n,
                top1_match=float(same.mean()) if n else 1.0,
                mismatches=int(n - same.sum()),
                images_any_diff=int(np.count_nonzero(diff.max(axis=1) > 0)) if diff.size else 0,
                max_prob_diff=float(diff.max()) if diff.size else 0.0,
                mean_prob_diff=float(diff.mean()) if diff.size else 0.0,
                accuracy_ref=float(np.mean(ref["top1"] == labels)) if n else 0.0,
                accuracy_other=float(np.mean(oth["top1"] == labels)) if n else 0.0,
                same_model=ref["sha256"] == oth["sha256"],
            )
        )
    return rows


def missing_models(reference: dict, other: dict) -> list[str]:
    return [name for name in reference["models"] if name not in other["models"]]


def failures(rows: list[Row], require_identical: list[str], missing: list[str]) -> list[str]:
    """Why the comparison fails (empty: it passes)."""
    problems = [f"{name}: missing from the second run" for name in missing]
    for row in rows:
        if not row.same_model:
            problems.append(f"{row.name}: the two runs used different .tflite files")
        if row.variant in require_identical and row.mismatches:
            problems.append(
                f"{row.name}: {row.mismatches} of {row.images} top-1 classes differ "
                f"({row.variant} must be identical)"
            )
    return problems


def table(rows: list[Row], ref_label: str, other_label: str) -> str:
    head = (
        f"{'model':<24} {'variant':<8} {'images':>6} {'top-1 same':>10} {'differ':>6} "
        f"{'any dp':>6} {'max |dp|':>9} {'mean |dp|':>9} {'acc ' + ref_label:>14} "
        f"{'acc ' + other_label:>14}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.name:<24} {r.variant:<8} {r.images:>6} {r.top1_match:>10.2%} {r.mismatches:>6} "
            f"{r.images_any_diff:>6} {r.max_prob_diff:>9.2e} {r.mean_prob_diff:>9.2e} {r.accuracy_ref:>14.2%} "
            f"{r.accuracy_other:>14.2%}"
        )
    return "\n".join(lines)


def describe(meta: dict) -> str:
    cpu = f", QEMU_CPU={meta['qemu_cpu']}" if meta.get("qemu_cpu") else ""
    return (
        f"{meta['machine']}{cpu}: Python {meta['python']}, numpy {meta['numpy']} "
        f"({meta['numpy_file']}), {meta['backend']} {meta['backend_version']}"
    )


def compare(
    reference_path: str,
    other_path: str,
    require_identical: list[str],
    json_path: str | None = None,
    labels: tuple[str, str] = ("ref", "other"),
    variants: list[str] | None = None,
) -> int:
    reference, other = load_run(reference_path), load_run(other_path)
    if variants:  # compare only these variants (the other run predicted only them)
        reference["models"] = {
            name: m for name, m in reference["models"].items() if m["variant"] in variants
        }
    problems: list[str] = []
    if reference["meta"]["data_sha256"] != other["meta"]["data_sha256"]:
        problems.append("the two runs read different data (SHA-256 of images and labels)")
    rows = compare_runs(reference, other)
    missing = missing_models(reference, other)
    problems += failures(rows, require_identical, missing)
    print(f"{labels[0]}: {describe(reference['meta'])}")
    print(f"{labels[1]}: {describe(other['meta'])}")
    print(f"data: {reference['meta']['dataset']}, {reference['meta']['images']} images")
    print(table(rows, *labels))
    if json_path:
        record = {
            "reference": reference["meta"],
            "other": other["meta"],
            "labels": list(labels),
            "rows": [asdict(r) for r in rows],
            "require_identical": require_identical,
            "problems": problems,
        }
        Path(json_path).write_text(json.dumps(record, indent=2) + "\n")
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="predict a dataset with models; write an .npz")
    p.add_argument("models", nargs="+", help=".tflite files or folders of them")
    p.add_argument("--dataset", type=str, default="mnist", help="dataset name or .npz split")
    p.add_argument("--split", type=str, default="test", help="split of a named dataset (test)")
    p.add_argument("--out", type=str, required=True, help="the .npz to write")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument(
        "--variants", type=str, default=None, help="only these variants, comma-separated (all)"
    )
    c = sub.add_parser("compare", help="compare two runs of `predict`")
    c.add_argument("reference", type=str, help="the reference run (.npz), e.g. the host's")
    c.add_argument("other", type=str, help="the run to check (.npz)")
    c.add_argument(
        "--require-identical",
        type=str,
        action="append",
        default=[],
        metavar="VARIANT",
        help="exit 1 when a model of this variant differs in any top-1 class (repeatable)",
    )
    c.add_argument("--json", type=str, default=None, help="write the comparison to this file")
    c.add_argument("--labels", type=str, default="ref,other", help="names of the two runs")
    c.add_argument(
        "--variants", type=str, default=None, help="compare only these variants, comma-separated"
    )
    sub.add_parser("env", help="print this machine's Python, numpy, OpenCV and TFLite backend")
    args = parser.parse_args(argv)
    if args.command == "env":
        import cv2

        print(f"{describe(machine())}, OpenCV {cv2.__version__}")
        return 0
    if args.command == "predict":
        variants = [v for v in (args.variants or "").split(",") if v]
        predict(args.models, args.dataset, args.split, args.out, args.limit, variants)
        return 0
    names = tuple(args.labels.split(",", 1)) if "," in args.labels else ("ref", "other")
    variants = [v for v in (args.variants or "").split(",") if v]
    return compare(args.reference, args.other, args.require_identical, args.json, names, variants)


if __name__ == "__main__":
    sys.exit(main())
