"""The model sidecar (`<model>.json` beside `<model>.tflite`): load, validate, describe."""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import SidecarError

PREPROCESS_VERSION = 2
SCHEMA_VERSION = 1
# The label of a class trained on touching characters (`train-host train --several`): a
# reader splits a blob the model reads as this, and never prints it.
SEVERAL_LABEL = "<several>"
REQUIRED_KEYS = ("schema_version", "labels", "input", "output", "preprocess", "dataset", "sha256")
TENSOR_KEYS = ("shape", "dtype", "scale", "zero_point")
PREPROCESS_CHOICES = {
    "polarity": ("ink_high", "ink_low"),
    "threshold": ("otsu", "adaptive"),
    "scale": ("unit", "symmetric"),
}


@dataclass(frozen=True)
class PreprocessSpec:
    """How a dataset's images were made, so that device input is made the same way.

    Attributes:
        version: version of this preprocessing code the model was exported with.
        size: side of the square model input (28 for MNIST-style models).
        box: side of the box the character is fitted into, keeping aspect (20 for MNIST).
        polarity: "ink_high" (white ink on black, as MNIST) or "ink_low".
        threshold: "otsu" or "adaptive": how ink is separated from paper in photos.
        center_of_mass: place the character by its centre of mass (MNIST) or its box centre.
        transposed: the dataset stores images transposed (EMNIST); the model expects that.
        scale: "unit" for inputs in [0, 1], "symmetric" for [-1, 1] (USPS).
        blur: sigma in input pixels of a Gaussian blur over the placed character (EMNIST's
            images are softer than a crop; 0: none). Added in version 2.
    """

    version: int = PREPROCESS_VERSION
    size: int = 28
    box: int = 20
    polarity: str = "ink_high"
    threshold: str = "otsu"
    center_of_mass: bool = True
    transposed: bool = False
    scale: str = "unit"
    blur: float = 0.0

    def same_input(self, other: PreprocessSpec) -> bool:
        """Whether both specs make the same model input (the code versions aside: a version 1
        sidecar has no blur, which reads as none)."""
        return replace(self, version=0) == replace(other, version=0)


DEFAULT_SPEC = PreprocessSpec()
# EMNIST was made otherwise than MNIST (Cohen et al. 2017): each character's box, blurred,
# centred in a square and padded by 2 px, shrunk to 28x28, so it fills about 24 px and sits
# by its box's centre (median longer side 24 px over 5,000 letters; MNIST's 20), with softer
# edges. A camera crop of a training image made this way matches it far better (mean
# correlation 0.86, against 0.57 with MNIST's format; MNIST's own images: 0.94 in MNIST's);
# the blur is the sigma that makes it match best (0.5: 0.857, 0.8: 0.863, 1.2: 0.852).
EMNIST_SPEC = PreprocessSpec(box=24, center_of_mass=False, blur=0.8)


def dataset_spec(dataset: str) -> PreprocessSpec:
    """The crop format of a data set's images: EMNIST's for EMNIST sets (all parts of a
    "+"-joined name), MNIST's otherwise."""
    emnist = all(part.startswith("emnist") for part in dataset.split("+"))
    return EMNIST_SPEC if emnist else DEFAULT_SPEC


def to_model_input(chars: np.ndarray, spec: PreprocessSpec = DEFAULT_SPEC) -> np.ndarray:
    """Scale uint8 ink-high characters to the float input the model takes, with a channel axis.

    Args:
        chars: uint8 array (N, size, size) or (size, size), ink high.
        spec: the model's preprocessing spec (polarity and scale).

    Returns:
        float32 array (N, size, size, 1).
    """
    chars = np.asarray(chars)
    if chars.ndim == 2:
        chars = chars[None]
    x = chars.astype(np.float32) / 255.0
    if spec.polarity == "ink_low":
        x = 1.0 - x
    if spec.scale == "symmetric":
        x = x * 2.0 - 1.0
    return x[..., None]


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
    """Build the PreprocessSpec, refusing newer versions (first: their new keys are not
    known here), unknown keys, wrong types and unknown choices."""
    version = data.get("version") if isinstance(data, dict) else None
    if type(version) is int and version > PREPROCESS_VERSION:
        raise SidecarError(
            f"sidecar preprocess version {version} is newer than this runtime's "
            f"{PREPROCESS_VERSION}: upgrade hwr-pi"
        )
    spec = _strict_dataclass(PreprocessSpec, data, "preprocess")
    for f in fields(PreprocessSpec):
        value, choices = getattr(spec, f.name), PREPROCESS_CHOICES.get(f.name)
        if type(value) is not type(f.default) or (choices and value not in choices):
            want = " or ".join(map(repr, choices)) if choices else type(f.default).__name__
            raise SidecarError(f"sidecar key 'preprocess.{f.name}' is {value!r}, expected {want}")
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
