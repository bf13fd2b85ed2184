"""Faults, interruptions and bad input: the study keeps going and loses nothing.

Real processes and real signals: a driver stopped by Ctrl-C before its first trial, resumed,
killed with SIGKILL and resumed again; a trial worker killed mid-trial, trials that diverge
(other Ctrl-Cs: tests/study/test_hardening_runs.py).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from study.run import main
from study.schema import EPOCH_METRICS, NOTE_TAG
from tests.study.helpers import (
    command_line,
    ctrl_c_when,
    descendants,
    ray_results,
    run_cli,
    start_driver,
    study_runs,
    wait_for,
)
from trainables.config import TrialConfig, parse_value

TINY = ["--dataset", "digits", "--set", "train_subset=256", "--set", "eval_train=400",
        "--set", "tsne_samples=100", "--set", "batch_size=64", "--log-encoders", "none"]


def _trial_runs(uri: str, experiment: str) -> list:
    try:
        return study_runs(uri, experiment)[2]
    except AssertionError:  # experiment not created yet
        return []


def _trial_of_worker(pid: int) -> str | None:
    """The trial a Tune worker process runs now: Tune moves the worker into the trial's
    working directory, ``.../working_dirs/train_trial_<trial id>_<n>_...``."""
    try:
        folder = Path(os.readlink(f"/proc/{pid}/cwd")).name
    except OSError:
        return None
    parts = folder.split("_")
    return parts[2] if folder.startswith("train_trial_") and len(parts) > 2 else None


def _check_complete(uri: str, experiment: str, num_samples: int) -> list:
    """Exactly one child run per trial under one parent, every epoch once, all ended."""
    client, parents, trials = study_runs(uri, experiment)
    assert len(parents) == 1
    assert len(trials) == num_samples
    assert len({r.data.tags["trial_id"] for r in trials}) == num_samples
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {parents[0].info.run_id}
    for run in trials:
        assert run.data.tags["outcome"] in ("finished", "stopped_early", "failed")
        cfg = TrialConfig.from_dict({k: parse_value(k, v) for k, v in run.data.params.items()})
        assert set(run.data.params) == set(cfg.applied()), "a trial run lacks some params"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
        assert len(steps) == len(set(steps)), f"an epoch was logged twice: {steps}"
    return trials


def test_diverging_killed_and_unmappable_trials_fail_alone(tmp_path: Path) -> None:
    """Triplet trials diverge (p_norm=0.01 makes the loss NaN at once), the worker of one
    other trial (pair or batch mode, which do not diverge) is killed mid-trial, and no trial
    can draw its t-SNE map (2 points: a note, not a failure); the other trials finish,
    judged, and every metric Ray received is in MLflow."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    unmappable = ["tsne_samples=2" if a.startswith("tsne_samples=") else a for a in TINY]
    args = [*unmappable, "--num-samples", "8", "--max-epochs", "3", "--cpus-per-trial", "0.5",
            "--set", "p_norm=0.01", "--set", "train_subset=1024", "--experiment-name", "faults",
            "--seed", "3"]
    proc = start_driver(args, tmp_path)
    victims: list[str] = []  # the trial id whose worker was killed

    def kill_one_worker() -> None:
        # a trial that does not diverge, past its first epoch and before its last: kill the
        # Ray worker process that trains it, found among this driver's own descendants
        # (other Ray instances may run on the machine) by its working directory
        deadline = time.time() + 400
        while time.time() < deadline and proc.poll() is None and not victims:
            runs = _trial_runs(uri, "faults")
            busy = {r.data.tags["trial_id"] for r in runs if r.data.tags.get("outcome") ==
                    "running" and r.data.params.get("mode") != "triplet"
                    and 1 <= r.data.metrics.get("epoch", 0) < 3}
            for pid in descendants({proc.pid}):
                if not command_line(pid).startswith("ray::ImplicitFunc.train"):
                    continue
                trial = _trial_of_worker(pid)
                if trial in busy:
                    os.kill(pid, signal.SIGKILL)
                    victims.append(trial)
                    return
            time.sleep(0.3)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    output, _ = proc.communicate(timeout=600)
    killer.join()
    assert proc.returncode == 0, output[-3000:]
    assert victims, "no worker of a non-diverging trial was found past its first epoch"
    trials = _check_complete(uri, "faults", 8)
    failed = [r for r in trials if r.data.tags["outcome"] == "failed"]
    diverged = [r for r in failed if "NonFiniteLossError" in r.data.tags.get("error", "")
                or "loss became nan" in r.data.tags.get("error", "")]
    triplets = [r for r in trials if r.data.params["mode"] == "triplet"]
    assert len(diverged) == len(triplets) > 0
    for run in diverged:
        assert run.info.status == "FAILED"
        assert len(run.data.metrics) == 0  # stopped at once: no epoch completed
    assert any(r.data.tags["outcome"] in ("finished", "stopped_early") for r in trials)
    victim = next(r for r in trials if r.data.tags["trial_id"] == victims[0])
    assert victim.data.tags["outcome"] == "failed"
    assert victim.info.run_id not in {r.info.run_id for r in diverged}
    assert len(failed) == len(diverged) + 1
    assert f"{len(failed)} failed" in output  # the end-of-study summary counts failures

    # a map that cannot be drawn is a note: the rest of the judgement is recorded, the run ends
    client, parents, _ = study_runs(uri, "faults")
    assert parents[0].info.status == "FINISHED"
    ended = [r for r in trials if r.data.tags["outcome"] in ("finished", "stopped_early")]
    for run in ended:
        assert run.info.status == "FINISHED"
        assert "no t-SNE map" in run.data.tags[NOTE_TAG]
        assert "test_probe_accuracy" in run.data.metrics
        assert not [a for a in client.list_artifacts(run.info.run_id) if a.path == "tsne.png"]

    # every metric Ray received is in MLflow
    by_trial = {r.data.tags["trial_id"]: r for r in trials}
    received = ray_results(tmp_path / "ray_results", "faults")
    assert received
    for trial_id, rows in received.items():
        for key in EPOCH_METRICS:
            logged = {m.step: m.value for m in
                      client.get_metric_history(by_trial[trial_id].info.run_id, key)}
            assert logged == {int(r["epoch"]): pytest.approx(r[key]) for r in rows}


def test_ctrl_c_before_any_trial_then_sigkill_then_resume_loses_and_duplicates_nothing(
        tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [*TINY, "--num-samples", "6", "--max-epochs", "2", "--set", "mode=pair",
            "--experiment-name", "killed", "--seed", "11"]
    # 1. a Ctrl-C as the store appears (the study's parent run is being made, before Tune's
    # loop): the driver ends there with the command that resumes it
    code, output = ctrl_c_when(args, tmp_path, tmp_path / "mlflow.db")
    assert code == 130, output[-3000:]
    assert "Traceback" not in output and "resume with:" in output
    _, parents, _ = study_runs(uri, "killed")
    assert [p.info.status for p in parents] == ["KILLED"]
    parent_id = parents[0].info.run_id

    # 2. --resume starts the whole search afresh under that parent; it is SIGKILLed once
    # two trials have ended
    proc = start_driver([*args, "--resume"], tmp_path)
    wait_for(lambda: sum(r.data.tags.get("outcome") != "running"
                          for r in _trial_runs(uri, "killed")) >= 2, 300, "two ended trials")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # a kill can land between creating a trial's run and logging its params: such a run has
    # no params yet, and the resume must complete it rather than open a second one
    runs = _trial_runs(uri, "killed")
    before = {r.data.tags["trial_id"]: (r.info.run_id, r.data.params.get("seed")) for r in runs}
    ended = sum(r.data.tags.get("outcome") != "running" for r in runs)
    assert 2 <= ended < 6, "the kill came too late: nothing was left for the resume to do"

    # 3. the same --resume again completes the study: nothing lost, nothing twice
    resumed = run_cli(["python", "-m", "study.run", *args, "--resume"], tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    trials = _check_complete(uri, "killed", 6)
    # the search went on from where it stood: earlier trials kept, no configuration redrawn
    seeds = {r.data.tags["trial_id"]: r.data.params["seed"] for r in trials}
    client = study_runs(uri, "killed")[0]
    for trial_id, (run_id, seed) in before.items():
        if trial_id in seeds:
            assert seed is None or seeds[trial_id] == seed
        else:  # started in the last seconds before the kill, before Ray saved its state
            run = client.get_run(run_id)
            assert (run.data.tags["outcome"], run.info.lifecycle_stage) == ("lost", "deleted")
    assert len(set(seeds.values())) == 6
    assert all(r.info.status in ("FINISHED", "FAILED") for r in trials)
    _, parents, _ = study_runs(uri, "killed")
    assert [p.info.run_id for p in parents] == [parent_id]
    assert parents[0].info.status == "FINISHED"
    assert parents[0].data.metrics["trials_finished"] + parents[0].data.metrics[
        "trials_stopped_early"] + parents[0].data.metrics["trials_failed"] == 6


def test_same_seed_same_trials_on_cpu(tmp_path: Path) -> None:
    # two studies of the same seed at once, each with its own store and local Ray (running
    # them together also shows that neither depends on timing)
    # (b's store is in a folder of its own: its artifacts go beside it, not where b started)
    stores = {"repro-a": tmp_path / "repro-a", "repro-b": tmp_path / "store-b"}
    procs = {}
    for name, store in stores.items():
        (tmp_path / name).mkdir()
        store.mkdir(exist_ok=True)
        procs[name] = start_driver(["--num-samples", "3", "--max-epochs", "1", "--seed", "21",
                              "--experiment-name", name, "--tracking-uri",
                              f"sqlite:///{store / 'mlflow.db'}", *TINY], tmp_path / name)
    results = []
    for name, proc in procs.items():
        output, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, output[-3000:]
        client, _, trials = study_runs(f"sqlite:///{stores[name] / 'mlflow.db'}", name)
        for run in trials:
            assert run.info.artifact_uri.startswith((stores[name] / "mlruns").as_uri() + "/")
            assert client.list_artifacts(run.info.run_id)  # its plots are there
        results.append(sorted((tuple(sorted(r.data.params.items())),
                               r.data.metrics["loss"], r.data.metrics["val_probe_accuracy"],
                               r.data.metrics["test_probe_accuracy"])
                              for r in trials))
    assert results[0] == results[1]
    assert len({row[0] for row in results[0]}) == 3
    assert sorted(p.name for p in (tmp_path / "repro-b").iterdir()) == ["ray_results"]


def _silent_server() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # accepts connections, never answers
    return server, server.getsockname()[1]


def test_bad_input_starts_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    server, port = _silent_server()
    try:
        start = time.time()
        code = main(["--dataset", "digits", "--tracking-uri", f"http://127.0.0.1:{port}"])
        elapsed = time.time() - start
    finally:
        server.close()
    err = capsys.readouterr().err.strip()
    assert code == 2 and "does not answer" in err and "\n" not in err
    assert elapsed < 10

    cases = [
        (["--dataset", "digits", "--storage-path", "/etc/hostname/results"],
         "--storage-path /etc/hostname/results: cannot write"),
        (["--dataset", "digits", "--resume", "--experiment-name", "never-ran"],
         "--resume: no study named 'never-ran': there is no store"),
        (["--dataset", "digits", "--tracking-uri", f"http://127.0.0.1:{_closed_port()}"],
         "does not answer"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "ray_results").exists()


def test_arrays_folder_errors_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    import numpy as np

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "arrays"
    folder.mkdir()
    np.savez(folder / "train.npz", x=np.zeros((10, 8, 8), np.uint8), y=np.zeros(9, int))
    np.savez(folder / "test.npz", x=np.zeros((10, 8, 8), np.uint8), y=np.zeros(10, int))
    assert main(["--dataset", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert "10 images but y holds 9 labels" in err and "\n" not in err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
