"""Helpers for tests that run real studies: subprocess drivers, MLflow look-ups, servers."""

from __future__ import annotations

import io
import json
import os
import shlex
import socket
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


def study_runs(tracking_uri: str, experiment: str) -> tuple[Any, list[Any], list[Any]]:
    """(client, parent runs, trial runs) of an experiment."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
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
