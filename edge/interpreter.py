"""Classifier: find a TFLite backend, load a model once, quantize in, dequantize out."""

from __future__ import annotations

import importlib
import os
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ModelError, SidecarError
from edge.spec import ModelSpec, TensorSpec, file_sha256, load_spec, to_model_input

# (backend name, module holding Interpreter, distribution for the version)
BACKENDS = (
    ("ai_edge_litert", "ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime", "tflite_runtime.interpreter", "tflite-runtime"),
    # tf.lite.Interpreter lives here; importing "tensorflow.lite" gives a package without it
    ("tensorflow", "tensorflow.lite.python.interpreter", "tensorflow"),
)
BACKEND_ENV = "HWR_BACKEND"


@dataclass(frozen=True)
class Backend:
    """A TFLite interpreter implementation that imported successfully."""

    name: str
    version: str
    interpreter_class: Any
    resolver_types: Any = None  # the module's OpResolverType enum, where it has one

    @property
    def can_disable_xnnpack(self) -> bool:
        """Whether this backend can build an interpreter without its default XNNPACK delegate."""
        return hasattr(self.resolver_types, "BUILTIN_WITHOUT_DEFAULT_DELEGATES")


def _version(distribution: str, module: Any) -> str:
    for dist in (distribution, f"{distribution}-cpu"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return str(getattr(module, "__version__", "unknown"))


def load_backend(name: str | None = None) -> Backend:
    """Import the first available TFLite backend: ai_edge_litert, tflite_runtime, tensorflow.

    Args:
        name: force one backend by name; default from the HWR_BACKEND variable, else the order.

    Returns:
        The Backend that imported.

    Raises:
        ModelError: no backend (or not the forced one) can be imported.
    """
    name = name or os.environ.get(BACKEND_ENV) or None
    known = [b[0] for b in BACKENDS]
    if name is not None and name not in known:
        raise ModelError(f"unknown backend {name!r}: use one of {', '.join(known)}")
    for backend_name, module_name, dist in BACKENDS:
        if name is not None and backend_name != name:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if hasattr(module, "Interpreter"):
            return Backend(
                backend_name,
                _version(dist, module),
                module.Interpreter,
                getattr(module, "OpResolverType", None),
            )
    wanted = name or " or ".join(known)
    raise ModelError(f"no TFLite backend ({wanted}) is installed: pip install 'hwr-pi[edge]'")


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """Quantize float values with a tensor's (scale, zero_point), rounding and saturating."""
    info = np.iinfo(dtype)
    q = np.rint(x * (1.0 / scale)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def _tensor_spec(detail: dict) -> TensorSpec:
    scale, zero_point = detail["quantization"]
    shape = tuple(int(d) for d in detail["shape"])
    return TensorSpec(shape, np.dtype(detail["dtype"]).name, float(scale), int(zero_point))


def ops_in_float(interpreter: Any) -> tuple[str, ...] | None:
    """The model's ops that read or write a float tensor, in graph order; None where the
    backend does not list its ops (`_get_ops_details`, which every supported one has).

    A full-int8 model should list none: each one listed (the converter's DEQUANTIZE and
    QUANTIZE around an activation it left in float, say) needs float kernels, which
    integer-only accelerators lack. Delegate nodes (XNNPACK) are left out: they stand for
    ops already listed.
    """
    if not hasattr(interpreter, "_get_ops_details"):
        return None
    is_float = {
        d["index"]: np.dtype(d["dtype"]).kind == "f" for d in interpreter.get_tensor_details()
    }
    found = []
    for op in interpreter._get_ops_details():
        tensors = [int(t) for t in (*op["inputs"], *op["outputs"]) if t >= 0]
        if op["op_name"] != "DELEGATE" and any(is_float.get(t, False) for t in tensors):
            found.append(op["op_name"])
    return tuple(found)


def count_ops(names: tuple[str, ...] | list[str]) -> str:
    """Each op name once, with how often it occurs, in first order: "DEQUANTIZE x3, ELU x3"."""
    return ", ".join(f"{name} x{n}" for name, n in Counter(names).items())


def describe_kernels(float_ops: tuple[str, ...] | list[str] | None) -> str:
    """A model's kernels in a few words: "integer kernels only", "N ops in float", or that
    the backend does not list them (`float_ops` None)."""
    if float_ops is None:
        return "kernels not listed by this backend"
    return f"{len(float_ops)} ops in float" if float_ops else "integer kernels only"


def float_ops_warning(ops: tuple[str, ...]) -> str:
    """What it means that an int8 model still runs `ops` in float."""
    return (
        f"{len(ops)} ops still compute in float ({count_ops(ops)}): integer-only hardware "
        "cannot run this model; replace the layers behind them with ones TFLite runs in int8 "
        "(relu, tanh, sigmoid and elu do)"
    )


def read_tensor_specs(model_path: str | Path, backend: str | None = None):
    """Read a model's input and output TensorSpec straight from the .tflite (for writing sidecars).

    Returns:
        (input TensorSpec, output TensorSpec).
    """
    interpreter = load_backend(backend).interpreter_class(model_path=str(model_path))
    interpreter.allocate_tensors()
    return (
        _tensor_spec(interpreter.get_input_details()[0]),
        _tensor_spec(interpreter.get_output_details()[0]),
    )


def _check_tensor(detail: dict, stated: TensorSpec, role: str, path: Path) -> None:
    actual = _tensor_spec(detail)
    problems = []
    if actual.shape != stated.shape:
        problems.append(f"shape {actual.shape} vs sidecar {stated.shape}")
    if actual.dtype != stated.dtype:
        problems.append(f"dtype {actual.dtype} vs sidecar {stated.dtype}")
    scale_off = abs(actual.scale - stated.scale) > 1e-6 * abs(actual.scale)
    if scale_off or actual.zero_point != stated.zero_point:
        problems.append(
            f"quantization ({actual.scale}, {actual.zero_point}) vs sidecar "
            f"({stated.scale}, {stated.zero_point})"
        )
    if problems:
        raise SidecarError(
            f"{path.name} {role} does not match its sidecar ({'; '.join(problems)}): "
            "the sidecar belongs to another model, re-export both together"
        )


def require_model_file(path: Path) -> None:
    """Fail with a one-line fix unless `path` is a non-empty model file."""
    if path.is_dir():
        models = sorted(p.name for p in path.glob("*.tflite"))
        hint = f" (here: {', '.join(models)})" if models else ""
        raise ModelError(f"{path} is a folder: pass a .tflite file in it{hint}")
    if path.suffix.lower() == ".json":
        raise ModelError(
            f"{path} is a sidecar, not a model: pass the model beside it, "
            f"{path.with_suffix('.tflite')}"
        )
    if not path.is_file():
        raise ModelError(f"model file {path} not found: check the path or export it again")
    if path.stat().st_size == 0:
        raise ModelError(f"model file {path} is empty: export it again")


def require_matching_file(path: Path, spec: ModelSpec) -> None:
    """Fail with a one-line fix unless the model file's SHA-256 is its sidecar's."""
    if file_sha256(path) != spec.sha256:
        raise ModelError(
            f"{path} does not match the SHA-256 in its sidecar (corrupt, truncated "
            "or replaced): copy or export the model and sidecar again"
        )


def require_sound_model(path: Path) -> None:
    """What loading a model checks before its interpreter is built (`require_model_file`, the
    sidecar, the SHA-256), so a command can check its models before loading anything else."""
    require_model_file(path)
    require_matching_file(path, load_spec(path))


def _check_labels(labels: tuple[str, ...], output: dict, path: Path) -> None:
    classes = int(output["shape"][-1]) if len(output["shape"]) else 0
    if len(labels) != classes:
        raise SidecarError(
            f"{path.name} has {classes} output classes but its sidecar lists {len(labels)} "
            "labels: the sidecar belongs to another model, re-export both together"
        )


class Classifier:
    """A TFLite classifier loaded once: `predict` only sets the input, invokes and reads.

    Args:
        model_path: the .tflite file; its sidecar must lie beside it.
        num_threads: interpreter threads (None: the backend's default).
        backend: force a backend by name (see `load_backend`).
        spec: use this spec instead of reading the sidecar.
        verify: check the file's SHA-256 against the sidecar.
        xnnpack: False builds the interpreter without the default XNNPACK delegate (where the
            backend allows); None or True keeps the backend's default.
    """

    def __init__(
        self,
        model_path: str | Path,
        num_threads: int | None = None,
        backend: str | None = None,
        spec: ModelSpec | None = None,
        verify: bool = True,
        xnnpack: bool | None = None,
    ):
        self.model_path = Path(model_path)
        self.num_threads = num_threads
        self.xnnpack = xnnpack
        require_model_file(self.model_path)  # before the sidecar: a wrong path is not "no sidecar"
        self.spec = spec if spec is not None else load_spec(self.model_path)
        if verify:
            require_matching_file(self.model_path, self.spec)
        self.backend = load_backend(backend)
        self.interpreter = self._build_interpreter()
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        _check_tensor(self._input, self.spec.input, "input", self.model_path)
        _check_tensor(self._output, self.spec.output, "output", self.model_path)
        _check_labels(self.spec.labels, self._output, self.model_path)
        self._in_index, self._out_index = self._input["index"], self._output["index"]
        self._in_dtype = np.dtype(self._input["dtype"])
        self._in_quant = self._in_dtype.kind == "i"
        self._out_quant = np.dtype(self._output["dtype"]).kind == "i"
        self._out_scale, self._out_zero = self._output["quantization"]
        self.input_shape = tuple(int(d) for d in self._input["shape"])
        self._table = self._pixel_table()
        self._dequantize = self._output_table() if self._out_quant else None

    def _build_interpreter(self) -> Any:
        kwargs = {"model_path": str(self.model_path)}
        if self.num_threads is not None:
            kwargs["num_threads"] = int(self.num_threads)
        if self.xnnpack is False:
            if not self.backend.can_disable_xnnpack:
                raise ModelError(
                    f"{self.backend.name} {self.backend.version} cannot turn XNNPACK off: "
                    "leave xnnpack on or use ai-edge-litert"
                )
            kwargs["experimental_op_resolver_type"] = (
                self.backend.resolver_types.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            )
        try:
            interpreter = self.backend.interpreter_class(**kwargs)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"{self.model_path} does not load in {self.backend.name} "
                f"{self.backend.version} ({reason}): re-export it with "
                "`train-host export` or use a newer runtime"
            ) from None
        return interpreter

    @property
    def labels(self) -> tuple[str, ...]:
        """Index -> character, from the sidecar."""
        return self.spec.labels

    def _pixel_table(self) -> np.ndarray:
        """Map each uint8 pixel value straight to the input tensor's value (scaled, quantized)."""
        values = to_model_input(np.arange(256, dtype=np.uint8)[None, :], self.spec.preprocess)
        values = values.reshape(256)
        if self._in_quant:
            return quantize(
                values, self.spec.input.scale, self.spec.input.zero_point, self._in_dtype
            )
        return values.astype(self._in_dtype)

    def _output_table(self) -> np.ndarray:
        """Map each int8/uint8 output byte to its dequantized float (indexed by the raw byte)."""
        codes = np.arange(256, dtype=np.uint8).view(self._output["dtype"]).astype(np.float32)
        return (codes - self._out_zero) * np.float32(self._out_scale)

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """Turn one input into the tensor the interpreter takes.

        Args:
            x: a uint8 character image (H, W), ink high, as `edge.preprocess` makes it (one
                table look-up), or a float model input (H, W, 1), scaled as the sidecar says.
        """
        if x.dtype == np.uint8:
            return self._table.take(x).reshape(self.input_shape)
        x = np.asarray(x, dtype=np.float32).reshape(self.input_shape)
        if self._in_quant:
            return quantize(x, self.spec.input.scale, self.spec.input.zero_point, self._in_dtype)
        return x

    def invoke_prepared(self, tensor: np.ndarray) -> np.ndarray:
        """Set an already prepared input tensor, invoke, and return the raw output row."""
        self.interpreter.set_tensor(self._in_index, tensor)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._out_index)[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Classify one input.

        Args:
            x: a uint8 character image (H, W), ink high, or a float32 model input (H, W, 1)
                scaled as the sidecar says.

        Returns:
            float32 class probabilities, shape (num_classes,).
        """
        raw = self.invoke_prepared(self.prepare(x))
        if self._out_quant:
            return self._dequantize.take(raw.view(np.uint8))
        return raw

    def float_ops(self) -> tuple[str, ...] | None:
        """The ops of this model that compute in float (see `ops_in_float`)."""
        return ops_in_float(self.interpreter)

    def tensor_bytes(self) -> int:
        """Bytes of every tensor the interpreter allocated (weights and activations): the
        Python APIs expose no arena size, so this sum is the closest honest figure."""
        total = 0
        for detail in self.interpreter.get_tensor_details():
            count = int(np.prod(detail["shape"])) if len(detail["shape"]) else 1
            total += count * np.dtype(detail["dtype"]).itemsize
        return total

    def predict_batch(self, xs: np.ndarray) -> np.ndarray:
        """Classify a batch one input at a time (the model has batch size 1); returns (N, C)."""
        return (
            np.stack([self.predict(x) for x in xs]) if len(xs) else np.zeros((0, len(self.labels)))
        )

    def top_k(self, probs: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
        """Return the k most probable (label, probability) pairs, best first."""
        order = np.argsort(-np.asarray(probs), kind="stable")[:k]  # ties: lowest index, as argmax
        return [(self.labels[i], float(probs[i])) for i in order]
