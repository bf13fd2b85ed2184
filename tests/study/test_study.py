"""Real studies (local Ray, Optuna, MLflow) checked from MLflow's and Ray's sides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from study.run import main
from study.schema import EPOCH_METRICS, TEST_METRICS
from tests.study.helpers import (
    ROOT,
    assert_png,
    mlflow_server,
    ray_results,
    run_cli,
    study_runs,
)
from trainables.config import TrialConfig


def _readme_command(prefix: str) -> str:
    text = (ROOT / "README.md").read_text()
    commands = [line.strip() for line in text.splitlines() if line.strip().startswith(prefix)]
    assert commands, f"README has no command starting with {prefix!r}"
    return commands[0]


@pytest.fixture(scope="module")
def readme_study(tmp_path_factory) -> tuple[Path, object]:
    """The README's offline smoke command, run exactly as written in a fresh folder."""
    cwd = tmp_path_factory.mktemp("readme-study")
    command = _readme_command("python -m study.run --dataset digits")
    proc = run_cli(command, cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, proc


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

    fields = set(TrialConfig().to_dict())
    for run in trials:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert set(run.data.params) == fields
        cfg = TrialConfig.from_dict({k: _typed(k, v) for k, v in run.data.params.items()})
        assert cfg.epochs == 2
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


def test_study_against_a_real_mlflow_server(tmp_path: Path) -> None:
    with mlflow_server(tmp_path) as uri:
        proc = run_cli(
            ["python", "-m", "study.run", "--dataset", "digits", "--num-samples", "2",
             "--max-epochs", "1", "--tracking-uri", uri, "--experiment-name", "server-study",
             "--set", "train_subset=256", "--set", "tsne_samples=100", "--seed", "5"],
            tmp_path,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        client, parents, trials = study_runs(uri, "server-study")
        assert len(parents) == 1 and len(trials) == 2
        for run in trials:
            assert run.data.params["train_subset"] == "256"
            assert run.data.tags["outcome"] == "finished"
            assert len(client.get_metric_history(run.info.run_id, "loss")) == 1
            assert_png(client, run.info.run_id)
    assert not (tmp_path / "mlflow.db").exists()  # nothing went to a local store


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
