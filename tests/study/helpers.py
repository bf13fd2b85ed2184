"""Helpers for tests that run real studies: subprocess drivers, MLflow look-ups, servers."""

from __future__ import annotations

import io
import json
import os
import shlex
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_cli(command: str | list[str], cwd: Path, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m ...`` (a README-style command line) in ``cwd`` with this interpreter."""
    args = shlex.split(command) if isinstance(command, str) else list(command)
    if args[0] == "python":
        args[0] = sys.executable
    full_env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    full_env.update({"PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def start_driver(args: list[str], cwd: Path) -> subprocess.Popen:
    """Start ``python -m study.run ARGS`` in ``cwd``, stdout and stderr together.  The driver
    takes Ctrl-C as one started from a terminal does, even where the tests run with SIGINT
    ignored (started in the background with ``&``; an ignored SIGINT is inherited)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen([sys.executable, "-m", "study.run", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` s, or as soon as ``proc``
    (the driver it waits on) has ended."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        assert proc is None or proc.poll() is None, f"the driver ended while waiting for {what}"
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def ctrl_c_when(args: list[str], cwd: Path, appears: Path) -> tuple[int, str]:
    """Start a driver, send it one Ctrl-C (SIGINT) as soon as ``appears`` exists (only its
    existence is looked at: the file is not opened while the driver writes it); its exit
    code and output."""
    proc = start_driver(args, cwd)
    try:
        wait_for(appears.exists, 240, str(appears.name), proc)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, output


def study_runs(tracking_uri: str, experiment: str) -> tuple[Any, list[Any], list[Any]]:
    """(client, parent runs, trial runs) of an experiment.  The store is opened as a driver
    opens it (``study.store.open_client``): a test that reads while a driver creates the
    store does not race it in MLflow's schema creation."""
    from study.store import open_client

    client = open_client(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment} missing"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("study.role") == "parent"]
    trials = [r for r in runs if r.data.tags.get("study.role") == "trial"]
    return client, parents, trials


def assert_png(client: Any, run_id: str, name: str = "tsne.png") -> None:
    from PIL import Image

    path = client.download_artifacts(run_id, name)
    img = Image.open(io.BytesIO(Path(path).read_bytes()))
    img.load()
    assert img.format == "PNG" and min(img.size) > 200


def ray_results(storage: Path, experiment: str) -> dict[str, list[dict]]:
    """What Ray received: trial_id -> its reported results, from each trial's result.json
    (Ray's experiment folders are named ``<experiment>-<parent run id prefix>``)."""
    out: dict[str, list[dict]] = {}
    for path in storage.glob(f"{experiment}-*/*/result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if rows:
            out[rows[0]["trial_id"]] = rows
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_server(folder: Path):
    """A real ``mlflow server`` on 127.0.0.1 with an SQLite store; yields its URI."""
    port = free_port()
    log = open(folder / "mlflow-server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
         "--artifacts-destination", str(folder / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, cwd=folder,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log_text = (folder / "mlflow-server.log").read_text()[-2000:]
                raise RuntimeError(f"mlflow server did not start: {log_text}")
            time.sleep(0.5)
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# ---------------------------------------------------------------------- processes and sockets
def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process, from /proc."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        table[int(entry.name)] = (ppid, cmd)
    return table


def descendants(roots: set[int], table: dict[int, tuple[int, str]] | None = None) -> set[int]:
    """``roots`` and every process below them (by parent pid)."""
    table = process_table() if table is None else table
    pids = set(roots)
    while True:
        more = {pid for pid, (ppid, _) in table.items() if ppid in pids} - pids
        if not more:
            return pids
        pids |= more


def descendants_and_matches(tag: str) -> set[int]:
    """Processes whose command line names ``tag`` (a cluster's temp dir), and their
    descendants: exactly that cluster's Ray processes."""
    table = process_table()
    return descendants({pid for pid, (_, cmd) in table.items()
                        if tag in cmd and pid != os.getpid()}, table)


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def tcp_listeners(pids: set[int]) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every listening TCP socket the processes hold (IPv4 and
    IPv6; an IPv4-mapped IPv6 address is shown as ``::ffff:a.b.c.d``)."""
    listening: dict[str, tuple[str, int]] = {}
    for name, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            if family == socket.AF_INET:
                raw = struct.pack("<I", int(address, 16))
            else:  # four little-endian 32-bit words
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
            listening[fields[9]] = (socket.inet_ntop(family, raw), int(port, 16))
    found = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            inode = target[len("socket:["):-1] if target.startswith("socket:[") else None
            if inode in listening:
                found.append((*listening[inode], pid))
    return sorted(set(found))


def is_loopback(address: str) -> bool:
    return address in ("::1", "::ffff:127.0.0.1") or address.startswith("127.")
