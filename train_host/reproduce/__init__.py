"""`train-host reproduce`: the seed papers' experiments, each in its own module with a
`run(options) -> metrics` function, writing `runs/<experiment>/`."""

from __future__ import annotations

import importlib

# experiment name -> (module, one-line description)
EXPERIMENTS = {
    "seed-000": (
        "seed_000",
        "EMNIST letters: 9 Mish CNNs x 3 optimizers x 4 learning rates, one shared Optuna grid",
    ),
    "seed-001": (
        "seed_001",
        "USPS 16x16: MLP, CNN, LCNN; random search, KDE bounds, Optuna; weighted ensemble",
    ),
    "seed-002": (
        "seed_002",
        "MNIST: simple NN, enhanced NN, simple CNN, enhanced CNN (SGD/RMSprop/Adam)",
    ),
    "seed-003": (
        "seed_003",
        "MNIST LeNet: early stopping, Optuna TPE search with pruning, 10-model ensemble "
        "(--models paper-best: the paper's best trial without the search)",
    ),
    "seed-004": ("seed_004", "Balanced EMNIST: numpy MLP, PCA 78, sample reduction, baselines"),
}


def run_experiment(name: str, options) -> dict:
    """Run one experiment by name; returns its metrics (also written to metrics.json)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}: use one of {', '.join(EXPERIMENTS)}")
    module = importlib.import_module(f"train_host.reproduce.{EXPERIMENTS[name][0]}")
    return module.run(options)
