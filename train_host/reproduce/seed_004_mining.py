"""Seed 004's data mining and baselines: PCA with the paper's 78 components, sample reduction
by deviation from the class mean and by PCA reconstruction error, scikit-learn baselines."""

from __future__ import annotations

import time
import warnings
from dataclasses import replace

import numpy as np

from edge.emnist_derived import class_ranks, split_mask
from train_host.models import PCAProjection

COMPONENTS = 78  # 10% of 784 features
KEEP_BY_MEAN = 0.94  # paper: the 94k of 100k training images closest to their class mean
KEEP_BY_RMSE = 89.3 / 94  # then the 89.3k of those best rebuilt by the PCA
# name -> (scikit-learn estimator, its options at full scale, quick scale), on pixels or PCA
BASELINES = {
    "random_forest_50": ("RandomForestClassifier", {"n_estimators": 50}, {"n_estimators": 5}),
    "random_forest_50_pca": ("RandomForestClassifier", {"n_estimators": 50}, {"n_estimators": 5}),
    "decision_tree": ("DecisionTreeClassifier", {}, {"max_depth": 8}),
    "logistic_regression": ("LogisticRegression", {"max_iter": 100}, {"max_iter": 20}),
}


def flat(x: np.ndarray) -> np.ndarray:
    """Images (N, H, W[, 1]) -> float32 rows (N, H*W)."""
    return np.asarray(x, np.float32).reshape(len(x), -1)


def fit_pca(x: np.ndarray, seed: int, components: int = COMPONENTS) -> PCAProjection:
    """PCA on flattened training inputs, not whitened (scores as scikit-learn's transform)."""
    pca = PCAProjection.fit(x, components, seed)
    return replace(pca, scale=np.ones_like(pca.scale))


def project(pca: PCAProjection, x: np.ndarray) -> np.ndarray:
    """PCA scores of flattened inputs, computed as the exported Dense layer computes them."""
    kernel, bias = pca.dense_weights()
    return x @ kernel + bias


def reconstruction_rmse(pca: PCAProjection, x: np.ndarray) -> np.ndarray:
    """Root-mean-square error between each input and its rebuild from the PCA scores."""
    rebuilt = project(pca, x) @ pca.components + pca.mean
    return np.sqrt(np.mean((rebuilt - x) ** 2, axis=1))


def mean_deviation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean distance of each input from the mean of its class."""
    onehot = np.eye(int(y.max()) + 1, dtype=np.float32)[y]
    means = (onehot.T @ x) / onehot.sum(axis=0)[:, None]
    return np.linalg.norm(x - means[y], axis=1)


def keep_closest(y: np.ndarray, distance: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of the `fraction` of each class with the smallest distance, in order."""
    return np.flatnonzero(split_mask(y, class_ranks(y, distance), fraction))


def reduce_samples(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, PCAProjection]:
    """The paper's reduction: keep the images closest to their class mean, refit the PCA on
    them, then keep those it rebuilds best. Returns (kept indices, the refitted PCA)."""
    near_mean = keep_closest(y, mean_deviation(x, y), KEEP_BY_MEAN)
    pca = fit_pca(x[near_mean], seed)
    rmse = reconstruction_rmse(pca, x[near_mean])
    return near_mean[keep_closest(y[near_mean], rmse, KEEP_BY_RMSE)], pca


def _estimator(name: str, quick: bool, seed: int):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    kind, full, small = BASELINES[name]
    cls = {
        c.__name__: c for c in (RandomForestClassifier, DecisionTreeClassifier, LogisticRegression)
    }
    options = dict(small if quick else full)
    if kind == "RandomForestClassifier":
        options["n_jobs"] = 1  # the machine is shared
    if kind != "LogisticRegression":
        options["random_state"] = seed
    return cls[kind](**options)


def run_baseline(name: str, features: tuple, y: tuple, quick: bool, seed: int) -> dict:
    """Fit one baseline on (train, val, test) features; its accuracies and training time."""
    from sklearn.exceptions import ConvergenceWarning

    model = _estimator(name, quick, seed)
    _, full, small = BASELINES[name]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the budget here
        model.fit(features[0], y[0])
    seconds = time.perf_counter() - start
    return {
        "estimator": type(model).__name__,
        "options": {k: v for k, v in model.get_params().items() if k in {**full, **small}},
        "features": features[0].shape[1],
        "val_accuracy": float(np.mean(model.predict(features[1]) == y[1])),
        "test_accuracy": float(np.mean(model.predict(features[2]) == y[2])),
        "train_seconds": round(seconds, 1),
    }
