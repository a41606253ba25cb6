"""Seed 000 (EMNIST letters; Remaida et al., "Tuning CNN hyperparameters for offline handwriting
recognition"): 9 Mish CNNs x 3 optimizers x 4 learning rates = 108 points, batch 512, 50 epochs,
run as one Optuna grid that processes share and that resumes; a table of all points shaped
like the paper's, its best (3 conv + 2 dense, Adam 1e-3: 94.68%) beside ours. Our reading of
the architectures: `seed_000_setup`; the shared study: `seed_000_grid`; its workers: `workers`.

Data: emnist-letters "train"/"test", 80/20 of each class as the paper split its pooled set
(official Letters when present, else derived from ByClass test: 46,723 / 11,682 images against
the paper's pooled 145,600), 10% of "train" kept for validation. Each point keeps its epoch
best on validation and reports the test split there (the paper reports the test set after 50
epochs, its validation set too); the export takes the point best on validation.

`--workers N` spawns N processes, or start the command N times with one --storage URL; each
runs points until none is left to start, and a rerun runs only the missing ones.
"""

from __future__ import annotations

import functools
import io
import time
from dataclasses import replace

import numpy as np
import optuna

from edge.atomic import atomic_write_bytes
from edge.datasets import data_dir
from edge.emnist_derived import official_files
from edge.errors import EdgeError
from train_host.reproduce import plots, search, workers
from train_host.reproduce.common import (
    Data,
    Options,
    accuracy_of,
    epoch_progress,
    export_model,
    export_summary,
    fit,
    load_data,
    predict,
    write_metrics,
)
from train_host.reproduce.seed_000_grid import open_grid
from train_host.reproduce.seed_000_setup import (
    GRID,
    PAPER_BEST,
    QUICK_GRID,
    build_cnn,
    grid_key,
    grid_points,
    make_optimizer,
)
from train_host.reproduce.seed_000_table import markdown, results_of

NAME = "seed-000"
DATASET = "emnist-letters"
STUDY = "seed-000-grid"
VAL_FRACTION = 0.1
BATCH_SIZE = 512
PAPER_EPOCHS = 50
QUICK_EPOCHS = 1
QUICK_TRAIN_IMAGES = 3000
QUICK_VAL_IMAGES = 1000
QUICK_TEST_IMAGES = 2000
WEIGHTS_DIR = "best-weights"
TABLE_FILE = "grid.md"


def _load(options: Options) -> Data:
    """The letters; quick runs keep 3,000 training images and seeded subsets of the
    validation and test splits (evaluating the full ones would cost more than training)."""
    from edge.spec import dataset_spec

    limit = QUICK_TRAIN_IMAGES if options.quick else None
    data = load_data(DATASET, dataset_spec(DATASET), VAL_FRACTION, options.seed, limit)
    if not options.quick:
        return data
    rng = np.random.default_rng(options.seed)
    val = np.sort(rng.permutation(len(data.y_val))[:QUICK_VAL_IMAGES])
    test = np.sort(rng.permutation(len(data.y_test))[:QUICK_TEST_IMAGES])
    split = data.test_split
    return replace(
        data,
        x_val=data.x_val[val],
        y_val=data.y_val[val],
        x_test=data.x_test[test],
        y_test=data.y_test[test],
        test_split=type(split)(
            split.name, split.split, split.images[test], split.labels[test], split.classes
        ),
    )


def _setup(options: Options, data: Data) -> dict:
    """Epochs, batch size, grid, study name and protocol of this run."""
    epochs = options.pick(QUICK_EPOCHS, PAPER_EPOCHS, options.epochs)
    batch = options.batch_size or BATCH_SIZE
    protocol = {
        "dataset": DATASET,
        "train_images": len(data.y_train),
        "val_images": len(data.y_val),
        "epochs": epochs,
        "batch_size": batch,
        "seed": options.seed,
    }
    space = QUICK_GRID if options.quick else GRID
    study = STUDY + ("-quick" if options.quick else "")
    return {"epochs": epochs, "batch": batch, "space": space, "study": study, "protocol": protocol}


def _train(params: dict, data: Data, options: Options, setup: dict, callbacks=()):
    """Train one grid point (the run's seed), keeping its epoch best on validation."""
    import keras

    keras.backend.clear_session()  # 108 models: drop the previous graphs
    keras.utils.set_random_seed(options.seed)
    model = build_cnn(params["architecture"], len(data.classes))
    epochs = setup["epochs"]
    keep = keras.callbacks.EarlyStopping(
        "val_accuracy", patience=epochs, mode="max", restore_best_weights=True
    )
    optimizer = make_optimizer(params["optimizer"], params["learning_rate"])
    history, seconds = fit(model, data, optimizer, epochs, setup["batch"], [keep, *callbacks])
    record = dict(params) | {
        "state": "complete",
        "params": int(model.count_params()),
        "epochs": epochs,
        "batch_size": setup["batch"],
        "best_epoch": int(np.argmax(history["val_accuracy"])) + 1,
        "val_accuracy": max(history["val_accuracy"]),
        "test_accuracy": accuracy_of(predict(model, data.x_test), data.y_test),
        "train_seconds": round(seconds, 1),
        "history": history,
    }
    return model, record


def _weights_path(options: Options, key: str):
    return options.run_dir(NAME) / WEIGHTS_DIR / f"{key}.npz"


def _keep_if_best(study: optuna.Study, record: dict, model, path) -> None:
    """Save the weights when no finished point beats this one (the export reloads them)."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if any(t.value >= record["val_accuracy"] for t in done):
        return
    buffer = io.BytesIO()
    np.savez(buffer, *model.get_weights())
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


def _objective(data: Data, options: Options, setup: dict):
    def objective(trial: optuna.Trial) -> float:
        params = {
            name: trial.suggest_categorical(name, choices)
            for name, choices in setup["space"].items()
        }
        key = grid_key(**params)
        lines = epoch_progress(key, setup["epochs"], options.progress)
        callbacks = [search.pruning_callback(trial), lines]
        model, record = _train(params, data, options, setup, callbacks)
        trial.set_user_attr("result", record)
        _keep_if_best(trial.study, record, model, _weights_path(options, key))
        options.progress(
            f"{key}: val {100 * record['val_accuracy']:.2f}%, test "
            f"{100 * record['test_accuracy']:.2f}% ({record['train_seconds']:.0f} s)"
        )
        return record["val_accuracy"]

    return objective


def _run_points(options: Options, data: Data, setup: dict) -> int:
    """Run grid points until none is left to start (or --trials are finished); returns how
    many this process ran."""
    study = open_grid(options.storage_url(NAME), setup, options.seed)
    search.fail_stale(study)
    sampler = study.sampler
    if not sampler.unstarted(study):
        return 0

    def stop_when_started(study: optuna.Study, trial) -> None:
        if not sampler.unstarted(study):
            study.stop()  # the points left run in other processes: no duplicates

    target = min(
        options.trials or len(grid_points(setup["space"])), len(grid_points(setup["space"]))
    )
    objective = _objective(data, options, setup)
    return search.optimize_missing(study, objective, target, options.progress, [stop_when_started])


def work(options: Options, index: int = 0, count: int = 1) -> int:
    """One worker (of `count`; every worker does the same): load the data and run grid points
    until none is left to start."""
    data = _load(options)
    return _run_points(options, data, _setup(options, data))


def _best_model(record: dict, data: Data, options: Options, setup: dict):
    """The best point's model: its kept weights, or trained again when they are missing."""
    key = grid_key(record["architecture"], record["optimizer"], record["learning_rate"])
    path = _weights_path(options, key)
    params = {k: record[k] for k in ("architecture", "optimizer", "learning_rate")}
    if not path.is_file():
        options.progress(f"no kept weights for {key}: training it again")
        return _train(params, data, options, setup)[0]
    model = build_cnn(record["architecture"], len(data.classes))
    with np.load(path) as weights:
        model.set_weights([weights[f"arr_{i}"] for i in range(len(weights.files))])
    return model


def _drop_beaten_weights(options: Options, results: dict[str, dict], best: float) -> None:
    """Delete kept weights of finished points that are not the best (running ones stay)."""
    for key, record in results.items():
        path = _weights_path(options, key)
        if record["state"] == "complete" and record["val_accuracy"] < best and path.is_file():
            path.unlink()


def _report(options: Options, data: Data, setup: dict, study: optuna.Study) -> tuple:
    """Table, plots and metrics of the finished points; (metrics, the best one's model)."""
    out = options.run_dir(NAME)
    results = results_of(study)
    complete = [k for k, r in results.items() if r["state"] == "complete"]
    if not complete:
        raise EdgeError(f"no grid point of {setup['study']!r} has finished: run the command again")
    best_key = max(complete, key=lambda k: results[k]["val_accuracy"])
    best = results[best_key]
    model = _best_model(best, data, options, setup)
    _drop_beaten_weights(options, results, best["val_accuracy"])
    probs = predict(model, data.x_test)
    plots.learning_curves({best_key: best["history"]}, out / "learning_curves.png", "seed 000 best")
    title = f"{best_key}, emnist-letters test"
    plots.confusion_matrix(data.y_test, probs.argmax(1), data.classes, out / "confusion.png", title)
    images = (len(data.y_train), len(data.y_val), len(data.y_test))
    table = markdown(setup, results, best_key, images)
    atomic_write_bytes(out / TABLE_FILE, table.encode())
    paper_key = grid_key(*(PAPER_BEST[k] for k in ("architecture", "optimizer", "learning_rate")))
    metrics = {
        "experiment": NAME,
        "quick": options.quick,
        "seed": options.seed,
        "study": setup["study"],
        "protocol": setup["protocol"],
        "data_source": "official" if official_files(DATASET, "train", data_dir()) else "derived",
        "test_images": len(data.y_test),
        "train_sha256": data.train_sha256,
        "grid_points": len(grid_points(setup["space"])),
        "complete": len(complete),
        "pruned": sum(r["state"] == "pruned" for r in results.values()),
        "paper_best": PAPER_BEST,
        "ours_at_paper_best": results.get(paper_key),
        "best_on_validation": best_key,
        "best_test_accuracy": accuracy_of(probs, data.y_test),
        "table": table,
        "grid": results,
    }
    options.progress(
        f"best on validation: {best_key}, test {100 * metrics['best_test_accuracy']:.2f}% "
        f"(paper's best {100 * PAPER_BEST['test_accuracy']:.2f}%) -> {out / TABLE_FILE}"
    )
    return metrics, model


def run(options: Options) -> dict:
    """Run the grid points still missing (in `options.workers` processes), then write the
    table, plots and metrics, and export the point best on validation."""
    if options.models is not None:
        raise EdgeError(
            f"{NAME} runs one grid, not named models: use --quick, --trials or --epochs"
        )
    start = time.perf_counter()
    data = _load(options)
    setup = _setup(options, data)
    # created (its protocol stored) before any worker starts
    study = open_grid(options.storage_url(NAME), setup, options.seed)
    before = search.finished(study)
    if options.workers > 1:
        workers.spawn(work, replace(options, storage=options.storage_url(NAME)), options.workers)
    else:
        _run_points(options, data, setup)
    grid_seconds = time.perf_counter() - start
    metrics, model = _report(options, data, setup, study)
    metrics |= {"trials_run_now": search.finished(study) - before, "workers": options.workers}
    metrics["seconds"] = {"grid": round(grid_seconds, 1)}
    if options.export:
        best = metrics["grid"][metrics["best_on_validation"]]
        record = best | {"val_fraction": VAL_FRACTION, "seed": options.seed}
        builder = functools.partial(build_cnn, best["architecture"], len(data.classes))
        name = f"seed000-{best['architecture']}"
        options.progress(f"exporting {metrics['best_on_validation']} ...")
        out = options.run_dir(NAME) / "models"
        exported = export_model(builder, model, data, out, name, record, options.progress)
        metrics["export"] = export_summary(exported)
    metrics["seconds"]["total"] = round(time.perf_counter() - start, 1)
    write_metrics(options.run_dir(NAME), metrics)
    return metrics
