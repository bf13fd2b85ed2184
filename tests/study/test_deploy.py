"""The cluster definitions in deploy/: valid for Ray and KubeRay, and hardened.

What the manifests must keep true: no dashboard or MLflow server on 0.0.0.0 without
authentication (the launcher's dashboard on 127.0.0.1 behind an SSH port forward; the RayJob's
behind the token and a NetworkPolicy; MLflow behind its basic-auth app), every container
non-root with a restrictive securityContext, every image pinned by digest, every pip install
pinned to exact versions, and every secret from a Secret or a file, never a command line.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from importlib.metadata import version
from pathlib import Path

import pytest

from study.spec import parse_args
from tests.study.helpers import ROOT, free_port

DEPLOY = ROOT / "deploy"
DIGEST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:-]*@sha256:[0-9a-f]{64}$")  # REGISTRY: a placeholder
SECRET_WORDS = re.compile(r"password|passwd|secret|token|postgres(ql)?://", re.IGNORECASE)
# Where the launcher and the Dockerfile put the repository on a node.
REMOTE_ROOT = "/home/ray/siamese-study/"


# ---------------------------------------------------------------------- helpers
def _yaml(name: str) -> list[dict]:
    yaml = pytest.importorskip("yaml")
    return [doc for doc in yaml.safe_load_all((DEPLOY / name).read_text()) if doc]


def _kinds(name: str) -> dict[str, dict]:
    docs = _yaml(name)
    kinds = {d["kind"]: d for d in docs}
    assert len(kinds) == len(docs), f"{name}: one document per kind"
    return kinds


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def _secret_ref(container: dict, name: str) -> tuple[str, str]:
    """(Secret name, key) that the environment variable ``name`` is read from."""
    ref = _env(container)[name]["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


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


def _assert_digest(image: str) -> None:
    """Pinned by digest (a tag may precede it for readers): ``repo[:tag]@sha256:<64 hex>``."""
    assert DIGEST.match(image), f"{image}: pin the image by digest, repo@sha256:<64 hex>"


def _assert_exact_pins(path: Path) -> None:
    """Every requirement line of a pip constraints/requirements file is ``name==version``."""
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    pins = [line for line in lines if line]
    assert pins, f"{path} pins nothing"
    for line in pins:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[^=<>~!*\s]+", line), \
            f"{path}: {line!r} is not an exact pin (name==version)"


def _assert_pip_pinned(command: str) -> None:
    """Every ``pip install`` in a shell command installs exact versions only: each named
    package carries ``==``, and a local project is installed under a constraints file whose
    every line is an exact pin (its dependencies resolve to those versions)."""
    for part in re.split(r"&&|;|\|\|", command):
        words = shlex.split(part)
        if "pip" not in words or words[words.index("pip") + 1:][:1] != ["install"]:
            continue
        words = words[words.index("pip") + 2:]
        files, names, local = [], [], []
        i = 0
        while i < len(words):
            word = words[i]
            if word in ("-c", "--constraint", "-r", "--requirement"):
                files.append(words[i + 1])
                i += 2
                continue
            if word == "-e":
                local.append(words[i + 1])
                i += 2
                continue
            if not word.startswith("-"):
                (local if word.startswith(("/", ".", "~")) else names).append(word)
            i += 1
        assert names or local or files, f"nothing installed by: {part}"
        for name in names:
            assert "==" in name, f"{name!r} is not pinned (name==version) in: {part}"
        if local:
            assert files, f"{local} installed without a constraints file (-c) in: {part}"
        for file in files:
            assert file.startswith(REMOTE_ROOT), f"{file}: a file of this repository"
            _assert_exact_pins(ROOT / file[len(REMOTE_ROOT):])


def _assert_hardened(container: dict, pod_spec: dict) -> None:
    """Non-root, no privilege escalation, no capabilities, read-only root filesystem with a
    writable /tmp volume; no secret on its command line; image pinned by digest."""
    name = container["name"]
    pod = pod_spec.get("securityContext") or {}
    sc = container.get("securityContext") or {}
    effective = {**pod, **sc}  # the container's settings win over the pod's
    assert effective.get("runAsNonRoot") is True, f"{name}: runAsNonRoot"
    assert isinstance(effective.get("runAsUser"), int) and effective["runAsUser"] > 0, \
        f"{name}: runAsUser must be a non-zero uid"
    assert sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation: false"
    assert sc.get("privileged") is not True, name
    capabilities = sc.get("capabilities") or {}
    assert capabilities.get("drop") == ["ALL"] and not capabilities.get("add"), \
        f"{name}: capabilities: drop [ALL], add none"
    assert sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem"
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    assert "/tmp" in mounts and "emptyDir" in volumes[mounts["/tmp"]], f"{name}: writable /tmp"
    assert (pod_spec.get("securityContext") or {}).get("seccompProfile", {}).get("type") \
        == "RuntimeDefault", f"{name}: the pod's seccompProfile RuntimeDefault"
    command_line = " ".join(container.get("command", []) + container.get("args", []))
    assert not SECRET_WORDS.search(command_line), f"{name}: a secret on the command line"
    assert "pip install" not in command_line, f"{name}: install into the image, not at start"
    _assert_digest(container["image"])


def _admits(rule: dict, port: int) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port for p in ports)


def _peers_on_port(policy: dict, port: int) -> list[dict]:
    """The peers a NetworkPolicy admits on ``port``; each must be a labelled pod selector."""
    peers = []
    for rule in policy["spec"].get("ingress", []):
        if not _admits(rule, port):
            continue
        assert rule.get("from"), f"{policy['metadata']['name']}: port {port} open to everyone"
        for peer in rule["from"]:
            assert "ipBlock" not in peer, f"{peer}: admit pods by label, not address blocks"
            assert peer.get("podSelector", {}).get("matchLabels"), \
                f"{peer}: admit pods by label, not all pods of a namespace"
            peers.append(peer)
    return peers


# ---------------------------------------------------------------------- AWS cluster launcher
def test_cluster_launcher_yaml_is_valid_for_ray() -> None:
    (config,) = _yaml("aws-gpu.yaml")
    assert config["cluster_name"] and config["provider"]["type"] == "aws"
    assert config["provider"]["region"]
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    for name, node in types.items():
        assert node["node_config"]["InstanceType"] and "resources" in node
        if name != config["head_node_type"]:
            assert 0 <= node["min_workers"] <= node["max_workers"] <= config["max_workers"]
    head = types[config["head_node_type"]]["node_config"]["InstanceType"]
    workers = [t["node_config"]["InstanceType"] for n, t in types.items()
               if n != config["head_node_type"]]
    assert head == "m5.2xlarge" and workers == ["g5.xlarge"]
    # the project is installed on every node; the token reaches every node; token mode is on
    assert any("pip install" in c and "siamese-study" in c for c in config["setup_commands"])
    assert "/home/ray/.ray/auth_token" in config["file_mounts"]
    assert "--env RAY_AUTH_MODE=token" in config["docker"]["run_options"]
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert any("RAY_AUTH_MODE=token ray start" in c for c in config[key])

    # Ray's own schema and default-filling, as `ray up` does before launching anything
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(config))


def test_launcher_dashboard_only_on_the_heads_loopback() -> None:
    """The Jobs API runs code: the head's dashboard binds 127.0.0.1, reached through
    `ray dashboard` (an SSH port forward), never 0.0.0.0."""
    (config,) = _yaml("aws-gpu.yaml")
    (start,) = [c for c in config["head_start_ray_commands"] if "ray start" in c]
    assert "--dashboard-host=127.0.0.1" in start.split()
    text = (DEPLOY / "aws-gpu.yaml").read_text()
    assert "0.0.0.0" not in text
    assert "ray dashboard deploy/aws-gpu.yaml" in text
    # nothing opens the dashboard's port to the network (security groups, port publishing)
    assert "8265" not in json.dumps(config["available_node_types"])
    assert not any(o.startswith(("-p ", "--publish")) for o in config["docker"]["run_options"])


def test_launcher_container_is_pinned_unprivileged_and_gets_secrets_from_files() -> None:
    (config,) = _yaml("aws-gpu.yaml")
    docker = config["docker"]
    for key in ("image", "head_image", "worker_image"):
        if key in docker:
            _assert_digest(docker[key])
    options = docker["run_options"]
    assert "--security-opt no-new-privileges" in options and "--cap-drop ALL" in options
    assert not any(o.startswith(("--privileged", "--cap-add", "--user")) for o in options), \
        "the image's non-root user, no added privileges"
    commands = [c for key in ("initialization_commands", "setup_commands", "head_setup_commands",
                              "worker_setup_commands", "head_start_ray_commands",
                              "worker_start_ray_commands") for c in config.get(key) or []]
    for command in commands:
        _assert_pip_pinned(command)
        assert not SECRET_WORDS.search(command.replace("RAY_AUTH_MODE=token", "")), \
            f"a secret on a command line: {command}"
    # secrets arrive as files copied from the user's machine
    mounts = config["file_mounts"]
    assert mounts["/home/ray/.ray/auth_token"] == "~/.ray/auth_token"
    assert mounts["/home/ray/.mlflow/credentials"] == "~/.mlflow/credentials"


# ---------------------------------------------------------------------- KubeRay RayJob
def _rayjob_pods(job: dict) -> list[tuple[str, dict]]:
    """(role, pod spec) of every pod the RayJob makes: head, worker groups, submitter."""
    cluster = job["spec"]["rayClusterSpec"]
    pods = [("head", cluster["headGroupSpec"]["template"]["spec"])]
    pods += [(group["groupName"], group["template"]["spec"]) for group in cluster["workerGroupSpecs"]]
    pods.append(("submitter", job["spec"]["submitterPodTemplate"]["spec"]))
    return pods


def test_rayjob_manifest_has_what_kuberay_needs() -> None:
    job = _kinds("rayjob.yaml")["RayJob"]
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    assert job["metadata"]["name"]
    entry = job["spec"]["entrypoint"]
    assert entry.startswith("python -m study.run ") and "--address" not in entry
    assert "--tracking-uri http://mlflow:5000" in entry and "--storage-path s3://" in entry
    parse_args(entry.split()[3:])  # the study accepts the entrypoint's options
    cluster = job["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]
    containers = list(head["template"]["spec"]["containers"])
    assert containers and "rayStartParams" in head
    groups = cluster["workerGroupSpecs"]
    assert groups
    for group in groups:
        assert group["groupName"] and group["replicas"] >= 1 and "rayStartParams" in group
        group_containers = group["template"]["spec"]["containers"]
        assert group_containers[0]["resources"]["limits"]["nvidia.com/gpu"] >= 1
        containers += group_containers
    containers += job["spec"]["submitterPodTemplate"]["spec"]["containers"]
    secrets_used = set()
    for container in containers:
        env = _env(container)
        assert env["RAY_AUTH_MODE"]["value"] == "token", container["name"]
        secrets_used.add(_secret_ref(container, "RAY_AUTH_TOKEN"))
    assert len(secrets_used) == 1  # one token for every container


def test_rayjob_containers_are_hardened_and_pinned() -> None:
    job = _kinds("rayjob.yaml")["RayJob"]
    for role, pod in _rayjob_pods(job):
        assert pod["containers"], role
        for container in pod["containers"] + pod.get("initContainers", []):
            _assert_hardened(container, pod)
            for var in container.get("env", []):
                if SECRET_WORDS.search(var["name"]):
                    assert "secretKeyRef" in var.get("valueFrom", {}), \
                        f"{role}: {var['name']} must come from a Secret"
    # the head reads the dataset into a writable volume (the root filesystem is read-only)
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    data_dir = parse_args(job["spec"]["entrypoint"].split()[3:]).data_dir
    assert str(data_dir) in {m["mountPath"] for m in head["containers"][0]["volumeMounts"]}


def test_rayjob_driver_signs_in_to_mlflow_from_a_secret() -> None:
    job = _kinds("rayjob.yaml")["RayJob"]
    (head,) = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"]
    user = _secret_ref(head, "MLFLOW_TRACKING_USERNAME")
    password = _secret_ref(head, "MLFLOW_TRACKING_PASSWORD")
    assert user[0] == password[0] and user[1] != password[1]


def test_rayjob_dashboard_is_reached_only_by_the_operator_and_the_submitter() -> None:
    """The dashboard's Jobs API runs code. KubeRay's operator polls it over the pod network, so
    it cannot be on 127.0.0.1 alone; it is never published (ClusterIP, no Ingress), and a
    NetworkPolicy admits port 8265 only from the submitter pod and the operator."""
    kinds = _kinds("rayjob.yaml")
    job, policy = kinds["RayJob"], kinds["NetworkPolicy"]
    head_group = job["spec"]["rayClusterSpec"]["headGroupSpec"]
    assert head_group.get("serviceType", "ClusterIP") == "ClusterIP"
    assert not head_group.get("enableIngress")
    host = head_group["rayStartParams"].get("dashboard-host", "0.0.0.0")  # KubeRay's default
    if host == "127.0.0.1":
        return
    head_labels = head_group["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector and selector.items() <= head_labels.items(), "the policy selects the head"
    assert "Ingress" in policy["spec"]["policyTypes"]
    peers = _peers_on_port(policy, 8265)
    submitter = job["spec"]["submitterPodTemplate"]["metadata"]["labels"]
    admitted = [p["podSelector"]["matchLabels"] for p in peers]
    assert any(labels.items() <= submitter.items() for labels in admitted), "the submitter"
    assert {"app.kubernetes.io/name": "kuberay-operator"} in admitted, "the KubeRay operator"
    for labels in admitted:  # only the operator, the submitter and the cluster's own pods
        assert labels in ({"app.kubernetes.io/name": "kuberay-operator"}, submitter, selector), \
            labels


# ---------------------------------------------------------------------- MLflow server
def _mlflow() -> tuple[dict, dict, dict]:
    kinds = _kinds("mlflow-server.yaml")
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
    assert _secret_ref(container, "MLFLOW_BACKEND_STORE_URI") == ("mlflow-db", "uri")
    # the MLflow release the study's driver has
    assert f"/mlflow:v{version('mlflow')}" in container["image"]


def test_mlflow_server_is_not_open_without_auth() -> None:
    """On 0.0.0.0 only behind MLflow's basic-auth app (or on 127.0.0.1 behind a proxy)."""
    kinds, pod, container = _mlflow()
    options = _options(container["args"])
    host = options.get("--host", "127.0.0.1")  # MLflow's default
    if host != "127.0.0.1":
        assert options.get("--app-name") == "basic-auth", f"--host {host} without authentication"
    env = _env(container)
    assert _secret_ref(container, "MLFLOW_AUTH_ADMIN_PASSWORD")[0] == "mlflow-auth"
    assert _secret_ref(container, "MLFLOW_FLASK_SERVER_SECRET_KEY")[0] == "mlflow-auth"
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
    ray_labels = _kinds("rayjob.yaml")["RayJob"]["spec"]["rayClusterSpec"]["headGroupSpec"][
        "template"]["metadata"]["labels"]
    peers = _peers_on_port(policy, 5000)
    assert [p["podSelector"]["matchLabels"] for p in peers] == [ray_labels]


def test_mlflow_server_container_is_hardened_and_pinned() -> None:
    kinds, pod, container = _mlflow()
    _assert_hardened(container, pod)
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


# ---------------------------------------------------------------------- image and packages
def test_dockerfile_pins_its_base_and_packages_and_runs_as_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line.strip() for line in text.replace("\\\n", " ").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    bases = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
    assert bases
    for base in bases:
        _assert_digest(base)
    runs = [line[4:] for line in lines if line.upper().startswith("RUN ")]
    assert any("pip install" in run for run in runs)
    for run in runs:
        _assert_pip_pinned(run)
    users = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    assert users and re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]), \
        "end as a non-root user, by number (Kubernetes checks runAsNonRoot against it)"


def test_constraints_pin_the_tested_versions_of_every_dependency() -> None:
    path = DEPLOY / "constraints.txt"
    _assert_exact_pins(path)
    pins = dict(line.lower().split("==") for line in path.read_text().splitlines()
                if line and not line.startswith("#"))
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()
        assert name in pins, f"{name} (pyproject.toml) has no pin in {path.name}"
    for name in ("ray", "mlflow", "torch"):  # the versions this suite runs
        assert pins[name] == version(name), f"{name}: {pins[name]} pinned, {version(name)} tested"
    assert "boto3" in pins


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
