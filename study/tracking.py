"""MLflow records: one parent run per study, one child run per trial, written by the driver.

Every MLflow write of a study goes through one writer thread in the driver process
(``MLflowRecorder``): trials never open the store, so concurrent trials cannot lock an
SQLite file against each other, the Tune loop never waits on MLflow, and the same code works
on a cluster whose workers cannot see the driver's disk.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from ray import tune

from study.space import trial_config
from study.trainable import EMBEDDING_FILE
from trainables.evaluate import embedding_plots
from trainables.trial import METRIC_DOCS

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
TRIAL_ID_TAG = "trial_id"
OUTCOME_TAG = "outcome"  # finished | stopped_early | failed | running
ROLE_TAG = "study.role"  # parent | trial
PLACEMENT_KEYS = ("node", "device_name", "torch_threads")


def default_tracking_uri(workdir: Path | None = None) -> str:
    """SQLite store at an absolute path in the working directory (``mlflow ui`` there finds
    it by ``--backend-store-uri``)."""
    return f"sqlite:///{(workdir or Path.cwd()).absolute() / 'mlflow.db'}"


def code_version() -> str:
    """The git commit of the code (with ``-dirty`` for uncommitted changes), or 'unknown'."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty.strip() else "")


def outcome_of(trial: Any, max_epochs: int) -> str:
    """``finished`` when the trial trained every epoch, else ``stopped_early``."""
    epochs = int((trial.last_result or {}).get("epoch", 0))
    return "finished" if epochs >= max_epochs else "stopped_early"


class MLflowRecorder(tune.Callback):
    """A Tune callback that records each trial as a child run of the study's parent run.

    on start: create the child run, log every config value as a param.
    on each result: log the metrics of ``METRIC_DOCS`` at step = epoch.
    on completion (finished or stopped by the scheduler): draw the t-SNE plot of the last
    evaluated embedding (from the trial's checkpoint), tag the outcome, close the run.
    on error: tag ``failed``, store the error text, close the run as FAILED.
    """

    def __init__(
        self, tracking_uri: str, experiment_id: str, parent_run_id: str,
        class_names: Sequence[str], max_epochs: int,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.class_names = tuple(class_names)
        self.max_epochs = max_epochs
        self.run_ids: dict[str, str] = {}
        self.outcomes: dict[str, str] = {}
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment state: leave out thread and client.
        return {**self.__dict__, "_writer": None, "_pending": [], "_client": None}

    # The writer thread does every MLflow call, in the order they were submitted.
    def _submit(self, fn: Callable[..., None], *args: Any) -> None:
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-writer")
        self._pending.append(self._writer.submit(self._guarded, fn, *args))

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a failed write is reported at the end, not lost
            log.exception("MLflow write %s failed", fn.__name__)
            raise

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(self.tracking_uri)
        return self._client

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._submit(self._start_run, trial.trial_id, dict(trial.config))

    def _start_run(self, trial_id: str, config: dict[str, Any]) -> None:
        cfg = trial_config(config)
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"trial-{trial_id}",
            tags={PARENT_TAG: self.parent_run_id, TRIAL_ID_TAG: trial_id,
                  ROLE_TAG: "trial", OUTCOME_TAG: "running"},
        )
        self.run_ids[trial_id] = run.info.run_id
        from mlflow.entities import Param

        params = [Param(k, str(v)) for k, v in cfg.to_dict().items()]
        self.client.log_batch(run.info.run_id, params=params)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        self._submit(self._log_result, trial.trial_id, dict(result))

    def _log_result(self, trial_id: str, result: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        run_id = self.run_ids[trial_id]
        step = int(result["epoch"])
        timestamp = int(result.get("timestamp", 0) * 1000) or None
        metrics = [
            Metric(key, float(result[key]), timestamp or 0, step)
            for key in METRIC_DOCS if key in result
        ]
        self.client.log_batch(run_id, metrics=metrics)
        if step == 1:
            for key in PLACEMENT_KEYS:
                if key in result:
                    self.client.set_tag(run_id, key, str(result[key]))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        outcome = outcome_of(trial, self.max_epochs)
        self.outcomes[trial.trial_id] = outcome
        self._submit(self._finish_run, trial.trial_id, dict(trial.config), trial.checkpoint,
                     outcome, None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.outcomes[trial.trial_id] = "failed"
        error = _error_text(trial)
        self._submit(self._finish_run, trial.trial_id, dict(trial.config), trial.checkpoint,
                     "failed", error)

    def _finish_run(
        self, trial_id: str, config: dict[str, Any], checkpoint: Any, outcome: str,
        error: str | None,
    ) -> None:
        run_id = self.run_ids[trial_id]
        if checkpoint is not None:
            self._log_plots(run_id, trial_id, config, checkpoint)
        if error is not None:
            self.client.set_tag(run_id, "error", error.strip().splitlines()[-1][:5000])
            self.client.log_text(run_id, error, "error.txt")
        self.client.set_tag(run_id, OUTCOME_TAG, outcome)
        self.client.set_terminated(run_id, "FAILED" if outcome == "failed" else "FINISHED")

    def _log_plots(self, run_id: str, trial_id: str, config: dict[str, Any],
                   checkpoint: Any) -> None:
        cfg = trial_config(config)
        with checkpoint.as_directory() as folder, np.load(Path(folder) / EMBEDDING_FILE) as npz:
            embedding, labels = npz["embedding"], npz["labels"]
        title = (f"trial {trial_id}: {cfg.mode}/{cfg.loss}, aug={cfg.augmentation}, "
                 f"positives={cfg.positives}, D={cfg.embedding_dim}, margin={cfg.margin:.3g}")
        for name, png in embedding_plots(embedding, labels, self.class_names, title,
                                         seed=cfg.seed).items():
            _log_bytes(self.client, run_id, png, name)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.flush()

    def flush(self) -> list[BaseException]:
        """Wait for every queued write; return the errors of those that failed."""
        errors = [f.exception() for f in self._pending]
        self._pending = [f for f in self._pending if not f.done()]
        return [e for e in errors if e is not None]


def _log_bytes(client: Any, run_id: str, data: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        client.log_artifact(run_id, str(path))


def _error_text(trial: Any) -> str:
    """The trial's error message and traceback as Ray recorded it."""
    for attr in ("error_file", "pickled_error_file"):
        path = getattr(trial, attr, None)
        if path and attr == "error_file" and Path(path).is_file():
            return Path(path).read_text(errors="replace")
    msg = getattr(trial, "error_msg", None)
    return str(msg) if msg else "trial failed (no error text recorded by Ray)"

