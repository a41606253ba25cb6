"""int8 conversion: the inputs of saturating activations get the range they can use."""

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from train_host.quantize import SATURATION_MARGIN, convert, narrow_saturated_inputs  # noqa: E402


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
    plain, plain_scale = _int8_tanh(convert(model, "int8", calibration, narrow=False), test)
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
    plain = convert(model, "int8", calibration, narrow=False)
    once, changed = narrow_saturated_inputs(plain)
    assert changed == 1
    assert narrow_saturated_inputs(once) == (once, 0)
    float_model = convert(model, "float32")
    assert narrow_saturated_inputs(float_model) == (float_model, 0)
