"""int8 conversion: the inputs of saturating activations get the range they can use, ELU
runs in int8, and a model built on another Keras backend converts as on TensorFlow's."""

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from train_host.quantize import (  # noqa: E402
    SATURATION_MARGIN,
    convert,
    integer_activations,
    narrow_saturated_inputs,
)

# a small net with what seed 003's search found best: ELU convolutions, global average
# pooling over many positions, ELU dense layers
ELU_NET = """
import keras

def elu_net():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1), batch_size=1)
    x = keras.layers.Conv2D(6, 5, padding="same", activation="elu")(inputs)
    x = keras.layers.Conv2D(6, 5, padding="same", activation="elu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(16, activation="elu")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
"""


def _tanh_net():
    """A dense layer with tanh whose first two units sit at +-20 (always saturated) and the
    others near 0: calibration gives the whole tensor a range far wider than an int8 tanh
    can tell apart."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16,), batch_size=1)
    hidden = keras.layers.Dense(32, activation="tanh")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4)(hidden))
    kernel, bias = model.layers[1].get_weights()
    bias[:2] = (20, -20)
    model.layers[1].set_weights([kernel, bias])
    return model


def _int8_tanh(model_bytes: bytes, x: np.ndarray) -> tuple[np.ndarray, float]:
    """The int8 model's tanh outputs (dequantized) for inputs `x`, and the scale of the
    tanh's input tensor."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(
        model_content=model_bytes,
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    (tanh,) = [op for op in interpreter._get_ops_details() if op["op_name"] == "TANH"]
    quantization = {d["index"]: d["quantization"] for d in interpreter.get_tensor_details()}
    scale, zero = inp["quantization"]
    out_scale, out_zero = quantization[tanh["outputs"][0]]
    rows = []
    for row in x:
        interpreter.set_tensor(
            inp["index"], np.clip(np.round(row[None] / scale + zero), -128, 127).astype(np.int8)
        )
        interpreter.invoke()
        codes = interpreter.get_tensor(tanh["outputs"][0])[0].astype(np.float32)
        rows.append((codes - out_zero) * out_scale)
    return np.array(rows), quantization[tanh["inputs"][0]][0]


def test_tanh_input_range_is_narrowed_and_int8_tanh_follows_float_closer():
    import keras

    model = _tanh_net()
    rng = np.random.default_rng(0)
    calibration = rng.normal(size=(200, 16)).astype(np.float32)
    test = rng.normal(size=(200, 16)).astype(np.float32)
    reference = keras.Model(model.inputs, model.layers[1].output).predict(test, verbose=0)
    plain, plain_scale = _int8_tanh(convert(model, "int8", calibration, repair=False), test)
    narrowed, scale = _int8_tanh(convert(model, "int8", calibration), test)
    # int8 tanh codes -128 and 127 stand for -1 and 127/128: halfway to the next code
    saturation = np.arctanh(127.5 / 128) + np.arctanh(126.5 / 128)
    usable = (saturation + 2 * SATURATION_MARGIN) / 255
    assert plain_scale > 3 * usable  # the calibrated range is wide
    assert scale == pytest.approx(usable, rel=1e-3)
    plain_error = np.abs(plain - reference).mean()
    error = np.abs(narrowed - reference).mean()
    assert error < 0.5 * plain_error, (error, plain_error)


def test_narrowing_twice_changes_nothing_and_other_variants_are_untouched():
    model = _tanh_net()
    calibration = np.random.default_rng(1).normal(size=(50, 16)).astype(np.float32)
    plain = convert(model, "int8", calibration, repair=False)
    once, changed = narrow_saturated_inputs(plain)
    assert changed == 1
    assert narrow_saturated_inputs(once) == (once, 0)
    float_model = convert(model, "float32")
    assert narrow_saturated_inputs(float_model) == (float_model, 0)


def _elu_net():
    namespace: dict = {}
    exec(ELU_NET, namespace)
    return namespace["elu_net"]()


def _images(count: int, seed: int) -> np.ndarray:
    """Blurred random strokes in [0, 1], so the ELU layers see both signs."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 28, 28, 1), np.float32)
    for image in images:
        rows, cols = rng.integers(4, 24, 2)
        image[rows : rows + 4, 2:26] = 1.0
        image[4:24, cols : cols + 3] = rng.uniform(0.3, 1.0)
    return images


def _ops(model_bytes: bytes) -> list[str]:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=model_bytes)
    return [op["op_name"] for op in interpreter._get_ops_details()]


def _int8_probabilities(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=model_bytes)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    (scale, zero), (out_scale, out_zero) = inp["quantization"], out["quantization"]
    rows = []
    for row in x:
        codes = np.clip(np.round(row[None] / scale + zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], codes)
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out["index"])[0].astype(np.float32) - out_zero)
    return np.array(rows) * out_scale


def test_elu_runs_in_int8_and_follows_float():
    """The converter leaves ELU in float (DEQUANTIZE, ELU, QUANTIZE); after the repair every
    op of the model is int8 and the outputs still follow the float model."""
    model = _elu_net()
    calibration, test = _images(100, 0), _images(50, 1)
    raw = convert(model, "int8", calibration, repair=False)
    repaired = convert(model, "int8", calibration)
    assert _ops(raw).count("DEQUANTIZE") == 3  # the converter's float islands, one per ELU
    assert "DEQUANTIZE" not in _ops(repaired) and "QUANTIZE" not in _ops(repaired)
    assert _ops(repaired).count("ELU") == 3
    assert integer_activations(repaired) == (repaired, 0)
    reference = model.predict(test, verbose=0)
    error = np.abs(_int8_probabilities(repaired, test) - reference).max()
    raw_error = np.abs(_int8_probabilities(raw, test) - reference).max()
    assert error < 0.03 and error <= raw_error + 1 / 256, (error, raw_error)


def test_a_model_built_on_jax_converts_as_on_tensorflow(tmp_path):
    """On Keras's JAX backend the converter sees jax2tf's primitives (global average pooling
    as a SUM with one int8 scale for the total, ELU as SELECT/EXP/SUB). `convert` hands the
    model to a TensorFlow-backend process instead: the same weights give the same file."""
    import os
    import subprocess
    import sys

    pytest.importorskip("jax")
    model = _elu_net()
    calibration = _images(100, 0)
    np.save(tmp_path / "calibration.npy", calibration)
    model.save_weights(tmp_path / "net.weights.h5")
    script = (
        ELU_NET
        + "import sys, numpy as np\n"
        + "from train_host.quantize import convert\n"
        + "assert keras.backend.backend() == 'jax'\n"
        + "model = elu_net()\n"
        + f"model.load_weights({str(tmp_path / 'net.weights.h5')!r})\n"
        + f"rep = np.load({str(tmp_path / 'calibration.npy')!r})\n"
        + f"open({str(tmp_path / 'jax.tflite')!r}, 'wb').write(convert(model, 'int8', rep))\n"
    )
    env = os.environ | {"KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    from_jax = (tmp_path / "jax.tflite").read_bytes()
    assert "MEAN" in _ops(from_jax) and "SUM" not in _ops(from_jax)
    test = _images(50, 1)
    here = _int8_probabilities(convert(model, "int8", calibration), test)
    assert np.array_equal(_int8_probabilities(from_jax, test), here)


def test_float_kernels_are_found_in_an_int8_model_and_named_by_doctor(tmp_path, golden_sidecar):
    """`ops_in_float` names the converter's float islands (each DEQUANTIZE, ELU, QUANTIZE),
    none once repaired; `edge doctor` warns on such an int8 model and names the ops."""
    from dataclasses import asdict

    from edge.doctor import check_model
    from edge.interpreter import load_backend, ops_in_float, read_tensor_specs
    from edge.spec import file_sha256

    calibration = _images(100, 0)
    for repair, expected in ((False, ("DEQUANTIZE", "ELU", "QUANTIZE") * 3), (True, ())):
        path = tmp_path / f"repair-{repair}" / "int8.tflite"
        path.parent.mkdir()
        path.write_bytes(convert(_elu_net(), "int8", calibration, repair=repair))
        interpreter = load_backend().interpreter_class(model_path=str(path))
        interpreter.allocate_tensors()  # with XNNPACK's delegate node, where the backend adds it
        assert ops_in_float(interpreter) == expected
        tensor_in, tensor_out = (asdict(t) for t in read_tensor_specs(path))
        sidecar = golden_sidecar | {"input": tensor_in, "output": tensor_out}
        sidecar |= {"sha256": file_sha256(path), "file_size": path.stat().st_size}
        path.with_suffix(".json").write_text(json.dumps(sidecar))
        check = check_model(path)
        if repair:
            assert check.status == "ok" and "integer kernels only" in check.detail, check
        else:
            assert check.status == "warn", check
            assert "9 ops compute in float (DEQUANTIZE x3, ELU x3, QUANTIZE x3)" in check.detail
            assert "integer-only hardware" in check.fix
