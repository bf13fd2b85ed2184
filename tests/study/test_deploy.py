"""The cluster definitions in deploy/: valid for Ray and KubeRay, and hardened.

What the manifests must keep true: no dashboard or MLflow server on 0.0.0.0 without
authentication (the launcher's dashboard on 127.0.0.1 behind an SSH port forward; the RayJob's
behind the token and a NetworkPolicy; MLflow behind its basic-auth app), every container
non-root with a restrictive securityContext, every image pinned by digest, every pip install
pinned to exact versions, and every secret from a Secret or a file, never a command line.
"""

from __future__ import annotations

import re
import shlex
from importlib.metadata import version
from pathlib import Path

import pytest

from study.spec import parse_args
from tests.study.helpers import ROOT

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
    docs = {d["kind"]: d for d in _yaml("mlflow-server.yaml")}
    deployment, service = docs["Deployment"], docs["Service"]
    assert service["metadata"]["name"] == "mlflow"
    assert service["spec"]["ports"][0]["port"] == 5000
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    command = " ".join(container["command"] + container["args"])
    for part in ("mlflow server", "--host 0.0.0.0", "--port 5000", "--backend-store-uri",
                 "--artifacts-destination s3://", "--allowed-hosts"):
        assert part in command
    assert "mlflow:5000" in command  # the Host header the cluster's driver sends
    assert _env(container)["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"]


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
