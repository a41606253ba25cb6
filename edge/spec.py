"""The model sidecar (`<model>.json` beside `<model>.tflite`): load, validate, describe."""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edge.errors import SidecarError
from edge.preprocess import PREPROCESS_VERSION, PreprocessSpec

SCHEMA_VERSION = 1
REQUIRED_KEYS = ("schema_version", "labels", "input", "output", "preprocess", "dataset", "sha256")
TENSOR_KEYS = ("shape", "dtype", "scale", "zero_point")
PREPROCESS_CHOICES = {
    "polarity": ("ink_high", "ink_low"),
    "threshold": ("otsu", "adaptive"),
    "scale": ("unit", "symmetric"),
}


@dataclass(frozen=True)
class TensorSpec:
    """Shape, dtype and quantization of a model input or output as the sidecar states them."""

    shape: tuple[int, ...]
    dtype: str
    scale: float = 0.0
    zero_point: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """Everything the runtime needs to know about an exported model, from its sidecar."""

    labels: tuple[str, ...]
    input: TensorSpec
    output: TensorSpec
    preprocess: PreprocessSpec
    dataset: dict[str, Any]
    sha256: str
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the sidecar as a JSON-ready dict (extra keys merged at the top level)."""
        out = {k: v for k, v in asdict(self).items() if k != "extra"}
        out["labels"] = list(self.labels)
        return {**self.extra, **out}


def sidecar_path(model_path: str | Path) -> Path:
    """Return the sidecar of a model: `<stem>.json` beside it, else `model.json` in its folder."""
    model_path = Path(model_path)
    own = model_path.with_suffix(".json")
    shared = model_path.parent / "model.json"
    return own if own.exists() or not shared.exists() else shared


def _strict_dataclass(cls, data: Any, where: str):
    """Build a frozen dataclass from a dict, failing on unknown keys with a close match."""
    if not isinstance(data, dict):
        raise SidecarError(f"sidecar key '{where}' must be an object, got {type(data).__name__}")
    names = [f.name for f in fields(cls)]
    for key in data:
        if key not in names:
            near = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else f" (known: {', '.join(names)})"
            raise SidecarError(f"sidecar key '{where}.{key}' is unknown{hint}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise SidecarError(f"sidecar key '{where}' is incomplete: {exc}") from None


def _tensor(data: Any, where: str) -> TensorSpec:
    spec = _strict_dataclass(TensorSpec, data, where)
    try:
        if not isinstance(spec.shape, (list, tuple)):
            raise TypeError(f"shape must be a list of ints, got {spec.shape!r}")
        shape = tuple(int(d) for d in spec.shape)
        return TensorSpec(shape, str(spec.dtype), float(spec.scale), int(spec.zero_point))
    except (TypeError, ValueError) as exc:
        raise SidecarError(
            f"sidecar key '{where}' has a bad value ({exc}): re-export the model"
        ) from None


def _preprocess(data: Any) -> PreprocessSpec:
    """Build the PreprocessSpec, refusing wrong types, unknown choices and newer versions."""
    spec = _strict_dataclass(PreprocessSpec, data, "preprocess")
    for f in fields(PreprocessSpec):
        value, choices = getattr(spec, f.name), PREPROCESS_CHOICES.get(f.name)
        if type(value) is not type(f.default) or (choices and value not in choices):
            want = " or ".join(map(repr, choices)) if choices else type(f.default).__name__
            raise SidecarError(f"sidecar key 'preprocess.{f.name}' is {value!r}, expected {want}")
    if spec.version > PREPROCESS_VERSION:
        raise SidecarError(
            f"sidecar preprocess version {spec.version} is newer than this runtime's "
            f"{PREPROCESS_VERSION}: upgrade hwr-pi"
        )
    return spec


def parse_spec(data: Any, source: str = "sidecar") -> ModelSpec:
    """Validate a sidecar dict and return a ModelSpec.

    Args:
        data: the parsed JSON.
        source: file name for error messages.

    Returns:
        The validated ModelSpec.

    Raises:
        SidecarError: a key is missing, unknown or has the wrong type.
    """
    if not isinstance(data, dict):
        raise SidecarError(f"{source} is not a JSON object: re-export the model")
    for key in REQUIRED_KEYS:
        if key not in data:
            raise SidecarError(f"{source} lacks required key '{key}': re-export the model")
    if data["schema_version"] != SCHEMA_VERSION:
        raise SidecarError(
            f"{source} has schema_version {data['schema_version']!r}, this runtime reads "
            f"{SCHEMA_VERSION}: re-export the model or upgrade hwr-pi"
        )
    labels = data["labels"]
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise SidecarError(f"{source} key 'labels' must be a non-empty list of strings")
    if not isinstance(data["dataset"], dict):
        raise SidecarError(f"{source} key 'dataset' must be an object: re-export the model")
    known = set(REQUIRED_KEYS)
    return ModelSpec(
        labels=tuple(labels),
        input=_tensor(data["input"], "input"),
        output=_tensor(data["output"], "output"),
        preprocess=_preprocess(data["preprocess"]),
        dataset=dict(data["dataset"]),
        sha256=str(data["sha256"]),
        schema_version=int(data["schema_version"]),
        extra={k: v for k, v in data.items() if k not in known},
    )


def load_spec(model_path: str | Path) -> ModelSpec:
    """Load and validate the sidecar of a model.

    Args:
        model_path: path of the .tflite file.

    Returns:
        The model's ModelSpec.

    Raises:
        SidecarError: the sidecar is missing, not JSON, or invalid.
    """
    path = sidecar_path(model_path)
    if not path.exists():
        raise SidecarError(
            f"no sidecar for {model_path}: expected {path.name} beside it "
            "(export models with `train-host export`, which writes one)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SidecarError(
            f"sidecar {path} is not valid JSON ({exc}): re-export the model"
        ) from None
    return parse_spec(data, path.name)


def file_sha256(path: str | Path) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
