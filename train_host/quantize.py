"""TFLite conversion of a Keras model: float32, float16, dynamic-range and full int8."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

VARIANTS = ("float32", "float16", "dynamic", "int8")
# int8 ops whose output scale is free (they requantize), so it may be narrowed
REQUANTIZING_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
# inverses of the activations that saturate: inputs beyond f^-1(extreme output code) all give
# the extreme code
SATURATING_INVERSES = {"TANH": np.arctanh, "LOGISTIC": lambda y: np.log(y / (1 - y))}
SATURATION_MARGIN = 0.25  # kept beyond the saturation point, in input units
# activations the converter leaves in float (DEQUANTIZE, op, QUANTIZE) in an int8 model,
# although TFLite's kernels take int8 at the same op version (a lookup table)
INT8_LOOKUP_ACTIVATIONS = ("ELU",)


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
    model, variant: str, representative: np.ndarray | None = None, repair: bool = True
) -> bytes:
    """Convert a batch-size-1 Keras model to a .tflite flatbuffer.

    Dense layers keep per-tensor weight quantization, so dynamic-range models use
    FULLY_CONNECTED versions that tflite-runtime 2.14 can still run.

    Args:
        model: Keras model built with `keras.Input(shape, batch_size=1)`.
        variant: "float32", "float16", "dynamic" or "int8" (int8 input and output).
        representative: float model inputs (N, H, W, 1) from the training split, for int8.
        repair: for int8, narrow the inputs of tanh and logistic to what they can tell apart
            (`narrow_saturated_inputs`) and run ELU in int8 (`integer_activations`); False
            gives the converter's model as it is.

    Returns:
        The .tflite bytes.
    """
    import keras

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: use one of {', '.join(VARIANTS)}")
    if variant == "int8" and (representative is None or len(representative) == 0):
        raise ValueError("int8 conversion needs representative inputs from the training split")
    if keras.backend.backend() != "tensorflow":
        return _convert_on_tensorflow_backend(model, variant, representative, repair)
    return _convert(model, variant, representative, repair)


def _convert(model, variant: str, representative: np.ndarray | None, repair: bool) -> bytes:
    """`convert` itself, on Keras's TensorFlow backend."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant == "int8":
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
    if variant != "int8" or not repair:
        return model
    return integer_activations(narrow_saturated_inputs(model)[0])[0]


def _convert_on_tensorflow_backend(
    model, variant: str, representative: np.ndarray | None, repair: bool
) -> bytes:
    """Convert in a child process on Keras's TensorFlow backend.

    Other backends reach the converter through jax2tf (or torch export), which lowers layers
    to primitives: global average pooling becomes a SUM whose single int8 scale must cover
    the total over every position, and ELU becomes SELECT, EXP and SUB. Seed 003's trial 35
    read 78.5% in int8 that way against 97.3% float; from the TensorFlow backend the same
    weights keep their accuracy. The model travels as a .keras file (backend-neutral).
    """
    with tempfile.TemporaryDirectory(prefix="hwr-convert-") as tmp:
        folder = Path(tmp)
        args = [sys.executable, "-m", "train_host.quantize", str(folder / "model.keras"), variant]
        args.append(str(folder / "model.tflite"))
        model.save(folder / "model.keras")
        if representative is not None:
            np.save(folder / "representative.npy", np.asarray(representative, dtype=np.float32))
            args += ["--representative", str(folder / "representative.npy")]
        if not repair:
            args.append("--as-converted")
        env = os.environ | {"KERAS_BACKEND": "tensorflow"}
        done = subprocess.run(args, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise RuntimeError(f"TFLite conversion on Keras's TensorFlow backend failed: {last}")
        return (folder / "model.tflite").read_bytes()


def main(argv: list[str] | None = None) -> int:
    """Convert a saved .keras model to one TFLite variant (the child of
    `_convert_on_tensorflow_backend`; run it with KERAS_BACKEND=tensorflow)."""
    parser = argparse.ArgumentParser(prog="python -m train_host.quantize", description=main.__doc__)
    parser.add_argument("model", type=Path, help="a .keras file")
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("out", type=Path, help="the .tflite file to write")
    parser.add_argument("--representative", type=Path, help="a .npy of float inputs, for int8")
    parser.add_argument("--as-converted", action="store_true", help="skip the int8 repairs")
    args = parser.parse_args(argv)
    import keras

    import train_host.reproduce.layers  # noqa: F401  (registers our custom layers)

    if keras.backend.backend() != "tensorflow":
        parser.error("run it with KERAS_BACKEND=tensorflow: other backends lower layers badly")
    model = keras.saving.load_model(args.model, compile=False)
    rep = None if args.representative is None else np.load(args.representative)
    args.out.write_bytes(convert(model, args.variant, rep, repair=not args.as_converted))
    return 0


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
        made_by, readers = _links(graph)
        for op in graph.operators:
            activation, source = names[op.opcodeIndex], op.inputs[0]
            maker = made_by.get(source)
            if activation not in SATURATING_INVERSES or maker is None:
                continue
            if names[maker.opcodeIndex] not in REQUANTIZING_OPS:
                continue
            if len(readers[source]) != 1 or source in list(graph.outputs):
                continue
            out = graph.tensors[op.outputs[0]].quantization
            if out is None or out.scale is None or len(out.scale) != 1:
                continue  # a float model
            low, high = _saturation_range(activation, float(out.scale[0]), int(out.zeroPoint[0]))
            changed += _narrowed(graph.tensors[source].quantization, low, high)
    if not changed:
        return model, 0
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tree)), changed


def integer_activations(model: bytes) -> tuple[bytes, int]:
    """Run the activations the converter left in float inside an int8 model in int8.

    The converter quantizes ELU's neighbours but not ELU itself: it arrives as DEQUANTIZE,
    float ELU, QUANTIZE, so a "full int8" model still needs float kernels (and integer-only
    hardware cannot run it). TFLite's int8 ELU is a 256-entry lookup table built from the
    input and output quantizations, which the two neighbours already carry: the ELU reads
    the DEQUANTIZE's int8 input and writes the QUANTIZE's int8 output, and both go.

    Returns:
        The model's bytes and how many activations now run in int8.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    tree = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    names = [flatbuffer_utils.opcode_to_name(tree, i) for i in range(len(tree.operatorCodes))]
    changed = 0
    for graph in tree.subgraphs:
        made_by, readers = _links(graph)
        dropped: set[int] = set()
        for op in graph.operators:
            island = _float_island(op, graph, names, made_by, readers)
            if island is not None:
                before, after = island
                op.inputs[0], op.outputs[0] = before.inputs[0], after.outputs[0]
                dropped |= {id(before), id(after)}
                changed += 1
        graph.operators = [op for op in graph.operators if id(op) not in dropped]
    if not changed:
        return model, 0
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tree)), changed


def _links(graph) -> tuple[dict, dict]:
    """Which operator makes each tensor, and which operators read it."""
    made_by = {t: op for op in graph.operators for t in op.outputs}
    readers: dict[int, list] = {}
    for op in graph.operators:
        for t in op.inputs:
            readers.setdefault(t, []).append(op)
    return made_by, readers


def _float_island(op, graph, names, made_by, readers) -> tuple | None:
    """The (DEQUANTIZE, QUANTIZE) pair around `op` when it is one of INT8_LOOKUP_ACTIVATIONS
    run in float between int8 tensors that nothing else reads; otherwise None."""
    from tensorflow.lite.python import schema_py_generated as schema

    if names[op.opcodeIndex] not in INT8_LOOKUP_ACTIVATIONS or op.outputs[0] in list(graph.outputs):
        return None
    before, after = made_by.get(op.inputs[0]), readers.get(op.outputs[0], [])
    if before is None or len(readers[op.inputs[0]]) != 1 or len(after) != 1:
        return None
    if (names[before.opcodeIndex], names[after[0].opcodeIndex]) != ("DEQUANTIZE", "QUANTIZE"):
        return None
    ends = {graph.tensors[before.inputs[0]].type, graph.tensors[after[0].outputs[0]].type}
    return (before, after[0]) if ends == {schema.TensorType.INT8} else None


if __name__ == "__main__":
    sys.exit(main())
