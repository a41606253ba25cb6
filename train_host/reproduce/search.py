"""Optuna helpers shared by the seed searches: a resumable study, a Keras pruning callback,
running only the trials still missing, and fANOVA importance."""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable
from contextlib import contextmanager

import optuna
import sqlalchemy
from optuna.trial import TrialState

from edge.errors import EdgeError

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
MIN_TRIALS_FOR_IMPORTANCE = 2
HEARTBEAT_SECONDS = 60
GRACE_SECONDS = 300
SQLITE_TIMEOUT_SECONDS = 60


def heartbeat_storage(url: str) -> optuna.storages.RDBStorage:
    """An RDB storage whose running trials beat every HEARTBEAT_SECONDS, so the trial of a
    killed process can be found (`fail_stale`); SQLite waits up to a minute for a lock, as
    processes sharing one file take turns."""
    engine = (
        {"connect_args": {"timeout": SQLITE_TIMEOUT_SECONDS}} if url.startswith("sqlite") else {}
    )
    with warnings.catch_warnings(), storage_errors(url):
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine,
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
        )


def check_storage_url(url: str) -> None:
    """Refuse, in one line, a storage URL that names no database driver installed here, before
    any work: a search opens its storage only after the trainings that come before it."""
    with storage_errors(url):
        sqlalchemy.create_engine(url).dispose()  # parses the URL and loads its driver only


@contextmanager
def storage_errors(url: str):
    """Turn the errors of opening an Optuna storage (a malformed URL, a driver not installed,
    a database that cannot be reached) into one EdgeError that names the fix."""
    try:
        yield
    except (ImportError, sqlalchemy.exc.SQLAlchemyError) as exc:
        try:
            shown = sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
        except sqlalchemy.exc.ArgumentError:
            shown = url
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgeError(
            f"cannot use --storage {shown} ({reason}): give sqlite:///PATH.db in a folder that "
            "exists, or a SQLAlchemy URL whose driver is installed (pip install the module "
            "named) and whose server answers"
        ) from exc


def fail_stale(study: optuna.Study) -> None:
    """Mark failed the trials of processes whose heartbeat stopped (killed), so a resumed
    search neither waits for them nor counts them as running."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def create_study(name: str, storage, pruner=None) -> optuna.Study:
    """Create the named study (maximised; median pruning unless told) or load it to resume;
    `storage` is a URL or an Optuna storage (e.g. an RDBStorage with heartbeats)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours
    with storage_errors(getattr(storage, "url", storage)):
        return optuna.create_study(
            study_name=name,
            storage=storage,
            load_if_exists=True,
            direction="maximize",
            pruner=pruner or optuna.pruners.MedianPruner(),
        )


def open_study(
    name: str,
    storage,
    seed: int,
    pruner=None,
    sampler=optuna.samplers.TPESampler,
    *,
    protocol: dict | None = None,
) -> optuna.Study:
    """`create_study` with a seeded sampler (TPE unless another sampler class is given) whose
    seed moves on by the trials already stored, so a resumed search draws new points instead
    of replaying its first ones. `protocol` (what the trials' scores depend on: data size,
    epochs, ...) is stored with a new study and must match when one is resumed."""
    study = create_study(name, storage, pruner)
    if protocol is not None:
        _check_protocol(study, protocol, storage)
    study.sampler = sampler(seed=seed + len(study.get_trials(deepcopy=False)))
    return study


def _check_protocol(study: optuna.Study, protocol: dict, storage) -> None:
    stored = study.user_attrs.get("protocol")
    if stored is None:
        study.set_user_attr("protocol", protocol)
    elif stored != protocol:
        raise EdgeError(
            f"study {study.study_name!r} in {getattr(storage, 'url', storage)} was run with "
            f"{stored}, not {protocol}: "
            "resume it with the same options, or use another --out or --storage"
        )


def finished(study: optuna.Study, states=FINISHED) -> int:
    """How many trials of the study ended in one of `states` (complete or pruned)."""
    return len(study.get_trials(deepcopy=False, states=states))


def pruning_callback(trial: optuna.Trial, monitor: str = "val_accuracy"):
    """A Keras callback reporting `monitor` to the trial each epoch and pruning the trial when
    the study's pruner says so (optuna-integration's TFKerasPruningCallback, without it)."""
    import keras

    class Pruning(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            trial.report(float(logs[monitor]), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")

    return Pruning()


def _trial_line(target: int, progress: Callable[[str], None]):
    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        value = "" if trial.value is None else f" {100 * trial.value:.2f}%"
        best = study.best_value if finished(study, (TrialState.COMPLETE,)) else math.nan
        progress(
            f"trial {trial.number} ({finished(study)}/{target}): {trial.state.name.lower()}"
            f"{value}, best {100 * best:.2f}%"
        )

    return report


def optimize_missing(
    study: optuna.Study, objective, target: int, progress=None, callbacks=()
) -> int:
    """Run only the trials still missing for `target` finished (complete or pruned) ones;
    returns how many this process ran. Processes sharing the storage stop at `target`.
    `callbacks` run after each trial too (e.g. one that stops when a grid has no point left
    to start)."""
    missing = max(0, target - finished(study))
    ran = []
    if missing:
        callbacks = [
            optuna.study.MaxTrialsCallback(target, states=FINISHED),
            lambda study, trial: ran.append(trial.number),
            *callbacks,
        ]
        if progress:
            callbacks.append(_trial_line(target, progress))
        study.optimize(
            objective,
            n_trials=missing,
            callbacks=callbacks,
            gc_after_trial=True,
            show_progress_bar=sys.stdout.isatty(),
        )
    return len(ran)


def history_values(study: optuna.Study) -> list[float]:
    """Each finished trial's objective in trial order; NaN for pruned ones."""
    return [
        t.value if t.state == TrialState.COMPLETE else math.nan
        for t in study.get_trials(deepcopy=False, states=FINISHED)
    ]


def intermediate_values(study: optuna.Study) -> list[tuple[list[int], list[float], str]]:
    """Each finished trial's reported values (validation accuracy by epoch): (steps, values,
    "complete" or "pruned"), in trial order; trials that reported nothing are left out."""
    curves = []
    for t in study.get_trials(deepcopy=False, states=FINISHED):
        steps = sorted(t.intermediate_values)
        if steps:
            curves.append((steps, [t.intermediate_values[k] for k in steps], t.state.name.lower()))
    return curves


def importance(study: optuna.Study, seed: int) -> dict[str, float] | None:
    """fANOVA importance of each hyperparameter; None with fewer than two completed trials."""
    if finished(study, (TrialState.COMPLETE,)) < MIN_TRIALS_FOR_IMPORTANCE:
        return None
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    scores = optuna.importance.get_param_importances(study, evaluator=evaluator)
    return {name: float(score) for name, score in scores.items()}
