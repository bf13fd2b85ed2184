"""Real studies (local Ray, Optuna, MLflow) checked from MLflow's and Ray's sides."""

from __future__ import annotations

import re

import pytest

from study.run import main
from study.schema import EPOCH_METRICS, TEST_METRICS
from tests.study.helpers import (
    assert_png,
    ray_results,
    study_runs,
)
from trainables.config import TrialConfig


def test_readme_study_records_every_trial(readme_study) -> None:
    cwd, proc = readme_study
    uri = f"sqlite:///{cwd / 'mlflow.db'}"
    client, parents, trials = study_runs(uri, "siamese-digits")
    assert len(parents) == 1 and len(trials) == 4
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["study_seed"] == "0" and parent.data.params["num_samples"] == "4"
    assert parent.data.tags["command"].startswith("python -m study.run --dataset digits")
    assert parent.data.params["val_size"] == "140" and "seed 0" in parent.data.params["val_source"]
    assert parent.data.params["metric"] == "val_probe_accuracy"
    assert 0.5 < parent.data.metrics["floor_test_probe_accuracy"] <= 1.0  # the raw-pixel floor
    assert {"floor_val_precision_at_1", "floor_test_map_at_r"} <= set(parent.data.metrics)
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", parent.data.tags["code_version"])
    counts = {k: parent.data.metrics[f"trials_{k}"] for k in ("finished", "stopped_early", "failed")}
    assert sum(counts.values()) == 4 and counts["failed"] == 0

    for run in trials:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        cfg = TrialConfig.from_dict({k: _typed(k, v) for k, v in run.data.params.items()})
        # exactly the settings that apply to the trial: no margin on an NT-Xent trial, no
        # strength without an augmentation
        assert set(run.data.params) == set(cfg.applied())
        assert cfg.epochs == 2
        assert "Test split, scored once" in run.data.tags["mlflow.note.content"]
        history = client.get_metric_history(run.info.run_id, "val_probe_accuracy")
        steps = sorted(m.step for m in history)
        assert steps == list(range(1, len(steps) + 1)) and 1 <= len(steps) <= 2
        expected = "finished" if len(steps) == 2 else "stopped_early"
        assert run.data.tags["outcome"] == expected
        assert run.info.status == "FINISHED"
        assert set(EPOCH_METRICS) | set(TEST_METRICS) <= set(run.data.metrics)
        assert 0.1 < run.data.metrics["val_probe_accuracy"] <= 1.0
        assert 0.1 < run.data.metrics["test_probe_accuracy"] <= 1.0
        # the test split is scored once, at the trial's last epoch
        assert [m.step for m in client.get_metric_history(run.info.run_id,
                                                          "test_probe_accuracy")] == [len(steps)]
        assert run.data.tags["device_name"] == "cpu"
        assert_png(client, run.info.run_id)
    assert counts["finished"] == sum(r.data.tags["outcome"] == "finished" for r in trials)

    # the summary names the best trial and the command that opens the UI on this store
    assert "best trial" in proc.stdout and "test probe" in proc.stdout
    assert "raw-pixel floor" in proc.stdout
    assert f"mlflow ui --backend-store-uri {uri}" in proc.stdout
    assert parent.data.tags["mlflow.note.content"].startswith("study siamese-digits: 4 trials")
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # runs table
    assert "grid_seeds" not in parent.data.params  # a search logs no grid-only params


def test_console_is_compact_and_plain(readme_study) -> None:
    _, proc = readme_study
    lines = (proc.stdout + proc.stderr).splitlines()
    assert len(lines) < 40, "\n".join(lines)
    assert sum("started:" in line for line in lines) == 4
    assert sum(line.startswith("--- ") for line in lines) >= 1  # a status block
    assert not any(" | " in line or "@" in line for line in lines if "started:" in line)
    for noise in ("TensorBoard", "Configuration for experiment", "Token authentication is"):
        assert noise not in proc.stdout + proc.stderr


def test_the_search_lives_in_an_optuna_storage(readme_study) -> None:
    import optuna

    cwd, proc = readme_study
    storage = f"sqlite:///{cwd / 'optuna.db'}"
    assert f"optuna-dashboard {storage}" in proc.stdout
    (name,) = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=name, storage=storage)
    client, parents, trials = study_runs(f"sqlite:///{cwd / 'mlflow.db'}", "siamese-digits")
    assert parents[0].data.params["optuna_study"] == name
    assert len(study.trials) == len(trials) == 4
    # every trial with its value: the objective at its last epoch, as MLflow holds it
    assert sorted(round(t.value, 5) for t in study.trials) == sorted(
        round(r.data.metrics["val_probe_accuracy"], 5) for r in trials)
    names = {p for t in study.trials for p in t.params}
    assert all("@" not in p for p in names) and "augmentation" in names


def test_the_best_trials_encoder_is_registered(readme_study) -> None:
    cwd, proc = readme_study
    client, _, trials = study_runs(f"sqlite:///{cwd / 'mlflow.db'}", "siamese-digits")
    version = client.get_model_version_by_alias("siamese-digits-encoder", "best")
    best = max(trials, key=lambda r: r.data.metrics["val_probe_accuracy"])
    assert version.run_id == best.info.run_id
    assert "val_probe_accuracy" in version.description
    assert "models:/siamese-digits-encoder/1 (alias @best)" in proc.stdout


def test_help_prints_each_default_once() -> None:
    from study.spec import build_parser

    text = build_parser().format_help()
    assert "(default: None)" not in text and ") (default:" not in text
    assert text.count("(default: 50)") == 1


def test_only_tunes_copy_race_is_kept_off_the_console(tmp_path) -> None:
    import logging
    import os

    from study.run import StateCopyRace, quiet_ray

    names = ("ray", "ray.tune", "ray.train", "ray.air", "mlflow", "alembic")
    levels = {name: logging.getLogger(name).level for name in names}
    environ = dict(os.environ)
    state = logging.getLogger("ray.tune.execution.experiment_state")
    shown: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = shown.append
    state.addHandler(handler)
    try:
        quiet_ray()
        quiet_ray()
        assert sum(isinstance(f, StateCopyRace) for f in state.filters) == 1
        for error in (FileNotFoundError, PermissionError):
            try:  # a real failed open, as pyarrow's copy raises it (as Tune logs it)
                raise error(2, "Failed to open local file", str(tmp_path / "state.json"))
            except OSError:
                state.error("Saving experiment state to storage at '%s' failed with "
                            "exception: ", tmp_path, exc_info=True)
        state.error("Saving experiment state to storage at '%s' failed", tmp_path)
    finally:
        state.removeHandler(handler)
        state.filters.clear()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        os.environ.clear()
        os.environ.update(environ)
    assert [r.exc_info[0] if r.exc_info else None for r in shown] == [PermissionError, None]


def test_every_metric_ray_received_is_in_mlflow(readme_study) -> None:
    cwd, _ = readme_study
    received = ray_results(cwd / "ray_results", "siamese-digits")
    client, _, trials = study_runs(f"sqlite:///{cwd / 'mlflow.db'}", "siamese-digits")
    assert len(received) == len(trials) == 4
    by_trial = {r.data.tags["trial_id"]: r for r in trials}
    for trial_id, rows in received.items():
        run = by_trial[trial_id]
        for key in EPOCH_METRICS:
            history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}
            assert history == {int(row["epoch"]): pytest.approx(row[key]) for row in rows}


def test_eval_share_sums_the_epochs_ray_received(readme_study) -> None:
    """``benchmarks.eval_share`` reads back from MLflow the training and judge seconds
    Tune received from the trials, every epoch of every trial, and splits them by mode."""
    from benchmarks.eval_share import shares

    cwd, _ = readme_study
    received = ray_results(cwd / "ray_results", "siamese-digits")
    client, _, _ = study_runs(f"sqlite:///{cwd / 'mlflow.db'}", "siamese-digits")
    got = shares(client, "siamese-digits")
    rows = [row for trial in received.values() for row in trial]
    assert got["all"][:2] == (len(received), len(rows))
    assert got["all"][2] == pytest.approx(sum(r["epoch_time_s"] for r in rows))
    assert got["all"][3] == pytest.approx(sum(r["eval_time_s"] for r in rows))
    modes = [v for k, v in got.items() if k != "all"]
    assert [sum(column) for column in zip(*modes, strict=True)] == pytest.approx(list(got["all"]))


def test_trials_run_side_by_side_on_the_cores_they_fit(readme_study) -> None:
    """Short trials of a searched study still run as many at once as the local Ray holds:
    Tune's worker processes (the pid of each result) are as many as the trial slots."""
    cwd, _ = readme_study
    received = ray_results(cwd / "ray_results", "siamese-digits")
    _, parents, _ = study_runs(f"sqlite:///{cwd / 'mlflow.db'}", "siamese-digits")
    params = parents[0].data.params
    slots = int(float(params["cluster_cpus"]) / float(params["cpus_per_trial"]))
    workers = {row["pid"] for rows in received.values() for row in rows}
    assert len(workers) >= min(slots, 4), (workers, slots)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--set", "mode=quad"], "mode='quad' is not valid; choose one of pair, triplet"),
        (["--set", "colour=red"], "unknown config key 'colour'"),
        (["--set", "mode"], "is not KEY=VALUE"),
        (["--set", "mode=pair", "--set", "loss=triplet_margin"],
         "loss='triplet_margin' needs mode='triplet'"),
        (["--set", "embedding_dim=huge"], "embedding_dim='huge' must be an integer"),
        (["--num-samples", "0"], "--num-samples 0 must be at least 1"),
        (["--max-epochs", "0"], "--max-epochs 0 must be at least 1"),
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["--dataset", "mnist", "--data-dir", "/nonexistent/dir", "--no-download"],
         "/nonexistent/dir"),
        (["--dataset", "digits", "--gpus-per-trial", "1"], "this machine has none"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "mlflow.db").exists()  # nothing started, nothing recorded


def _typed(key: str, text: str):
    from trainables.config import parse_value

    return parse_value(key, text)
