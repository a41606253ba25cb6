"""Model builders: the PCA-MLP (PCA folded into the graph) and a small int8-friendly CNN."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

MODEL_NAMES = ("cnn", "pca-mlp")
# Batch-norm statistics settle within a few dozen steps, so small sets (the bundled digits:
# 11 steps an epoch) get usable inference statistics too.
BN_MOMENTUM = 0.9


@dataclass(frozen=True)
class PCAProjection:
    """A fitted PCA as plain arrays: whitened scores are (x - mean) @ components.T / scale."""

    mean: np.ndarray
    components: np.ndarray
    scale: np.ndarray
    explained_variance_ratio: float

    @classmethod
    def fit(cls, x_flat: np.ndarray, n_components: int, seed: int = 0) -> PCAProjection:
        """Fit scikit-learn's PCA on flattened training images (float, N x 784)."""
        from sklearn.decomposition import PCA

        pca = PCA(n_components=n_components, svd_solver="randomized", random_state=seed)
        pca.fit(x_flat)
        return cls(
            pca.mean_.astype(np.float32),
            pca.components_.astype(np.float32),
            np.sqrt(pca.explained_variance_).astype(np.float32),
            float(pca.explained_variance_ratio_.sum()),
        )

    def dense_weights(self) -> list[np.ndarray]:
        """Kernel and bias of one Dense layer computing the whitened projection.

        (x - mean) @ C.T / s  ==  x @ (C.T / s) + (-mean @ C.T / s)
        """
        kernel = (self.components.T / self.scale).astype(np.float32)
        return [kernel, (-self.mean @ kernel).astype(np.float32)]


def build_cnn(
    num_classes: int, input_shape=(28, 28, 1), batch_size: int | None = None, width: int = 16
) -> keras.Model:
    """A small CNN for int8: conv-BN-ReLU blocks (BN folds into the conv), max pooling, softmax.

    About 49k parameters and 3.3M multiply-adds at width 16 (about 60 KB as full int8).
    """
    inputs = keras.Input(input_shape, batch_size=batch_size, name="image")
    x = inputs
    for filters, pool in ((width, True), (2 * width, False), (2 * width, True)):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
        x = keras.layers.ReLU()(x)
        if pool:
            x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(4 * width, 3, padding="valid", use_bias=False)(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.3)(x)
    x = keras.layers.Dense(num_classes)(x)
    outputs = keras.layers.Softmax(name="probabilities")(x)
    return keras.Model(inputs, outputs, name="cnn")


def build_pca_mlp(
    num_classes: int,
    n_components: int,
    hidden=(256, 128),
    input_shape=(28, 28, 1),
    batch_size: int | None = None,
    pca: PCAProjection | None = None,
) -> keras.Model:
    """PCA-MLP: a frozen Dense layer holds the fitted PCA (mean subtraction, projection,
    whitening), so the exported .tflite is self-contained; then a ReLU MLP and softmax.

    Args:
        pca: the fitted projection; None builds the graph with placeholder weights (for loading).
    """
    inputs = keras.Input(input_shape, batch_size=batch_size, name="image")
    x = keras.layers.Flatten()(inputs)
    projection = keras.layers.Dense(n_components, name="pca_projection", trainable=False)
    x = projection(x)
    for units in hidden:
        x = keras.layers.Dense(units, activation="relu")(x)
        x = keras.layers.Dropout(0.2)(x)
    x = keras.layers.Dense(num_classes)(x)
    outputs = keras.layers.Softmax(name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="pca_mlp")
    if pca is not None:
        projection.set_weights(pca.dense_weights())
    return model


def build_model(
    name: str, num_classes: int, batch_size: int | None = None, **options
) -> keras.Model:
    """Build a model by name ("cnn" or "pca-mlp") with its options."""
    if name == "cnn":
        return build_cnn(num_classes, batch_size=batch_size, **options)
    if name == "pca-mlp":
        return build_pca_mlp(num_classes, batch_size=batch_size, **options)
    raise ValueError(f"unknown model {name!r}: use one of {', '.join(MODEL_NAMES)}")
