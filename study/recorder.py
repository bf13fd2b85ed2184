"""MLflow records: one parent run per study, one child run per trial, written by the driver.

Every MLflow write of a study goes through the driver's writer threads (``MLflowRecorder``
queues them on ``study.writes.WriteQueue``; the end-of-trial judgements run in
``study.judges``): trials never open the store, so concurrent trials cannot lock an
SQLite file against each other, the Tune loop never waits on MLflow, and the same code works
on a cluster whose workers cannot reach the driver's disk.

Writes are idempotent, keyed by (trial id, epoch): a resumed study finds its trials' runs by
their ``trial_id`` tag and never logs an epoch twice, and ``reconcile`` compares what Ray
holds with what MLflow holds at the end and fills any gap (a driver killed between Ray
receiving a result and MLflow storing it loses nothing).  Ray saves its experiment state at
most every 10 s, so a driver killed just after a trial started can leave a run for a trial
Ray never saved; the resume runs that configuration slot again under a new trial id, and
``reconcile`` retires the forgotten run (tagged ``outcome=lost``, then soft-deleted: hidden
from the study and its counts, restorable with ``mlflow runs restore``) -- only a run that
this driver or one of the study's earlier drivers made (``DRIVER_TAG``), never another
live driver's.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ray import tune

from study.judges import Judges
from study.outcomes import describe, error_text, outcome_of
from study.schema import (
    DESCRIPTION_TAG,
    DRIVER_TAG,
    EMBEDDING_PLOT,
    END_METRICS,
    EPOCH_METRICS,
    ERROR_FILE,
    ERROR_TAG,
    FAILED,
    INTERRUPTED,
    LOST,
    LOST_REASON_TAG,
    NOTE_TAG,
    OPEN_OUTCOMES,
    OUTCOME_TAG,
    OUTCOMES,
    PARENT_TAG,
    PLACEMENT_TAGS,
    ROLE_TAG,
    ROLE_TRIAL,
    RUN_STATUS,
    RUNNING,
    STATE_FILE,
    TRIAL_ID_TAG,
    TSNE_PLOT,
)
from study.secrets import redact
from study.space import trial_config
from study.store import sqlite_path
from study.writes import WriteQueue
from trainables.data import Dataset
from trainables.final import Conclusion

log = logging.getLogger(__name__)

SERVER_WRITERS = 8  # writer threads for a tracking server
UNJUDGED = ("no end-of-trial judgement yet: the study was interrupted first; --resume makes "
            "it")


class MLflowRecorder(tune.Callback):
    """A Tune callback that records each trial as a child run of the study's parent run.

    on start: find (resumed trial) or create the child run, log every config value as a param.
    on each result: log the metrics of ``EPOCH_METRICS`` at step = epoch, once per epoch.
    on completion (finished or stopped by the scheduler): draw the t-SNE plot of the last
    evaluated embedding (from the trial's checkpoint), tag the outcome, close the run.
    on error: tag ``failed``, store the error text, close the run as FAILED.
    """

    def __init__(
        self, tracking_uri: str, experiment_id: str, parent_run_id: str,
        class_names: Sequence[str], max_epochs: int, judge_workers: int = 1,
        data: Dataset | None = None, resumed: bool = False, owner: str = "",
        owners: frozenset[str] = frozenset(),
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.max_epochs = max_epochs
        self.resumed = resumed  # trials may already have runs: look them up before creating
        self.owner = owner  # the driver's id, set on the runs this recorder creates
        self.owners = owners | ({owner} - {""})  # whose unended runs it may retire
        # One writer thread for a file store (concurrent writers would lock it); several for a
        # server, each trial always on the same one so that its writes stay in order.
        self.writers = 1 if sqlite_path(tracking_uri) is not None else SERVER_WRITERS
        self.writes = WriteQueue(self.writers)
        self.judges = Judges(judge_workers, data, class_names)
        self._runs: dict[str, str] = {}
        self._logged_steps: dict[str, set[int]] = {}
        # runs a resume found already ended, with the last epoch logged when they ended
        self._ended_at: dict[str, int] = {}
        self._ended: set[str] = set()  # trials Tune ended (completed or failed) in this run
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment state: keep only the settings, and
        # no credentials (a resumed study hands Tune a new recorder: study.tuner.restored).
        return {**self.__dict__, "tracking_uri": redact(self.tracking_uri), "writes": None,
                "judges": (self.judges.workers, self.judges.class_names), "_runs": {},
                "_logged_steps": {}, "_ended_at": {}, "_ended": set(), "_client": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        workers, class_names = state["judges"]
        self.__dict__.update(state, writes=WriteQueue(state["writers"]),
                             judges=Judges(workers, None, class_names))

    @property
    def abandoned(self) -> bool:
        """A Ctrl-C stopped the judging: judgements left were not waited for."""
        return self.judges.abandoned

    # ------------------------------------------------------------------ the writer thread
    def _submit(self, fn: Any, *args: Any, trial: str = "") -> None:
        self.writes.submit(fn, *args, key=trial)

    def flush(self) -> list[BaseException]:
        """Wait for every judgement and every queued write (a judgement queues the write
        that closes its run when it comes back); return the errors of the writes that
        failed.  A Ctrl-C while waiting abandons the judgements left
        (:meth:`abandon_judgements`) and keeps flushing the writes, which are quick."""
        return self.writes.flush(self.judges.busy, self.abandon_judgements)

    def abandon_judgements(self) -> None:
        """Stop judging (a Ctrl-C): judgements not started are cancelled, running ones
        stopped, and their runs closed as ``interrupted`` (KILLED) with a note, so that a
        ``--resume`` makes them; no new judgement starts."""
        self.judges.abandon()

    def close(self) -> None:
        """Flush, then stop the judges' processes and the writer thread."""
        self.flush()
        self.judges.shutdown()
        self.writes.shutdown()

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(self.tracking_uri)
        return self._client

    # ------------------------------------------------------------------ Tune's hooks
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._submit(self.ensure_run, trial.trial_id, dict(trial.config), trial=trial.trial_id)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        # buffered: one write logs every result that arrived meanwhile, one batch per run
        self.writes.buffer(trial.trial_id, dict(trial.config), dict(result), self.log_results)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended.add(trial.trial_id)
        outcome = outcome_of("TERMINATED", trial.last_result, self.max_epochs)
        self._submit(self.finish_run, trial.trial_id, dict(trial.config), trial.checkpoint,
                     outcome, None, trial=trial.trial_id)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended.add(trial.trial_id)
        self._submit(self.finish_run, trial.trial_id, dict(trial.config), trial.checkpoint,
                     FAILED, error_text(trial), trial=trial.trial_id)

    # ------------------------------------------------------------------ the writes
    def ensure_run(self, trial_id: str, config: dict[str, Any]) -> str:
        """The trial's child run: cached, found by its tag (a resumed study), or created."""
        if trial_id in self._runs:
            return self._runs[trial_id]
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.{TRIAL_ID_TAG} = '{trial_id}' and "
                          f"tags.`{PARENT_TAG}` = '{self.parent_run_id}'",
            max_results=1,
        ) if self.resumed else []
        # only the settings that mean something for this trial: filtering on a param in the
        # MLflow UI then never matches a trial it does not apply to
        params = {k: str(v) for k, v in trial_config(config).applied().items()}
        if found:
            run_id = found[0].info.run_id
            missing = {k: v for k, v in params.items() if k not in found[0].data.params}
            if missing:  # the driver died between creating the run and logging its params
                self._log_params(run_id, missing)
            history = self.client.get_metric_history(run_id, "epoch")
            self._logged_steps[run_id] = {m.step for m in history}
            if found[0].data.tags.get(OUTCOME_TAG) not in OPEN_OUTCOMES:
                self._ended_at[run_id] = max(self._logged_steps[run_id], default=0)
            elif found[0].info.status != "RUNNING":
                self.client.update_run(run_id, "RUNNING")
                self.client.set_tag(run_id, OUTCOME_TAG, RUNNING)
        else:
            run = self.client.create_run(
                self.experiment_id, run_name=f"trial-{trial_id}",
                tags={PARENT_TAG: self.parent_run_id, TRIAL_ID_TAG: trial_id,
                      ROLE_TAG: ROLE_TRIAL, OUTCOME_TAG: RUNNING,
                      **({DRIVER_TAG: self.owner} if self.owner else {})},
            )
            run_id = run.info.run_id
            self._log_params(run_id, params)
            self._logged_steps[run_id] = set()
        self._runs[trial_id] = run_id
        return run_id

    def _log_params(self, run_id: str, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])

    def log_results(self, trial_id: str, config: dict[str, Any],
                    results: Iterable[dict[str, Any]]) -> None:
        """Log each result's metrics at step = epoch, skipping epochs already logged."""
        from mlflow.entities import Metric, RunTag

        run_id = self.ensure_run(trial_id, config)
        logged = self._logged_steps[run_id]
        metrics, tags = [], []
        for result in results:
            step = int(result["epoch"])
            if step in logged:
                continue
            logged.add(step)
            timestamp = int(float(result.get("timestamp") or time.time()) * 1000)
            metrics += [Metric(key, float(result[key]), timestamp, step)
                        for key in EPOCH_METRICS if key in result]
            if step == 1:
                tags = [RunTag(k, str(result[k])) for k in PLACEMENT_TAGS if k in result]
        for start in range(0, len(metrics), 900):  # MLflow takes at most 1000 per batch
            self.client.log_batch(run_id, metrics=metrics[start : start + 900],
                                  tags=tags if start == 0 else [])

    def finish_run(self, trial_id: str, config: dict[str, Any], checkpoint: Any, outcome: str,
                   error: str | None) -> None:
        """Close a trial's run: its end-of-trial judgement (test scores, t-SNE map) goes to
        the judges' process pool, and the run is tagged and closed when that comes back;
        an interrupted trial or one without a checkpoint is closed at once."""
        run_id = self.ensure_run(trial_id, config)
        if self._ended_at.get(run_id, -1) == max(self._logged_steps[run_id], default=0):
            # its end is recorded already: the driver was killed after that and before Ray
            # saved the trial's end, so the resume ran its last epochs again (same numbers)
            return
        if checkpoint is None or outcome == INTERRUPTED:
            self._close(run_id, outcome, error, None)
            return
        if self.abandoned:
            self._close(run_id, FAILED if outcome == FAILED else INTERRUPTED, error, None,
                        note=UNJUDGED)
            return
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=True)
        self.judges.submit(trial_id, state["model"], trial_config(config), lambda done: (
            self._submit(self._close, run_id, outcome, error, done, trial=trial_id)))

    def _close(self, run_id: str, outcome: str, error: str | None, judged: Future | None,
               note: str | None = None) -> None:
        """Record the judgement (when there is one), the error, the outcome; end the run.
        A judgement cancelled or stopped by :meth:`abandon_judgements` leaves the run
        ``interrupted`` with a note instead."""
        judging = judged is not None
        try:
            if judged is not None and (judged.cancelled() or (
                    self.abandoned and judged.exception() is not None)):
                judged, note = None, UNJUDGED
                outcome = FAILED if outcome == FAILED else INTERRUPTED
            if note is not None:
                self.client.set_tag(run_id, NOTE_TAG, note)
            if judged is not None:
                try:
                    self._record_end(run_id, judged.result())
                except Exception as err:  # noqa: BLE001 - a judgement never leaves a run open
                    log.exception("the end-of-trial judgement of run %s failed", run_id)
                    self.client.set_tag(run_id, NOTE_TAG, f"no end-of-trial judgement: "
                                        f"{type(err).__name__}: {err}"[:5000])
            if error is not None:
                self.client.set_tag(run_id, ERROR_TAG, error.strip().splitlines()[-1][:5000])
                self.client.log_text(run_id, error, ERROR_FILE)
            self.client.set_tag(run_id, DESCRIPTION_TAG,
                                describe(outcome, self.client.get_run(run_id).data.metrics))
            self.client.set_tag(run_id, OUTCOME_TAG, outcome)
            self.client.set_terminated(run_id, RUN_STATUS.get(outcome, "FINISHED"))
        finally:
            if judging:
                self.judges.closed()

    def _record_end(self, run_id: str, end: Conclusion) -> None:
        from mlflow.entities import Metric

        step = max(self._logged_steps.get(run_id, set()) or {0})
        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, step)
                                               for k, v in end.metrics.items() if np.isfinite(v)])
        if end.notes:
            self.client.set_tag(run_id, NOTE_TAG, "; ".join(end.notes)[:5000])
        for name, png in ((TSNE_PLOT, end.tsne), (EMBEDDING_PLOT, end.raw)):
            if png is None:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / name
                path.write_bytes(png)
                self.client.log_artifact(run_id, str(path))

    # ------------------------------------------------------------------ after the study
    def reconcile(self, experiment_path: str) -> dict[str, int]:
        """Make MLflow hold everything Ray holds for this study; return outcome counts.

        For every trial in Ray's experiment state: its run exists, every reported epoch is
        logged, and a trial that ended has its outcome, plot and terminal status.  When a
        trial neither ended in this run nor before it (a Ctrl-C stopped Tune), the judgements
        left are abandoned, not waited for: a ``--resume`` makes them.  (Ray's saved status
        alone does not tell: it can still say PENDING for a trial whose worker died.)
        """
        analysis = tune.ExperimentAnalysis(experiment_path)
        if any(trial.status not in ("TERMINATED", "ERROR") and trial.trial_id not in self._ended
               for trial in analysis.trials):
            self.abandon_judgements()
        frames = analysis.trial_dataframes
        self._submit(self.retire_lost, {trial.trial_id for trial in analysis.trials})
        for trial in analysis.trials:
            config = dict(trial.config)
            frame = frames.get(trial.trial_id)
            if frame is not None and len(frame):
                rows = [row for row in frame.to_dict("records") if "epoch" in row]
                self._submit(self.log_results, trial.trial_id, config, rows,
                             trial=trial.trial_id)
            else:
                self._submit(self.ensure_run, trial.trial_id, config, trial=trial.trial_id)
            outcome = outcome_of(trial.status, trial.last_result, self.max_epochs)
            self._submit(self._finish_if_open, trial, config, outcome, trial=trial.trial_id)
        errors = self.flush()
        if errors:
            raise errors[0]
        return self.outcome_counts()

    def retire_lost(self, known_trial_ids: set[str]) -> list[str]:
        """Retire the unended child runs of trials Ray's saved state does not hold, of this
        driver's lineage only (its own runs, its former drivers', untagged ones): a run
        another driver made is never retired by this one."""
        lost = [r for r in self._trial_runs() if r.data.tags.get(TRIAL_ID_TAG) not in known_trial_ids
                and r.data.tags.get(OUTCOME_TAG) in OPEN_OUTCOMES
                and r.data.tags.get(DRIVER_TAG, "") in self.owners | {""}]
        for run in lost:
            run_id = run.info.run_id
            self.client.set_tag(run_id, OUTCOME_TAG, LOST)
            self.client.set_tag(run_id, LOST_REASON_TAG, "the driver was killed before Ray saved "
                                "this trial; the resumed study ran its slot again as a new trial")
            self.client.set_terminated(run_id, RUN_STATUS[LOST])
            self.client.delete_run(run_id)
            self._runs = {t: r for t, r in self._runs.items() if r != run_id}
        if lost:
            log.warning("retired %d run(s) of trials Ray had not saved before the driver died",
                        len(lost))
        return [r.info.run_id for r in lost]

    def _finish_if_open(self, trial: Any, config: dict[str, Any], outcome: str) -> None:
        run = self.client.get_run(self.ensure_run(trial.trial_id, config))
        if run.data.tags.get(OUTCOME_TAG) in OPEN_OUTCOMES or run.info.status == "RUNNING":
            error = error_text(trial) if outcome == FAILED else None
            self.finish_run(trial.trial_id, config, trial.checkpoint, outcome, error)

    def end_metrics(self, trial_id: str) -> dict[str, float]:
        """The end-of-trial metrics (test scores, structure) MLflow holds for a trial."""
        runs = [r for r in self._trial_runs() if r.data.tags.get(TRIAL_ID_TAG) == trial_id]
        return {k: v for k, v in runs[0].data.metrics.items() if k in END_METRICS} if runs else {}

    def outcome_counts(self) -> dict[str, int]:
        """Child runs of the parent run by outcome, as MLflow holds them."""
        outcomes = [r.data.tags.get(OUTCOME_TAG, RUNNING) for r in self._trial_runs()]
        return {o: outcomes.count(o) for o in OUTCOMES}

    def _trial_runs(self, page_size: int = 10_000) -> list:
        """The study's child runs (active ones: retired runs are deleted), every page."""
        runs: list = []
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`{PARENT_TAG}` = '{self.parent_run_id}'",
                max_results=page_size, page_token=token)
            runs += list(page)
            token = page.token
            if not token or not page:
                return runs
