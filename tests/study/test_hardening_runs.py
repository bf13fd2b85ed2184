"""The hardening issue with whole studies (subprocess drivers on the digits data): two
drivers of one study and a Ctrl-C of it (one huge study), Ctrl-C during the imports and the
set-up.  A t-SNE map that cannot be drawn is part of ``test_faults``' study of failing
trials; the cluster test records into a real MLflow server."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from study.schema import DRIVER_TAG
from tests.study.helpers import ctrl_c_when, run_cli, start_driver, study_runs, wait_for

BUDGET = ["--dataset", "digits", "--set", "train_subset=256", "--set", "eval_train=400",
          "--set", "batch_size=64", "--log-encoders", "none"]


def _ended_trials(uri: str, experiment: str) -> int:
    try:
        return sum(r.info.status != "RUNNING" for r in study_runs(uri, experiment)[2])
    except AssertionError:  # no experiment yet
        return 0


def test_a_second_driver_is_refused_and_ctrl_c_ends_a_huge_study_within_seconds(
        tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [*BUDGET, "--set", "tsne_samples=100", "--num-samples", "100000", "--max-epochs",
            "2", "--experiment-name", "huge", "--seed", "1"]
    first = start_driver(args, tmp_path)
    lock = tmp_path / "ray_results" / ".huge.lock"
    try:
        wait_for(lambda: lock.is_file() and lock.stat().st_size > 0, 240, "the lock", first)
        for extra in ([], ["--resume"]):  # a new study of that name, and a resume of it
            second = run_cli(["python", "-m", "study.run", *args, *extra], tmp_path, timeout=240)
            assert second.returncode == 2, second.stdout[-2000:] + second.stderr[-2000:]
            err = second.stderr.strip()
            assert len(err.splitlines()) == 1 and "Traceback" not in err, err
            assert err.startswith(f"error: study 'huge' is running: its driver (pid {first.pid} ")
            assert "--resume" in err and "another --experiment-name" in err
            assert first.poll() is None, "the first driver ended before the second was refused"
        wait_for(lambda: _ended_trials(uri, "huge") >= 3, 300, "three ended trials", first)
        start = time.time()
        first.send_signal(signal.SIGINT)
        output, _ = first.communicate(timeout=120)
        took = time.time() - start
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, output[-3000:]
    assert took < 30, f"Ctrl-C took {took:.1f} s"
    assert "interrupted; resume with:" in output and "--num-samples 100000" in output
    _, parents, trials = study_runs(uri, "huge")
    assert len(parents) == 1 and parents[0].info.status == "KILLED"
    assert all(r.info.status != "RUNNING" for r in trials)
    assert all(r.data.tags["outcome"] != "running" for r in trials)
    driver = parents[0].data.tags[DRIVER_TAG]
    assert driver.split(":")[1] == str(first.pid)
    assert {r.data.tags[DRIVER_TAG] for r in trials} == {driver}
    assert not lock.exists()  # released with the driver


SETUP_ARGS = [*BUDGET, "--set", "tsne_samples=20", "--num-samples", "2", "--max-epochs", "1",
              "--experiment-name", "early", "--seed", "5"]


def test_ctrl_c_during_the_imports_ends_quietly(tmp_path: Path) -> None:
    # the driver imports torch for about 2 s before main() starts: the Ctrl-C is sent as
    # soon as torch's library is mapped into the driver (its own /proc entry), mid-import
    proc = start_driver(SETUP_ARGS, tmp_path)
    maps = Path(f"/proc/{proc.pid}/maps")
    try:
        deadline = time.time() + 60
        while "libtorch" not in maps.read_text():
            assert proc.poll() is None and time.time() < deadline, "torch was never imported"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output[-3000:]
    assert output == "interrupted before the study started: nothing was recorded\n", output
    assert list(tmp_path.iterdir()) == []  # no lock, no store, no Ray folder


def test_ctrl_c_while_ray_starts_ends_cleanly(tmp_path: Path) -> None:
    # the lock is taken just before the dataset loads and the local Ray starts: a Ctrl-C
    # there once crashed the driver at exit (SIGSEGV) and once hung it for good
    code, output = ctrl_c_when(SETUP_ARGS, tmp_path,
                                          tmp_path / "ray_results" / ".early.lock")
    assert code == 130, output[-3000:]
    assert "Traceback" not in output and "interrupted before any trial started" in output
    assert not (tmp_path / "ray_results" / ".early.lock").exists()
