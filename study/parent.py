"""The study's parent run in MLflow: created with the study's settings, found again by
``--resume``, closed with the trial counts.  (The trials' child runs: ``study.recorder``.)"""

from __future__ import annotations

import json
import logging
import os
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
    DESCRIPTION_TAG,
    DRIVER_TAG,
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    FLOOR,
    FORMER_DRIVERS_TAG,
    OBJECTIVE,
    PARENT_PARAMS,
    PARENT_TAG,
    PRESET_TAG,
    RAY_PATH_TAG,
    RESUMED_TAG_PREFIX,
    ROLE_PARENT,
    ROLE_TAG,
    SOURCE_TAG,
)
from study.secrets import redact
from study.space import SearchSpace
from study.spec import StudySpec, UsageError
from study.store import artifact_location, missing_sqlite_store
from trainables.data import Dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parent:
    """The parent run of one study, where Ray keeps the study's state, and the drivers
    that have run it (``owners``: this one and the earlier ones of a resumed study)."""

    experiment_id: str
    run_id: str
    ray_path: str
    owners: frozenset[str] = frozenset()


def experiment_path(spec: StudySpec, run_id: str) -> str:
    """Where Ray keeps the state of the study whose parent run is ``run_id``: always
    derived from ``--storage-path``, the study name and the run id, never read back from
    a tag (restoring unpickles what is there)."""
    return f"{spec.storage_path.rstrip('/')}/{spec.experiment_name}-{run_id[:8]}"


def create(client: Any, spec: StudySpec, plan: Plan, space: SearchSpace,
           resources: dict[str, float], cluster: dict[str, float], data: Dataset,
           judge_workers: int, driver_id: str = "") -> Parent:
    """A new parent run (and the experiment, on first use) with the study's settings."""
    experiment = client.get_experiment_by_name(spec.experiment_name)
    experiment_id = (experiment.experiment_id if experiment
                     else client.create_experiment(
                         spec.experiment_name, artifact_location=artifact_location(spec.tracking_uri)))
    client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    run = client.create_run(experiment_id, run_name=f"study-seed{spec.seed}", tags={
        ROLE_TAG: ROLE_PARENT, DATASET_TAG: spec.dataset, CODE_VERSION_TAG: code_version(),
        PRESET_TAG: plan.preset, COMMAND_TAG: spec.command, SOURCE_TAG: "study.run",
        **({DRIVER_TAG: driver_id} if driver_id else {}),
    })
    run_id = run.info.run_id
    ray_path = experiment_path(spec, run_id)
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
    return Parent(experiment_id, run_id, ray_path, frozenset({driver_id} - {""}))


def find(spec: StudySpec) -> Any:
    """The latest parent run of ``spec.experiment_name``, for ``--resume``; ``UsageError``
    when there is none, when its ``ray_experiment_path`` tag names another folder than
    :func:`experiment_path` (a moved ``--storage-path``, or a forged tag), or when Ray's
    state is not there.  Nothing is unpickled here."""
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

    path = experiment_path(spec, parents[0].info.run_id)
    tagged = parents[0].data.tags[RAY_PATH_TAG]
    if not _same_place(tagged, path):
        raise UsageError(
            f"--resume: the study's parent run says Ray's state is in {redact(tagged)[:300]!r}, "
            f"but this study keeps it in {path} (--storage-path + name + run id); refusing "
            "to restore from another folder: pass the --storage-path the study was started "
            "with")
    if not _inside(path, spec.storage_path):
        raise UsageError(f"--resume: {path} leads outside --storage-path (to "
                         f"{os.path.realpath(path)}); refusing to restore from it")
    if not tune.Tuner.can_restore(path) and client.search_runs(
            [experiment.experiment_id], max_results=1,
            filter_string=f"tags.`{PARENT_TAG}` = '{parents[0].info.run_id}'"):
        raise UsageError(f"--resume: Ray's state of {spec.experiment_name!r} is not in {path}; "
                         "pass the --storage-path the study was started with")
    # (no trial run and no state: the study was stopped in its set-up, and starts afresh)
    return parents[0]


def _same_place(tagged: str, path: str) -> bool:
    """The tag names ``path``: the same string, or for local paths the same real folder."""
    if tagged.rstrip("/") == path:
        return True
    if "://" in path or "://" in tagged:
        return False
    return os.path.realpath(tagged) == os.path.realpath(path)


def _inside(path: str, storage: str) -> bool:
    """A local ``path`` resolves (symlinks followed) to a folder inside ``storage``."""
    if "://" in path:
        return path.startswith(storage.rstrip("/") + "/")
    real, root = Path(os.path.realpath(path)), Path(os.path.realpath(storage))
    return root in real.parents


def reopen(client: Any, run: Any, spec: StudySpec, driver_id: str = "") -> Parent:
    """Mark a found parent run running again, note the resume's command and this driver
    (the earlier ones become former drivers: this driver holds the study's lock, so they
    have ended)."""
    run_id = run.info.run_id
    tags = run.data.tags
    former = [*tags.get(FORMER_DRIVERS_TAG, "").split(), *tags.get(DRIVER_TAG, "").split()]
    client.update_run(run_id, "RUNNING")
    client.set_tag(run_id, f"{RESUMED_TAG_PREFIX}{int(time.time())}", spec.command)
    if driver_id:
        if former:
            client.set_tag(run_id, FORMER_DRIVERS_TAG, " ".join(former[-100:]))
        client.set_tag(run_id, DRIVER_TAG, driver_id)
    return Parent(run.info.experiment_id, run_id, experiment_path(spec, run_id),
                  frozenset(former) | frozenset({driver_id} - {""}))


def close(client: Any, parent: Parent, counts: dict[str, int], status: str,
          floor: dict[str, float], description: str = "") -> None:
    """Log the trial counts (``trials_<outcome>``) and the raw-pixel floor (``floor_``), set
    the run's description in the MLflow UI (the study's summary), and end the parent run."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    values = {**{f"trials_{k}": v for k, v in counts.items()},
              **{f"{FLOOR}{k}": v for k, v in floor.items()}}
    if values:
        client.log_batch(parent.run_id, metrics=[Metric(k, float(v), now, 0)
                                                 for k, v in values.items()])
    if description:
        client.set_tag(parent.run_id, DESCRIPTION_TAG, description)
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
