"""The MLflow recorder against a real SQLite store, without Ray running a study."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from study.recorder import MLflowRecorder
from study.schema import PARENT_TAG, TRIAL_ID_TAG
from trainables.config import TrialConfig

CONFIG = {"mode": "triplet", "loss": "triplet_margin", "seed": 5, "embedding_dim": 8}


def _store(tmp_path: Path) -> tuple[MlflowClient, str, str, str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("tracking")
    parent = client.create_run(experiment_id, run_name="study").info.run_id
    return client, uri, experiment_id, parent


def test_a_run_left_without_params_by_a_kill_gets_them_and_is_not_duplicated(tmp_path) -> None:
    client, uri, experiment_id, parent = _store(tmp_path)
    # what a driver killed between create_run and log_batch leaves behind
    orphan = client.create_run(experiment_id, tags={PARENT_TAG: parent, TRIAL_ID_TAG: "t1",
                                                    "outcome": "running"}).info.run_id
    recorder = MLflowRecorder(uri, experiment_id, parent, [str(i) for i in range(10)], 2,
                              resumed=True)
    assert recorder.ensure_run("t1", CONFIG) == orphan
    params = client.get_run(orphan).data.params
    # the params the trial's settings apply to: a triplet run has no pair-loss margin etc.
    assert set(params) == set(TrialConfig.from_dict(CONFIG).applied())
    assert (params["mode"], params["seed"], params["embedding_dim"]) == ("triplet", "5", "8")
    runs = client.search_runs([experiment_id], f"tags.{TRIAL_ID_TAG} = 't1'")
    assert [r.info.run_id for r in runs] == [orphan]
    # a second recorder (a second resume) finds the run complete and changes nothing
    again = MLflowRecorder(uri, experiment_id, parent, [str(i) for i in range(10)], 2,
                           resumed=True)
    assert again.ensure_run("t1", CONFIG) == orphan
    assert client.get_run(orphan).data.params == params


def test_a_run_of_a_trial_ray_never_saved_is_retired_not_counted(tmp_path) -> None:
    client, uri, experiment_id, parent = _store(tmp_path)
    recorder = MLflowRecorder(uri, experiment_id, parent, [str(i) for i in range(10)], 2)
    kept = recorder.ensure_run("saved", CONFIG)
    forgotten = recorder.ensure_run("forgotten", CONFIG)
    ended = recorder.ensure_run("ended", CONFIG)
    client.set_tag(ended, "outcome", "finished")
    client.set_terminated(ended, "FINISHED")
    assert recorder.retire_lost({"saved"}) == [forgotten]  # an ended run is never retired
    assert recorder.outcome_counts() == {"finished": 1, "stopped_early": 0, "failed": 0,
                                         "interrupted": 0}
    active = {r.info.run_id for r in client.search_runs([experiment_id])}
    assert active == {parent, kept, ended}
    run = client.get_run(forgotten)  # kept in the store, recoverable
    assert (run.info.lifecycle_stage, run.info.status, run.data.tags["outcome"]) == (
        "deleted", "KILLED", "lost")
    assert run.data.params["seed"] == "5"


def test_a_trial_whose_end_was_recorded_before_a_kill_is_not_judged_twice(tmp_path) -> None:
    from ray.tune import Checkpoint

    client, uri, experiment_id, parent = _store(tmp_path)
    names = [str(i) for i in range(10)]
    first = MLflowRecorder(uri, experiment_id, parent, names, 2)
    run_id = first.ensure_run("t1", CONFIG)
    first.log_results("t1", CONFIG, [{"epoch": 1.0, "loss": 0.5}, {"epoch": 2.0, "loss": 0.3}])
    client.log_metric(run_id, "test_probe_accuracy", 0.97, step=2)  # its judgement, then
    client.set_tag(run_id, "outcome", "finished")  # the close; then the kill, before Ray
    client.set_terminated(run_id, "FINISHED")  # saved the trial's end

    # the resume runs the trial's epoch 2 again and ends it: a checkpoint without a model,
    # which a second judgement would fail to read
    resumed = MLflowRecorder(uri, experiment_id, parent, names, 2, resumed=True)
    resumed.log_results("t1", CONFIG, [{"epoch": 2.0, "loss": 0.3}])
    empty = tmp_path / "checkpoint"
    empty.mkdir()
    resumed.finish_run("t1", CONFIG, Checkpoint.from_directory(str(empty)), "finished", None)

    run = client.get_run(run_id)
    assert (run.info.status, run.data.tags["outcome"]) == ("FINISHED", "finished")
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [1, 2]
    assert len(client.get_metric_history(run_id, "test_probe_accuracy")) == 1

    # a trial the resume took further than its recorded end is judged again
    resumed.log_results("t1", CONFIG, [{"epoch": 3.0, "loss": 0.2}])
    with pytest.raises(FileNotFoundError):
        resumed.finish_run("t1", CONFIG, Checkpoint.from_directory(str(empty)), "finished",
                           None)
