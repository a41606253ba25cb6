"""Seed 000's results as Markdown: every grid point's record from the study, the table of test
accuracies shaped like the paper's (architecture rows, optimizer x learning-rate columns), and
its Tables 2 and 3 (highest accuracies, highest error rates) beside ours."""

from __future__ import annotations

import optuna

from train_host.reproduce.search import FINISHED
from train_host.reproduce.seed_000_setup import (
    OPTIMIZERS,
    PAPER_BEST,
    PAPER_TOP,
    PAPER_WORST_ERROR,
    grid_key,
    grid_points,
    layout,
)


def results_of(study: optuna.Study) -> dict[str, dict]:
    """Each finished grid point's record (the latest trial of a point run twice)."""
    results = {}
    for trial in study.get_trials(deepcopy=False, states=FINISHED):
        key = grid_key(**trial.params)
        if trial.state == optuna.trial.TrialState.COMPLETE:
            results[key] = trial.user_attrs["result"]
        elif results.get(key, {}).get("state") != "complete":
            values = [trial.intermediate_values[s] for s in sorted(trial.intermediate_values)]
            results[key] = dict(trial.params) | {
                "state": "pruned",
                "epochs_run": len(values),
                "val_accuracy": values[-1] if values else float("nan"),
            }
    return results


def _label(architecture: str) -> str:
    convs, denses = layout(architecture)
    return f"{convs} Conv, {denses} Dense"


def _column(optimizer: str, learning_rate: float) -> str:
    return f"{OPTIMIZERS[optimizer]} {learning_rate:.0e}".replace("e-0", "e-")


def _cell(record: dict | None, best_key: str | None, key: str) -> str:
    if record is None:
        return "-"
    if record["state"] == "pruned":
        return f"pruned ({100 * record['val_accuracy']:.1f})"
    text = f"{100 * record['test_accuracy']:.2f}"
    return f"**{text}**" if key == best_key else text


def grid_table(space: dict, results: dict[str, dict], best_key: str | None) -> str:
    """Test accuracy (%) of every grid point: architectures as rows, optimizer and learning
    rate as columns; the point best on validation in bold, '-' not run yet."""
    columns = [(o, lr) for o in space["optimizer"] for lr in space["learning_rate"]]
    header = ["Architecture", *(_column(o, lr) for o, lr in columns)]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(columns)]
    for arch in space["architecture"]:
        keys = [grid_key(arch, o, lr) for o, lr in columns]
        cells = [_cell(results.get(key), best_key, key) for key in keys]
        lines.append(f"| {_label(arch)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ranking_table(results: dict[str, dict], error: bool) -> str:
    """The three highest test accuracies (error=False, the paper's Table 2) or error rates
    (error=True, its Table 3) of our grid, the paper's beside them."""
    paper = PAPER_WORST_ERROR if error else PAPER_TOP
    done = [r for r in results.values() if r["state"] == "complete"]
    ours = sorted(done, key=lambda r: r["test_accuracy"], reverse=not error)[:3]
    what = "error rate" if error else "accuracy"
    lines = [
        f"| rank | paper | paper {what} | ours | our {what} |",
        "| ---: | --- | ---: | --- | ---: |",
    ]
    for rank, (arch, opt, lr, value) in enumerate(paper, 1):
        mine = ours[rank - 1] if rank <= len(ours) else None
        text, figure = ("-", "-")
        if mine is not None:
            text = f"{_label(mine['architecture'])}, {_column(mine['optimizer'], mine['learning_rate'])}"
            score = 1 - mine["test_accuracy"] if error else mine["test_accuracy"]
            figure = f"{100 * score:.2f}%"
        lines.append(
            f"| {rank} | {_label(arch)}, {_column(opt, lr)} | {100 * value:.3f}% | {text} | {figure} |"
        )
    return "\n".join(lines)


def markdown(setup: dict, results: dict, best_key: str, images: tuple[int, int, int]) -> str:
    """grid.md: the grid table, the paper's best beside ours, and the two rankings;
    `images`: (train, validation, test) counts."""
    best = results[best_key]
    paper_key = grid_key(*(PAPER_BEST[k] for k in ("architecture", "optimizer", "learning_rate")))
    ours = results.get(paper_key)
    at_paper = "not run yet"
    if ours is not None and ours["state"] == "complete":
        at_paper = f"{100 * ours['test_accuracy']:.2f}%"
    done = sum(r["state"] == "complete" for r in results.values())
    return (
        "\n\n".join(
            [
                "# Seed 000: test accuracy (%) of the grid on emnist-letters",
                f"{done} of {len(grid_points(setup['space']))} points finished, "
                f"{setup['epochs']} epochs, batch {setup['batch']}, {images[0]} training / "
                f"{images[1]} validation / {images[2]} test images. Each point at its "
                "epoch best on validation; bold: the point best on validation.",
                grid_table(setup["space"], results, best_key),
                f"Paper's best, 3 Conv + 2 Dense with Adam 1e-3: "
                f"{100 * PAPER_BEST['test_accuracy']:.2f}%; ours at that point: {at_paper}. "
                f"Our best on validation: {best_key}, test {100 * best['test_accuracy']:.2f}% "
                f"(validation {100 * best['val_accuracy']:.2f}%).",
                "## Highest test accuracy (the paper's Table 2)",
                ranking_table(results, error=False),
                "## Highest test error rate (the paper's Table 3)",
                ranking_table(results, error=True),
            ]
        )
        + "\n"
    )
