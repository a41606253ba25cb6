"""Seed 000's grid: the nine Mish CNNs (1-3 convolution blocks x 1-3 dense layers), the three
optimizers and four learning rates, and the paper's figures.

The paper gives ranges, not each layer (its Figure 3 is not in the text we have); our reading:
convolution block i has 32 * 2**i 3x3 filters ("valid", Keras' default), batch normalisation,
Mish, 2x2 max pooling and dropout 0.2 + 0.05 i; the dense layers are 1024 wide but the last,
512 ("512-1024"), each with batch normalisation, Mish and dropout rising by 0.05 to 0.5 at the
last ("0.2-0.5, 0.05 steps"); the learning rates are 1e-2 ("bigger ... like 1e-2") to 1e-5.
"""

from __future__ import annotations

CONV_FILTERS = (32, 64, 128)
KERNEL = 3
POOL = 2
CONV_DROPOUT = 0.2
DROPOUT_STEP = 0.05
LAST_DENSE_DROPOUT = 0.5
DENSE_WIDTH = 1024
LAST_DENSE_WIDTH = 512
DEPTHS = (1, 2, 3)
ARCHITECTURES = tuple(f"{c}conv-{d}dense" for c in DEPTHS for d in DEPTHS)
OPTIMIZERS = {"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop"}  # Keras defaults otherwise
LEARNING_RATES = (1e-2, 1e-3, 1e-4, 1e-5)
GRID = {
    "architecture": list(ARCHITECTURES),
    "optimizer": list(OPTIMIZERS),
    "learning_rate": list(LEARNING_RATES),
}
# --quick: the architecture with the fewest parameters, Adam and SGD at two rates each
QUICK_GRID = {
    "architecture": ["3conv-1dense"],
    "optimizer": ["adam", "sgd"],
    "learning_rate": [1e-2, 1e-3],
}
# The paper's Table 2 (highest test accuracy) and Table 3 (highest test error rate).
PAPER_TOP = (
    ("3conv-2dense", "adam", 1e-3, 0.94681),
    ("3conv-2dense", "adam", 1e-4, 0.94517),
    ("3conv-2dense", "rmsprop", 1e-4, 0.94517),
)
PAPER_WORST_ERROR = (
    ("3conv-1dense", "adam", 1e-4, 0.16706),
    ("3conv-1dense", "rmsprop", 1e-4, 0.17043),
    ("3conv-2dense", "adam", 1e-4, 0.17323),
)
PAPER_BEST = {
    "architecture": "3conv-2dense",
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "test_accuracy": 0.94681,
}


def layout(architecture: str) -> tuple[int, int]:
    """'3conv-2dense' -> (3, 2)."""
    conv, dense = architecture.split("-")
    return int(conv.removesuffix("conv")), int(dense.removesuffix("dense"))


def dense_layers(count: int) -> list[tuple[int, float]]:
    """(width, dropout) of each dense layer: 1024 wide but the last (512); dropout rising by
    0.05 to 0.5 at the last."""
    return [
        (
            LAST_DENSE_WIDTH if j == count - 1 else DENSE_WIDTH,
            round(LAST_DENSE_DROPOUT - DROPOUT_STEP * (count - 1 - j), 2),
        )
        for j in range(count)
    ]


def build_cnn(architecture: str, classes: int = 26, batch_size: int | None = None):
    """One of the nine CNNs on 28x28x1 inputs: convolution blocks (conv, batch norm, Mish,
    max pool, dropout), flatten, dense blocks (dense, batch norm, Mish, dropout), softmax."""
    import keras

    from train_host.reproduce.layers import mish

    convs, denses = layout(architecture)
    inputs = keras.Input((28, 28, 1), batch_size=batch_size)
    x = inputs
    for i in range(convs):
        x = keras.layers.Conv2D(CONV_FILTERS[i], KERNEL)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation(mish)(x)
        x = keras.layers.MaxPooling2D(POOL)(x)
        x = keras.layers.Dropout(round(CONV_DROPOUT + DROPOUT_STEP * i, 2))(x)
    x = keras.layers.Flatten()(x)
    for width, dropout in dense_layers(denses):
        x = keras.layers.Dense(width)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation(mish)(x)
        x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=architecture.replace("-", "_"))


def make_optimizer(name: str, learning_rate: float):
    """Adam, SGD (no momentum) or RMSprop at the learning rate, Keras' defaults otherwise."""
    import keras

    kinds = {
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    return kinds[name](learning_rate=learning_rate)


def grid_key(architecture: str, optimizer: str, learning_rate: float) -> str:
    """A grid point's name: '3conv-2dense adam 0.001'."""
    return f"{architecture} {optimizer} {learning_rate:g}"


def grid_points(space: dict) -> list[tuple[str, str, float]]:
    """Every (architecture, optimizer, learning rate) of a grid."""
    return [
        (a, o, lr)
        for a in space["architecture"]
        for o in space["optimizer"]
        for lr in space["learning_rate"]
    ]
