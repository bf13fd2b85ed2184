"""The hardening issue, in process: refusals before anything exists, credentials redacted,
a forged Ray path never unpickled, one driver per study, reconcile within a driver's
lineage, a fresh SQLite store opened by several processes at once.  (Whole studies run as
subprocesses: test_hardening_runs.py; the local Ray's listeners: test_local_ray.py.)"""

from __future__ import annotations

import importlib.util
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from study.lock import StudyLockedError, acquire
from study.recorder import MLflowRecorder
from study.run import main, summary
from study.schema import (
    DRIVER_TAG,
    OUTCOME_TAG,
    PARENT_TAG,
    RAY_PATH_TAG,
    ROLE_PARENT,
    ROLE_TAG,
    ROLE_TRIAL,
    TRIAL_ID_TAG,
)
from study.secrets import redact
from study.spec import parse_args
from tests.study.helpers import ROOT

DIGITS = ["--dataset", "digits"]
SECRET = "s3cretpw"


def _driverless(module: str) -> bool:
    return importlib.util.find_spec(module) is None


REFUSALS = [
    (["--seed", "-1"], "--seed -1 must be 0 to 2**32 - 1"),
    (["--seed", str(2**32)], "must be 0 to 2**32 - 1"),
    (["--grace-period", "4", "--max-epochs", "3"], "--grace-period 4 is above --max-epochs 3"),
    (["--experiment-name", "x" * 300], "is 300 characters long; at most 100"),
    (["--experiment-name", "../../x"], "holds '/'"),
    (["--experiment-name", ".."], "starts with '.'"),
    (["--storage-path", "bogus://x"], "--storage-path bogus://x: unknown scheme 'bogus'"),
    (["--tracking-uri", "file:///tmp/mlruns"], "MLflow 3 no longer writes a folder store"),
    (["--tracking-uri", "bogus://x"], "--tracking-uri bogus://x: unknown scheme 'bogus'"),
    pytest.param(["--tracking-uri", f"postgresql://me:{SECRET}@db.invalid/mlflow"],
                 "its database driver is not installed",
                 marks=pytest.mark.skipif(not (_driverless("psycopg") and _driverless("psycopg2")),
                                          reason="a PostgreSQL driver is installed")),
    (["--preset", "seed-grid", "--grid-seeds", "100000"], "--grid-seeds 100000 is above the limit of 100"),
    (["--num-samples", "100001"], "--num-samples 100001 is above the limit of 100,000"),
    (["--set", "seed=5"], "--set seed=...: the study sets seed"),
    (["--set", "epochs=5"], "--set epochs=...: the study sets epochs"),
    (["--cpus-per-trial", "nan"], "--cpus-per-trial nan must be a number above 0"),
    (["--cpus-per-trial", "inf"], "--cpus-per-trial inf must be a number above 0"),
    (["--cpus-per-trial", "1000"], "--cpus-per-trial 1000 is more than the"),
    (["--gpus-per-trial", "nan"], "--gpus-per-trial nan must be a number, 0 or more"),
    (["--gpus-per-trial", "1000"], "--gpus-per-trial 1000"),
]


@pytest.mark.parametrize("argv,message", REFUSALS)
def test_bad_input_is_one_line_exit_2_and_creates_nothing(argv, message, tmp_path, capsys,
                                                          monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main([*DIGITS, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err and SECRET not in err
    assert list(tmp_path.iterdir()) == []  # no mlflow.db, no ray_results, no lock


def test_refusal_leaves_no_traceback_nor_failed_parent_for_a_too_long_default_name(
        tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / ("d" * 120)
    folder.mkdir()
    assert main(["--dataset", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "is 128 characters long" in err and "pass --experiment-name" in err
    assert list(tmp_path.iterdir()) == [folder]


# ---------------------------------------------------------------------- credentials
@pytest.mark.parametrize("text,shown", [
    ("http://user:pw@host:5000", "http://***@host:5000"),
    ("https://TOKEN@host/x", "https://***@host/x"),
    ("postgresql+psycopg2://u:p@ss@db:5432/mlflow", "postgresql+psycopg2://***@db:5432/mlflow"),
    ("--tracking-uri=mysql://a:b@h/db --seed 3", "--tracking-uri=mysql://***@h/db --seed 3"),
    ("mssql://h/db?user=a&password=b&x=1", "mssql://h/db?user=a&password=***&x=1"),
    ("sqlite:////abs/mlflow.db", "sqlite:////abs/mlflow.db"),
    ("http://host:5000/path@v1", "http://host:5000/path@v1"),
])
def test_redact_masks_userinfo_and_query_secrets(text, shown) -> None:
    assert redact(text) == shown


def test_credentials_never_reach_the_command_tag_or_the_summary(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    uri = f"http://me:{SECRET}@mlflow.example:5000"
    spec = parse_args([*DIGITS, "--tracking-uri", uri, "--experiment-name", "s"])
    assert spec.tracking_uri == uri  # the driver itself still uses them
    assert SECRET not in spec.command and "http://***@mlflow.example:5000" in spec.command
    text = summary(spec, {"finished": 0}, None, {}, {}, "r1")
    assert SECRET not in text and "mlflow ui --backend-store-uri http://***@" in text
    recorder = MLflowRecorder(uri, "0", "p", ["a"], 1)
    assert SECRET not in str(recorder.__getstate__())  # pickled into Ray's tuner.pkl


def test_preflight_never_resolves_userinfo_as_a_host(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    asked: list[str] = []

    def lookup(host, *args, **kwargs):
        asked.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    assert main([*DIGITS, "--tracking-uri", f"http://me:{SECRET}@mlflow.invalid:5000"]) == 2
    err = capsys.readouterr().err
    assert asked == ["mlflow.invalid"]
    assert SECRET not in err and "http://***@mlflow.invalid:5000 does not answer" in err


def test_summarize_redacts_and_keeps_reports_inside_reports(tmp_path, capsys,
                                                            monkeypatch) -> None:
    from analysis.summarize import main as summarize

    monkeypatch.chdir(tmp_path)
    for name in ("..", ".hidden", "y" * 150):
        assert summarize(["--experiment-name", name]) == 2
        err = capsys.readouterr().err
        assert "pass --out DIR" in err and err.count("\n") == 1
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = summarize(["--experiment-name", "x", "--tracking-uri",
                      f"http://me:{SECRET}@127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 2 and SECRET not in err and "http://***@127.0.0.1" in err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- resume
def _forged_study(tmp_path: Path, name: str) -> tuple[str, str, Path]:
    """A store whose study ``name`` has a parent run, a tuner.pkl that runs code when
    unpickled (it makes the folder ``pwned``), and the marker's path."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment(name),
                               tags={ROLE_TAG: ROLE_PARENT}).info.run_id
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "pwned"
    (evil / "tuner.pkl").write_bytes(pickle.dumps(_Payload(str(marker))))
    probe = tmp_path / "probe"  # the payload is live: unpickling it does run code
    pickle.loads(pickle.dumps(_Payload(str(probe))))
    assert probe.is_dir()
    return uri, run_id, marker


class _Payload:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_resume_refuses_a_forged_ray_path_tag_and_unpickles_nothing(tmp_path, capsys,
                                                                    monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    uri, run_id, marker = _forged_study(tmp_path, "victim")
    MlflowClient(uri).set_tag(run_id, RAY_PATH_TAG, str(tmp_path / "evil"))
    assert main([*DIGITS, "--resume", "--experiment-name", "victim", "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert "refusing to restore from another folder" in err and err.count("\n") == 1
    assert str(tmp_path / "ray_results" / f"victim-{run_id[:8]}") in err
    assert not marker.exists()
    assert not (tmp_path / "ray_results").exists()


def test_resume_refuses_a_study_folder_that_leads_outside_the_storage(tmp_path, capsys,
                                                                     monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    uri, run_id, marker = _forged_study(tmp_path, "victim")
    storage = tmp_path / "results"
    storage.mkdir()
    derived = storage / f"victim-{run_id[:8]}"
    derived.symlink_to(tmp_path / "evil")  # the tag agrees; the folder is a link out
    MlflowClient(uri).set_tag(run_id, RAY_PATH_TAG, str(derived))
    assert main([*DIGITS, "--resume", "--experiment-name", "victim", "--tracking-uri", uri,
                 "--storage-path", str(storage)]) == 2
    assert "refusing to restore" in capsys.readouterr().err
    assert not marker.exists()


# ---------------------------------------------------------------------- one driver per study
def _hold_lock(args: list[str], cwd: Path) -> subprocess.Popen:
    code = ("import sys, time; from study.lock import acquire; from study.spec import "
            "parse_args; acquire(parse_args(sys.argv[1:])); print('locked', flush=True); "
            "time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_the_lock_refuses_a_second_driver_and_frees_when_its_driver_dies(tmp_path) -> None:
    args = [*DIGITS, "--storage-path", str(tmp_path / "results"), "--experiment-name", "one"]
    spec = parse_args(args)
    first = acquire(spec)
    with pytest.raises(StudyLockedError, match=f"pid {os.getpid()} on "):
        acquire(spec)
    other = acquire(parse_args([*args[:-1], "two"]))  # another study: its own lock
    other.release()
    first.release()
    assert not (tmp_path / "results").exists()  # the lock's folder, removed with it

    holder = _hold_lock(args, tmp_path)  # a driver that then dies by SIGKILL
    try:
        with pytest.raises(StudyLockedError, match=f"pid {holder.pid} on .*--resume"):
            acquire(spec)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    deadline = time.time() + 10
    while True:  # the kernel frees the lock with the process; no stale lock to wait out
        try:
            acquire(spec).release()
            break
        except StudyLockedError:
            assert time.time() < deadline
            time.sleep(0.1)


def test_cloud_storage_is_locked_on_this_machine(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    spec = parse_args([*DIGITS, "--storage-path", "s3://bucket/studies", "--experiment-name",
                       "cloud"])
    with acquire(spec) as lock:
        assert lock.path.parent.parent == tmp_path and lock.path.name.endswith("-cloud.lock")
        assert oct(lock.path.parent.stat().st_mode & 0o777) == "0o700"
        with pytest.raises(StudyLockedError):
            acquire(spec)


# ---------------------------------------------------------------------- reconcile and paging
def test_reconcile_retires_only_runs_of_its_own_lineage(tmp_path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("lineage")
    parent = client.create_run(experiment).info.run_id
    runs = {}
    for trial, driver in (("a", "old"), ("b", "intruder"), ("c", None), ("d", "old")):
        tags = {PARENT_TAG: parent, TRIAL_ID_TAG: trial, ROLE_TAG: ROLE_TRIAL,
                OUTCOME_TAG: "running", **({DRIVER_TAG: driver} if driver else {})}
        runs[trial] = client.create_run(experiment, tags=tags).info.run_id
    recorder = MLflowRecorder(uri, experiment, parent, ["0", "1"], 1, owner="new",
                              owners=frozenset({"old"}))
    assert len(recorder._trial_runs(page_size=2)) == 4  # every page
    retired = recorder.retire_lost({"d"})  # Ray's state holds trial d only
    assert sorted(retired) == sorted([runs["a"], runs["c"]])
    assert client.get_run(runs["b"]).info.lifecycle_stage == "active"  # another driver's
    assert client.get_run(runs["b"]).data.tags[OUTCOME_TAG] == "running"
    made = recorder.ensure_run("e", {"mode": "pair", "loss": "contrastive", "seed": 1})
    assert client.get_run(made).data.tags[DRIVER_TAG] == "new"


def test_processes_opening_one_new_sqlite_store_at_once_all_succeed(tmp_path) -> None:
    db = tmp_path / "mlflow.db"
    # each process says when its imports are done, then waits for the word: all three open
    # the new file together
    code = ("import sys; from study.store import open_client; import mlflow.tracking; "
            "print('ready', flush=True); sys.stdin.readline(); "
            "open_client(sys.argv[1]).search_experiments(); print('ok')")
    procs = [subprocess.Popen([sys.executable, "-c", code, f"sqlite:///{db}"],
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
             for _ in range(3)]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-2000:]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0 and out.strip() == "ok", err[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]  # lock file removed
