"""TFLite conversion of a Keras model: float32, float16, dynamic-range and full int8."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np

VARIANTS = ("float32", "float16", "dynamic", "int8")
# int8 ops whose output scale is free (they requantize), so it may be narrowed
REQUANTIZING_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
# inverses of the activations that saturate: inputs beyond f^-1(extreme output code) all give
# the extreme code
SATURATING_INVERSES = {"TANH": np.arctanh, "LOGISTIC": lambda y: np.log(y / (1 - y))}
SATURATION_MARGIN = 0.25  # kept beyond the saturation point, in input units


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


def convert(
    model, variant: str, representative: np.ndarray | None = None, narrow: bool = True
) -> bytes:
    """Convert a batch-size-1 Keras model to a .tflite flatbuffer.

    Dense layers keep per-tensor weight quantization, so dynamic-range models use
    FULLY_CONNECTED versions that tflite-runtime 2.14 can still run.

    Args:
        model: Keras model built with `keras.Input(shape, batch_size=1)`.
        variant: "float32", "float16", "dynamic" or "int8" (int8 input and output).
        representative: float model inputs (N, H, W, 1) from the training split, for int8.
        narrow: for int8, narrow the inputs of tanh and logistic to what they can tell apart
            (`narrow_saturated_inputs`); False gives the converter's model as it is.

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
        model = converter.convert()
    return narrow_saturated_inputs(model)[0] if variant == "int8" and narrow else model


def _saturation_range(activation: str, scale: float, zero_point: int) -> tuple[float, float]:
    """The input range outside which an int8 tanh or logistic gives its extreme output codes
    (given the output's quantization), widened by SATURATION_MARGIN."""
    lowest = (-128 + 0.5 - zero_point) * scale
    highest = (127 - 0.5 - zero_point) * scale
    domain = (-1.0, 1.0) if activation == "TANH" else (0.0, 1.0)
    inside = [float(np.clip(y, domain[0] + 1e-9, domain[1] - 1e-9)) for y in (lowest, highest)]
    low, high = (float(SATURATING_INVERSES[activation](y)) for y in inside)
    return low - SATURATION_MARGIN, high + SATURATION_MARGIN


def _narrowed(quantization, low: float, high: float) -> bool:
    """Narrow a per-tensor int8 quantization to [low, high] (0 kept inside) when that is
    finer than it is; True when it changed."""
    if quantization is None or quantization.scale is None or len(quantization.scale) != 1:
        return False
    scale, zero_point = float(quantization.scale[0]), int(quantization.zeroPoint[0])
    low = min(max(low, (-128 - zero_point) * scale), 0.0)
    high = max(min(high, (127 - zero_point) * scale), 0.0)
    if high - low >= 0.99 * 255 * scale:
        return False
    new_scale = (high - low) / 255
    quantization.scale = [new_scale]
    quantization.zeroPoint = [int(np.clip(round(-128 - low / new_scale), -128, 127))]
    return True


def narrow_saturated_inputs(model: bytes) -> tuple[bytes, int]:
    """Give the input of every int8 tanh and logistic only the range those can tell apart.

    Calibration sets a tensor's int8 range from the values it saw. A convolution or dense
    layer feeding a tanh can see +-27 where the int8 tanh saturates beyond +-2.6: its step
    (range / 255) is then ten times coarser than the tanh can use, a rounding error of up to
    0.1 at every position (seed 003's LeNet lost 12.8 points to it). Narrowing that tensor's
    range to the saturation points (plus SATURATION_MARGIN) changes no output code of the
    values beyond them and makes the step fine. Only tensors made by an op that requantizes
    (REQUANTIZING_OPS) and read by nothing but the activation are changed.

    Returns:
        The model's bytes and how many tensors were narrowed.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    tree = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    names = [flatbuffer_utils.opcode_to_name(tree, i) for i in range(len(tree.operatorCodes))]
    changed = 0
    for graph in tree.subgraphs:
        made_by = {t: names[op.opcodeIndex] for op in graph.operators for t in op.outputs}
        readers: dict[int, int] = {}
        for op in graph.operators:
            for t in op.inputs:
                readers[t] = readers.get(t, 0) + 1
        for op in graph.operators:
            activation, source = names[op.opcodeIndex], op.inputs[0]
            if activation not in SATURATING_INVERSES or made_by.get(source) not in REQUANTIZING_OPS:
                continue
            if readers[source] != 1 or source in list(graph.outputs):
                continue
            out = graph.tensors[op.outputs[0]].quantization
            if out is None or out.scale is None or len(out.scale) != 1:
                continue  # a float model
            low, high = _saturation_range(activation, float(out.scale[0]), int(out.zeroPoint[0]))
            changed += _narrowed(graph.tensors[source].quantization, low, high)
    if not changed:
        return model, 0
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tree)), changed
