"""The MLflow server in deploy/ (mlflow-server.yaml) and the deploy README.

What they must keep true: the server on 0.0.0.0 only behind MLflow's basic-auth app and a
NetworkPolicy that admits the study's Ray pods alone, its container non-root with a
restrictive securityContext and its image pinned by digest, every secret (the database URI
included) from a Secret or a file, never a command line; and the manifest's own command
line starts a server that refuses requests without a password.  The Ray side:
test_deploy_ray.py; the shared checks: deploy_manifests.py.
"""

from __future__ import annotations

import configparser
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.study.deploy_manifests import (
    DEPLOY,
    SECRET_WORDS,
    assert_hardened,
    by_kind,
    env_vars,
    peers_on_port,
    secret_ref,
)
from tests.study.helpers import free_port


def _options(args: list[str]) -> dict[str, str]:
    """``--key=value`` and ``--key value`` -> {"--key": "value"}; flags map to ""."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
        elif arg.startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
            key, value = arg, args[i + 1]
            i += 1
        else:
            key, value = arg, ""
        out[key] = value
        i += 1
    return out


# ---------------------------------------------------------------------- MLflow server
def _mlflow() -> tuple[dict, dict, dict]:
    kinds = by_kind("mlflow-server.yaml")
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return kinds, pod, container


def test_mlflow_server_manifest_serves_the_cluster() -> None:
    kinds, pod, container = _mlflow()
    deployment, service = kinds["Deployment"], kinds["Service"]
    assert service["metadata"]["name"] == "mlflow"
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert service["spec"]["ports"][0]["port"] == 5000
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    assert container["command"] == ["mlflow", "server"]  # no shell in between
    options = _options(container["args"])
    assert options["--port"] == "5000"
    assert options["--artifacts-destination"].startswith("s3://")
    assert "mlflow:5000" in options["--allowed-hosts"]  # the Host header the cluster's driver sends
    # the runs' database URI: from a Secret, into the option's environment variable
    assert "--backend-store-uri" not in options
    assert secret_ref(container, "MLFLOW_BACKEND_STORE_URI") == ("mlflow-db", "uri")
    # the MLflow release the study's driver has
    assert f"/mlflow:v{version('mlflow')}" in container["image"]


def test_mlflow_server_is_not_open_without_auth() -> None:
    """On 0.0.0.0 only behind MLflow's basic-auth app (or on 127.0.0.1 behind a proxy)."""
    kinds, pod, container = _mlflow()
    options = _options(container["args"])
    host = options.get("--host", "127.0.0.1")  # MLflow's default
    if host != "127.0.0.1":
        assert options.get("--app-name") == "basic-auth", f"--host {host} without authentication"
    env = env_vars(container)
    assert secret_ref(container, "MLFLOW_AUTH_ADMIN_PASSWORD")[0] == "mlflow-auth"
    assert secret_ref(container, "MLFLOW_FLASK_SERVER_SECRET_KEY")[0] == "mlflow-auth"
    # the auth app's config (it names the users' database, password included): a Secret file
    config = Path(env["MLFLOW_AUTH_CONFIG_PATH"]["value"])
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    mount = mounts[str(config.parent)]
    assert mount.get("readOnly") is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "mlflow-auth"
    assert {"key": "basic_auth.ini", "path": config.name} in volume["secret"]["items"]
    # the network: only the study's Ray pods (the driver) reach port 5000
    policy = kinds["NetworkPolicy"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= \
        kinds["Deployment"]["spec"]["template"]["metadata"]["labels"].items()
    ray_labels = by_kind("rayjob.yaml")["RayJob"]["spec"]["rayClusterSpec"]["headGroupSpec"][
        "template"]["metadata"]["labels"]
    peers = peers_on_port(policy, 5000)
    assert [p["podSelector"]["matchLabels"] for p in peers] == [ray_labels]


def test_mlflow_server_container_is_hardened_and_pinned() -> None:
    kinds, pod, container = _mlflow()
    assert_hardened(container, pod)
    for var in container.get("env", []):
        if SECRET_WORDS.search(var["name"]) or var["name"].endswith("_URI"):
            assert "secretKeyRef" in var.get("valueFrom", {}), f"{var['name']}: from a Secret"


def test_mlflow_server_command_runs_with_basic_auth(tmp_path, monkeypatch) -> None:
    """The manifest's own command line and environment, on this machine (SQLite instead of
    PostgreSQL, a folder instead of S3, the auth config made from basic_auth.ini.example): it
    starts, leaves /health open, refuses requests without a password, and the README's way of
    adding the study's user works."""
    pytest.importorskip("flask_wtf", reason="the basic-auth app needs mlflow[auth] (Flask-WTF)")
    kinds, pod, container = _mlflow()
    port = free_port()
    args = list(container["args"])
    replace = {"--host": "127.0.0.1", "--port": str(port), "--workers": "1",
               "--artifacts-destination": str(tmp_path / "artifacts")}
    args = [f"{a.split('=', 1)[0]}={replace[a.split('=', 1)[0]]}"
            if a.split("=", 1)[0] in replace else a for a in args]
    assert container["command"][0] == "mlflow"
    command = [sys.executable, "-m", "mlflow", *container["command"][1:], *args]

    auth = configparser.ConfigParser()
    auth.read(DEPLOY / "basic_auth.ini.example")
    auth["mlflow"]["database_uri"] = f"sqlite:///{tmp_path / 'auth.db'}"
    auth_ini = tmp_path / "basic_auth.ini"
    with auth_ini.open("w") as f:
        auth.write(f)
    admin_password = secrets.token_hex(16)
    secret_values = {  # what deploy/README.md tells people to put in the Secrets
        ("mlflow-db", "uri"): f"sqlite:///{tmp_path / 'runs.db'}",
        ("mlflow-auth", "admin_password"): admin_password,
        ("mlflow-auth", "flask_secret_key"): secrets.token_hex(32),
    }
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}
    for var in container["env"]:
        if "valueFrom" in var:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secret_values[(ref["name"], ref["key"])]
        elif var["name"] == "MLFLOW_AUTH_CONFIG_PATH":
            env[var["name"]] = str(auth_ini)
        elif var["name"] != "HOME":
            env[var["name"]] = var["value"]

    uri = f"http://127.0.0.1:{port}"
    search = f"{uri}/api/2.0/mlflow/experiments/search"

    def post(url: str, user: str | None = None, password: str | None = None) -> int:
        headers = {"Content-Type": "application/json"}
        if user:
            headers["Authorization"] = "Basic " + b64encode(f"{user}:{password}".encode()).decode()
        request = urllib.request.Request(url, data=b'{"max_results": 1}', headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                return resp.status
        except urllib.error.HTTPError as err:
            return err.code

    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 120
            while True:
                try:
                    with urllib.request.urlopen(f"{uri}/health", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                assert proc.poll() is None and time.time() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.5)
            assert post(search) == 401
            assert post(search, "admin", "wrong-password-123") == 401
            assert post(search, "admin", admin_password) == 200

            # README: the admin adds the study's user; the driver signs in with its env vars
            from mlflow.server import get_app_client
            from mlflow.tracking import MlflowClient

            study_password = secrets.token_hex(16)
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", admin_password)
            get_app_client("basic-auth", tracking_uri=uri).create_user("study", study_password)
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "study")
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", study_password)
            assert MlflowClient(uri).create_experiment("deploy-check")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


# ---------------------------------------------------------------------- deploy README
def test_deploy_readme_keeps_secrets_off_command_lines() -> None:
    text = (DEPLOY / "README.md").read_text()
    creates = [line for line in text.splitlines() if line.startswith("kubectl create secret")]
    assert creates, "the README says how to create the Secrets"
    for line in creates:
        assert "--from-literal" not in line, f"a secret on a command line: {line}"
        assert "--from-file" in line or "--from-env-file" in line, line
    assert "--backend-store-uri postgres" not in text, "the database URI (password) from a file"
    assert "kubectl port-forward" in text and "ray dashboard deploy/aws-gpu.yaml" in text
    assert "--app-name basic-auth" in text or "--app-name=basic-auth" in text
    assert "crane digest" in text
