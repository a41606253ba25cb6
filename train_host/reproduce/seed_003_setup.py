"""Seed 003's setup: the paper's LeNet variant, the search space over its architecture that
the paper hands to Optuna, and its 60/20/20 data split mapped onto MNIST."""

from __future__ import annotations

import numpy as np

from train_host.reproduce.common import Data, data_from_splits

# 156 + 2,416 (conv) + 2,040 + 10,164 + 850 (dense): global average pooling makes the count
# independent of the padding and of the pooling strides.
PAPER_PARAMS = 15626
POOL_STRIDE = 1  # "for the pooling layers a stride of (1,1) ... with a valid padding"
PAPER_IMAGES = 42000  # Kaggle's train.csv
TEST_FRACTION = VAL_FRACTION = 0.2
QUICK_IMAGES = 2000
QUICK_TEST_IMAGES = 1000

BASELINE = {
    "conv1_kernel": 5,
    "conv2_kernel": 5,
    "conv1_filters": 6,
    "conv2_filters": 16,
    "conv_activation": "tanh",
    "conv_l2": 0.0,
    "pool1": 2,
    "pool2": 2,
    "dense1": 120,
    "dense2": 84,
    "dense_activation": "tanh",
    "dense_l2": 0.0,
}
ACTIVATIONS = ("sigmoid", "relu", "gelu", "elu", "tanh")
CHOICES = {  # the paper's search space
    "conv1_kernel": (3, 5, 7),
    "conv2_kernel": (3, 5, 7),
    "conv1_filters": (3, 5, 7, 9, 11, 13),
    "conv2_filters": (3, 5, 7, 9, 11, 13),
    "conv_activation": ACTIVATIONS,
    "pool1": (2, 4),
    "pool2": (2, 4),
    "dense1": (32, 64, 128, 256),
    "dense2": (32, 64, 128, 256),
    "dense_activation": ACTIVATIONS,
}
L2_RANGE = (1e-6, 1e-2)  # conv_l2 and dense_l2, log scale
PAPER_BEST = BASELINE | {  # the paper's best trial
    "conv1_kernel": 7,
    "conv2_kernel": 7,
    "conv1_filters": 13,
    "conv2_filters": 11,
    "conv_activation": "gelu",
    "conv_l2": 0.000413,
    "pool2": 4,
    "dense1": 64,
    "dense2": 256,
    "dense_activation": "gelu",
    "dense_l2": 0.00143,
}


def lenet(batch_size=None, params=None):
    """Conv, average pool, conv, average pool, global average pool, dense, dense, softmax;
    `params` override BASELINE (6@5x5, 16@5x5, 120, 84, tanh: 15,626 parameters)."""
    import keras

    p = BASELINE | (params or {})
    layers = keras.layers

    def l2(weight):
        return keras.regularizers.L2(weight) if weight else None

    inputs = keras.Input((28, 28, 1), batch_size=batch_size)
    x = inputs
    for i in (1, 2):
        x = layers.Conv2D(
            p[f"conv{i}_filters"],
            p[f"conv{i}_kernel"],
            padding="same",
            activation=p["conv_activation"],
            kernel_regularizer=l2(p["conv_l2"]),
        )(x)
        x = layers.AveragePooling2D(p[f"pool{i}"], strides=POOL_STRIDE, padding="valid")(x)
    x = layers.GlobalAveragePooling2D()(x)
    for i in (1, 2):
        x = layers.Dense(
            p[f"dense{i}"], activation=p["dense_activation"], kernel_regularizer=l2(p["dense_l2"])
        )(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x), name="lenet")


def suggest(trial) -> dict:
    """Draw a trial's architecture from the paper's search space."""
    params = {name: trial.suggest_categorical(name, list(c)) for name, c in CHOICES.items()}
    for name in ("conv_l2", "dense_l2"):
        params[name] = trial.suggest_float(name, *L2_RANGE, log=True)
    return params


def load_paper_data(seed: int, quick: bool) -> tuple[Data, tuple[np.ndarray, np.ndarray]]:
    """The paper's 60/20/20 split of a 42,000-image stand-in for Kaggle's train.csv, with the
    official MNIST test split as Data's test; returns (data, (paper test x, paper test y))."""
    from edge.preprocess import PreprocessSpec, to_model_input
    from train_host.data import load_dataset, train_val_split

    full = load_dataset("mnist", "train")
    images = QUICK_IMAGES if quick else PAPER_IMAGES
    kaggle, _ = train_val_split(full, 1 - images / len(full), seed)
    rest, paper_test = train_val_split(kaggle, TEST_FRACTION, seed)
    train, val = train_val_split(rest, VAL_FRACTION / (1 - TEST_FRACTION), seed)
    test = load_dataset("mnist", "test")
    if quick:
        keep = slice(QUICK_TEST_IMAGES)
        test = type(test)(test.name, test.split, test.images[keep], test.labels[keep], test.classes)
    spec = PreprocessSpec()
    data = data_from_splits("mnist", spec, full, train, val, test)
    return data, (to_model_input(paper_test.images, spec), paper_test.labels)
