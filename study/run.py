"""``python -m study.run``: one hyperparameter study, from the command line to MLflow.

In the order things happen: parse and validate the command into a ``StudySpec`` -> check the
MLflow store and Ray's storage answer -> load the dataset once -> open the MLflow experiment
and the study's parent run (or find it again, ``--resume``) -> start or join Ray -> Tune runs
the trials (Optuna proposes, ASHA stops weak ones, ``MLflowRecorder`` records) -> reconcile
MLflow with Ray -> print the best trial and the command that opens the MLflow UI.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from study.objective import METRIC, MODE, TIME_ATTR
from study.preflight import check_storage_path, check_tracking_uri
from study.space import SEARCHED, SearchSpace, trial_config
from study.spec import CPU_BUDGET, GPU_BUDGET, StudySpec, UsageError, parse_args
from trainables.config import ConfigError
from trainables.data import DataError, Dataset, load_dataset

EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # no store-migration chatter
    try:
        spec = parse_args(argv)
        tracking_uri = spec.tracking_uri or _default_uri()
        check_tracking_uri(tracking_uri)
        check_storage_path(spec.storage_path)
        if spec.address is None:
            _check_gpus(spec, _local_gpus())  # before Ray starts
        parent = _find_parent(spec, tracking_uri) if spec.resume else None
        data = load_dataset(spec.dataset, spec.data_dir, download=spec.download)
        # Start a local Ray or join --address; refuses a cluster that cannot hold the study.
        gpus = _connect(spec, tracking_uri)
        space = build_space(spec, data, gpus)
    except (UsageError, DataError, ConfigError) as err:
        _shutdown_ray()
        print(f"error: {err}", file=sys.stderr)
        return 2
    return run_study(spec, tracking_uri, data, space, gpus, parent)


def _default_uri() -> str:
    from study.tracking import default_tracking_uri

    return default_tracking_uri()


def _local_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def _check_gpus(spec: StudySpec, gpus: int) -> None:
    if spec.gpus_per_trial and gpus == 0:
        where = "this machine" if spec.address is None else "the cluster"
        raise UsageError(
            f"--gpus-per-trial {spec.gpus_per_trial} asks for GPUs but {where} has none; "
            "drop the option (trials then run on CPU cores)"
        )


def _connect(spec: StudySpec, tracking_uri: str) -> int:
    """Start a local Ray or join ``--address`` (``study.cluster.connect`` refuses a cluster
    that cannot hold the study); the number of GPUs to plan with."""
    from study.cluster import connect

    info = connect(spec, tracking_uri)
    gpus = int(info.gpus)
    _check_gpus(spec, gpus)
    return gpus


def _shutdown_ray() -> None:
    if "ray" in sys.modules:
        import ray

        ray.shutdown()


def build_space(spec: StudySpec, data: Dataset, gpus: int) -> SearchSpace:
    """The search space for this dataset and device."""
    has_gpu = gpus != 0
    budget = dict(GPU_BUDGET if has_gpu else CPU_BUDGET)
    fixed = {k: v for k, v in budget.items() if k not in spec.pins}
    fixed["epochs"] = spec.max_epochs
    rgb = data.image_shape[0] == 3
    encoders = ("small_cnn", "resnet18") if rgb and has_gpu else ("small_cnn",)
    return SearchSpace(pins=spec.pins, fixed=fixed, encoders=encoders, study_seed=spec.seed)


def _find_parent(spec: StudySpec, tracking_uri: str) -> Any:
    """The latest parent run of the experiment, for ``--resume``."""
    from mlflow.tracking import MlflowClient

    from study.tracking import RAY_PATH_TAG, ROLE_TAG

    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri[10:]).is_file():
        raise UsageError(f"--resume: no study named {spec.experiment_name!r}: there is no "
                         f"store at {tracking_uri}; pass the --tracking-uri the study used")
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(spec.experiment_name)
    parents = [] if experiment is None else client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{ROLE_TAG}` = 'parent'",
        order_by=["attributes.start_time DESC"], max_results=1)
    if not parents or RAY_PATH_TAG not in parents[0].data.tags:
        raise UsageError(f"--resume: no study named {spec.experiment_name!r} in {tracking_uri}; "
                         "start it without --resume")
    from ray import tune

    path = parents[0].data.tags[RAY_PATH_TAG]
    if not tune.Tuner.can_restore(path):
        raise UsageError(f"--resume: Ray's state of {spec.experiment_name!r} is not in {path}; "
                         "pass the --storage-path the study was started with")
    return parents[0]


def run_study(spec: StudySpec, tracking_uri: str, data: Dataset, space: SearchSpace,
              gpus: int, parent: Any | None) -> int:
    import mlflow
    import ray
    from ray import tune

    from study.tracking import RAY_PATH_TAG, ROLE_TAG, MLflowRecorder, code_version

    client = mlflow.tracking.MlflowClient(tracking_uri)
    if parent is None:
        experiment = client.get_experiment_by_name(spec.experiment_name)
        experiment_id = (experiment.experiment_id if experiment
                         else client.create_experiment(spec.experiment_name))
        parent = client.create_run(experiment_id, run_name=f"study-seed{spec.seed}", tags={
            ROLE_TAG: "parent", "dataset": spec.dataset, "code_version": code_version(),
            "preset": spec.preset or "search",
            "command": spec.command, "mlflow.source.name": "study.run",
        })
        parent_id = parent.info.run_id
        ray_name = f"{spec.experiment_name}-{parent_id[:8]}"
        client.set_tag(parent_id, RAY_PATH_TAG, f"{spec.storage_path.rstrip('/')}/{ray_name}")
        client.log_batch(parent_id, params=_params({
            "study_seed": spec.seed, "num_samples": spec.num_samples,
            "max_epochs": spec.max_epochs, "dataset": spec.dataset,
            "data_dir": str(spec.data_dir), "metric": METRIC,
            "searched": "augmentation,mode" if spec.preset else
                        ",".join(k for k in SEARCHED if k not in spec.pins),
            "pins": json.dumps(spec.pins), "fixed": json.dumps(space.fixed),
            "encoders": ",".join(space.encoders),
            "scheduler": "FIFO" if spec.preset else "ASHA", "preset": spec.preset or "search",
            "grid_seeds": spec.grid_seeds if spec.preset else 0,
            "grace_period": spec.grace_period, "reduction_factor": spec.reduction_factor,
        }))
    else:
        experiment_id, parent_id = parent.info.experiment_id, parent.info.run_id
        client.update_run(parent_id, "RUNNING")
        client.set_tag(parent_id, f"resumed_{int(time.time())}", spec.command)
    experiment_path = client.get_run(parent_id).data.tags[RAY_PATH_TAG]

    resources = _resources(spec, gpus, space)
    if not spec.resume:
        client.log_batch(parent_id, params=_params({
            "gpus_per_trial": resources.get("gpu", 0), "cpus_per_trial": resources["cpu"],
            "cluster_cpus": ray.cluster_resources().get("CPU", 0),
            "cluster_gpus": ray.cluster_resources().get("GPU", 0),
        }))
    recorder = MLflowRecorder(tracking_uri, experiment_id, parent_id, data.classes,
                              spec.max_epochs)
    trainable = _trainable(data, resources)
    status, counts, best = "FAILED", {}, None
    try:
        if spec.resume:
            tuner = tune.Tuner.restore(experiment_path, trainable=trainable,
                                       resume_unfinished=True, resume_errored=False)
        else:
            tuner = _new_tuner(spec, space, trainable, recorder, experiment_path)
        results = tuner.fit()
        counts = recorder.reconcile(results.experiment_path)
        interrupted = counts["interrupted"] > 0 or sum(counts.values()) < spec.num_samples
        status = "KILLED" if interrupted else "FINISHED"
        best = _best(results)
    finally:
        recorder.flush()
        if counts:
            client.log_batch(parent_id, metrics=_metrics(
                {f"trials_{k}": v for k, v in counts.items()}))
        client.set_terminated(parent_id, status)
        ray.shutdown()
    print(_summary(spec, counts, best, tracking_uri, parent_id))
    if status == "KILLED":
        resume = shlex.split(spec.command)
        if "--resume" not in resume:
            resume.append("--resume")
        if "--experiment-name" not in resume:
            resume += ["--experiment-name", spec.experiment_name]
        print(f"interrupted; resume with:\n  {shlex.join(resume)}")
        return EXIT_INTERRUPTED
    return 0


def _trainable(data: Dataset, resources: dict[str, float]) -> Any:
    from ray import tune

    from study.trainable import train_trial

    return tune.with_resources(tune.with_parameters(train_trial, data=data), resources)


def _new_tuner(spec: StudySpec, space: SearchSpace, trainable: Any, recorder: Any,
               experiment_path: str) -> Any:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from study.presets import seed_grid

    searcher: Any
    param_space: dict[str, Any] = {}
    num_samples = spec.num_samples
    if spec.preset == "seed-grid":
        # a fixed grid, every trial trained to the end: no search, no early stopping
        param_space = seed_grid(spec.grid_seeds, spec.seed, space.fixed, spec.pins)
        searcher = BasicVariantGenerator(max_concurrent=spec.max_concurrent or 0)
        scheduler: Any = FIFOScheduler()
        num_samples = 1  # once through the grid
    else:
        searcher = OptunaSearch(space=space, metric=METRIC, mode=MODE, seed=spec.seed)
        if spec.max_concurrent:
            searcher = ConcurrencyLimiter(searcher, max_concurrent=spec.max_concurrent)
        scheduler = ASHAScheduler(time_attr=TIME_ATTR, max_t=spec.max_epochs,
                                  grace_period=spec.grace_period,
                                  reduction_factor=spec.reduction_factor)
    storage, _, name = experiment_path.rpartition("/")
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=METRIC, mode=MODE, num_samples=num_samples, search_alg=searcher,
            reuse_actors=True, scheduler=scheduler,
        ),
        run_config=tune.RunConfig(
            name=name, storage_path=storage, callbacks=[recorder], verbose=1,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )


def _resources(spec: StudySpec, gpus: int, space: SearchSpace) -> dict[str, float]:
    """Per-trial resources: a GPU fraction by encoder size when GPUs exist, else CPU cores."""
    gpu = spec.gpus_per_trial
    if gpu is None:
        big = "resnet18" in space.encoders or space.pins.get("encoder") == "resnet18"
        gpu = 0.0 if gpus == 0 else (0.5 if big else 0.25)
    return {"cpu": spec.cpus_per_trial, "gpu": gpu}


def _best(results: Any) -> Any:
    try:
        best = results.get_best_result(metric=METRIC, mode=MODE, scope="all")
    except RuntimeError:
        return None
    return best if best is not None and best.metrics and METRIC in best.metrics else None


def _summary(spec: StudySpec, counts: dict[str, int], best: Any, tracking_uri: str,
             parent_id: str) -> str:
    lines = [f"study {spec.experiment_name}: {sum(counts.values())} trials ("
             + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()) + ")"]
    if best is not None:
        cfg = trial_config(best.config)
        lines.append(f"best trial {best.metrics.get('trial_id')}: {METRIC}="
                     f"{best.metrics[METRIC]:.4f} knn_accuracy="
                     f"{best.metrics.get('knn_accuracy', float('nan')):.4f} "
                     f"after {int(best.metrics.get('epoch', 0))} epoch(s)")
        searched = {k: v for k, v in asdict(cfg).items() if k in SEARCHED}
        lines.append("  settings: " + ", ".join(f"{k}={v}" for k, v in searched.items()))
    else:
        lines.append("no trial reported a result")
    lines.append(f"MLflow parent run {parent_id}; browse with:")
    lines.append(f"  mlflow ui --backend-store-uri {tracking_uri}")
    return "\n".join(lines)


def _params(values: dict[str, Any]) -> list:
    from mlflow.entities import Param

    return [Param(k, str(v)[:6000]) for k, v in values.items()]


def _metrics(values: dict[str, float]) -> list:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, 0) for k, v in values.items()]


if __name__ == "__main__":
    sys.exit(main())
