"""The search's Optuna searcher across a kill: a trial Optuna finished after Ray's last saved
state is run again by the resume, and the searcher must let it end (real Optuna, an SQLite
storage, Ray's own save and restore of the searcher; no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch

from study.searcher import ResumableOptunaSearch


def _space(trial: optuna.Trial) -> None:
    trial.suggest_float("lr", 1e-4, 1e-2, log=True)


def _killed_after_optuna_heard_the_end(tmp_path: Path) -> tuple[ResumableOptunaSearch, str]:
    """A searcher restored from the state Ray saved before the trial's end, with Optuna's
    storage holding that end (what the resume of a driver killed in between sees)."""
    uri = f"sqlite:///{tmp_path / 'optuna.db'}"
    driver = ResumableOptunaSearch(space=_space, metric="acc", mode="max", seed=3,
                                   storage=optuna.storages.RDBStorage(uri), study_name="s")
    assert driver.suggest("t1") is not None
    driver.on_trial_result("t1", {"acc": 0.5, TRAINING_ITERATION: 1})
    driver.save(str(tmp_path / "searcher.pkl"))  # Ray's last saved state
    driver.on_trial_result("t1", {"acc": 0.9, TRAINING_ITERATION: 2})
    driver.on_trial_complete("t1", {"acc": 0.9, TRAINING_ITERATION: 2})  # then the kill

    resumed = ResumableOptunaSearch(space=_space, metric="acc", mode="max", seed=3,
                                    storage=optuna.storages.RDBStorage(uri), study_name="s")
    resumed.restore(str(tmp_path / "searcher.pkl"))
    return resumed, uri


def test_a_trial_optuna_finished_before_a_kill_ends_again_on_resume(tmp_path) -> None:
    resumed, uri = _killed_after_optuna_heard_the_end(tmp_path)
    # the resume runs the trial's epoch 2 again, from its checkpoint: the same numbers
    resumed.on_trial_result("t1", {"acc": 0.9, TRAINING_ITERATION: 2})
    resumed.on_trial_complete("t1", {"acc": 0.9, TRAINING_ITERATION: 2})

    (trial,) = optuna.load_study(study_name="s", storage=uri).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.value == pytest.approx(0.9)
    assert trial.intermediate_values == {1: 0.5, 2: 0.9}
    assert resumed.suggest("t2") is not None  # the search goes on


def test_ray_s_own_searcher_fails_that_resume(tmp_path) -> None:
    # why ResumableOptunaSearch exists; when Ray handles it, this fails and it can go
    resumed, _ = _killed_after_optuna_heard_the_end(tmp_path)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        OptunaSearch.on_trial_result(resumed, "t1", {"acc": 0.9, TRAINING_ITERATION: 2})


def test_a_trial_still_running_in_optuna_is_reported_and_told_as_ray_does(tmp_path) -> None:
    uri = f"sqlite:///{tmp_path / 'optuna.db'}"
    searcher = ResumableOptunaSearch(space=_space, metric="acc", mode="max", seed=3,
                                     storage=optuna.storages.RDBStorage(uri), study_name="s")
    searcher.suggest("t1")
    searcher.on_trial_result("t1", {"acc": 0.4, TRAINING_ITERATION: 1})
    searcher.on_trial_complete("t1", {"acc": 0.4, TRAINING_ITERATION: 1})
    searcher.suggest("t2")
    searcher.on_trial_complete("t2", None)  # stopped before any result: pruned
    trials = optuna.load_study(study_name="s", storage=uri).trials
    assert [(t.state, t.value, t.intermediate_values) for t in trials] == [
        (optuna.trial.TrialState.COMPLETE, pytest.approx(0.4), {1: 0.4}),
        (optuna.trial.TrialState.PRUNED, None, {}),
    ]
