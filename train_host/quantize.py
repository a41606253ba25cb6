"""TFLite conversion of a Keras model: float32, float16, dynamic-range and full int8."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np

VARIANTS = ("float32", "float16", "dynamic", "int8")


@contextlib.contextmanager
def quiet_output() -> Iterator[None]:
    """Silence file descriptors 1 and 2 (the converter's logging and SavedModel chatter)."""
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def convert(model, variant: str, representative: np.ndarray | None = None) -> bytes:
    """Convert a batch-size-1 Keras model to a .tflite flatbuffer.

    Dense layers keep per-tensor weight quantization, so dynamic-range models use
    FULLY_CONNECTED versions that tflite-runtime 2.14 can still run.

    Args:
        model: Keras model built with `keras.Input(shape, batch_size=1)`.
        variant: "float32", "float16", "dynamic" or "int8" (int8 input and output).
        representative: float model inputs (N, H, W, 1) from the training split, for int8.

    Returns:
        The .tflite bytes.
    """
    import tensorflow as tf

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: use one of {', '.join(VARIANTS)}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant == "int8":
        if representative is None or len(representative) == 0:
            raise ValueError("int8 conversion needs representative inputs from the training split")
        samples = np.asarray(representative, dtype=np.float32)

        def dataset():
            for sample in samples:
                yield [sample[None]]

        converter.representative_dataset = dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with quiet_output():
        return converter.convert()
