"""Seed 003's learning curves against the size of the training set (the paper's figures 2
and 7): a configuration trained on stratified subsets of the 25,200 training images, several
times per size, with early stopping of patience 10 as the paper does for these curves; the
mean and standard deviation of its accuracy on the subset it trained on and on the paper's
test slice. The paper does not state its sizes; CURVE_FRACTIONS spans a twentieth to all of
the training images. Each finished training is kept in `curves.json` (its accuracies), so a
stopped run goes on from the next one; a point trained under another protocol or
configuration is not reused.

The ensemble's curve (figure 9): each training's probabilities on the paper's test slice are
kept too (`curve-predictions/`, float16), and at each size the trainings of a configuration
(one per seed, each on its own stratified subset of that size) are averaged into an
ensemble, as seed 003 averages its ten optimized networks. Points kept before predictions
were (the nineteenth session's) count in the curves but not in the ensembles.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge.atomic import atomic_write_bytes
from train_host.reproduce.common import (
    Data,
    Options,
    accuracy_of,
    epoch_progress,
    mean_std,
    predict,
)

CURVE_FRACTIONS = (0.05, 0.1, 0.2, 0.4, 0.7, 1.0)
QUICK_FRACTIONS = (0.5, 1.0)
CURVE_PATIENCE = 10  # the paper's patience for its learning curves
PAPER_CURVE_REPEATS = 20  # trainings per size in the paper
QUICK_CURVE_REPEATS = 1
CURVES_FILE = "curves.json"
PREDICTIONS_DIR = "curve-predictions"
MIN_ENSEMBLE = 2  # members an ensemble point needs


def training_subset(data: Data, fraction: float, seed: int) -> Data:
    """`data` with a stratified `fraction` of its training images (drawn with `seed`), the
    validation and test parts unchanged."""
    if fraction >= 1.0:
        return data
    rng = np.random.default_rng(seed)
    keep = np.sort(
        np.concatenate(
            [
                rng.choice(index, max(1, round(fraction * len(index))), replace=False)
                for index in (np.flatnonzero(data.y_train == c) for c in np.unique(data.y_train))
            ]
        )
    )
    return replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep])


def _load_points(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _key(name: str, params: dict, fraction: float, seed: int, protocol: dict) -> str:
    """What decides a point's result: a kept point is reused only under the same."""
    return json.dumps([name, params, fraction, seed, protocol], sort_keys=True)


def size_curves(
    configs: dict[str, dict], data: Data, paper, options: Options, epochs: int, train, out: Path
) -> dict:
    """Train each named configuration `repeats` times on each size (`train(params, data,
    options, epochs, seed, callbacks, patience)` as seed 003 trains); returns, per name, one
    row per size: images, runs, training and paper-test accuracy as mean and std."""
    fractions = QUICK_FRACTIONS if options.quick else CURVE_FRACTIONS
    repeats = options.pick(QUICK_CURVE_REPEATS, PAPER_CURVE_REPEATS, options.repeats)
    protocol = {
        "epochs": epochs,
        "batch_size": options.batch_size,
        "patience": CURVE_PATIENCE,
        "train_sha256": data.train_sha256,
        "data_seed": options.seed,
    }
    path = out / CURVES_FILE
    points = _load_points(path)
    seeds = range(options.seed, options.seed + repeats)
    for seed in seeds:  # seed by seed: a run stopped early has whole curves of the first seeds
        for name, params in configs.items():
            for fraction in fractions:
                key = _key(name, params, fraction, seed, protocol)
                if key not in points:
                    points[key], probs = _train_point(
                        name, params, data, paper, options, epochs, train, fraction, seed
                    )
                    _keep_predictions(out, key, probs)
                    atomic_write_bytes(path, json.dumps(points).encode())
    rows = {}
    for name, params in configs.items():
        rows[name] = []
        for f in fractions:
            keys = [_key(name, params, f, seed, protocol) for seed in seeds]
            rows[name].append(_row([points[k] for k in keys], _kept_predictions(out, keys), paper))
    return rows


def _train_point(name, params, data, paper, options, epochs, train, fraction, seed):
    """Train one configuration on one subset; its accuracies and time, and its probabilities
    on the paper's test slice."""
    subset = training_subset(data, fraction, seed)
    label = f"{name} on {len(subset.y_train)} images, seed {seed}"
    lines = epoch_progress(label, epochs, options.progress)
    model, _, seconds = train(params, subset, options, epochs, seed, [lines], CURVE_PATIENCE)
    probs = predict(model, paper[0])
    point = {
        "images": len(subset.y_train),
        "train_accuracy": accuracy_of(predict(model, subset.x_train), subset.y_train),
        "paper_test_accuracy": accuracy_of(probs, paper[1]),
        "seconds": round(seconds, 1),
    }
    return point, probs


def _predictions_path(out: Path, key: str) -> Path:
    return out / PREDICTIONS_DIR / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.npy"


def _keep_predictions(out: Path, key: str, probs: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, probs.astype(np.float16))
    path = _predictions_path(out, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


def _kept_predictions(out: Path, keys: list[str]) -> list[np.ndarray]:
    """The kept probabilities of those points that have them (unreadable ones left out)."""
    kept = []
    for key in keys:
        try:
            kept.append(np.load(_predictions_path(out, key)).astype(np.float32))
        except (OSError, ValueError):
            continue
    return kept


def _row(runs: list[dict], members: list[np.ndarray], paper) -> dict:
    row = {
        "images": runs[0]["images"],
        "runs": len(runs),
        "train_accuracy": mean_std(r["train_accuracy"] for r in runs),
        "paper_test_accuracy": mean_std(r["paper_test_accuracy"] for r in runs),
        "seconds": round(sum(r["seconds"] for r in runs), 1),
    }
    if len(members) >= MIN_ENSEMBLE:
        row["ensemble"] = {
            "members": len(members),
            "paper_test_accuracy": accuracy_of(np.mean(members, axis=0), paper[1]),
        }
    return row
