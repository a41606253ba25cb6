"""Seed 003 (MNIST LeNet, Demichelis 2025): the paper's LeNet variant with early stopping,
an Optuna TPE search with median pruning over its architecture, and an ensemble of the
optimized network, with the paper's figures beside ours.

Data: the paper splits Kaggle's 42,000-image MNIST train.csv 60/20/20 (25,200 / 8,400 /
8,400). Here a seeded stratified 42,000-image subset of the MNIST training split stands in
for train.csv and is split 60/20/20 (stratified, same seed); its 20% "paper test" slice
gives the paper-comparable figures, and the official MNIST test split is reported too (and
used by the export). Quick runs keep 2,000 images and 1,000 official test images.

Protocol as the paper: Adam (0.001, 0.9, 0.999), batch 32, up to 100 epochs, early stopping
on validation accuracy with patience 5 (best weights kept); the baseline trained 10 times;
200 search trials (TPE, median pruning with Optuna's defaults: the paper names none) scored
by their best validation accuracy; the best configuration trained 10 times (seeds seed,
seed + 1, ...; the first repeats the best trial): their mean is the optimized figure, their
averaged probabilities the ensemble. Pooling uses stride 1 and valid padding, as the paper
states. `--models paper-best` (not part of the default run) trains the paper's best trial
(PAPER_BEST) the same way and ensembles it: the paper's optimized and ensemble figures
without the 200-trial search that found it. `--models curves` (not part of the default run
either) trains the baseline and the search's best configuration on stratified subsets of the
training images, 20 times per size with patience 10 as the paper does (`--repeats` fewer):
its accuracy-vs-training-size curves, figures 2 and 7, and each size's trainings averaged,
the ensemble's curve, figure 9 (see `seed_003_curves`). The search draws figure 4 (each
trial's validation accuracy by epoch) and 5 (its history). Not reproduced: the final 70/30
retraining "for deployment"; the export takes the single model best on validation.

The study resumes (SQLite in the run folder, or --storage; the trial of a killed process is
marked failed once its heartbeat has stopped for five minutes) and can be shared by
processes running `--models search`; it records its protocol and refuses to mix in another one. Each
finished baseline, optimized or paper-best training is kept in `trainings/` (best weights
and record), so a run stopped after some of its trainings (7-9 minutes each for the
baseline on 2 cores, 15-35 for the paper's best trial) goes on from the next one; trainings
are deterministic per seed, so the figures are those of one run. `--workers N` runs the
search's trials and each stage's trainings in N processes (each with its own sampler seed),
for a machine with more cores or a GPU; a rerun with any count goes on where they stopped.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge.atomic import atomic_write_bytes
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
    mean_std,
    predict,
    roc_auc_per_class,
    write_metrics,
)
from train_host.reproduce.seed_003_curves import size_curves
from train_host.reproduce.seed_003_setup import (
    BASELINE,
    PAPER_BEST,
    PAPER_PARAMS,
    lenet,
    load_paper_data,
    suggest,
)

NAME = "seed-003"
STUDY = "seed-003-lenet"
PAPER = {"baseline": 0.965, "optimized": 0.978, "ensemble": 0.985}  # test accuracy
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
PAPER_EPOCHS = 100
PATIENCE = 5
PAPER_TRIALS = 200
PAPER_REPEATS = 10  # baseline trainings, optimized trainings (the ensemble's members)
QUICK_EPOCHS = 1
QUICK_TRIALS = 3
QUICK_REPEATS = 1
QUICK_MEMBERS = 2
DEFAULT_STAGES = ("baseline", "search", "ensemble")
STAGES = (*DEFAULT_STAGES, "paper-best", "curves")
PAPER_FIGURE = {"baseline": "baseline", "optimized": "optimized", "paper-best": "optimized"}
TRAININGS = "trainings"  # finished trainings, kept for a resumed run
WORKER_SEED_STRIDE = 10_000  # worker i's sampler seed: seed + i * stride (+ trials stored)


def train(
    params: dict,
    data: Data,
    options: Options,
    epochs: int,
    seed: int,
    callbacks=(),
    patience: int = PATIENCE,
):
    """The paper's training: Adam, batch 32, early stopping on validation accuracy (patience
    5, 10 for the learning curves; best weights kept); returns (model, history, seconds)."""
    import keras

    keras.utils.set_random_seed(seed)
    model = lenet(params=params)
    stop = keras.callbacks.EarlyStopping(
        "val_accuracy", patience=patience, mode="max", restore_best_weights=True
    )
    adam = keras.optimizers.Adam(LEARNING_RATE, beta_1=0.9, beta_2=0.999)
    batch = options.batch_size or BATCH_SIZE
    history, seconds = fit(model, data, adam, epochs, batch, [stop, *callbacks])
    return model, history, seconds


def _objective(data: Data, options: Options, epochs: int):
    def objective(trial) -> float:
        import keras

        keras.backend.clear_session()  # 200 trials: drop the previous graphs
        prune = search.pruning_callback(trial)
        _, history, _ = train(suggest(trial), data, options, epochs, options.seed, [prune])
        return max(history["val_accuracy"])

    return objective


def _record(seed: int, history: dict, seconds: float, probs: tuple, data: Data, paper) -> dict:
    return {
        "seed": seed,
        "epochs_run": len(history["val_accuracy"]),
        "best_epoch": int(np.argmax(history["val_accuracy"])) + 1,
        "val_accuracy": max(history["val_accuracy"]),
        "paper_test_accuracy": accuracy_of(probs[0], paper[1]),
        "mnist_test_accuracy": accuracy_of(probs[1], data.y_test),
        "train_seconds": round(seconds, 1),
        "history": history,
    }


def _protocol(params: dict, data: Data, options: Options, epochs: int, seed: int) -> dict:
    """What decides a training's result: a kept training is reused only under the same."""
    protocol = {
        "params": params,
        "epochs": epochs,
        "batch_size": options.batch_size or BATCH_SIZE,
        "train_sha256": data.train_sha256,
        "images": [len(data.y_train), len(data.y_val)],
        "data_seed": options.seed,
        "seed": seed,
    }
    return json.loads(json.dumps(protocol))


def _kept_training(folder: Path, protocol: dict, params: dict):
    """(model, history, seconds) of a training an earlier run finished under `protocol`;
    None when there is none (or it is unreadable, or was made otherwise)."""
    try:
        record = json.loads((folder / "training.json").read_text())
        if record["protocol"] != protocol:
            return None
        model = lenet(params=params)
        model.load_weights(folder / "best.weights.h5")
    except (OSError, ValueError, KeyError):
        return None
    return model, record["history"], record["seconds"]


def _keep_training(folder: Path, protocol: dict, model, history: dict, seconds: float) -> None:
    """Write a finished training's weights, then its record (both by atomic rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / ".partial.weights.h5"
    model.save_weights(partial)
    os.replace(partial, folder / "best.weights.h5")
    record = {"protocol": protocol, "history": history, "seconds": seconds}
    atomic_write_bytes(folder / "training.json", json.dumps(record).encode())


def _train_or_keep(name: str, params, data: Data, options: Options, epochs: int, seed: int):
    """Train one model, or take the one an earlier run finished with the same protocol."""
    folder = options.run_dir(NAME) / TRAININGS / f"{name}-seed{seed}"
    protocol = _protocol(params, data, options, epochs, seed)
    kept = _kept_training(folder, protocol, params)
    if kept is not None:
        options.progress(f"{name} seed {seed}: finished by an earlier run, kept in {folder}")
        return kept
    lines = epoch_progress(f"{name} seed {seed}", epochs, options.progress)
    model, history, seconds = train(params, data, options, epochs, seed, [lines])
    _keep_training(folder, protocol, model, history, seconds)
    return model, history, seconds


def training_worker(options: Options, index: int, count: int) -> None:
    """One of `count` worker processes: train its share (every count-th seed) of the stage
    `options.models[0]`'s `options.repeats` trainings, keeping each in `trainings/`."""
    (name,) = options.models
    data, _ = load_paper_data(options.seed, options.quick)
    epochs = options.pick(QUICK_EPOCHS, PAPER_EPOCHS, options.epochs)
    params = {"baseline": BASELINE, "paper-best": PAPER_BEST}.get(name)
    if params is None:  # the optimized configuration: the study's best trial
        params = _open_study(data, options, epochs).best_params
    for seed in range(options.seed + index, options.seed + options.repeats, count):
        _train_or_keep(name, params, data, options, epochs, seed)


def _repeat(name: str, params, data: Data, paper, options: Options, epochs: int, count: int):
    """Train `count` models (seeds seed, seed + 1, ...; finished ones kept from an earlier
    run; in `options.workers` processes): their records and accuracies as mean and std (the
    paper's protocol), their probabilities, and the best on validation."""
    if options.workers > 1 and count > 1:
        shared = replace(options, models=(name,), repeats=count, storage=options.storage_url(NAME))
        workers.spawn(training_worker, shared, min(options.workers, count))
    runs, probs, models = [], [], []
    for seed in range(options.seed, options.seed + count):
        model, history, seconds = _train_or_keep(name, params, data, options, epochs, seed)
        probs.append((predict(model, paper[0]), predict(model, data.x_test)))
        runs.append(_record(seed, history, seconds, probs[-1], data, paper))
        models.append(model)
    summary = {
        "params": int(models[0].count_params()),
        "paper": PAPER[PAPER_FIGURE[name]],
        "paper_test_accuracy": mean_std(r["paper_test_accuracy"] for r in runs),
        "mnist_test_accuracy": mean_std(r["mnist_test_accuracy"] for r in runs),
        "val_accuracy": mean_std(r["val_accuracy"] for r in runs),
        "roc_auc": _auc_mean_std([p for p, _ in probs], paper[1], data.classes),
        "runs": runs,
    }
    _report(options, name, summary)
    best = int(np.argmax([r["val_accuracy"] for r in runs]))
    return {
        "summary": summary,
        "params": params,
        "probs": probs,
        "best": (runs[best], models[best], probs[best]),
    }


def _auc_mean_std(probs: list, labels: np.ndarray, classes) -> dict:
    scores = [roc_auc_per_class(labels, p, classes) for p in probs]
    return {c: mean_std(s[c] for s in scores) for c in scores[0]}


def _report(options: Options, name: str, result: dict) -> None:
    def pct(value) -> str:
        if isinstance(value, dict):
            return f"{100 * value['mean']:.2f} +- {100 * value['std']:.2f}%"
        return f"{100 * value:.2f}%"

    options.progress(
        f"{name}: paper-split test {pct(result['paper_test_accuracy'])} "
        f"(paper {100 * result['paper']:.1f}%), MNIST test {pct(result['mnist_test_accuracy'])}"
    )


def _open_study(data: Data, options: Options, epochs: int, index: int = 0):
    """The search's study, created or resumed under this run's protocol; worker `index`
    draws with its own sampler seed, so workers started together do not draw alike."""
    protocol = {"train_images": len(data.y_train), "trial_epochs": epochs, "seed": options.seed}
    seed = options.seed + index * WORKER_SEED_STRIDE
    storage = search.heartbeat_storage(options.storage_url(NAME))
    study = search.open_study(STUDY, storage, seed, protocol=protocol)
    search.fail_stale(study)  # trials of killed processes
    return study


def search_worker(options: Options, index: int, count: int) -> int:
    """One of `count` worker processes sharing the study: run trials until the study has
    its target of finished ones; returns how many this worker ran."""
    data, _ = load_paper_data(options.seed, options.quick)
    epochs = options.pick(QUICK_EPOCHS, PAPER_EPOCHS, options.epochs)
    target = options.pick(QUICK_TRIALS, PAPER_TRIALS, options.trials)
    study = _open_study(data, options, epochs, index)
    return search.optimize_missing(
        study, _objective(data, options, epochs), target, options.progress
    )


def _search(data: Data, options: Options, epochs: int, out) -> tuple[dict, dict]:
    """Run the trials still missing (in `options.workers` processes); the study's counts,
    best trial and importance."""
    study = _open_study(data, options, epochs)
    target = options.pick(QUICK_TRIALS, PAPER_TRIALS, options.trials)
    before = search.finished(study)
    if options.workers > 1 and before < target:
        shared = replace(options, storage=options.storage_url(NAME))
        workers.spawn(search_worker, shared, options.workers)
    objective = _objective(data, options, epochs)
    search.optimize_missing(study, objective, target, options.progress)
    ran = search.finished(study) - before
    complete = search.finished(study, (search.TrialState.COMPLETE,))
    if not complete:
        raise EdgeError(f"study {STUDY!r} has no completed trial: run more with --trials")
    plots.search_history(search.history_values(study), out / "search_history.png", STUDY)
    plots.intermediate_values(
        search.intermediate_values(study), out / "intermediate_values.png", STUDY
    )
    scores = search.importance(study, options.seed)
    if scores:
        plots.importance(scores, out / "importance.png", f"{STUDY}: fANOVA")
    result = {
        "study": STUDY,
        "target_trials": target,
        "trials_run_now": ran,
        "trials_completed": complete,
        "trials_pruned": search.finished(study, (search.TrialState.PRUNED,)),
        "trial_epochs": epochs,
        "best_trial": study.best_trial.number,
        "best_val_accuracy": study.best_value,
        "best_params": study.best_params,
        "best_params_count": int(lenet(params=study.best_params).count_params()),
        "paper_best_params": PAPER_BEST,
        "importance": scores or "skipped: fANOVA needs at least 2 completed trials",
    }
    return result, study.best_params


def _ensemble(members: dict, data: Data, paper_y: np.ndarray) -> tuple[dict, tuple]:
    """Average the members' probabilities; the ensemble's accuracies and ROC AUC."""
    p_paper = np.mean([p for p, _ in members["probs"]], axis=0)
    p_test = np.mean([t for _, t in members["probs"]], axis=0)
    result = {
        "members": len(members["probs"]),
        "paper_test_accuracy": accuracy_of(p_paper, paper_y),
        "mnist_test_accuracy": accuracy_of(p_test, data.y_test),
        "roc_auc": roc_auc_per_class(paper_y, p_paper, data.classes),
        "paper": PAPER["ensemble"],
    }
    return result, (p_paper, p_test)


def _plots(out, data: Data, paper_y, trained: dict, probs: tuple, source: str) -> None:
    """Learning curves of the best baseline and optimized runs; ROC (paper-split test) and
    confusion matrix (MNIST test) of `probs`."""
    histories = {name: r["best"][0]["history"] for name, r in trained.items()}
    plots.learning_curves(histories, out / "learning_curves.png", "seed 003, LeNet on MNIST")
    plots.roc_curves(paper_y, probs[0], data.classes, out / "roc.png", f"{source}, paper split")
    predicted = probs[1].argmax(1)
    title = f"{source}, MNIST test"
    plots.confusion_matrix(data.y_test, predicted, data.classes, out / "confusion.png", title)


def _export(out, data: Data, trained: dict, options: Options) -> dict:
    """Export the single model best on validation (baseline, optimized or paper-best)."""
    name = max(trained, key=lambda n: trained[n]["best"][0]["val_accuracy"])
    record, model, _ = trained[name]["best"]
    builder = functools.partial(lenet, params=trained[name]["params"])
    options.progress(f"exporting {name} (seed {record['seed']}) ...")
    exported = export_model(
        builder, model, data, out / "models", f"seed003-{name}", record, options.progress
    )
    return {"model": name, "seed": record["seed"], "variants": export_summary(exported)}


def _curves(data: Data, paper, options: Options, epochs: int, out) -> dict:
    """Learning curves against training-set size of the baseline and, once the search has a
    completed trial, its best configuration (see `seed_003_curves`); plotted."""
    configs = {"baseline": BASELINE}
    study = _open_study(data, options, epochs)
    if search.finished(study, (search.TrialState.COMPLETE,)):
        configs["optimized"] = study.best_params
    else:
        options.progress("curves: the search has no completed trial, so the baseline's only")
    result = size_curves(configs, data, paper, options, epochs, train, out)
    plots.size_curves(result, out / "size_curves.png", "seed 003, LeNet on MNIST")
    return result


def _stages(options: Options) -> tuple[str, ...]:
    stages = DEFAULT_STAGES if options.models is None else options.models
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise EdgeError(f"no such model in {NAME}: {', '.join(unknown)}; use {', '.join(STAGES)}")
    return stages


@contextlib.contextmanager
def _timed(seconds: dict, stage: str):
    start = time.perf_counter()
    yield
    seconds[stage] = round(time.perf_counter() - start, 1)


def _header(options: Options, data: Data, paper, epochs: int) -> dict:
    return {
        "experiment": NAME,
        "quick": options.quick,
        "seed": options.seed,
        "images": {"train": len(data.y_train), "val": len(data.y_val), "paper_test": len(paper[1])},
        "mnist_test_images": len(data.y_test),
        "epochs": epochs,
        "paper": PAPER,
        "paper_params": PAPER_PARAMS,
    }


def _ensemble_stage(
    stage: str, name: str, params, data: Data, paper, options: Options, epochs, seconds
):
    """Train `params` as the ensemble's members, called `name` (timed in `seconds` under
    `stage`); returns the members, the ensemble's result, its probabilities and the plots'
    name for it."""
    members = options.pick(QUICK_MEMBERS, PAPER_REPEATS, options.repeats)
    with _timed(seconds, stage):
        trained = _repeat(name, params, data, paper, options, epochs, members)
    result, probs = _ensemble(trained, data, paper[1])
    source = f"ensemble of {members}" + (", paper's best trial" if name == "paper-best" else "")
    _report(options, source, result)
    return trained, result, probs, source


def run(options: Options) -> dict:
    """Baseline, search, optimized trainings and their ensemble (`--models` picks stages;
    the ensemble runs the missing trials first); plots, metrics, export of the best model."""
    stages, out, seconds = _stages(options), options.run_dir(NAME), {}
    with _timed(seconds, "data"):
        data, paper = load_paper_data(options.seed, options.quick)
    epochs = options.pick(QUICK_EPOCHS, PAPER_EPOCHS, options.epochs)
    metrics = _header(options, data, paper, epochs) | {"seconds": seconds}
    trained, params = {}, None
    if "baseline" in stages:
        repeats = options.pick(QUICK_REPEATS, PAPER_REPEATS, options.repeats)
        with _timed(seconds, "baseline"):
            trained["baseline"] = _repeat(
                "baseline", BASELINE, data, paper, options, epochs, repeats
            )
        probs, source = trained["baseline"]["best"][2], "best baseline"
    if "search" in stages or "ensemble" in stages:
        with _timed(seconds, "search"):
            metrics["search"], params = _search(data, options, epochs, out)
    if "ensemble" in stages:
        trained["optimized"], metrics["ensemble"], probs, source = _ensemble_stage(
            "ensemble", "optimized", params, data, paper, options, epochs, seconds
        )
    if "paper-best" in stages:
        trained["paper-best"], metrics["paper_best_ensemble"], probs, source = _ensemble_stage(
            "paper-best", "paper-best", PAPER_BEST, data, paper, options, epochs, seconds
        )
    if "curves" in stages:
        with _timed(seconds, "curves"):
            metrics["size_curves"] = _curves(data, paper, options, epochs, out)
    metrics |= {name: r["summary"] for name, r in trained.items()}
    if trained:
        _plots(out, data, paper[1], trained, probs, source)
    if options.export and trained:
        with _timed(seconds, "export"):
            metrics["export"] = _export(out, data, trained, options)
    seconds["total"] = round(sum(seconds.values()), 1)
    write_metrics(out, metrics)
    return metrics
