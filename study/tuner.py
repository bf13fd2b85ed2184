"""Ray Tune's side of a study: per-trial resources, the trainable, a new or restored Tuner,
and the best result."""

from __future__ import annotations

import os
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


def judge_workers(spec: StudySpec, per_trial: dict[str, float], cluster: dict[str, float]) -> int:
    """Processes for the end-of-trial judgements: ``--judge-workers``, else the cores of this
    machine that its trials leave (a local Ray runs as many trials as its CPUs, or its GPUs
    at their fraction, allow), else half of them on a cluster, whose trials run elsewhere
    too; at least 1."""
    if spec.judge_workers:
        return spec.judge_workers
    cores = os.cpu_count() or 1
    if spec.address is not None:
        return max(1, cores // 2)
    gpu = per_trial.get("gpu", 0.0)
    slots = int(cluster.get("GPU", 0) / gpu) if gpu else int(cluster.get("CPU", cores)
                                                            / per_trial["cpu"])
    if spec.max_concurrent:
        slots = min(slots, spec.max_concurrent)
    return max(1, int(cores - slots * per_trial["cpu"]))


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
