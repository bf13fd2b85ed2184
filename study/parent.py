"""The study's parent run in MLflow: created with the study's settings, found again by
``--resume``, closed with the trial counts.  (The trials' child runs: ``study.recorder``.)"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study.presets import Plan
from study.schema import (
    CODE_VERSION_TAG,
    COMMAND_TAG,
    DATASET_TAG,
    FLOOR,
    OBJECTIVE,
    PARENT_PARAMS,
    PRESET_TAG,
    RAY_PATH_TAG,
    RESUMED_TAG_PREFIX,
    ROLE_PARENT,
    ROLE_TAG,
    SOURCE_TAG,
)
from study.space import SearchSpace
from study.spec import StudySpec, UsageError
from study.store import missing_sqlite_store
from trainables.data import Dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parent:
    """The parent run of one study, and where Ray keeps the study's state."""

    experiment_id: str
    run_id: str
    ray_path: str


def create(client: Any, spec: StudySpec, plan: Plan, space: SearchSpace,
           resources: dict[str, float], cluster: dict[str, float], data: Dataset,
           judge_workers: int) -> Parent:
    """A new parent run (and the experiment, on first use) with the study's settings."""
    experiment = client.get_experiment_by_name(spec.experiment_name)
    experiment_id = (experiment.experiment_id if experiment
                     else client.create_experiment(spec.experiment_name))
    run = client.create_run(experiment_id, run_name=f"study-seed{spec.seed}", tags={
        ROLE_TAG: ROLE_PARENT, DATASET_TAG: spec.dataset, CODE_VERSION_TAG: code_version(),
        PRESET_TAG: plan.preset, COMMAND_TAG: spec.command, SOURCE_TAG: "study.run",
    })
    run_id = run.info.run_id
    ray_path = f"{spec.storage_path.rstrip('/')}/{spec.experiment_name}-{run_id[:8]}"
    client.set_tag(run_id, RAY_PATH_TAG, ray_path)
    params = {
        "study_seed": spec.seed, "num_samples": plan.trials, "max_epochs": spec.max_epochs,
        "dataset": spec.dataset, "data_dir": str(spec.data_dir), "metric": OBJECTIVE,
        "val_size": len(data.val_y), "val_source": data.val_source,
        "preset": plan.preset, "searched": ",".join(plan.searched),
        "pins": json.dumps(spec.pins), "fixed": json.dumps(space.fixed),
        "encoders": ",".join(space.encoders), **plan.params,
        "gpus_per_trial": resources.get("gpu", 0), "cpus_per_trial": resources["cpu"],
        "cluster_cpus": cluster.get("CPU", 0), "cluster_gpus": cluster.get("GPU", 0),
        "judge_workers": judge_workers,
    }
    unknown = set(params) - set(PARENT_PARAMS)
    assert not unknown, f"parent params missing from study.schema: {unknown}"
    log_params(client, run_id, params)
    return Parent(experiment_id, run_id, ray_path)


def find(spec: StudySpec) -> Any:
    """The latest parent run of ``spec.experiment_name``, for ``--resume``; ``UsageError``
    when there is none, or Ray's state of it is not where its tag says."""
    from mlflow.tracking import MlflowClient

    if missing_sqlite_store(spec.tracking_uri) is not None:
        raise UsageError(f"--resume: no study named {spec.experiment_name!r}: there is no "
                         f"store at {spec.tracking_uri}; pass the --tracking-uri the study used")
    client = MlflowClient(spec.tracking_uri)
    experiment = client.get_experiment_by_name(spec.experiment_name)
    parents = [] if experiment is None else client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{ROLE_TAG}` = '{ROLE_PARENT}'",
        order_by=["attributes.start_time DESC"], max_results=1)
    if not parents or RAY_PATH_TAG not in parents[0].data.tags:
        raise UsageError(f"--resume: no study named {spec.experiment_name!r} in "
                         f"{spec.tracking_uri}; start it without --resume")
    from ray import tune

    path = parents[0].data.tags[RAY_PATH_TAG]
    if not tune.Tuner.can_restore(path):
        raise UsageError(f"--resume: Ray's state of {spec.experiment_name!r} is not in {path}; "
                         "pass the --storage-path the study was started with")
    return parents[0]


def reopen(client: Any, run: Any, spec: StudySpec) -> Parent:
    """Mark a found parent run running again and note the resume's command."""
    client.update_run(run.info.run_id, "RUNNING")
    client.set_tag(run.info.run_id, f"{RESUMED_TAG_PREFIX}{int(time.time())}", spec.command)
    return Parent(run.info.experiment_id, run.info.run_id, run.data.tags[RAY_PATH_TAG])


def close(client: Any, parent: Parent, counts: dict[str, int], status: str,
          floor: dict[str, float]) -> None:
    """Log the trial counts (``trials_<outcome>``) and the raw-pixel floor (``floor_``), and
    end the parent run."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    values = {**{f"trials_{k}": v for k, v in counts.items()},
              **{f"{FLOOR}{k}": v for k, v in floor.items()}}
    if values:
        client.log_batch(parent.run_id, metrics=[Metric(k, float(v), now, 0)
                                                 for k, v in values.items()])
    client.set_terminated(parent.run_id, status)


class FloorJob:
    """The raw-pixel floor (``trainables.floor``), computed on a thread of the driver while
    the trials run: it is needed only at the end.  ``result()`` waits for it; a failure is
    logged, never raised (the study does not depend on it)."""

    def __init__(self, data: Dataset, budget: dict[str, Any]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from trainables.config import DIMENSIONS, TrialConfig

        settings = {k: v for k, v in budget.items() if k in DIMENSIONS}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="floor")
        self._future = self._pool.submit(_floor, data, TrialConfig.from_dict(settings))

    def result(self) -> dict[str, float]:
        try:
            return self._future.result()
        except Exception:
            log.exception("the raw-pixel floor could not be computed")
            return {}
        finally:
            self._pool.shutdown(wait=False)


def _floor(data: Dataset, budget: Any) -> dict[str, float]:
    from trainables.floor import raw_pixel_floor

    return raw_pixel_floor(data, budget)


def floor_of(client: Any, parent: Parent) -> dict[str, float]:
    """The floor a study logged before it was resumed (``floor_`` metrics, unprefixed)."""
    metrics = client.get_run(parent.run_id).data.metrics
    return {k[len(FLOOR):]: v for k, v in metrics.items() if k.startswith(FLOOR)}


def log_params(client: Any, run_id: str, values: dict[str, Any]) -> None:
    from mlflow.entities import Param

    client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in values.items()])


def code_version() -> str:
    """The git commit of the code (with ``-dirty`` for uncommitted changes), or 'unknown'."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty.strip() else "")
