"""Seed 004 (Balanced EMNIST: "a vanilla MLP in numpy, and data mining"): the paper's numpy MLP
on pixels and on 78 PCA components, sample reduction, scikit-learn baselines, training time,
training-set memory and multiplications per prediction; the PCA-MLP's numpy weights are loaded
into the Keras PCA-MLP and exported, and numpy and TFLite are compared on the test split.

Data: emnist-balanced "train-6to1"/"test-6to1" (official Balanced when its files are present,
else derived from the ByClass/ByMerge test files: 47 x 759 images, test 1/7 as in official
Balanced), a validation split carved from training in the paper's proportion (15.8k of 115.8k).
The MLP: 3 hidden layers of 128 ReLU, dropout keep 0.75 after the first two, L1 1e-5 on every
weight matrix, mini-batches of 100, 100 epochs, Adam (the paper names Adam for all its runs;
its learning rates of 0.1-0.5 are those of its gradient-descent runs, Adam uses 1e-3). The
paper reports the last epoch; we keep the epoch best on validation. The paper trained on 100k
images, we on about 26k: our accuracies are not directly the paper's.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from edge.datasets import data_dir
from edge.emnist_derived import official_files
from edge.errors import EdgeError
from train_host.reproduce import plots
from train_host.reproduce.common import (
    Data,
    Options,
    export_model,
    export_summary,
    load_data,
    write_metrics,
)
from train_host.reproduce.numpy_mlp import MLPConfig, NumpyMLP, layer_shapes, multiplications
from train_host.reproduce.seed_004_mining import (
    BASELINES,
    COMPONENTS,
    KEEP_BY_MEAN,
    KEEP_BY_RMSE,
    fit_pca,
    flat,
    project,
    reduce_samples,
    run_baseline,
)

NAME = "seed-004"
DATASET = "emnist-balanced"
SPLITS = ("train-6to1", "test-6to1")
VAL_FRACTION = 15_800 / 115_800
HIDDEN = (128, 128, 128)
PAPER_EPOCHS = 100
QUICK_EPOCHS = 3
QUICK_TRAIN_IMAGES = 3000
PIXELS = 28 * 28
MLPS = ("mlp", "pca_mlp", "reduced_pca_mlp")
# The paper's figures: test accuracy of the MLPs (and their validation accuracy, Tables 1-4),
# validation accuracy of the baselines (Table 2), seconds, training-set megabytes.
PAPER = {
    "mlp": {"test_accuracy": 0.8483, "val_accuracy": 0.857, "train_seconds": 470, "train_mb": 76},
    "pca_mlp": {
        "test_accuracy": 0.8508,
        "val_accuracy": 0.863,
        "train_seconds": 250,
        "train_mb": 28,
    },
    "reduced_pca_mlp": {
        "test_accuracy": 0.8402,
        "val_accuracy": 0.846,
        "train_seconds": 250,
        "train_mb": 25,
        "train_share_of_bytes": 0.328,
    },
    "random_forest_50": {"val_accuracy": 0.8078, "train_seconds": 68.89},
    "random_forest_50_pca": {"val_accuracy": 0.7591, "train_seconds": 91.17},
    "decision_tree": {"val_accuracy": 0.505, "train_seconds": 27.38},
    "logistic_regression": {"val_accuracy": 0.6763, "train_seconds": 36.49},
}
PAPER_VARIANCE = 0.9181
PAPER_FORMULA = "78*128 + 128*128 + 128*128 + 128*128 + 128*47"
PAPER_MULTIPLICATIONS = 65_152


def flop_counts(num_classes: int) -> dict:
    """Multiplications per prediction (the paper's measure) of our networks, with the formula."""
    sizes = (COMPONENTS, *HIDDEN, num_classes)
    terms = " + ".join(f"{a}*{b}" for a, b in layer_shapes(sizes))
    mlp = multiplications(sizes)
    return {
        "pca_mlp_formula": f"{terms} = {mlp}",
        "pca_mlp": mlp,
        "pca_projection": PIXELS * COMPONENTS,
        "pca_mlp_with_projection": mlp + PIXELS * COMPONENTS,
        "pixel_mlp": multiplications((PIXELS, *HIDDEN, num_classes)),
        "paper_formula": f"{PAPER_FORMULA} = {PAPER_MULTIPLICATIONS}",
        "paper": PAPER_MULTIPLICATIONS,
        "note": "the paper's sum has three 128*128 terms where 3 hidden layers have two",
    }


def stored_bytes(images: int, features: int) -> int:
    """Bytes of a training set as stored: uint8 pixels, or float32 PCA scores."""
    return images * (PIXELS if features == PIXELS else 4 * features)


def _train_mlp(name: str, x: tuple, data: Data, config: MLPConfig, options: Options) -> tuple:
    """Train one numpy MLP on (train, val, test, train labels); (model, test probs, result)."""
    options.progress(f"{name}: {len(x[0])} images x {x[0].shape[1]} features ...")
    mlp = NumpyMLP(config)
    history = mlp.fit(x[0], x[3], x[1], data.y_val, options.progress, report_every=10)
    probs = mlp.predict_proba(x[2])
    result = {
        "features": int(x[0].shape[1]),
        "train_images": len(x[0]),
        "train_bytes": stored_bytes(len(x[0]), x[0].shape[1]),
        "epochs": config.epochs,
        "best_epoch": history["best_epoch"],
        "val_accuracy": max(history["val_accuracy"]),
        "test_accuracy": float(np.mean(probs.argmax(axis=1) == data.y_test)),
        "train_seconds": history["seconds"],
        "multiplications": multiplications(mlp.sizes),
        "paper": PAPER[name],
        "history": {k: v for k, v in history.items() if isinstance(v, list)},
    }
    options.progress(
        f"{name}: test {100 * result['test_accuracy']:.2f}% (paper "
        f"{100 * PAPER[name]['test_accuracy']:.2f}%), best epoch {result['best_epoch']}, "
        f"{result['train_seconds']:.0f} s"
    )
    return mlp, probs, result


def _inputs(data: Data, options: Options) -> tuple[dict, object]:
    """Each MLP's (train, val, test, train labels): pixels, PCA scores, the reduced set's
    scores; and the PCA fitted on all training images."""
    pixels = tuple(flat(x) for x in (data.x_train, data.x_val, data.x_test))
    pca = fit_pca(pixels[0], options.seed)
    inputs = {
        "mlp": (*pixels, data.y_train),
        "pca_mlp": (*(project(pca, x) for x in pixels), data.y_train),
    }
    if options.wants("reduced_pca_mlp"):
        keep, reduced_pca = reduce_samples(pixels[0], data.y_train, options.seed)
        scores = (project(reduced_pca, x) for x in (pixels[0][keep], *pixels[1:]))
        inputs["reduced_pca_mlp"] = (*scores, data.y_train[keep])
    return inputs, pca


def _baseline(name: str, inputs: dict, data: Data, options: Options) -> dict:
    x = inputs["pca_mlp" if name.endswith("_pca") else "mlp"][:3]
    ys = (data.y_train, data.y_val, data.y_test)
    result = run_baseline(name, x, ys, options.quick, options.seed) | {"paper": PAPER[name]}
    options.progress(
        f"{name}: test {100 * result['test_accuracy']:.2f}%, val "
        f"{100 * result['val_accuracy']:.2f}% (paper val {100 * PAPER[name]['val_accuracy']:.2f}%), "
        f"{result['train_seconds']:.0f} s"
    )
    return result


def keras_pca_mlp(pca, mlp: NumpyMLP, num_classes: int):
    """The Keras PCA-MLP holding the numpy weights: (builder by batch size, model)."""
    from train_host.models import build_pca_mlp

    def builder(batch_size=None):
        return build_pca_mlp(num_classes, COMPONENTS, HIDDEN, batch_size=batch_size, pca=pca)

    model = builder()
    model.set_weights([*pca.dense_weights(), *mlp.keras_weights()])
    return builder, model


def agreement(exported: list, numpy_probs: np.ndarray, data: Data) -> dict:
    """Top-1 agreement and largest probability difference, numpy against each TFLite variant."""
    from edge.interpreter import Classifier

    out = {}
    for result in exported:
        probs = Classifier(result.path).predict_batch(data.test_split.images)
        out[result.variant] = {
            "top1_agreement": float(np.mean(probs.argmax(1) == numpy_probs.argmax(1))),
            "max_abs_prob_diff": float(np.abs(probs - numpy_probs).max()),
        }
    return out


def _export(pca, trained: tuple, data: Data, options: Options, out) -> dict:
    """Export the PCA-MLP through Keras; the export summary and numpy-TFLite agreement."""
    mlp, numpy_probs, result = trained
    builder, model = keras_pca_mlp(pca, mlp, len(data.classes))
    options.progress("exporting pca_mlp (its numpy weights in the Keras PCA-MLP) ...")
    record = {k: result[k] for k in ("val_accuracy", "train_seconds", "best_epoch")}
    record["options"] = {"hidden": list(HIDDEN), "n_components": COMPONENTS}
    exported = export_model(
        builder, model, data, out / "models", "seed004-pca_mlp", record, options.progress
    )
    return {
        "export": export_summary(exported),
        "numpy_vs_tflite": agreement(exported, numpy_probs, data),
    }


def _reduction(results: dict, data: Data) -> dict:
    kept = results["reduced_pca_mlp"]["train_images"]
    return {
        "keep_by_mean": KEEP_BY_MEAN,
        "keep_by_rmse": KEEP_BY_RMSE,
        "kept_images": kept,
        "share_of_images": kept / len(data.y_train),
        "share_of_bytes": results["reduced_pca_mlp"]["train_bytes"]
        / stored_bytes(len(data.y_train), PIXELS),
        "paper_share_of_bytes": PAPER["reduced_pca_mlp"]["train_share_of_bytes"],
    }


def _metrics(options: Options, data: Data, config: MLPConfig, pca, results: dict) -> dict:
    official = official_files(DATASET, SPLITS[0], data_dir()) is not None
    metrics = {
        "experiment": NAME,
        "quick": options.quick,
        "seed": options.seed,
        "dataset": DATASET,
        "splits": list(SPLITS),
        "source": "official files" if official else "derived from ByClass/ByMerge test",
        "train_sha256": data.train_sha256,
        "test_sha256": data.test_split.sha256,
        "train_images": len(data.y_train),
        "val_images": len(data.y_val),
        "test_images": len(data.y_test),
        "mlp_config": asdict(config),
        "pca": {
            "components": COMPONENTS,
            "variance_kept": pca.explained_variance_ratio,
            "paper_variance_kept": PAPER_VARIANCE,
        },
        "flops": flop_counts(len(data.classes)),
        "models": results,
    }
    if "reduced_pca_mlp" in results:
        metrics["reduction"] = _reduction(results, data)
    return metrics


def _plots(results: dict, trained: dict, data: Data, out) -> None:
    histories = {name: r["history"] for name, r in results.items() if name in MLPS}
    if histories:
        plots.learning_curves(histories, out / "learning_curves.png", "seed 004, Balanced EMNIST")
    if "pca_mlp" in trained:
        predicted = trained["pca_mlp"][1].argmax(1)
        plots.confusion_matrix(
            data.y_test, predicted, data.classes, out / "confusion.png", "pca_mlp, test"
        )


def run(options: Options) -> dict:
    """The paper's MLPs and baselines on Balanced EMNIST; export the PCA-MLP."""
    from edge.spec import dataset_spec

    names = (*MLPS, *BASELINES)
    if not any(options.wants(name) for name in names):
        raise EdgeError(f"no such model in {NAME}: use {', '.join(names)}")
    out = options.run_dir(NAME)
    limit = QUICK_TRAIN_IMAGES if options.quick else None
    data = load_data(DATASET, dataset_spec(DATASET), VAL_FRACTION, options.seed, limit, SPLITS)
    config = MLPConfig(
        hidden=HIDDEN,
        epochs=options.pick(QUICK_EPOCHS, PAPER_EPOCHS, options.epochs),
        batch_size=options.batch_size or MLPConfig.batch_size,
        seed=options.seed,
    )
    inputs, pca = _inputs(data, options)
    trained = {n: _train_mlp(n, inputs[n], data, config, options) for n in MLPS if options.wants(n)}
    results = {name: t[2] for name, t in trained.items()}
    results |= {n: _baseline(n, inputs, data, options) for n in BASELINES if options.wants(n)}
    metrics = _metrics(options, data, config, pca, results)
    _plots(results, trained, data, out)
    if options.export and "pca_mlp" in trained:
        metrics |= _export(pca, trained["pca_mlp"], data, options, out)
    write_metrics(out, metrics)
    return metrics
