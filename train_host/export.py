"""Export a trained run: every TFLite variant with its sidecar, checked by the edge runtime."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge.atomic import atomic_write_bytes
from edge.bench import accuracy
from edge.datasets import save_npz_split
from edge.interpreter import Classifier, float_ops_warning, read_tensor_specs
from edge.preprocess import to_model_input
from edge.spec import SCHEMA_VERSION, ModelSpec, file_sha256
from train_host.data import load_dataset
from train_host.ensemble import export_copy
from train_host.quantize import VARIANTS, convert
from train_host.train import keras_accuracy, load_run, split_for

EVAL_FILE = "test-split.npz"
REPRESENTATIVE_SAMPLES = 500


@dataclass(frozen=True)
class ExportResult:
    """One exported variant."""

    variant: str
    path: Path
    size_bytes: int
    tflite_accuracy: float
    float_accuracy: float
    float_ops: tuple[str, ...] | None = ()

    def line(self) -> str:
        """The one printed line of this variant (an int8 model that still computes in float
        says where)."""
        text = (
            f"{self.variant:<8} ok  {self.size_bytes / 1024:7.1f} KB  acc "
            f"{100 * self.tflite_accuracy:.2f}% (float {100 * self.float_accuracy:.2f}%)  "
            f"-> {self.path}"
        )
        if self.variant == "int8" and self.float_ops:
            text += f"\n         warning: {float_ops_warning(self.float_ops)}"
        return text


def git_revision() -> str:
    """The source checkout's git revision, or "unknown" outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).parent,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def representative_inputs(config, count: int = REPRESENTATIVE_SAMPLES) -> np.ndarray:
    """Model inputs from the training split (never val or test), for int8 calibration."""
    _, train_split, _ = split_for(config)
    rng = np.random.default_rng(config.seed)
    pick = rng.choice(len(train_split.labels), min(count, len(train_split.labels)), replace=False)
    return to_model_input(train_split.images[np.sort(pick)], config.preprocess)


def _sidecar(
    path: Path, variant: str, record: dict, config, test, metrics: dict, float_ops=()
) -> ModelSpec:
    tensor_in, tensor_out = read_tensor_specs(path)
    members = record.get("members", [])
    kind = f"{config.model}-ensemble{len(members)}" if members else config.model
    extra = {
        "name": f"{config.dataset}-{kind}",
        "variant": variant,
        "model_file": path.name,
        "file_size": path.stat().st_size,
        "metrics": metrics,
        "float_ops": None if float_ops is None else list(float_ops),
        "training": {
            k: record[k]
            for k in (
                "config",
                "params",
                "best_epoch",
                "val_accuracy",
                "train_seconds",
                "model_options",
            )
        }
        | (
            {"members": [{k: m[k] for k in ("run", "val_accuracy")} for m in members]}
            if members
            else {}
        ),
        "git_revision": git_revision(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    dataset = {**record["data"], "test_sha256": test.sha256, "test_size": len(test.labels)}
    return ModelSpec(
        labels=tuple(record["classes"]),
        input=tensor_in,
        output=tensor_out,
        preprocess=config.preprocess,
        dataset=dataset,
        sha256=file_sha256(path),
        schema_version=SCHEMA_VERSION,
        extra=extra,
    )


def export_variant(
    export_model,
    variant: str,
    out_dir: Path,
    record: dict,
    config,
    test,
    float_acc: float,
    rep: np.ndarray,
) -> ExportResult:
    """Convert, measure with the edge runtime, then write sidecar and model (atomic renames)."""
    import json

    final = out_dir / f"{variant}.tflite"
    tmp = out_dir / f".{variant}.tflite.partial"
    try:
        atomic_write_bytes(tmp, convert(export_model, variant, rep))
        draft = _sidecar(tmp, variant, record, config, test, {})
        classifier = Classifier(tmp, spec=draft)
        tflite_acc = accuracy(classifier, test.images, test.labels)
        float_ops = classifier.float_ops()
        metrics = {
            "split": f"{test.name}/test",
            "float_accuracy": float_acc,
            "tflite_accuracy": tflite_acc,
        }
        spec = _sidecar(tmp, variant, record, config, test, metrics, float_ops)
        sidecar = spec.to_dict() | {"model_file": final.name}
        atomic_write_bytes(final.with_suffix(".json"), json.dumps(sidecar, indent=2).encode())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(variant, final, final.stat().st_size, tflite_acc, float_acc, float_ops)


def export_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    variants: tuple[str, ...] = VARIANTS,
    progress=print,
) -> list[ExportResult]:
    """Export every variant of a trained run, with sidecars and the test split for `edge bench`.

    Args:
        run_dir: folder written by `train` (model.keras, train.json).
        out_dir: where to write (default: the run folder).
        variants: which variants.
        progress: called with each variant's printed line.

    Returns:
        One ExportResult per variant.
    """
    model, record, config = load_run(run_dir)
    out = Path(out_dir or run_dir)
    out.mkdir(parents=True, exist_ok=True)
    test = load_dataset(config.dataset, "test")
    x_test = to_model_input(test.images, config.preprocess)
    float_acc = keras_accuracy(model, x_test, test.labels)
    export_model = export_copy(model, record, config)
    rep = representative_inputs(config)
    save_npz_split(test, out / EVAL_FILE)
    results = []
    for variant in variants:
        result = export_variant(export_model, variant, out, record, config, test, float_acc, rep)
        progress(result.line())
        results.append(result)
    return results


def results_as_dicts(results: list[ExportResult]) -> list[dict]:
    """JSON-ready export results."""
    return [asdict(r) | {"path": str(r.path)} for r in results]
