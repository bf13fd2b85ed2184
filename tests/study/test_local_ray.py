"""The local Ray a driver starts (``study.local_ray``): every TCP listener of its process
tree is on loopback, token authentication stays on with a token file only its owner can
read, and turning authentication off is warned about.

Each test starts a real local Ray in a subprocess and reads that subprocess's own process
tree and sockets from /proc, so other Ray instances on the machine do not matter.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from study.local_ray import ensure_private_token
from tests.study.helpers import ROOT, command_line, descendants, is_loopback, tcp_listeners

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# Starts the local Ray as the driver does, runs a task (so a worker starts), says "up" and
# whether Ray's own state has token authentication on, and shuts Ray down when its stdin closes.
DRIVER = """
import sys
import ray
from study.local_ray import start

start()
from ray._private.authentication.authentication_utils import is_token_auth_enabled

ray.get(ray.remote(lambda: 1).remote())
print("up", "token-auth" if is_token_auth_enabled() else "no-auth", flush=True)
sys.stdin.read()
ray.shutdown()
"""


def _local_ray(home: Path, **env: str) -> tuple[subprocess.Popen, str, list[tuple[str, int, int]]]:
    full = {k: v for k, v in os.environ.items()
            if not k.startswith("RAY_") and k not in ("MLFLOW_TRACKING_URI",)}
    full.update(PYTHONPATH=str(ROOT), HOME=str(home), RAY_USAGE_STATS_ENABLED="0", **env)
    proc = subprocess.Popen([sys.executable, "-c", DRIVER], env=full, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    first = proc.stdout.readline().split()
    assert first[:1] == ["up"], proc.stderr.read() if proc.stderr else ""
    auth = first[1]
    deadline = time.time() + 30  # the agents bind a moment after the node is up
    while True:
        listeners = tcp_listeners(descendants({proc.pid}))
        agents = {command_line(pid).split()[0] for _, _, pid in listeners}
        if "ray::RuntimeEnvAgent" in agents or time.time() > deadline:
            return proc, auth, listeners
        time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(input="", timeout=120)
    return err


def test_local_ray_listens_on_loopback_only_with_a_private_token(tmp_path) -> None:
    proc, auth, listeners = _local_ray(tmp_path)
    try:
        names = {command_line(pid).split()[0].rsplit("/", 1)[-1] for _, _, pid in listeners}
        # the GCS, the raylet (node and object manager), the driver's and a worker's gRPC
        # servers, the runtime-env agent: all on 127.0.0.1
        assert {"gcs_server", "raylet", "ray::RuntimeEnvAgent"} <= names, listeners
        assert len(listeners) >= 5, listeners
        outside = [entry for entry in listeners if not is_loopback(entry[0])]
        assert not outside, f"listening beyond loopback: {outside}"
    finally:
        err = _stop(proc)
    token = tmp_path / ".ray" / "auth_token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700
    assert len(token.read_text().strip()) == 64
    assert auth == "token-auth"  # Ray's own state in the driver
    assert "Token authentication is enabled" not in err  # its note about the default is quiet


def test_disabled_auth_is_warned_and_still_on_loopback(tmp_path) -> None:
    proc, auth, listeners = _local_ray(tmp_path, RAY_AUTH_MODE="disabled")
    try:
        assert listeners and all(is_loopback(address) for address, _, _ in listeners), listeners
    finally:
        err = _stop(proc)
    assert auth == "no-auth"
    warnings = [line for line in err.splitlines() if line.startswith("warning: RAY_AUTH_MODE")]
    assert len(warnings) == 1 and "without a token" in warnings[0]
    assert not (tmp_path / ".ray").exists()  # no token made when auth is off


def test_a_token_file_others_can_read_is_warned_about(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    made = ensure_private_token()
    assert made == tmp_path / ".ray" / "auth_token"
    assert stat.S_IMODE(made.stat().st_mode) == 0o600 and capsys.readouterr().err == ""
    assert ensure_private_token() is None  # kept as it is
    made.chmod(0o644)
    assert ensure_private_token() is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "readable by other users (mode 0644)" in err
