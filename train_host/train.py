"""Seeded training: load a dataset, carve a validation split, fit, keep the best epoch on val."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from edge.atomic import atomic_write_bytes
from edge.errors import EdgeError
from edge.preprocess import PreprocessSpec, to_model_input
from edge.spec import SEVERAL_LABEL, dataset_spec
from train_host.data import load_dataset, train_val_split
from train_host.several import several_characters

# Epochs when the config does not say, by (dataset, model): the bundled set is tiny, MNIST large.
DEFAULT_EPOCHS = {
    ("digits", "cnn"): 40,
    ("digits", "pca-mlp"): 100,
    ("mnist", "cnn"): 12,
    ("usps28", "cnn"): 40,
    ("emnist-letters", "cnn"): 30,  # validation 94.03% at 12 epochs, 94.46% at 30
    ("mnist", "pca-mlp"): 30,
}
MODEL_FILE = "model.keras"
RUN_FILE = "train.json"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (recorded in train.json)."""

    dataset: str = "digits"
    train_split: str = "train"
    balance_classes: bool = False
    model: str = "cnn"
    epochs: int | None = None
    batch_size: int = 128
    learning_rate: float = 2e-3
    seed: int = 0
    split_seed: int | None = None  # the validation split's seed; None: `seed`
    val_fraction: float = 0.1
    augment: bool = True
    camera_augment: bool = False
    several: float = 0.0  # composites of touching characters added, as a fraction of the split
    pca_components: int = 64
    hidden: tuple[int, ...] = (256, 128)
    width: int = 16
    preprocess: PreprocessSpec | None = None  # None: the data set's format (`dataset_spec`)

    def __post_init__(self) -> None:
        if self.preprocess is None:
            object.__setattr__(self, "preprocess", dataset_spec(self.dataset))

    def resolved_split_seed(self) -> int:
        """Seed of the train/validation split: models that share it share their validation
        images (an ensemble's members must)."""
        return self.seed if self.split_seed is None else self.split_seed

    def resolved_epochs(self) -> int:
        """Epochs to run: the configured number, else the dataset's default."""
        return self.epochs or DEFAULT_EPOCHS.get((self.dataset, self.model), 15)

    def model_options(self) -> dict:
        """Keyword options of `build_model` for this config (JSON-ready)."""
        if self.model == "pca-mlp":
            return {"n_components": self.pca_components, "hidden": list(self.hidden)}
        return {"width": self.width}


def config_from_dict(data: dict) -> TrainConfig:
    """Rebuild a TrainConfig from train.json."""
    names = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in data.items() if k in names}
    values["hidden"] = tuple(values.get("hidden", (256, 128)))
    values["preprocess"] = PreprocessSpec(**values.get("preprocess", {}))
    return TrainConfig(**values)


def split_for(config: TrainConfig):
    """(the whole split, its training part, its validation part) as `config` carves them."""
    full = load_dataset(config.dataset, config.train_split)
    train_split, val_split = train_val_split(
        full, config.val_fraction, config.resolved_split_seed()
    )
    return full, train_split, val_split


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and TensorFlow, and ask TensorFlow for deterministic ops."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _augmenter(seed: int):
    """Small random affine distortions, as handwriting varies: rotation, shift, zoom.

    A `keras.layers.Pipeline`, not a `Sequential`: inside tf.data a Sequential converts its
    input to the backend's tensors, which fails on JAX; a Pipeline keeps tf.data's."""
    import keras

    return keras.layers.Pipeline(
        [
            keras.layers.RandomRotation(0.03, fill_mode="constant", seed=seed),
            keras.layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed + 1),
            keras.layers.RandomZoom(0.08, fill_mode="constant", seed=seed + 2),
        ]
    )


def camera_effects(batch, seed: int):
    """What a camera path leaves on a crop: pen width (dilate or erode one pixel), defocus
    blur and sensor noise, each drawn per image. Input and output: float (N, H, W, 1) in [0, 1].
    """
    import tensorflow as tf

    n = tf.shape(batch)[0]
    dilated = tf.nn.max_pool2d(batch, 2, 1, "SAME")
    eroded = -tf.nn.max_pool2d(-batch, 2, 1, "SAME")
    pen = tf.random.uniform([n, 1, 1, 1], seed=seed)
    out = tf.where(pen < 0.25, dilated, tf.where(pen > 0.85, eroded, batch))
    kernel = tf.constant([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0
    blurred = tf.nn.conv2d(out, tf.reshape(kernel, [3, 3, 1, 1]), 1, "SAME")
    blur = tf.random.uniform([n, 1, 1, 1], seed=seed + 1) < 0.3
    out = tf.where(blur, blurred, out)
    sigma = tf.random.uniform([n, 1, 1, 1], 0.0, 0.05, seed=seed + 2)
    noise = tf.random.normal(tf.shape(out), seed=seed + 3) * sigma
    return tf.clip_by_value(out + noise, 0.0, 1.0)


def make_dataset(x: np.ndarray, y: np.ndarray, config: TrainConfig, training: bool):
    """A tf.data pipeline: shuffled and augmented for training, plain for evaluation."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size)
    if training and config.augment:
        augment = _augmenter(config.seed)
        ds = ds.map(
            lambda a, b: (augment(a, training=True), b), num_parallel_calls=tf.data.AUTOTUNE
        )
    if training and config.camera_augment:
        ds = ds.map(
            lambda a, b: (camera_effects(a, config.seed), b), num_parallel_calls=tf.data.AUTOTUNE
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def build_for_config(
    config: TrainConfig,
    num_classes: int,
    x_train: np.ndarray | None = None,
    batch_size: int | None = None,
):
    """Build the config's model; a PCA-MLP fits its PCA on `x_train` when given."""
    from train_host.models import PCAProjection, build_model

    options = config.model_options()
    if config.model == "pca-mlp" and x_train is not None:
        flat = x_train.reshape(len(x_train), -1)
        options["pca"] = PCAProjection.fit(flat, config.pca_components, config.seed)
    return build_model(config.model, num_classes, batch_size=batch_size, **options)


def balanced_class_weights(labels: np.ndarray) -> dict[int, float]:
    """Weights that give every class the same total weight (mean weight 1 a sample): a
    model trained on uneven classes then holds the even prior of a balanced test split."""
    counts = np.bincount(labels)
    present = np.flatnonzero(counts)
    return {int(c): float(len(labels) / (len(present) * counts[c])) for c in present}


def with_several_class(split, fraction: float, seed: int):
    """(images, labels) of a split with `fraction` x its size composites of its own
    characters written touching added as one more class (`train_host.several`)."""
    count = round(fraction * len(split.labels))
    if count == 0:
        return split.images, split.labels
    extra = several_characters(split.images, count, seed)
    labels = np.full(count, len(split.classes), split.labels.dtype)
    return np.concatenate([split.images, extra]), np.concatenate([split.labels, labels])


def several_validation(model, val_split, config: TrainConfig) -> float | None:
    """The share of validation composites (`with_several_class`, from validation characters)
    the model reads as several characters; None without that class."""
    if config.several <= 0:
        return None
    count = max(1, round(config.several * len(val_split.labels)))
    x = to_model_input(
        several_characters(val_split.images, count, config.seed + 1), config.preprocess
    )
    predicted = np.argmax(model.predict(x, batch_size=256, verbose=0), axis=1)
    return float(np.mean(predicted == len(val_split.classes)))


def train(config: TrainConfig, out_dir: str | Path, verbose: int = 2) -> dict:
    """Train a model and write `model.keras` and `train.json` to `out_dir`.

    Args:
        config: the run's configuration.
        out_dir: run folder (created).
        verbose: Keras verbosity (2: one line per epoch).

    Returns:
        The run record written to train.json.
    """
    import keras

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)
    full, train_split, val_split = split_for(config)
    # the best epoch is chosen on the characters alone: the task the class only serves
    images_tr, y_tr = with_several_class(train_split, config.several, config.seed)
    x_tr = to_model_input(images_tr, config.preprocess)
    x_val, y_val = to_model_input(val_split.images, config.preprocess), val_split.labels
    classes = list(full.classes) + ([SEVERAL_LABEL] if config.several > 0 else [])
    num_classes = len(classes)
    model = build_for_config(config, num_classes, x_tr)
    epochs = config.resolved_epochs()
    steps = epochs * int(np.ceil(len(x_tr) / config.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    best = keras.callbacks.EarlyStopping(
        "val_accuracy", patience=epochs, mode="max", restore_best_weights=True
    )
    start = time.perf_counter()
    history = model.fit(
        make_dataset(x_tr, y_tr, config, True),
        epochs=epochs,
        validation_data=make_dataset(x_val, y_val, config, False),
        callbacks=[best],
        class_weight=balanced_class_weights(y_tr) if config.balance_classes else None,
        shuffle=False,  # the tf.data pipeline shuffles, seeded
        verbose=verbose,
    )
    seconds = time.perf_counter() - start
    _, val_acc = model.evaluate(x_val, y_val, batch_size=256, verbose=0)
    several_found = several_validation(model, val_split, config)
    record = {
        "config": asdict(config),
        "classes": classes,
        "num_classes": num_classes,
        "model_options": config.model_options(),
        "params": int(model.count_params()),
        "epochs_run": len(history.history["loss"]),
        "best_epoch": int(np.argmax(history.history["val_accuracy"])) + 1,
        "val_accuracy": float(val_acc),
        "several_val_accuracy": several_found,
        "train_seconds": round(seconds, 1),
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
        "data": {
            "dataset": config.dataset,
            "train_split": config.train_split,
            "train_sha256": full.sha256,
            "train_size": len(y_tr),
            "val_size": len(y_val),
        },
        "threads": os.cpu_count(),
    }
    model.save(out / MODEL_FILE)
    atomic_write_bytes(out / RUN_FILE, json.dumps(record, indent=2).encode())
    return record


def keras_accuracy(model, x: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of a Keras model on model inputs `x`."""
    return float(np.mean(np.argmax(model.predict(x, batch_size=256, verbose=0), 1) == labels))


def load_run(run_dir: str | Path):
    """Load a trained run: (keras model, run record, TrainConfig); a folder without
    train.json is a one-line error."""
    import keras

    run = Path(run_dir)
    if not (run / RUN_FILE).exists():
        raise EdgeError(
            f"{run} is not a run folder (no {RUN_FILE}): train first with "
            f"`train-host train --out {run}`"
        )
    again = f"train it again with `train-host train --out {run}`"
    try:
        record = json.loads((run / RUN_FILE).read_text())
        config = config_from_dict(record["config"])
    except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise EdgeError(f"{run / RUN_FILE} is corrupt ({exc}): {again}") from None
    if not (run / MODEL_FILE).is_file():
        raise EdgeError(f"{run} has no {MODEL_FILE}: {again}")
    try:
        model = keras.models.load_model(run / MODEL_FILE)
    except Exception as exc:  # Keras raises ValueError, OSError, zipfile errors ...
        raise EdgeError(f"{run / MODEL_FILE} does not load ({_first_line(exc)}): {again}") from None
    return model, record, config


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def with_overrides(config: TrainConfig, **overrides) -> TrainConfig:
    """Return a copy of the config with the non-None overrides applied."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
