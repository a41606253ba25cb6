"""Keras layers that Keras 3 dropped, and Mish, written with ops that convert to builtin TFLite
ops (float and int8)."""

from __future__ import annotations

import math

import keras
import numpy as np


def patch_kernel(kernel_size: tuple[int, int], channels: int) -> np.ndarray:
    """A one-hot convolution kernel that copies every pixel of a patch into its own channel:
    output channel (i * kw + j) * channels + c reads input (i, j, c)."""
    kh, kw = kernel_size
    size = kh * kw * channels
    return np.eye(size, dtype=np.float32).reshape(kh, kw, channels, size)


@keras.saving.register_keras_serializable(package="hwr")
class LocallyConnected2D(keras.layers.Layer):
    """A 2-D convolution whose weights are not shared: every output position has its own
    kernel and bias ("valid" padding, as the Keras 2 layer).

    Patches come from a fixed one-hot Conv2D (TFLite CONV_2D); each position's kernel is
    applied by a broadcast multiply and a sum over the patch (MUL, SUM), so the layer
    converts to float and int8 TFLite with builtin ops only.
    Parameters: out_h * out_w * filters * (kh * kw * in_channels + 1).
    """

    def __init__(
        self, filters, kernel_size, strides=1, activation=None, kernel_initializer=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size)
        self.strides = _pair(strides)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = (
            None if kernel_initializer is None else keras.initializers.get(kernel_initializer)
        )

    def build(self, input_shape):
        channels = input_shape[-1]
        out_h, out_w = self._output_grid(input_shape)
        patch = self.kernel_size[0] * self.kernel_size[1] * channels
        self._grid = (out_h, out_w)
        self._patches = patch_kernel(self.kernel_size, channels)
        self.kernel = self.add_weight(
            shape=(out_h * out_w, patch, self.filters),
            initializer=self.kernel_initializer or self._glorot(patch),
            name="kernel",
        )
        self.bias = self.add_weight(
            shape=(out_h * out_w, self.filters), initializer="zeros", name="bias"
        )

    def _glorot(self, patch: int):
        """Glorot uniform with a convolution's fans (one position's kernel): Keras' own would
        count every position in the fans of the (positions, patch, filters) tensor."""
        fan_out = self.kernel_size[0] * self.kernel_size[1] * self.filters
        limit = math.sqrt(6.0 / (patch + fan_out))
        return keras.initializers.RandomUniform(-limit, limit)

    def call(self, inputs):
        ops = keras.ops
        patches = ops.conv(inputs, self._patches, strides=self.strides, padding="valid")
        positions = self._grid[0] * self._grid[1]
        patches = ops.reshape(patches, (-1, positions, self._patches.shape[-1], 1))
        out = ops.sum(patches * self.kernel, axis=2) + self.bias
        return self.activation(ops.reshape(out, (-1, *self._grid, self.filters)))

    def _output_grid(self, input_shape) -> tuple[int, int]:
        height, width = input_shape[1:3]
        grid = tuple(
            (n - k) // s + 1
            for n, k, s in zip((height, width), self.kernel_size, self.strides, strict=True)
        )
        if min(grid) < 1:
            raise ValueError(
                f"input {height}x{width} is smaller than the kernel {self.kernel_size}"
            )
        return grid

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._output_grid(input_shape), self.filters)

    def get_config(self):
        return super().get_config() | {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "activation": keras.activations.serialize(self.activation),
            "kernel_initializer": (
                None
                if self.kernel_initializer is None
                else keras.initializers.serialize(self.kernel_initializer)
            ),
        }


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


@keras.saving.register_keras_serializable(package="hwr")
def mish(x):
    """Mish, x * tanh(softplus(x)), in a form that quantizes: with u = 1 - sigmoid(x),
    tanh(softplus(x)) = (1 - u^2) / (1 + u^2), and the division is rsqrt(1 + u^2) squared.

    The same function as keras.activations.mish (within 1e-6 in float32), but int8 TFLite
    needs only LOGISTIC, SUB, MUL, ADD and RSQRT (within about 2 output steps): softplus
    converts to EXP and LOG of x itself, whose int8 tensors lose up to 1.6 at |x| = 8, and
    tflite-runtime 2.14 has neither int8 LOG nor int8 DIV.
    """
    ops = keras.ops
    u = 1.0 - ops.sigmoid(x)
    square = u * u
    root = ops.rsqrt(1.0 + square)
    return x * ((1.0 - square) * (root * root))
