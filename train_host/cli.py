"""`train-host train | export | ensemble | camera-set | data | reproduce`: the host command line;
the only place that prints/exits."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from edge.arg_types import non_negative_int, positive_float, positive_int
from edge.commands import check_folder
from edge.errors import EdgeError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the `train-host` command."""
    parser = argparse.ArgumentParser(
        prog="train-host",
        description="Train handwriting models on a host, quantize them to "
        "TFLite and export them with sidecars for the edge runtime.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a model (seeded); writes model.keras + train.json")
    train.add_argument(
        "--dataset",
        type=str,
        default="digits",
        help="digits (bundled, default), mnist, usps, usps28 (USPS in MNIST's format), "
        "emnist-letters, emnist-balanced ...; several joined by + (mnist+usps28) train on all",
    )
    train.add_argument(
        "--train-split",
        type=str,
        default="train",
        help="split to train on, 10%% of it held out for validation (train); emnist-balanced "
        "also train-2400: every image outside its test split, up to 2,400 a class; "
        "emnist-letters also train-all: train plus the ByMerge letters ByClass lacks",
    )
    train.add_argument(
        "--balance-classes",
        action="store_true",
        help="weight classes to equal totals (for an uneven split tested on an even one)",
    )
    train.add_argument(
        "--model", type=str, default="cnn", choices=("cnn", "pca-mlp"), help="architecture (cnn)"
    )
    train.add_argument(
        "--epochs", type=positive_int, default=None, help="epochs (default per dataset)"
    )
    train.add_argument("--batch-size", type=positive_int, default=None, help="batch size (128)")
    train.add_argument(
        "--learning-rate", type=positive_float, default=None, help="peak Adam rate (2e-3)"
    )
    train.add_argument("--seed", type=int, default=None, help="random seed (0)")
    train.add_argument(
        "--split-seed",
        type=int,
        default=None,
        help="seed of the validation split (--seed): give an ensemble's members the same one",
    )
    train.add_argument(
        "--pca-components", type=positive_int, default=None, help="PCA-MLP components (64)"
    )
    train.add_argument(
        "--width",
        type=positive_int,
        default=None,
        help="CNN filters of the first block, then 2x, 2x and 4x (16: about 60 KB as int8; "
        "parameters and time grow about with its square)",
    )
    train.add_argument("--no-augment", action="store_true", help="train without augmentation")
    train.add_argument(
        "--camera-augment",
        action="store_true",
        help="also vary pen width, blur and noise as a camera path does",
    )
    train.add_argument(
        "--several",
        type=positive_float,
        default=None,
        help="add a class of touching characters (2-3 of the split's own, written "
        "overlapping), this fraction of the split's size (e.g. 0.1), so `edge` splits blobs "
        "the model reads as several characters",
    )
    train.add_argument(
        "--out", type=Path, default=None, help="run folder (default artifacts/DATASET-MODEL)"
    )

    export = sub.add_parser("export", help="export a run to every TFLite variant with sidecars")
    export.add_argument("run", type=Path, help="run folder written by `train-host train`")
    export.add_argument("--out", type=Path, default=None, help="output folder (the run folder)")
    export.add_argument(
        "--variants",
        type=str,
        nargs="+",
        default=None,
        help="subset of float32 float16 dynamic int8 (all)",
    )
    export.add_argument("--json", type=Path, default=None, help="write the results as JSON")

    ensemble = sub.add_parser(
        "ensemble",
        help="average trained runs into one model (a run folder `train-host export` takes)",
    )
    ensemble.add_argument(
        "runs", type=Path, nargs="+", help="run folders trained with the same --split-seed"
    )
    ensemble.add_argument("--out", type=Path, required=True, help="run folder to write")

    camera = sub.add_parser(
        "camera-set", help="render test-split characters as camera photos of ink on paper"
    )
    camera.add_argument(
        "--dataset",
        type=str,
        default="mnist",
        help="source of characters (mnist); usps28 renders other writers' digits (US postal), "
        "for measuring the camera path on handwriting the MNIST models never saw",
    )
    camera.add_argument(
        "--split",
        type=str,
        default="test",
        help="split to render (test); val: the validation digits `train-host train` holds out "
        "of the training split (10%%, seed 0), for choosing settings without the test split",
    )
    camera.add_argument(
        "--out",
        type=Path,
        default=Path("artifacts/camera-set"),
        help="output folder (artifacts/camera-set)",
    )
    camera.add_argument(
        "--singles", type=non_negative_int, default=300, help="single characters (300)"
    )
    camera.add_argument(
        "--strings", type=non_negative_int, default=100, help="strings of 2-8 (100)"
    )
    camera.add_argument("--min-length", type=positive_int, default=2, help="shortest string (2)")
    camera.add_argument(
        "--touching", action="store_true", help="render neighbouring characters of strings touching"
    )
    camera.add_argument(
        "--sheet",
        action="store_true",
        help="render the paper as a whole sheet on a desk seen at an angle (for edge --page)",
    )
    camera.add_argument(
        "--squared",
        action="store_true",
        help="render every frame on squared paper (thin lines both ways, about a character a "
        "cell), which the default set never shows",
    )
    camera.add_argument(
        "--size",
        default="0.25,0.55",
        help="LO,HI: each frame's character box (the 28x28 box MNIST's 20x20 digits sit in) "
        "drawn between these fractions of the frame's height (0.25,0.55); 0.08,0.16 is writing "
        "seen from far off",
    )
    camera.add_argument("--max-length", type=positive_int, default=8, help="longest string (8)")
    camera.add_argument("--seed", type=int, default=0, help="random seed (0)")

    reproduce = sub.add_parser(
        "reproduce", help="reproduce a seed paper's experiment (metrics, plots, TFLite models)"
    )
    reproduce.add_argument("experiment", type=str, help="seed-000 ... seed-004 (`list` shows them)")
    reproduce.add_argument(
        "--quick", action="store_true", help="few epochs and trials: checks the pipeline (CI)"
    )
    reproduce.add_argument("--out", type=Path, default=Path("runs"), help="parent folder (runs)")
    reproduce.add_argument("--seed", type=int, default=0, help="random seed (0)")
    reproduce.add_argument(
        "--epochs", type=positive_int, default=None, help="override every model's epochs"
    )
    reproduce.add_argument(
        "--trials", type=positive_int, default=None, help="override search trials"
    )
    reproduce.add_argument(
        "--repeats",
        type=positive_int,
        default=None,
        help="override the trainings with new seeds (seed-003's baseline and ensemble; paper 10)",
    )
    reproduce.add_argument(
        "--storage",
        type=str,
        default=None,
        help="Optuna storage URL shared by workers (default: sqlite file in the run folder); "
        "a search resumes where it stopped",
    )
    reproduce.add_argument("--no-export", action="store_true", help="skip the TFLite export")
    reproduce.add_argument(
        "--models", type=str, default=None, help="comma-separated subset of the experiment's models"
    )
    reproduce.add_argument(
        "--batch-size", type=positive_int, default=None, help="override every model's batch size"
    )
    reproduce.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="processes sharing the work: seed-000's grid, seed-003's search trials and "
        "trainings (default 1; more on a machine with more cores or a GPU)",
    )

    data = sub.add_parser("data", help="download or check data sets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    download = data_sub.add_parser("download", help="fetch a data set, verify SHA-256, atomic")
    download.add_argument("name", type=str, help="mnist or usps")
    download.add_argument("--data-dir", type=Path, default=None, help="target (HWR_DATA_DIR)")
    download.add_argument("--base-url", type=str, default=None, help="mirror to fetch from")
    check = data_sub.add_parser("check", help="load data sets and verify their checksums")
    check.add_argument("names", type=str, nargs="*", default=["mnist"], help="data set names")
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from train_host.data import check_dataset_name
    from train_host.train import TrainConfig, train, with_overrides

    check_dataset_name(args.dataset)  # before the line that announces the training
    if args.several is not None and not 0.0 <= args.several <= 1.0:
        raise EdgeError(
            f"--several {args.several}: give a fraction of the split from 0 to 1, e.g. 0.1"
        )
    config = with_overrides(
        TrainConfig(
            dataset=args.dataset,
            train_split=args.train_split,
            balance_classes=args.balance_classes,
            model=args.model,
            augment=not args.no_augment,
            camera_augment=args.camera_augment,
        ),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        split_seed=args.split_seed,
        pca_components=args.pca_components,
        width=args.width,
        several=args.several,
    )
    out = args.out or Path("artifacts") / f"{config.dataset}-{config.model}"
    print(
        f"training {config.model} on {config.dataset} for {config.resolved_epochs()} epochs "
        f"-> {out}",
        flush=True,
    )
    record = train(config, out)
    print(
        f"done: val accuracy {100 * record['val_accuracy']:.2f}% (best epoch "
        f"{record['best_epoch']}), {record['params']} parameters, {record['train_seconds']} s"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from edge.report import write_text
    from train_host.export import export_run, results_as_dicts
    from train_host.quantize import VARIANTS

    variants = tuple(dict.fromkeys(args.variants or VARIANTS))  # each once, in the order given
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise EdgeError(f"unknown variant {unknown[0]!r}: use {', '.join(VARIANTS)}")
    results = export_run(args.run, args.out, variants)
    if args.json:
        write_text(args.json, json.dumps(results_as_dicts(results), indent=2))
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    from train_host.ensemble import ensemble_runs

    record = ensemble_runs(args.runs, args.out, progress=lambda line: print(line, flush=True))
    print(
        f"done: {len(record['members'])} members, val accuracy "
        f"{100 * record['val_accuracy']:.2f}%, {record['params']} parameters -> {args.out} "
        f"(next: train-host export {args.out})"
    )
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from train_host.data import download, load_dataset

    if args.data_command == "download":
        for path in download(args.name, args.data_dir, base_url=args.base_url):
            print(f"ok  {path}")
        return 0
    for name in args.names:
        for split in ("train", "test"):
            loaded = load_dataset(name, split)
            print(f"ok  {name}/{split}: {len(loaded.labels)} images, {len(loaded.classes)} classes")
    return 0


def _size_range(text: str) -> tuple[float, float]:
    """--size LO,HI as two fractions of the frame's height, 0 < LO <= HI <= 0.9."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise EdgeError(f"--size {text!r}: give two fractions LO,HI, e.g. 0.25,0.55") from None
    if not 0 < lo <= hi <= 0.9:
        raise EdgeError(
            f"--size {text!r}: need 0 < LO <= HI <= 0.9 (fractions of the frame's height)"
        )
    return lo, hi


def cmd_camera_set(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from train_host.camera_set import CameraSetConfig, build_camera_set
    from train_host.data import load_dataset, train_val_split

    if not 1 <= args.min_length <= args.max_length:
        raise EdgeError("--min-length must be at least 1 and at most --max-length")
    if not args.singles + args.strings:
        raise EdgeError("nothing to render: give --singles or --strings a count above 0")
    size = _size_range(args.size)
    config = CameraSetConfig(
        singles=args.singles,
        strings=args.strings,
        seed=args.seed,
        min_length=args.min_length,
        max_length=args.max_length,
        touching=args.touching,
        sheet=args.sheet,
        squared=args.squared,
        size=size,
    )
    if args.split == "val":
        source = train_val_split(load_dataset(args.dataset, "train"))[1]
    else:
        source = load_dataset(args.dataset, args.split)
    labels = build_camera_set(
        source,
        args.out,
        config,
        progress=lambda jobs: tqdm(jobs, desc="rendering", unit="image"),
    )
    print(f"ok  {args.singles + args.strings} images -> {labels}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from train_host.reproduce import EXPERIMENTS, run_experiment
    from train_host.reproduce.common import METRICS_FILE, Options

    if args.experiment == "list":
        for name, (_, about) in EXPERIMENTS.items():
            print(f"{name}  {about}")
        return 0
    if args.experiment not in EXPERIMENTS:
        raise EdgeError(
            f"unknown experiment {args.experiment!r}: use one of {', '.join(EXPERIMENTS)}"
        )
    if args.storage:
        from train_host.reproduce.search import check_storage_url

        check_storage_url(args.storage)
    options = Options(
        quick=args.quick,
        out=args.out,
        seed=args.seed,
        epochs=args.epochs,
        trials=args.trials,
        repeats=args.repeats,
        storage=args.storage,
        export=not args.no_export,
        models=tuple(args.models.split(",")) if args.models else None,
        batch_size=args.batch_size,
        workers=args.workers,
        progress=lambda line: print(line, flush=True),
    )
    start = time.perf_counter()
    run_experiment(args.experiment, options)
    print(
        f"done: {args.experiment} in {time.perf_counter() - start:.0f} s -> "
        f"{args.out / args.experiment / METRICS_FILE}"
    )
    return 0


COMMANDS = {
    "reproduce": cmd_reproduce,
    "train": cmd_train,
    "export": cmd_export,
    "ensemble": cmd_ensemble,
    "data": cmd_data,
    "camera-set": cmd_camera_set,
}


def main(argv: list[str] | None = None) -> int:
    """Run the `train-host` command line; return the exit code (0 ok, 2 bad input)."""
    from edge.datasets import DatasetError

    args = build_parser().parse_args(argv)
    try:
        check_folder(getattr(args, "out", None), "--out")  # every command writes a folder
        return COMMANDS[args.command](args)
    except (EdgeError, DatasetError) as exc:
        if args.debug:
            raise
        print(f"train-host: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("train-host: interrupted (no partial files are left)", file=sys.stderr)
        return 130
