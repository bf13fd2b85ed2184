"""Ray Tune's side of a study: per-trial resources, the trainable, a new or restored Tuner,
and the best result."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from study.presets import Plan
from study.schema import OBJECTIVE, OBJECTIVE_MODE
from study.space import SearchSpace
from study.spec import StudySpec
from trainables.data import Dataset


def resources(spec: StudySpec, gpus: int, space: SearchSpace) -> dict[str, float]:
    """Per-trial resources: a GPU fraction by encoder size when GPUs exist, else CPU cores."""
    gpu = spec.gpus_per_trial
    if gpu is None:
        big = "resnet18" in space.encoders or space.pins.get("encoder") == "resnet18"
        gpu = 0.0 if gpus == 0 else (0.5 if big else 0.25)
    return {"cpu": spec.cpus_per_trial, "gpu": gpu}


def trial_slots(spec: StudySpec, per_trial: dict[str, float], cluster: dict[str, float]) -> int:
    """How many trials the Ray the study runs on holds at once: as many as its CPUs, or its
    GPUs at their fraction, allow (``--max-concurrent`` at most); at least 1."""
    gpu = per_trial.get("gpu", 0.0)
    slots = int(cluster.get("GPU", 0) / gpu) if gpu else int(
        cluster.get("CPU", os.cpu_count() or 1) / per_trial["cpu"])
    if spec.max_concurrent:
        slots = min(slots, spec.max_concurrent)
    return max(1, slots)


def judge_workers(spec: StudySpec, per_trial: dict[str, float], cluster: dict[str, float]) -> int:
    """Processes for the end-of-trial judgements: ``--judge-workers``, else the cores of this
    machine that its trials leave (``trial_slots`` trials on a local Ray), else half of them
    on a cluster, whose trials run elsewhere too; at least 1."""
    if spec.judge_workers:
        return spec.judge_workers
    cores = os.cpu_count() or 1
    if spec.address is not None:
        return max(1, cores // 2)
    return max(1, int(cores - trial_slots(spec, per_trial, cluster) * per_trial["cpu"]))


PENDING_ENV = "TUNE_MAX_PENDING_TRIALS_PG"


@contextmanager
def trials_together(slots: int) -> Iterator[None]:
    """Within it, Tune starts ``slots`` trials at once (unless ``TUNE_MAX_PENDING_TRIALS_PG``
    is set: the user's value stands).

    With a searcher Tune keeps one trial pending at a time: it asks for the next trial's
    worker only once the previous trial runs, and when trials are short, the previous trial
    ends before a new worker has started and its idle worker is reused, so a 2-core machine
    ran the README's digits study one trial at a time (measured: all four trials in one
    worker process, one after another).  Seeded random proposals (Optuna's first 10) are the
    same either way; later proposals already depended on which trials had finished
    (``--max-concurrent 1`` keeps a search fully repeatable).
    """
    if PENDING_ENV in os.environ:
        yield
        return
    os.environ[PENDING_ENV] = str(max(1, slots))
    try:
        yield
    finally:
        os.environ.pop(PENDING_ENV, None)


def trainable(data: Dataset, per_trial: dict[str, float]) -> Any:
    """``study.ray_trial.train_trial`` with the dataset in Ray's object store and its
    resources."""
    from ray import tune

    from study.ray_trial import train_trial

    return tune.with_resources(tune.with_parameters(train_trial, data=data), per_trial)


def new(plan: Plan, trainable: Any, callbacks: list[Any], experiment_path: str,
        verbose: bool = False) -> Any:
    """A Tuner that runs ``plan``, reports to ``callbacks`` (the recorder, the console) and
    keeps Ray's state at ``experiment_path``; Ray's own progress tables only when
    ``verbose``."""
    from ray import tune

    storage, _, name = experiment_path.rpartition("/")
    return tune.Tuner(
        trainable,
        param_space=plan.param_space,
        tune_config=tune.TuneConfig(
            metric=OBJECTIVE, mode=OBJECTIVE_MODE, num_samples=plan.num_samples,
            search_alg=plan.searcher, reuse_actors=True, scheduler=plan.scheduler,
        ),
        run_config=tune.RunConfig(
            name=name, storage_path=storage, callbacks=callbacks, verbose=2 if verbose else 0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )


def started(experiment_path: str) -> bool:
    """Whether Tune's loop ever saved the state of the experiment at ``experiment_path`` (an
    ``experiment_state-*.json`` there).  A study stopped before that (a Ctrl-C in its
    set-up) ran no trial Ray could restore: its ``--resume`` starts the search afresh
    (:func:`new`) under the same parent run."""
    import pyarrow.fs

    if "://" in experiment_path:
        fs, path = pyarrow.fs.FileSystem.from_uri(experiment_path)
    else:
        fs, path = pyarrow.fs.LocalFileSystem(), experiment_path
    found = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    return any(info.base_name.startswith("experiment_state-") for info in found)


def restored(experiment_path: str, trainable: Any, callbacks: list[Any]) -> Any:
    """The Tuner of an interrupted study: finished trials stay, unfinished ones continue.

    ``experiment_path`` must be the folder the driver derived itself
    (``study.parent.experiment_path``): restoring unpickles its ``tuner.pkl``.  The
    restored run's callbacks are this driver's (``callbacks``: its recorder and console),
    not the ones unpickled with the state (which know neither this driver, nor the tracking
    URI's credentials, nor the dataset the judges embed with).  Ray offers no public way to
    set them.
    """
    from ray import tune

    tuner = tune.Tuner.restore(experiment_path, trainable=trainable, resume_unfinished=True,
                               resume_errored=False)
    tuner._local_tuner.get_run_config().callbacks = callbacks
    return tuner


def best(results: Any) -> Any:
    """The trial with the best objective at its last epoch (a trial's figure is where it
    ended, not its luckiest epoch), or None."""
    try:
        result = results.get_best_result(metric=OBJECTIVE, mode=OBJECTIVE_MODE, scope="last")
    except RuntimeError:
        return None
    return result if result is not None and result.metrics and OBJECTIVE in result.metrics \
        else None
