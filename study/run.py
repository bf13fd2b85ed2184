"""``python -m study.run``: one hyperparameter study, from the command line to MLflow.

In the order things happen: parse and validate the command into a ``StudySpec`` -> load
the dataset once -> open the MLflow experiment and the study's parent run -> start or join
Ray -> Tune runs the trials (Optuna proposes, ASHA stops weak ones, ``MLflowRecorder``
records) -> print the best trial and the command that opens the MLflow UI.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from typing import Any

from study.objective import METRIC, MODE, TIME_ATTR
from study.space import SEARCHED, SearchSpace, trial_config
from study.spec import CPU_BUDGET, GPU_BUDGET, StudySpec, UsageError, parse_args
from trainables.config import ConfigError
from trainables.data import DataError, Dataset, load_dataset

log = logging.getLogger("study")


def main(argv: list[str] | None = None) -> int:
    try:
        spec = parse_args(argv)
        data = load_dataset(spec.dataset, spec.data_dir, download=spec.download)
        gpus = _detect_gpus(spec)
        space = build_space(spec, data, gpus)
    except (UsageError, DataError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return run_study(spec, data, space, gpus)


def _detect_gpus(spec: StudySpec) -> int:
    import torch

    gpus = torch.cuda.device_count() if spec.address is None else -1  # -1: ask the cluster
    if spec.gpus_per_trial and gpus == 0:
        raise UsageError(
            f"--gpus-per-trial {spec.gpus_per_trial} asks for GPUs but this machine has none; "
            "drop the option (trials then run on CPU cores)"
        )
    return gpus


def build_space(spec: StudySpec, data: Dataset, gpus: int) -> SearchSpace:
    """The search space for this dataset and device."""
    has_gpu = gpus != 0
    budget = dict(GPU_BUDGET if has_gpu else CPU_BUDGET)
    fixed = {k: v for k, v in budget.items() if k not in spec.pins}
    fixed["epochs"] = spec.max_epochs
    rgb = data.image_shape[0] == 3
    encoders = ("small_cnn", "resnet18") if rgb and has_gpu else ("small_cnn",)
    space = SearchSpace(pins=spec.pins, fixed=fixed, encoders=encoders, study_seed=spec.seed)
    return space


def run_study(spec: StudySpec, data: Dataset, space: SearchSpace, gpus: int) -> int:
    import mlflow
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from study.tracking import ROLE_TAG, MLflowRecorder, code_version, default_tracking_uri
    from study.trainable import train_trial

    tracking_uri = spec.tracking_uri or default_tracking_uri()
    client = mlflow.tracking.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(spec.experiment_name)
    experiment_id = (experiment.experiment_id if experiment
                     else client.create_experiment(spec.experiment_name))
    parent = client.create_run(experiment_id, run_name=f"study-seed{spec.seed}", tags={
        ROLE_TAG: "parent", "dataset": spec.dataset, "code_version": code_version(),
        "command": spec.command, "mlflow.source.name": "study.run",
    })
    parent_id = parent.info.run_id
    client.log_batch(parent_id, params=_params({
        "study_seed": spec.seed, "num_samples": spec.num_samples, "max_epochs": spec.max_epochs,
        "dataset": spec.dataset, "data_dir": str(spec.data_dir), "metric": METRIC,
        "searched": ",".join(k for k in SEARCHED if k not in spec.pins),
        "pins": json.dumps(spec.pins), "fixed": json.dumps(space.fixed),
        "encoders": ",".join(space.encoders), "scheduler": "ASHA",
        "grace_period": spec.grace_period, "reduction_factor": spec.reduction_factor,
    }))

    if spec.address:
        ray.init(address=spec.address, log_to_driver=False)
    else:
        ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    resources = _resources(spec, gpus, space)
    client.log_batch(parent_id, params=_params({
        "gpus_per_trial": resources.get("gpu", 0), "cpus_per_trial": resources["cpu"],
        "cluster_cpus": ray.cluster_resources().get("CPU", 0),
        "cluster_gpus": ray.cluster_resources().get("GPU", 0),
    }))

    searcher = OptunaSearch(space=space, metric=METRIC, mode=MODE, seed=spec.seed)
    if spec.max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=spec.max_concurrent)
    recorder = MLflowRecorder(tracking_uri, experiment_id, parent_id, data.classes,
                              spec.max_epochs)
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(train_trial, data=data), resources),
        tune_config=tune.TuneConfig(
            metric=METRIC, mode=MODE, num_samples=spec.num_samples, search_alg=searcher,
            reuse_actors=True,
            scheduler=ASHAScheduler(time_attr=TIME_ATTR, max_t=spec.max_epochs,
                                    grace_period=spec.grace_period,
                                    reduction_factor=spec.reduction_factor),
        ),
        run_config=tune.RunConfig(
            name=spec.experiment_name, storage_path=str(spec.storage_path),
            callbacks=[recorder], verbose=1,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )
    status = "FAILED"
    try:
        results = tuner.fit()
        status = "FINISHED"
    finally:
        write_errors = recorder.flush()
        counts = {o: list(recorder.outcomes.values()).count(o)
                  for o in ("finished", "stopped_early", "failed")}
        client.log_batch(parent_id, metrics=_metrics({f"trials_{k}": v for k, v in counts.items()}))
        client.set_terminated(parent_id, status)
        ray.shutdown()
    summary = _summary(results, counts, spec, tracking_uri, parent_id)
    print(summary)
    if write_errors:
        print(f"warning: {len(write_errors)} MLflow write(s) failed: {write_errors[0]}",
              file=sys.stderr)
        return 1
    return 0


def _resources(spec: StudySpec, gpus: int, space: SearchSpace) -> dict[str, float]:
    """Per-trial resources: a GPU fraction by encoder size when GPUs exist, else CPU cores."""
    gpu = spec.gpus_per_trial
    if gpu is None:
        big = "resnet18" in space.encoders or space.pins.get("encoder") == "resnet18"
        gpu = 0.0 if gpus == 0 else (0.5 if big else 0.25)
    return {"cpu": spec.cpus_per_trial, "gpu": gpu}


def _summary(results: Any, counts: dict[str, int], spec: StudySpec, tracking_uri: str,
             parent_id: str) -> str:
    lines = [f"study {spec.experiment_name}: {sum(counts.values())} trials "
             f"({counts['finished']} finished, {counts['stopped_early']} stopped early, "
             f"{counts['failed']} failed)"]
    try:
        best = results.get_best_result(metric=METRIC, mode=MODE, scope="all")
    except RuntimeError:
        best = None
    if best is not None and best.metrics:
        cfg = trial_config(best.config)
        lines.append(f"best trial {best.metrics.get('trial_id')}: {METRIC}="
                     f"{best.metrics.get(METRIC, float('nan')):.4f} knn_accuracy="
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
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, 0) for k, v in values.items()]


if __name__ == "__main__":
    sys.exit(main())
