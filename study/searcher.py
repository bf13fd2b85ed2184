"""The search's Optuna searcher: Ray Tune's ``OptunaSearch``, safe to resume after a kill.

The driver tells Optuna's storage (a database) that a trial ended as soon as Tune says so,
but Ray saves its own state of the experiment only every few seconds.  A driver killed in
between leaves a trial that Optuna holds as finished and Ray's saved state holds as
running; ``--resume`` runs that trial's remaining epochs again from its checkpoint (the same
numbers).  Ray's ``OptunaSearch`` then reports them to the finished Optuna trial, Optuna
refuses (``UpdateFinishedTrialError``) and Tune ends the study with a ``TuneError``.  Here
the trial's value stays the one Optuna already holds, from the same epochs.

Its own module, imported only where a search is planned: Ray's saved state names the class
by its module, and importing it imports Ray.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from optuna.exceptions import UpdateFinishedTrialError
from ray.tune.search.optuna import OptunaSearch


class ResumableOptunaSearch(OptunaSearch):
    """``OptunaSearch`` that leaves alone a trial its Optuna storage has already finished."""

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        # a trial re-run by a resume: Optuna holds its value already (module docstring)
        with suppress(UpdateFinishedTrialError):
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        ot_trial = self._ot_trials.get(trial_id)
        if (ot_trial is not None and trial_id not in self._completed_trials
                and self._ot_study._storage.get_trial(ot_trial._trial_id).state.is_finished()):
            self._completed_trials.add(trial_id)  # Ray's would warn that Optuna refused it
            return
        super().on_trial_complete(trial_id, result, error)
