"""Seed 001's staged search: random trials over the paper's ranges, mean +- std bounds from
the best 20% of them, then TPE trials inside those bounds (Optuna studies that resume)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from train_host.reproduce.common import Data, accuracy_of, predict

SPACE = {"learning_rate": (1e-7, 1e-1), "momentum": (0.5, 0.99), "dropout": (0.1, 0.7)}
LOG_SCALE = ("learning_rate",)
BATCH_SIZES = (16, 32, 64, 128)
TOP_FRACTION = 0.2
MIN_WIDTH = 0.05  # share of the coarse range that a fine interval keeps at least


@dataclass(frozen=True)
class SearchSettings:
    """How many trials each stage runs, and where its studies live.

    Attributes:
        coarse_trials: random-search trials (the paper: 30).
        fine_trials: TPE trials inside the bounds (the paper: 20).
        epochs: epochs of every trial.
        storage: Optuna storage URL.
        prefix: study-name prefix naming what the trials depend on (epochs, data, seed).
        seed: seed of the samplers and of every trial's training.
        baseline: parameters of a first coarse trial (quick runs), or None.
    """

    coarse_trials: int
    fine_trials: int
    epochs: int
    storage: str
    prefix: str
    seed: int
    baseline: dict | None = None


def suggester(bounds: dict, batch_sizes) -> Callable:
    """A function drawing a trial's parameters: each float within its bounds, a batch size."""

    def suggest(trial) -> dict:
        params = {
            name: trial.suggest_float(name, low, high, log=name in LOG_SCALE)
            for name, (low, high) in bounds.items()
        }
        return params | {"batch_size": trial.suggest_categorical("batch_size", list(batch_sizes))}

    return suggest


def kde_bounds(values: list[float], params: list[dict]) -> tuple[dict, int, list[int]]:
    """The paper's fine intervals: mean +- std of each parameter over the best 20% of trials
    (log10 for the learning rate), inside the coarse range; their most common batch size.

    Returns:
        (bounds, batch size, indices of the best trials).
    """
    count = max(2, round(TOP_FRACTION * len(values)))
    top = [int(i) for i in np.argsort(-np.asarray(values), kind="stable")[:count]]
    bounds = {name: _interval(name, [params[i][name] for i in top]) for name in SPACE}
    batch = Counter(params[i]["batch_size"] for i in top).most_common(1)[0][0]
    return bounds, int(batch), top


def _interval(name: str, values: list[float]) -> tuple[float, float]:
    low, high = SPACE[name]
    values = np.asarray(values, dtype=np.float64)
    if name in LOG_SCALE:
        values, low, high = np.log10(values), np.log10(low), np.log10(high)
    half = max(float(np.std(values, ddof=1)), MIN_WIDTH * (high - low) / 2)
    lo, hi = max(low, values.mean() - half), min(high, values.mean() + half)
    return (float(10**lo), float(10**hi)) if name in LOG_SCALE else (float(lo), float(hi))


def _objective(arch: str, train: Callable, data: Data, settings: SearchSettings, suggest, keep):
    """Train one trial; the best trial of each study this process ran stays in `keep`
    (study name -> (value, trial number, (model, history, seconds)))."""

    def objective(trial) -> float:
        model, history, seconds = train(arch, suggest(trial), data, settings.epochs, settings.seed)
        value = history["val_accuracy"][-1]
        accuracy = accuracy_of(predict(model, data.x_test), data.y_test)
        trial.set_user_attr("test_accuracy", accuracy)
        trial.set_user_attr("train_seconds", round(seconds, 1))
        name = trial.study.study_name
        if name not in keep or value > keep[name][0]:
            keep[name] = (value, trial.number, (model, history, seconds))
        return value

    return objective


def kept_model(keep: dict, stage: dict):
    """(model, history, seconds) of a stage's best trial if this process trained it, else None."""
    value = keep.get(stage["study"])
    return value[2] if value and value[1] == stage["best_trial"] else None


def _stage(study, objective, n_trials: int, progress, label: str) -> dict:
    """Run the missing trials of one stage; its best trial, scores and timings."""
    import optuna

    from train_host.reproduce.search import optimize_missing

    start = time.perf_counter()
    ran = optimize_missing(study, objective, n_trials, lambda line: progress(f"  {label} {line}"))
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    trials = trials[:n_trials]
    best = max(trials, key=lambda t: t.value)
    result = {
        "study": study.study_name,
        "trials": len(trials),
        "new_trials": ran,
        "seconds": round(time.perf_counter() - start, 1),
        "train_seconds_all_trials": round(sum(t.user_attrs["train_seconds"] for t in trials), 1),
        "best_trial": best.number,
        "best_val": best.value,
        "best_test": best.user_attrs["test_accuracy"],
        "best_params": best.params,
        "values": [t.value for t in trials],
        "params": [t.params for t in trials],
    }
    progress(
        f"{label}: {len(trials)} trials ({ran} new, {result['seconds']:.0f} s), best val "
        f"{100 * best.value:.2f}% test {100 * result['best_test']:.2f}%"
    )
    return result


def staged_search(
    arch: str, train: Callable, data: Data, settings: SearchSettings, progress, keep: dict
) -> dict:
    """Coarse random search, KDE bounds, fine TPE search of one architecture.

    Args:
        arch: the architecture's name.
        train: train(arch, params, data, epochs, seed) -> (model, history, seconds).
        data: the data (trials score on its validation split).
        settings: trial counts, storage, seed.
        progress: called with one line per trial and per stage.
        keep: filled with the best model of each study this process trained (`kept_model`).

    Returns:
        JSON-ready stages, bounds and the stage whose best trial scored higher.
    """
    from optuna.samplers import RandomSampler

    from train_host.reproduce.search import open_study

    name = f"{settings.prefix}.{arch}"
    coarse_study = open_study(
        f"{name}.coarse", settings.storage, settings.seed, None, RandomSampler
    )
    if settings.baseline and not coarse_study.trials:
        coarse_study.enqueue_trial(settings.baseline)
    coarse_objective = _objective(arch, train, data, settings, suggester(SPACE, BATCH_SIZES), keep)
    coarse = _stage(
        coarse_study, coarse_objective, settings.coarse_trials, progress, f"{arch} coarse"
    )
    # The fine stage's bounds come from all the coarse trials: a search resumed with more of
    # them (a reduced run taken to full scale) starts a fresh fine study from new bounds, and
    # an interrupted fine stage resumes with the bounds it began with.
    fine_name = f"{name}.fine.from{settings.coarse_trials}"
    fine_study = open_study(fine_name, settings.storage, settings.seed)
    if "bounds" not in fine_study.user_attrs:
        bounds, batch, top = kde_bounds(coarse["values"], coarse["params"])
        fine_study.set_user_attr("bounds", {"ranges": bounds, "batch_size": batch, "top": top})
    found = fine_study.user_attrs["bounds"]
    suggest = suggester({k: tuple(v) for k, v in found["ranges"].items()}, [found["batch_size"]])
    fine_objective = _objective(arch, train, data, settings, suggest, keep)
    fine = _stage(fine_study, fine_objective, settings.fine_trials, progress, f"{arch} fine")
    return {
        "coarse": coarse,
        "bounds": found["ranges"],
        "batch_size": found["batch_size"],
        "top_trials": found["top"],
        "fine": fine,
        "chosen_stage": "fine" if fine["best_val"] >= coarse["best_val"] else "coarse",
    }
