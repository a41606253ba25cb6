"""Seed 001's analyses: the weighted-vote ensemble, gradient magnitudes under the paper's
three initialisations (its Table 2), and hyperparameter-accuracy correlations."""

from __future__ import annotations

import numpy as np

from train_host.reproduce.common import Data, accuracy_of

ENSEMBLE_TRIALS = 100
ENSEMBLE_LIMITS = {"mlp": 0.2, "lcnn": 0.8}  # weights from U(0, limit); the CNN gets the rest
GRADIENT_BATCH = 128
PAPER_GRADIENTS = {  # Table 2: average gradient magnitude per initialisation
    "mlp": {"slow": 2.02e-4, "effective": 0.1456, "fast": 0.0},
    "lcnn": {"slow": 0.0314, "effective": 0.1175, "fast": 1.0799},
    "cnn": {"slow": 0.0309, "effective": 0.7607, "fast": 1.0008},
}


def _uniform(low: float, high: float) -> dict:
    return {"class_name": "RandomUniform", "config": {"minval": low, "maxval": high}}


def initialisations(arch: str) -> dict:
    """The paper's weight initialisations: tiny (slow), Glorot (effective), huge (fast)."""
    fast = (10.0, 20.0) if arch == "mlp" else (1e4, 2e4)
    return {"slow": _uniform(-1e-3, 1e-3), "effective": "glorot_uniform", "fast": _uniform(*fast)}


def vote(probs: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted sum of the models' class probabilities."""
    return sum(weights[name] * probs[name] for name in weights)


def weighted_vote(probs: dict[str, dict], y_val, y_test, seed: int) -> dict:
    """The paper's ensemble: 100 random weightings, the best on validation scored on test.

    Args:
        probs: model name -> {"val": probabilities, "test": probabilities}.
    """
    rng = np.random.default_rng(seed)
    val = {name: p["val"] for name, p in probs.items()}
    best_acc, best = -1.0, {}
    for _ in range(ENSEMBLE_TRIALS):
        weights = {name: float(rng.uniform(0, limit)) for name, limit in ENSEMBLE_LIMITS.items()}
        weights["cnn"] = 1.0 - sum(weights.values())
        acc = accuracy_of(vote(val, weights), y_val)
        if acc > best_acc:
            best_acc, best = acc, weights
    test = vote({name: p["test"] for name, p in probs.items()}, best)
    return {
        "trials": ENSEMBLE_TRIALS,
        "weights": best,
        "val_accuracy": best_acc,
        "test_accuracy": accuracy_of(test, y_test),
    }


def mean_abs_gradients(model, x: np.ndarray, y: np.ndarray) -> dict:
    """Mean |d loss / d weight| of each layer with weights and over all weights, and the L2
    norm of the whole gradient, on one batch (cross-entropy, dropout active as in training)."""
    import keras
    import tensorflow as tf

    layers = [layer for layer in model.layers if layer.trainable_weights]
    with tf.GradientTape() as tape:
        probs = model(x, training=True)
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, probs))
    grads = tape.gradient(loss, [layer.trainable_weights for layer in layers])
    flat = [np.abs(np.concatenate([np.ravel(g) for g in layer_grads])) for layer_grads in grads]
    every = np.concatenate(flat)
    return {
        "mean_abs": _finite(every.mean()),
        "l2_norm": _finite(np.sqrt(np.sum(np.square(every, dtype=np.float64)))),
        "layers": {
            f"{i + 1} {layer.__class__.__name__}": _finite(g.mean())
            for i, (layer, g) in enumerate(zip(layers, flat, strict=True))
        },
    }


def _finite(value) -> float | None:
    """A JSON-safe float: None for NaN or infinity (an exploded gradient)."""
    value = float(value)
    return value if np.isfinite(value) else None


def gradient_table(architectures: dict, data: Data, seed: int) -> dict:
    """Table 2: gradient magnitudes of every architecture, freshly initialised three ways, on
    one seeded batch of training images."""
    import keras

    pick = np.random.default_rng(seed).choice(len(data.y_train), GRADIENT_BATCH, replace=False)
    x, y = data.x_train[pick], data.y_train[pick]
    table = {}
    for arch, build in architectures.items():
        table[arch] = {}
        for name, init in initialisations(arch).items():
            keras.utils.set_random_seed(seed)
            result = mean_abs_gradients(build(init=init), x, y)
            table[arch][name] = result | {"paper_mean_abs": PAPER_GRADIENTS[arch][name]}
    return table


def correlations(values: list[float], params: list[dict]) -> dict[str, float | None]:
    """Pearson correlation of each hyperparameter (log10 of the learning rate) with the
    validation accuracy over a stage's trials (None when either is constant)."""
    acc = np.asarray(values, dtype=np.float64)
    result = {}
    for name in params[0]:
        column = np.array([p[name] for p in params], dtype=np.float64)
        if name == "learning_rate":
            column, name = np.log10(column), "log10_learning_rate"
        varies = len(acc) > 2 and np.ptp(column) > 0 and np.ptp(acc) > 0
        result[name] = float(np.corrcoef(column, acc)[0, 1]) if varies else None
    return result
