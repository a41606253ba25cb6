"""PNG figures of the seed reproductions: learning curves, confusion matrix, ROC curves,
search history, hyperparameter importance and densities (matplotlib, Agg, atomic writes)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from edge.atomic import atomic_write_bytes


def _figure(width: float = 7.0, height: float = 4.5, ncols: int = 1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(1, ncols, figsize=(width, height), squeeze=ncols == 1)


def _save(plt, fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def learning_curves(histories: dict[str, dict], path: Path, title: str) -> Path:
    """Validation (solid) and training (dotted) accuracy per epoch of each named model."""
    plt, fig, ax = _figure()
    for i, (name, history) in enumerate(histories.items()):
        colour = f"C{i % 10}"
        epochs = np.arange(1, len(history["val_accuracy"]) + 1)
        ax.plot(epochs, history["val_accuracy"], color=colour, label=f"{name} (val)")
        ax.plot(epochs, history["accuracy"], color=colour, linestyle=":", alpha=0.7)
    ax.set(
        xlabel="epoch", ylabel="accuracy", title=f"{title}: validation (solid), training (dotted)"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def size_curves(curves: dict[str, list[dict]], path: Path, title: str) -> Path:
    """Test accuracy (solid, +- one std shaded) and training accuracy (dotted) of each named
    configuration against the number of training images; where its rows have an ensemble,
    the ensemble's test accuracy (dashed, squares)."""
    plt, fig, ax = _figure()
    for i, (name, rows) in enumerate(curves.items()):
        colour = f"C{i % 10}"
        images = [r["images"] for r in rows]
        test = np.array([r["paper_test_accuracy"]["mean"] for r in rows])
        spread = np.array([r["paper_test_accuracy"]["std"] for r in rows])
        runs = max(r["runs"] for r in rows)
        ax.plot(images, test, color=colour, marker="o", label=f"{name} (test, {runs} a size)")
        ax.fill_between(images, test - spread, test + spread, color=colour, alpha=0.2)
        train = [r["train_accuracy"]["mean"] for r in rows]
        ax.plot(images, train, color=colour, linestyle=":", alpha=0.7)
        joint = [r for r in rows if "ensemble" in r]
        if joint:
            members = "-".join(sorted({str(r["ensemble"]["members"]) for r in joint}))
            ax.plot(
                [r["images"] for r in joint],
                [r["ensemble"]["paper_test_accuracy"] for r in joint],
                color=colour,
                linestyle="--",
                marker="s",
                label=f"{name} ensemble of {members} (test)",
            )
    ax.set_xscale("log")
    ax.set(
        xlabel="training images",
        ylabel="accuracy",
        title=f"{title}: test (solid, +- 1 std), training (dotted)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes, path: Path, title: str):
    """Counts of true class (rows) against predicted class (columns)."""
    n = len(classes)
    counts = np.zeros((n, n), np.int64)
    np.add.at(counts, (labels, predicted), 1)
    plt, fig, ax = _figure(6.0, 5.5)
    ax.imshow(np.log1p(counts), cmap="Blues")
    for (r, c), v in np.ndenumerate(counts):
        if v:
            ax.text(c, r, str(v), ha="center", va="center", fontsize=6 if n > 12 else 8)
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(classes)
    ax.set_yticklabels(classes)
    return _save(plt, fig, path)


def roc_curves(labels: np.ndarray, probs: np.ndarray, classes, path: Path, title: str) -> Path:
    """One-vs-rest ROC curve of every class, its AUC in the legend."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt, fig, ax = _figure(6.0, 5.5)
    for i, c in enumerate(classes):
        truth = labels == i
        if 0 < truth.sum() < len(truth):
            fpr, tpr, _ = roc_curve(truth, probs[:, i])
            ax.plot(fpr, tpr, label=f"{c}: AUC {roc_auc_score(truth, probs[:, i]):.4f}")
    ax.set(xscale="log", xlim=(1e-4, 1), xlabel="false positive rate (log)")
    ax.set(ylabel="true positive rate", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _save(plt, fig, path)


def search_history(values: list[float], path: Path, title: str) -> Path:
    """Each trial's objective and the best so far."""
    plt, fig, ax = _figure()
    trials = np.arange(len(values))
    finite = np.asarray(values, dtype=np.float64)
    ax.scatter(trials, finite, s=12, label="trial")
    ax.plot(
        trials, np.fmax.accumulate(np.nan_to_num(finite, nan=-np.inf)), color="C1", label="best"
    )
    ax.set(xlabel="trial", ylabel="validation accuracy", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)


def intermediate_values(
    trials: list[tuple[list[int], list[float], str]], path: Path, title: str
) -> Path:
    """Each trial's validation accuracy by epoch (the values a pruner judges): completed
    trials in colour, pruned ones in grey with a cross where they were pruned (many after
    their first epoch, a point with no line)."""
    plt, fig, ax = _figure()
    for steps, values, state in sorted(trials, key=lambda t: t[2] != "pruned"):  # pruned below
        epochs = np.asarray(steps) + 1
        if state == "pruned":
            ax.plot(epochs, values, color="0.6", alpha=0.6, linewidth=0.8)
            ax.scatter(epochs[-1:], values[-1:], color="0.5", marker="x", s=14, linewidths=0.8)
        else:
            ax.plot(epochs, values, color="C0", alpha=0.8, linewidth=0.8)
    counts = {state: sum(t[2] == state for t in trials) for state in ("complete", "pruned")}
    ax.plot([], [], color="C0", label=f"complete ({counts['complete']})")
    ax.plot([], [], color="0.6", marker="x", label=f"pruned ({counts['pruned']})")
    ax.set(xlabel="epoch", ylabel="validation accuracy", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)


def importance(scores: dict[str, float], path: Path, title: str) -> Path:
    """Horizontal bars of hyperparameter importance."""
    plt, fig, ax = _figure(6.0, 3.5)
    names = list(scores)[::-1]
    ax.barh(names, [scores[n] for n in names])
    ax.set(xlabel="importance (fANOVA)", title=title)
    return _save(plt, fig, path)


def bars(values: dict[str, float], path: Path, title: str, xlabel: str) -> Path:
    """Horizontal bars of named values (e.g. gradient magnitude per layer)."""
    plt, fig, ax = _figure(6.5, 0.4 * len(values) + 1.5)
    names = list(values)[::-1]
    ax.barh(names, [values[n] for n in names])
    ax.set(xlabel=xlabel, title=title)
    ax.set_xscale("log")
    return _save(plt, fig, path)


def densities(samples: dict[str, tuple], bounds: dict[str, tuple], path: Path, title: str):
    """Kernel density of each hyperparameter over all trials and over the best ones, the
    interval chosen from the best shaded; samples: name -> (all values, best values)."""
    from scipy.stats import gaussian_kde

    plt, fig, axes = _figure(4.0 * len(samples), 3.5, ncols=len(samples))
    for ax, (name, groups) in zip(axes[0], samples.items(), strict=True):
        low, high = min(*groups[0], bounds[name][0]), max(*groups[0], bounds[name][1])
        margin = 0.1 * (high - low) or 0.1
        grid = np.linspace(low - margin, high + margin, 200)
        for label, values in zip(("all trials", "best 20%"), groups, strict=True):
            if len(values) > 1 and np.ptp(values) > 0:
                ax.plot(grid, gaussian_kde(values)(grid), label=label)
            ax.plot(values, np.zeros(len(values)), "|", markersize=12)
        ax.axvspan(*bounds[name], alpha=0.15, color="C2", label="fine interval")
        ax.set(xlabel=name, ylabel="density")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return _save(plt, fig, path)
