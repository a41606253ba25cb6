"""Worker processes that share an experiment's work (a search's Optuna study, or a set of
trainings): each is spawned with the experiment's options, loads its own data and takes a
share of the cores. Any Keras backend runs them (JAX or PyTorch on a GPU machine too)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from dataclasses import asdict, replace

from edge.errors import EdgeError
from train_host.reproduce.common import Options

# work(options, index, count): one worker's share; `index` in 0..count-1.
Work = Callable[[Options, int, int], object]


def _worker(work: Work, fields: dict, index: int, count: int, threads: int) -> None:
    """One spawned process: TensorFlow's threads limited to its share (other backends by the
    OMP/XLA variables the caller sets), lines prefixed with the worker's number."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
    progress = lambda line: print(f"[worker {index}] {line}", flush=True)  # noqa: E731
    work(Options(**fields, progress=progress), index, count)


def spawn(work: Work, options: Options, count: int) -> None:
    """Run `work` in `count` processes ('spawn': `work` must be a module-level function) with
    `options` (one worker each), and wait for them all; one line naming the failed ones."""
    fields = asdict(replace(options, workers=1))
    fields.pop("progress")
    threads = max(1, (os.cpu_count() or 1) // count)
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_worker, args=(work, fields, i, count, threads), name=f"worker-{i}")
        for i in range(count)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    failed = [f"{w.name} (exit {w.exitcode})" for w in workers if w.exitcode]
    if failed:
        raise EdgeError(
            f"{', '.join(failed)} failed: rerun the same command to run what is missing"
        )
