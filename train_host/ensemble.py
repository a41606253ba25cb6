"""Ensembles: several trained runs averaged into one model, written as a run folder that
`train-host export` quantizes like any other (one TFLite file, one sidecar).

The members must share their data and validation split (train them with the same
`--split-seed`), so that the ensemble's validation accuracy is measured on images none of
them trained on.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from edge.atomic import atomic_write_bytes
from edge.errors import EdgeError
from edge.preprocess import to_model_input
from train_host.train import (
    MODEL_FILE,
    RUN_FILE,
    TrainConfig,
    build_for_config,
    config_from_dict,
    keras_accuracy,
    load_run,
    split_for,
)

# What members must agree on: the data, its validation split and its input format.
SHARED = ("dataset", "train_split", "val_fraction", "preprocess")


def member_name(index: int) -> str:
    """The layer name of an ensemble's member `index`."""
    return f"member{index}"


def build_ensemble(members: list, batch_size: int | None = None):
    """One Keras model whose output is the mean of the members' class probabilities."""
    import keras

    inputs = keras.Input(tuple(members[0].inputs[0].shape[1:]), batch_size=batch_size, name="image")
    outputs = []
    for index, member in enumerate(members):
        member.name = member_name(index)  # nested models need names of their own
        outputs.append(member(inputs))
    mean = keras.layers.Average(name="probabilities")(outputs)
    return keras.Model(inputs, mean, name="ensemble")


def member_configs(record: dict) -> list[TrainConfig]:
    """The members' configs recorded in an ensemble's train.json (empty for a single run)."""
    return [config_from_dict(m["config"]) for m in record.get("members", [])]


def export_copy(model, record: dict, config: TrainConfig, batch_size: int = 1):
    """The run's model rebuilt with a fixed batch size (the form TFLite export takes),
    an ensemble member by member."""
    configs = member_configs(record)
    if not configs:
        rebuilt = build_for_config(config, record["num_classes"], batch_size=batch_size)
        rebuilt.set_weights(model.get_weights())
        return rebuilt
    members = []
    for index, member_config in enumerate(configs):
        rebuilt = build_for_config(member_config, record["num_classes"], batch_size=batch_size)
        rebuilt.set_weights(model.get_layer(member_name(index)).get_weights())
        members.append(rebuilt)
    return build_ensemble(members, batch_size)


def _check_members(runs: list[tuple], names: list[str]) -> None:
    """One-line errors for runs that cannot be averaged: other data, another validation split,
    other classes."""
    (_, first, first_config), first_name = runs[0], names[0]
    for (_, record, config), name in zip(runs[1:], names[1:], strict=True):
        for field in SHARED:
            if getattr(config, field) != getattr(first_config, field):
                raise EdgeError(
                    f"{name} and {first_name} differ in {field}: ensemble runs trained on "
                    "the same data"
                )
        if config.resolved_split_seed() != first_config.resolved_split_seed():
            raise EdgeError(
                f"{name} and {first_name} hold out different validation images: train the "
                f"members with the same --split-seed (e.g. --split-seed "
                f"{first_config.resolved_split_seed()})"
            )
        if record["classes"] != first["classes"]:
            raise EdgeError(f"{name} and {first_name} have different classes")


def ensemble_runs(run_dirs: list[Path], out_dir: Path, progress=print) -> dict:
    """Average trained runs into one model in `out_dir` (model.keras, train.json) and measure
    it and each member on their shared validation split; returns the record."""
    if len(run_dirs) < 2:
        raise EdgeError("give at least two run folders to ensemble")
    runs = [load_run(run) for run in run_dirs]
    _check_members(runs, [str(r) for r in run_dirs])
    config = runs[0][2]
    _, _, val_split = split_for(config)
    x_val = to_model_input(val_split.images, config.preprocess)
    start = time.perf_counter()
    members = []
    for run, (model, record, member_config) in zip(run_dirs, runs, strict=True):
        val = keras_accuracy(model, x_val, val_split.labels)
        progress(f"member {run}: validation {100 * val:.2f}%")
        members.append(
            {
                "run": str(run),
                "config": asdict(member_config),
                "val_accuracy": val,
                "best_epoch": record["best_epoch"],
                "train_seconds": record["train_seconds"],
            }
        )
    model = build_ensemble([model for model, _, _ in runs])
    val_acc = keras_accuracy(model, x_val, val_split.labels)
    progress(f"ensemble of {len(runs)}: validation {100 * val_acc:.2f}%")
    first = runs[0][1]
    record = {
        "config": asdict(config),
        "classes": first["classes"],
        "num_classes": first["num_classes"],
        "model_options": first["model_options"],
        "params": int(model.count_params()),
        "best_epoch": None,
        "val_accuracy": val_acc,
        "train_seconds": round(sum(m["train_seconds"] for m in members), 1),
        "ensemble_seconds": round(time.perf_counter() - start, 1),
        "members": members,
        "data": first["data"],
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / MODEL_FILE)
    atomic_write_bytes(out / RUN_FILE, json.dumps(record, indent=2).encode())
    return record
