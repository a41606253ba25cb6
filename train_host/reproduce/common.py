"""What every seed reproduction shares: options, data splits, Keras fitting with a history,
metrics and plots written to `runs/<experiment>/`, and export of the best model to TFLite."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.atomic import atomic_write_bytes
from edge.errors import EdgeError
from edge.preprocess import PreprocessSpec, to_model_input
from train_host.data import load_dataset, train_val_split

METRICS_FILE = "metrics.json"
# Training facts of an experiment's record copied into the exported sidecar.
SIDECAR_SETTINGS = (
    "optimizer",
    "learning_rate",
    "momentum",
    "epochs",
    "batch_size",
    "dropout",
    "val_fraction",
    "seed",
    "params",
    "options",
)


@dataclass(frozen=True)
class Options:
    """How to run an experiment.

    Attributes:
        quick: few epochs and trials (CI); the paper's scale otherwise.
        out: parent folder of the run folders (`runs/`).
        seed: random seed of splits, initialisation and searches.
        epochs: override the epochs of every model (None: the experiment's choice).
        trials: override the number of search trials (None: the experiment's choice).
        repeats: override how many times a configuration is trained with new seeds (seed
            003's baseline and ensemble members; None: the paper's ten).
        storage: Optuna storage URL (None: a SQLite file in the run folder).
        export: export the best model to every TFLite variant.
        models: run only these of the experiment's models (None: all).
        batch_size: override the batch size of every model (None: the paper's).
        workers: processes that share a search's study (grids: seed 000).
        progress: called with one line per step.
    """

    quick: bool = False
    out: Path = Path("runs")
    seed: int = 0
    epochs: int | None = None
    trials: int | None = None
    repeats: int | None = None
    storage: str | None = None
    export: bool = True
    models: tuple[str, ...] | None = None
    batch_size: int | None = None
    workers: int = 1
    progress: Callable[[str], None] = print

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise EdgeError(f"--workers must be at least 1, not {self.workers}")

    def wants(self, model: str) -> bool:
        """Whether this run includes the named model."""
        return self.models is None or model in self.models

    def run_dir(self, name: str) -> Path:
        """The experiment's folder (created)."""
        path = self.out / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def storage_url(self, name: str) -> str:
        """Where the experiment's Optuna studies live: the given URL or a SQLite file."""
        if self.storage:
            return self.storage
        return f"sqlite:///{(self.run_dir(name) / 'optuna.db').resolve()}"

    def pick(self, quick: int, full: int, override: int | None = None) -> int:
        """The override if given, else the quick or full count."""
        return override if override is not None else (quick if self.quick else full)


@dataclass(frozen=True)
class Data:
    """Train / validation / test arrays of one dataset, as model inputs."""

    name: str
    classes: tuple[str, ...]
    spec: PreprocessSpec
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_split: object = field(repr=False, default=None)
    train_sha256: str = ""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])


def load_data(
    name: str,
    spec: PreprocessSpec,
    val_fraction: float,
    seed: int,
    limit: int | None = None,
    splits: tuple[str, str] = ("train", "test"),
) -> Data:
    """Load a dataset, carve a stratified validation split from its training data, and scale
    both as `spec` says; `limit` keeps only that many training images (quick runs); `splits`
    names the training and test splits (e.g. emnist-balanced's "train-6to1", "test-6to1")."""
    full = load_dataset(name, splits[0])
    train, val = train_val_split(full, val_fraction, seed)
    test = load_dataset(name, splits[1])
    if limit is not None:
        keep = np.random.default_rng(seed).permutation(len(train.labels))[:limit]
        train = type(train)(
            train.name, "train", train.images[keep], train.labels[keep], train.classes
        )
    return data_from_splits(name, spec, full, train, val, test)


def data_from_splits(name: str, spec: PreprocessSpec, full, train, val, test) -> Data:
    """Data from train / val / test Splits, scaled as `spec` says; `full` is the training
    split the others were carved from (its hash identifies the training data)."""
    return Data(
        name=name,
        classes=tuple(full.classes),
        spec=spec,
        x_train=to_model_input(train.images, spec),
        y_train=train.labels,
        x_val=to_model_input(val.images, spec),
        y_val=val.labels,
        x_test=to_model_input(test.images, spec),
        y_test=test.labels,
        test_split=test,
        train_sha256=full.sha256,
    )


def epoch_progress(name: str, epochs: int, progress: Callable[[str], None]):
    """A Keras callback printing one line per epoch: validation accuracy and elapsed time."""
    import keras

    class EpochLine(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            val = (logs or {}).get("val_accuracy", float("nan"))
            elapsed = time.perf_counter() - self.start
            progress(f"  {name} epoch {epoch + 1}/{epochs}: val {100 * val:.2f}% ({elapsed:.0f} s)")

    return EpochLine()


def fit(
    model,
    data: Data,
    optimizer,
    epochs: int,
    batch_size: int,
    callbacks=(),
    verbose=0,
    resume_dir: Path | None = None,
):
    """Compile and fit with validation each epoch; returns (history dict, seconds).

    With `resume_dir` the run survives an interruption (a long run on a small machine):
    after every epoch the training state is backed up (Keras BackupAndRestore), the epoch's
    metrics appended to `history.csv` and the best validation epoch's weights kept in
    `best.weights.h5`; called again, it goes on from the last finished epoch (or, when all
    epochs are done, trains nothing), and returns every epoch's history and the seconds of
    all calls, with the best epoch's weights loaded. Batches after a resume are shuffled
    differently from an uninterrupted run.
    """
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    extra, done, spent = [], {}, 0.0
    if resume_dir is not None:
        extra, done, spent = _resumable(resume_dir)
    start = time.perf_counter()
    if len(done.get("val_accuracy", [])) < epochs:
        history = model.fit(
            data.x_train,
            data.y_train,
            epochs=epochs,
            batch_size=batch_size,
            validation_data=(data.x_val, data.y_val),
            callbacks=list(callbacks) + extra,
            verbose=verbose,
        ).history
    seconds = time.perf_counter() - start + spent
    if resume_dir is None:
        return {k: [float(v) for v in vals] for k, vals in history.items()}, seconds
    model.load_weights(resume_dir / "best.weights.h5")
    return read_history(resume_dir / "history.csv"), seconds


def _resumable(folder: Path) -> tuple[list, dict, float]:
    """The callbacks that make a fit resumable in `folder`, the epochs already done and the
    seconds already spent."""
    import keras

    folder.mkdir(parents=True, exist_ok=True)
    done = read_history(folder / "history.csv")
    seconds_file = folder / "seconds.json"
    spent = json.loads(seconds_file.read_text())["seconds"] if seconds_file.is_file() else 0.0
    best = max(done.get("val_accuracy", []), default=None)
    callbacks = [
        keras.callbacks.CSVLogger(str(folder / "history.csv"), append=True),
        keras.callbacks.ModelCheckpoint(
            str(folder / "best.weights.h5"),
            monitor="val_accuracy",
            mode="max",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=best,
        ),
        keras.callbacks.BackupAndRestore(str(folder / "backup")),
        _seconds_logger(keras, seconds_file, spent),
    ]
    return callbacks, done, spent


def _seconds_logger(keras, path: Path, spent: float):
    """A callback that writes the seconds of all calls so far to `path` after every epoch, so
    an interrupted call's time is counted too."""

    class SecondsLogger(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = spent + time.perf_counter() - self.start
            atomic_write_bytes(path, json.dumps({"seconds": seconds}).encode())

    return SecondsLogger()


def read_history(path: Path) -> dict[str, list[float]]:
    """Per-epoch metrics from a Keras CSVLogger file (each epoch once, the last row kept),
    without the epoch column; empty when the file does not exist."""
    import csv

    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = {int(row["epoch"]): row for row in csv.DictReader(handle)}
    ordered = [rows[e] for e in sorted(rows)]
    keys = [k for k in (ordered[0] if ordered else {}) if k != "epoch"]
    return {k: [float(row[k]) for row in ordered] for k in keys}


def accuracy_of(probs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of class probabilities."""
    return float(np.mean(np.argmax(probs, axis=1) == labels))


def mean_std(values) -> dict:
    """Mean and sample standard deviation (0 for one value) of repeated results."""
    values = np.asarray(list(values), dtype=np.float64)
    return {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1) if len(values) > 1 else 0),
    }


def predict(model, x: np.ndarray) -> np.ndarray:
    """Class probabilities of a Keras model, batched."""
    return model.predict(x, batch_size=512, verbose=0)


def write_metrics(run_dir: Path, metrics: dict) -> Path:
    """Write the experiment's metrics.json atomically."""
    return atomic_write_bytes(run_dir / METRICS_FILE, json.dumps(metrics, indent=2).encode())


def roc_auc_per_class(labels: np.ndarray, probs: np.ndarray, classes) -> dict[str, float]:
    """One-vs-rest ROC AUC of every class."""
    from sklearn.metrics import roc_auc_score

    return {
        str(c): float(roc_auc_score(labels == i, probs[:, i]))
        for i, c in enumerate(classes)
        if 0 < np.sum(labels == i) < len(labels)
    }


def export_model(
    builder: Callable[[int | None], object],
    model,
    data: Data,
    out_dir: Path,
    name: str,
    record: dict,
    progress=print,
) -> list:
    """Export a trained Keras model to every TFLite variant with sidecars, checked by the
    edge runtime on the test split, plus the split itself for `edge bench`.

    Args:
        builder: builds the same architecture for a batch size (1 for export).
        model: the trained model (its weights are copied).
        data: the data it was trained on.
        out_dir: folder for the .tflite files and sidecars.
        name: the model's name in its sidecar.
        record: training facts for the sidecar (params, best_epoch, val_accuracy, ...).
    """
    from edge.datasets import save_npz_split
    from train_host.export import EVAL_FILE, export_variant
    from train_host.quantize import VARIANTS
    from train_host.train import TrainConfig

    out_dir.mkdir(parents=True, exist_ok=True)
    export = builder(1)
    export.set_weights(model.get_weights())
    config = TrainConfig(dataset=data.name, model=name, preprocess=data.spec)
    settings = {k: record[k] for k in SIDECAR_SETTINGS if k in record}
    full_record = {
        # the experiment's own settings, not TrainConfig's defaults, which it did not use
        "config": {"dataset": data.name, "model": name, "experiment_settings": settings},
        "classes": list(data.classes),
        "params": int(model.count_params()),
        "best_epoch": record.get("best_epoch"),
        "val_accuracy": record.get("val_accuracy"),
        "train_seconds": record.get("train_seconds"),
        "model_options": record.get("options", {}),
        "data": {
            "dataset": data.name,
            "train_sha256": data.train_sha256,
            "train_size": len(data.y_train),
            "val_size": len(data.y_val),
        },
    }
    float_acc = accuracy_of(predict(model, data.x_test), data.y_test)
    pick = np.random.default_rng(0).choice(len(data.x_train), min(500, len(data.x_train)), False)
    rep = data.x_train[np.sort(pick)]
    save_npz_split(data.test_split, out_dir / EVAL_FILE)
    results = []
    for variant in VARIANTS:
        result = export_variant(
            export, variant, out_dir, full_record, config, data.test_split, float_acc, rep
        )
        progress(f"  {result.line()}")
        results.append(result)
    return results


def host_latency_ms(model_path: Path, runs: int = 300) -> float:
    """p50 latency (ms) of one exported model on this host, with the edge runtime."""
    from edge.bench import bench_model
    from edge.datasets import load_npz_split
    from train_host.export import EVAL_FILE

    split = load_npz_split(model_path.parent / EVAL_FILE)
    small = type(split)(
        split.name, split.split, split.images[:256], split.labels[:256], split.classes
    )
    return bench_model(model_path, small, runs=runs, warmup=20, min_seconds=0.3).latency.p50


def export_summary(results: list) -> dict:
    """Size, accuracy and host p50 latency of each exported variant (JSON-ready)."""
    return {
        r.variant: {
            "path": str(r.path),
            "size_bytes": r.size_bytes,
            "tflite_accuracy": r.tflite_accuracy,
            "float_accuracy": r.float_accuracy,
            "host_p50_ms": host_latency_ms(r.path),
        }
        for r in results
    }
