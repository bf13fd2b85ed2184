"""MLflow -> pandas: one row per trial (params, final metrics, outcome), one per parent run.

The layout read here is ``study.schema``'s: one experiment per study name, a parent run per
study, one child run per trial with every ``TrialConfig`` field as a param and metrics
logged per epoch (the run's latest value is the final one).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.dimensions import ANALYSED, dimension
from study.schema import (
    CODE_VERSION_TAG,
    END_METRICS,
    EPOCH_METRICS,
    ERROR_TAG,
    FAILED,
    FINISHED,
    FLOOR,
    INTERRUPTED,
    OBJECTIVE,
    OUTCOME_TAG,
    PARENT_METRICS,
    PARENT_PARAMS,
    PARENT_TAG,
    PRESET_TAG,
    ROLE_PARENT,
    ROLE_TAG,
    ROLE_TRIAL,
    RUNNING,
    TRIAL_ID_TAG,
)
from study.schema import OUTCOMES as RECORDED_OUTCOMES
from trainables.config import DIMENSIONS

# Every outcome tag value, in report order (a trial still open is tagged ``running``).
OUTCOMES = (*RECORDED_OUTCOMES, RUNNING)
# Metric names as logged -> column names in the trials frame. Two are renamed: ``epoch``
# counts the epochs a trial ran, and ``loss`` is also the param naming the loss function.
_RENAMED = {"epoch": "epochs_run", "loss": "train_loss"}
METRIC_COLUMNS = {key: _RENAMED.get(key, key)
                  for key in dict.fromkeys((*EPOCH_METRICS, *END_METRICS))}
_STATUS_OUTCOME = {"RUNNING": RUNNING, "SCHEDULED": RUNNING, "FAILED": FAILED,
                   "KILLED": INTERRUPTED, "FINISHED": FINISHED}


class ExperimentNotFoundError(LookupError):
    """No experiment of that name; ``available`` lists the names that exist."""

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = available
        listing = ", ".join(available) if available else "(none)"
        super().__init__(f"experiment {name!r} not found; existing experiments: {listing}")


@dataclass(frozen=True)
class Study:
    """Everything the report needs about one experiment.

    trials: one row per trial run (see ``trials_frame``).
    parents: one row per parent run (see ``parents_frame``).
    history: the objective of every trial at every epoch: ``run_id, epoch, value``.
    searched: the dimensions searched in this study, in ``SEARCHED`` order.
    not_searched: dimension -> why it is left out (pinned, or one value only).
    """

    name: str
    experiment_id: str
    trials: pd.DataFrame
    parents: pd.DataFrame
    history: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["run_id", "epoch", "value"]))
    searched: tuple[str, ...] = ()
    not_searched: dict[str, str] = field(default_factory=dict)

    @property
    def scored(self) -> pd.DataFrame:
        """The trials that reported a final value of the objective metric."""
        return self.trials[self.trials[OBJECTIVE].notna()]

    @property
    def floor(self) -> dict[str, float]:
        """The raw-pixel floor (``val_`` and ``test_`` scores of the pixels) the latest
        parent run logged; empty when none did."""
        columns = [c for c in self.parents if c.startswith(FLOOR)]
        logged = self.parents.dropna(subset=columns, how="all") if columns else self.parents[:0]
        return {} if logged.empty else {c[len(FLOOR):]: float(logged[c].iloc[-1])
                                        for c in columns if pd.notna(logged[c].iloc[-1])}

    @property
    def common_epoch(self) -> int:
        """The last epoch every scored trial reached: where they can all be compared."""
        epochs = self.scored["epochs_run"].dropna()
        return int(epochs.min()) if len(epochs) else 0

    def objective_at(self, epoch: int) -> pd.Series:
        """Each trial's objective at ``epoch`` (index of ``trials``; NaN where it did not
        reach it)."""
        at = self.history[self.history["epoch"] == epoch].drop_duplicates("run_id", keep="last")
        return self.trials["run_id"].map(at.set_index("run_id")["value"]).astype(float)


def list_experiment_names(client: Any) -> list[str]:
    """Names of all active experiments in the store, sorted."""
    return sorted(e.name for e in client.search_experiments())


def load_study(client: Any, name: str) -> Study:
    """Read experiment ``name``; raises ``ExperimentNotFoundError`` when it does not exist."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None or experiment.lifecycle_stage != "active":
        raise ExperimentNotFoundError(name, list_experiment_names(client))
    runs = _all_runs(client, experiment.experiment_id)
    parents = parents_frame([r for r in runs if r.data.tags.get(ROLE_TAG) == ROLE_PARENT])
    trial_runs = [r for r in runs if r.data.tags.get(ROLE_TAG) == ROLE_TRIAL
                  or (ROLE_TAG not in r.data.tags and PARENT_TAG in r.data.tags)]
    trials = trials_frame(trial_runs, name)
    searched, not_searched = searched_dimensions(parents, trials)
    return Study(name, experiment.experiment_id, trials, parents,
                 objective_history(client, trials["run_id"]), searched, not_searched)


def objective_history(client: Any, run_ids: pd.Series) -> pd.DataFrame:
    """``run_id, epoch, value`` of the objective at every epoch of every run."""
    rows = [{"run_id": run_id, "epoch": int(m.step), "value": float(m.value)}
            for run_id in run_ids for m in client.get_metric_history(run_id, OBJECTIVE)]
    return pd.DataFrame(rows, columns=["run_id", "epoch", "value"])


def _all_runs(client: Any, experiment_id: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def trials_frame(runs: list, experiment: str = "") -> pd.DataFrame:
    """One row per trial run. Columns: ``experiment, run_id, parent_run_id, trial_id,
    outcome, status, start_time`` (pandas Timestamp), ``error, node, device_name``, every
    ``TrialConfig`` field (nullable Int64, float or str; missing -> NA), and the final metrics
    named by ``METRIC_COLUMNS`` (NaN when never logged)."""
    config_fields = {name: dim.kind for name, dim in DIMENSIONS.items()}
    rows = []
    for run in runs:
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        row: dict[str, Any] = {
            "experiment": experiment,
            "run_id": run.info.run_id,
            "parent_run_id": tags.get(PARENT_TAG),
            "trial_id": tags.get(TRIAL_ID_TAG, run.info.run_name),
            "outcome": tags.get(OUTCOME_TAG) or _STATUS_OUTCOME.get(run.info.status, RUNNING),
            "status": run.info.status,
            "start_time": pd.to_datetime(run.info.start_time, unit="ms"),
            "error": tags.get(ERROR_TAG),
            "node": tags.get("node"),
            "device_name": tags.get("device_name"),
        }
        for name, kind in config_fields.items():
            row[name] = _typed(params.get(name), kind)
        for key, column in METRIC_COLUMNS.items():
            value = metrics.get(key)
            row[column] = float(value) if value is not None and np.isfinite(value) else np.nan
        rows.append(row)
    columns = ["experiment", "run_id", "parent_run_id", "trial_id", "outcome", "status",
               "start_time", "error", "node", "device_name", *config_fields,
               *METRIC_COLUMNS.values()]
    frame = pd.DataFrame(rows, columns=columns)
    for name, kind in config_fields.items():
        if kind in ("int", "float"):
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
        if kind == "int":  # nullable ints: 64, not 64.0, even when a value is missing
            frame[name] = frame[name].round().astype("Int64")
    return frame.sort_values("start_time", kind="stable").reset_index(drop=True)


def _typed(text: str | None, kind: str) -> Any:
    if text is None:
        return np.nan
    if kind == "str":
        return text
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        return np.nan


def parents_frame(runs: list) -> pd.DataFrame:
    """One row per parent run: ``run_id, run_name, status, start_time`` and the params of
    ``PARENT_PARAMS`` (study_seed, num_samples, max_epochs, grid_seeds as numbers; ``preset``
    from the param, else the tag, None for studies older than presets), the metrics of
    ``PARENT_METRICS``, and the ``code_version`` tag."""
    rows = []
    for run in runs:
        params, metrics = run.data.params, run.data.metrics
        row: dict[str, Any] = {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "status": run.info.status,
            "start_time": pd.to_datetime(run.info.start_time, unit="ms"),
            "code_version": run.data.tags.get(CODE_VERSION_TAG),
        }
        row.update({key: params.get(key) for key in PARENT_PARAMS})
        row["preset"] = params.get("preset") or run.data.tags.get(PRESET_TAG)
        row.update({key: metrics.get(key, np.nan) for key in PARENT_METRICS})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["run_id", "run_name", "status", "start_time",
                                        "code_version", *PARENT_PARAMS, *PARENT_METRICS])
    for key in ("study_seed", "num_samples", "max_epochs", "grid_seeds"):
        frame[key] = pd.to_numeric(frame[key], errors="coerce")
    return frame.sort_values("start_time", kind="stable").reset_index(drop=True)


def searched_dimensions(parents: pd.DataFrame,
                        trials: pd.DataFrame) -> tuple[tuple[str, ...], dict[str, str]]:
    """The dimensions searched in a study and why the others are not.

    A dimension counts as searched when a parent run lists it in its ``searched`` param
    (every known dimension when no parent run says) and it takes more than one value among
    the trials where it applies. Returns ``(searched, {dimension: reason left out})``.
    """
    listed: set[str] = set()
    pinned: dict[str, Any] = {}
    for text, pins in zip(parents.get("searched", []), parents.get("pins", []), strict=False):
        if isinstance(text, str):
            listed.update(t for t in text.split(",") if t)
        if isinstance(pins, str):
            with contextlib.suppress(json.JSONDecodeError):
                pinned.update(json.loads(pins))
    if parents.empty or not listed:
        listed = set(ANALYSED)
    searched, reasons = [], {}
    for name in ANALYSED:
        dim = dimension(name)
        if name not in listed:
            value = pinned.get(name)
            reasons[name] = f"pinned with --set ({name}={value})" if value is not None \
                else "not searched by this study"
            continue
        values = trials.loc[dim.applies(trials), name].dropna().unique() if name in trials \
            else []
        if len(values) > 1:
            searched.append(name)
        elif len(values) == 1:
            where = " where it applies" if dim.conditional else ""
            reasons[name] = f"one value only among the trials{where} ({_short(values[0])})"
        else:
            reasons[name] = "no trial has a value"
    return tuple(searched), reasons


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
