"""Seed 000's shared Optuna grid: an RDB storage with heartbeats, a grid sampler that runs
failed points again, and a threshold pruner that stops only diverged points."""

from __future__ import annotations

import functools

import optuna

from train_host.reproduce import search

DEAD_ACCURACY = 0.1  # validation accuracy of a diverged point: 2.6 x chance (1/26)
DEAD_AFTER_EPOCHS = 5


class ResumableGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, except that a failed trial (interrupted, or marked stale by the
    storage's heartbeat) leaves its point unvisited, so a resumed grid runs it again; the
    stock sampler counts failed trials as visited, and the point would stay empty."""

    def _get_unvisited_grid_ids(self, study: optuna.Study) -> list[int]:
        done, running = set(), set()
        for trial in study._storage.get_all_trials(study._study_id, deepcopy=False):
            attrs = trial.system_attrs
            if "grid_id" not in attrs or not self._same_search_space(attrs["search_space"]):
                continue
            if trial.state in search.FINISHED:
                done.add(attrs["grid_id"])
            elif trial.state == optuna.trial.TrialState.RUNNING:
                running.add(attrs["grid_id"])
        unvisited = set(range(self._n_min_trials)) - done
        return sorted(unvisited - running or unvisited)

    def unstarted(self, study: optuna.Study) -> int:
        """Points neither finished nor running: 0 means this process has nothing to start."""
        unvisited = self._get_unvisited_grid_ids(study)
        running = {
            t.system_attrs.get("grid_id")
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        }
        return len(set(unvisited) - running)


def open_grid(url: str, setup: dict, seed: int) -> optuna.Study:
    """Create or load the grid's study (setup: "study", "space", "protocol"): heartbeats, so a
    killed process's trial is failed and run again, and a grid sampler with the same seed in
    every process (the order of its points depends on it)."""
    storage = search.heartbeat_storage(url)
    pruner = optuna.pruners.ThresholdPruner(lower=DEAD_ACCURACY, n_warmup_steps=DEAD_AFTER_EPOCHS)
    grid = functools.partial(ResumableGridSampler, setup["space"])
    return search.open_study(
        setup["study"],
        storage,
        seed,
        pruner,
        sampler=lambda **moved_on: grid(seed=seed),  # the grid's order must not move on
        protocol=setup["protocol"],
    )
