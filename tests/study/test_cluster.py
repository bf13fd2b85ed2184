"""The study on a real two-node Ray cluster, its refusals, and the shared-storage decision
(the deploy manifests: test_deploy_ray.py and test_deploy_mlflow.py).

The cluster is two `ray start` nodes on this machine with token authentication on. Their IPs
are 127.0.0.2 (head) and 127.0.0.3 (worker): loopback addresses that Ray leaves as given
(it rewrites 127.0.0.1 in `ray start --address`/`--node-ip-address` and in a driver's
`--address` to the machine's external address), so all traffic stays on the loopback
interface, and the two nodes have distinct IPs as on a real cluster.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from study.cluster import (
    ClusterInfo,
    check_cluster,
    is_shared_path,
    job_dir_problem,
    mount_of,
    parse_mounts,
    storage_problem,
)
from study.schema import EPOCH_METRICS
from study.spec import UsageError, parse_args
from tests.study.helpers import (
    ROOT,
    alive,
    assert_png,
    descendants_and_matches,
    free_port,
    mlflow_server,
    ray_results,
    run_cli,
    study_runs,
)

HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"


# ---------------------------------------------------------------------- the two-node cluster
@dataclass
class Cluster:
    address: str
    env: dict[str, str]  # what a driver needs: the token and RAY_AUTH_MODE=token
    temp_dir: Path


def _loopback_alias_works() -> bool:
    try:
        with socket.socket() as s:
            s.bind((WORKER_IP, 0))
        return True
    except OSError:
        return False


def _ray_start(args: list[str], env: dict[str, str], log: Path) -> None:
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray") or "ray"
    agent_ports = ["--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                   "--runtime-env-agent-port", "--metrics-export-port"]
    ports = [f"{flag}={free_port()}" for flag in agent_ports]
    with log.open("w") as out:
        proc = subprocess.run([ray, "start", *args, *ports, "--num-cpus=1", "--num-gpus=0",
                               "--object-store-memory=150000000", "--disable-usage-stats"],
                              env=env, stdout=out, stderr=subprocess.STDOUT, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"ray start failed: {log.read_text()[-3000:]}")


def _stop(temp_dir: Path) -> None:
    """Stop this cluster's processes only (never a global `ray stop`)."""
    pids = descendants_and_matches(str(temp_dir))
    for sig, wait_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.time() + wait_s
        while time.time() < deadline and any(alive(p) for p in pids):
            time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if not sys.platform.startswith("linux") or not _loopback_alias_works():
        pytest.skip("needs Linux with the whole 127.0.0.0/8 on the loopback interface")
    temp_dir = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))  # short: Ray's unix sockets
    token = secrets.token_hex(32)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    # the nodes' workers import this checkout (not an installed copy of the project)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAY_")}, **auth,
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    port = free_port()
    try:
        _ray_start(["--head", f"--node-ip-address={HEAD_IP}", f"--port={port}",
                    "--include-dashboard=false", f"--dashboard-port={free_port()}",
                    f"--temp-dir={temp_dir}"], env, temp_dir / "head.log")
        _ray_start([f"--address={HEAD_IP}:{port}", f"--node-ip-address={WORKER_IP}",
                    f"--temp-dir={temp_dir}"], env, temp_dir / "worker.log")
        yield Cluster(address=f"{HEAD_IP}:{port}", env=auth, temp_dir=temp_dir)
    finally:
        _stop(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _study_cmd(address: str, *extra: str) -> list[str]:
    return ["python", "-m", "study.run", "--dataset", "digits", "--max-epochs", "1",
            "--address", address, "--set", "train_subset=300", "--set", "tsne_samples=100",
            *extra]


def test_study_runs_on_both_nodes_and_mlflow_server_has_everything(cluster, tmp_path) -> None:
    storage = tmp_path / "results"
    # With a searcher Tune creates the next trial only once the previous one runs; these
    # trials last about a second, less than a new actor takes to start on the other node, so
    # one node's reused actor could take them all. Let Tune request all four at once.
    env = {**cluster.env, "TUNE_MAX_PENDING_TRIALS_PG": "4"}
    with mlflow_server(tmp_path) as uri:
        proc = run_cli(_study_cmd(cluster.address, "--num-samples", "4", "--seed", "3",
                                  "--tracking-uri", uri, "--storage-path", str(storage),
                                  "--shared-storage", "--experiment-name", "cluster-study"),
                       tmp_path, env=env, timeout=400)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        client, parents, trials = study_runs(uri, "cluster-study")
        assert len(parents) == 1 and len(trials) == 4
        parent = parents[0]
        assert parent.info.status == "FINISHED"
        assert parent.data.params["cluster_cpus"] == "2.0"
        assert parent.data.metrics["trials_finished"] == 4

        # trials ran on both nodes, and each run says where
        node_ids = {r.data.tags["node_id"] for r in trials}
        assert len(node_ids) == 2 and all(len(n) == 56 for n in node_ids)
        assert {r.data.tags["node_ip"] for r in trials} == {HEAD_IP, WORKER_IP}
        for run in trials:
            assert run.data.tags["cpus"] == "1.0" and run.data.tags["device_name"] == "cpu"

        # every metric Ray received, and every plot (drawn from checkpoints written on both
        # nodes), is in MLflow
        assert parent.data.tags["ray_experiment_path"].startswith(f"{storage}/cluster-study-")
        received = ray_results(storage, "cluster-study")
        by_trial = {r.data.tags["trial_id"]: r for r in trials}
        assert set(received) == set(by_trial)
        for trial_id, rows in received.items():
            run = by_trial[trial_id]
            assert run.data.tags["outcome"] == "finished" and run.info.status == "FINISHED"
            for key in EPOCH_METRICS:
                history = {m.step: m.value
                           for m in client.get_metric_history(run.info.run_id, key)}
                assert history == {int(row["epoch"]): pytest.approx(row[key]) for row in rows}
            assert_png(client, run.info.run_id)
    assert not (tmp_path / "mlflow.db").exists()


def test_local_storage_path_on_two_nodes_is_refused_before_any_trial(cluster, tmp_path) -> None:
    storage = tmp_path / "local-results"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_cli(_study_cmd(cluster.address, "--num-samples", "1", "--tracking-uri", uri,
                              "--storage-path", str(storage)),
                   tmp_path, env=cluster.env, timeout=180)
    assert proc.returncode == 2, proc.stderr[-3000:]
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: --storage-path {storage} is on this machine's local disk")
    assert "2 nodes" in err and "s3://" in err and "--shared-storage" in err
    assert not list(storage.glob("*"))  # no Ray experiment folder: nothing ran
    assert "siamese-digits" not in _experiments(uri)  # nothing recorded


def test_driver_with_a_wrong_token_is_refused_with_the_fix(cluster, tmp_path) -> None:
    wrong = secrets.token_hex(32)
    assert wrong != cluster.env["RAY_AUTH_TOKEN"]
    proc = run_cli(_study_cmd(cluster.address, "--num-samples", "1", "--tracking-uri",
                              f"sqlite:///{tmp_path / 'mlflow.db'}", "--storage-path", "s3://b/p"),
                   tmp_path, env={"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": wrong,
                                  "RAY_NUM_REDIS_GET_RETRIES": "2"},  # Ray retries for 20 s
                   timeout=180)
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: --address {cluster.address}: cannot join the Ray cluster "
                           "(it refused this driver's authentication token)")
    assert "RAY_AUTH_MODE=token" in last and "ray get-auth-token" in last


def _experiments(uri: str) -> list[str]:
    from mlflow.tracking import MlflowClient

    return [e.name for e in MlflowClient(uri).search_experiments()]


# ---------------------------------------------------------------------- shared storage
FAKE_MOUNTS = "\n".join([
    "/dev/vda1 / ext4 rw,relatime 0 0",
    "tmpfs /tmp tmpfs rw 0 0",
    "fs-12345.efs.us-west-2.amazonaws.com:/ /mnt/efs nfs4 rw,vers=4.1 0 0",
    "/dev/vdb /mnt/efs/scratch ext4 rw 0 0",
    "//nas/share /mnt/smb cifs rw 0 0",
    "10.0.0.5@tcp:/lustre /lustre lustre rw 0 0",
    "gcsfuse /mnt/gcs fuse.gcsfuse rw 0 0",
    "lxcfs /var/lib/lxcfs fuse.lxcfs rw 0 0",
    "server:/export /mnt/team\\040data nfs rw 0 0",
    "/dev/vdc /data ext4 rw 0 0",
    "server:/data /data nfs rw 0 0",  # mounted later over /data: it wins
])


def test_parse_mounts_unescapes_and_keeps_order() -> None:
    mounts = parse_mounts(FAKE_MOUNTS + "\n\nbroken-line\n")
    assert mounts[0] == ("/", "ext4") and ("/mnt/team data", "nfs") in mounts
    assert len(mounts) == 11


@pytest.mark.parametrize("path,mount,shared", [
    ("/home/me/ray_results", ("/", "ext4"), False),
    ("/tmp/results", ("/tmp", "tmpfs"), False),
    ("/mnt/efs/studies", ("/mnt/efs", "nfs4"), True),
    ("/mnt/efs", ("/mnt/efs", "nfs4"), True),
    ("/mnt/efs/scratch/x", ("/mnt/efs/scratch", "ext4"), False),  # longest prefix wins
    ("/mnt/efsx/studies", ("/", "ext4"), False),  # a prefix of the name, not a parent
    ("/mnt/smb/a", ("/mnt/smb", "cifs"), True),
    ("/lustre/project/r", ("/lustre", "lustre"), True),
    ("/mnt/gcs/r", ("/mnt/gcs", "fuse.gcsfuse"), True),
    ("/var/lib/lxcfs/r", ("/var/lib/lxcfs", "fuse.lxcfs"), False),
    ("/mnt/team data/r", ("/mnt/team data", "nfs"), True),
    ("/data/r", ("/data", "nfs"), True),
])
def test_shared_path_follows_the_mount_type(path, mount, shared) -> None:
    assert mount_of(path, FAKE_MOUNTS) == mount
    assert is_shared_path(path, FAKE_MOUNTS) is shared


@pytest.mark.parametrize("uri,shared", [
    ("s3://bucket/studies", True), ("gs://bucket/studies", True),
    ("abfs://container@account.dfs.core.windows.net/s", True),
    ("file:///mnt/efs/studies", True), ("file:///tmp/studies", False),
])
def test_uris_are_shared_except_local_files(uri, shared) -> None:
    assert is_shared_path(uri, FAKE_MOUNTS) is shared


def test_storage_problem_only_for_a_local_path_on_several_nodes() -> None:
    assert storage_problem("/tmp/r", 1, False, FAKE_MOUNTS) is None
    assert storage_problem("/mnt/efs/r", 3, False, FAKE_MOUNTS) is None
    assert storage_problem("s3://b/r", 3, False, FAKE_MOUNTS) is None
    assert storage_problem("/tmp/r", 3, True, FAKE_MOUNTS) is None  # --shared-storage
    message = storage_problem("/tmp/r", 3, False, FAKE_MOUNTS)
    assert message is not None and "\n" not in message
    assert message.startswith("--storage-path /tmp/r is on this machine's local disk (tmpfs "
                              "mounted at /tmp) but the Ray cluster has 3 nodes")
    assert "cannot write their checkpoints there" in message and "--shared-storage" in message


def test_check_cluster_raises_usage_error(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    spec = parse_args(["--storage-path", "/tmp/r", "--dataset", "digits"])
    two = ClusterInfo(nodes=2, cpus=2, gpus=0, address="10.0.0.1:6379")
    with pytest.raises(UsageError, match="--storage-path /tmp/r is on this machine's local"):
        check_cluster(spec, two, "sqlite:////x/mlflow.db", mounts_text=FAKE_MOUNTS)
    shared = parse_args(["--storage-path", "/tmp/r", "--shared-storage", "--dataset", "digits"])
    assert shared.shared_storage
    check_cluster(shared, two, "sqlite:////x/mlflow.db", mounts_text=FAKE_MOUNTS)
    check_cluster(spec, ClusterInfo(1, 2, 0, None), "sqlite:////x/mlflow.db",
                  mounts_text=FAKE_MOUNTS)


def test_job_driver_must_not_keep_records_in_its_working_dir_copy() -> None:
    cwd = "/tmp/ray/session_1/runtime_resources/working_dir_files/_ray_pkg_abc"
    job = {"RAY_JOB_CONFIG_JSON_ENV_VAR": "{}"}
    message = job_dir_problem(f"sqlite:///{cwd}/mlflow.db", "s3://b/p", cwd, job)
    assert message is not None and message.startswith(f"--tracking-uri sqlite:///{cwd}/mlflow.db")
    message = job_dir_problem("http://mlflow:5000", f"{cwd}/ray_results", cwd, job)
    assert message is not None and message.startswith("--storage-path")
    assert job_dir_problem("http://mlflow:5000", "s3://b/p", cwd, job) is None
    assert job_dir_problem("sqlite:////home/ray/mlflow.db", "/nfs/r", cwd, job) is None
    assert job_dir_problem(f"sqlite:///{cwd}/mlflow.db", "s3://b/p", cwd, {}) is None


def test_readme_cluster_commands_use_real_options() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Run on a cluster", 1)[1].split("\n## ", 1)[0]
    assert "ray up deploy/aws-gpu.yaml" in section and "--shared-storage" in section
    submit = next(line for line in section.splitlines()
                  if line.strip().startswith("ray job submit"))
    assert "--address http://" in submit and "--working-dir ." in submit
    study = submit.split(" -- ", 1)[1].split()
    assert study[:3] == ["python", "-m", "study.run"]
    spec = parse_args(study[3:])
    assert spec.storage_path.startswith("s3://") and spec.tracking_uri.startswith("http://")
