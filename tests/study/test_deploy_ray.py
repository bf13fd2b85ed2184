"""The Ray side of deploy/: the AWS cluster launcher, the KubeRay RayJob, the image and its pins.

What they must keep true: no Ray dashboard on 0.0.0.0 without authentication (the launcher's
on 127.0.0.1 behind an SSH port forward; the RayJob's behind the token and a NetworkPolicy),
every container non-root with a restrictive securityContext, every image pinned by digest,
every pip install pinned to exact versions (constraints.txt: the versions tested here), and
every secret from a Secret or a file, never a command line.  The MLflow server's manifest:
test_deploy_mlflow.py; the shared checks: deploy_manifests.py.
"""

from __future__ import annotations

import json
import re
from importlib.metadata import version

import pytest

from study.spec import parse_args
from tests.study.deploy_manifests import (
    DEPLOY,
    SECRET_WORDS,
    assert_digest,
    assert_exact_pins,
    assert_hardened,
    assert_pip_pinned,
    by_kind,
    env_vars,
    peers_on_port,
    secret_ref,
    yaml_documents,
)
from tests.study.helpers import ROOT


# ---------------------------------------------------------------------- AWS cluster launcher
def test_cluster_launcher_yaml_is_valid_for_ray() -> None:
    (config,) = yaml_documents("aws-gpu.yaml")
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
    (config,) = yaml_documents("aws-gpu.yaml")
    (start,) = [c for c in config["head_start_ray_commands"] if "ray start" in c]
    assert "--dashboard-host=127.0.0.1" in start.split()
    text = (DEPLOY / "aws-gpu.yaml").read_text()
    assert "0.0.0.0" not in text
    assert "ray dashboard deploy/aws-gpu.yaml" in text
    # nothing opens the dashboard's port to the network (security groups, port publishing)
    assert "8265" not in json.dumps(config["available_node_types"])
    assert not any(o.startswith(("-p ", "--publish")) for o in config["docker"]["run_options"])


def test_launcher_container_is_pinned_unprivileged_and_gets_secrets_from_files() -> None:
    (config,) = yaml_documents("aws-gpu.yaml")
    docker = config["docker"]
    for key in ("image", "head_image", "worker_image"):
        if key in docker:
            assert_digest(docker[key])
    options = docker["run_options"]
    assert "--security-opt no-new-privileges" in options and "--cap-drop ALL" in options
    assert not any(o.startswith(("--privileged", "--cap-add", "--user")) for o in options), \
        "the image's non-root user, no added privileges"
    commands = [c for key in ("initialization_commands", "setup_commands", "head_setup_commands",
                              "worker_setup_commands", "head_start_ray_commands",
                              "worker_start_ray_commands") for c in config.get(key) or []]
    for command in commands:
        assert_pip_pinned(command)
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
    job = by_kind("rayjob.yaml")["RayJob"]
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
        env = env_vars(container)
        assert env["RAY_AUTH_MODE"]["value"] == "token", container["name"]
        secrets_used.add(secret_ref(container, "RAY_AUTH_TOKEN"))
    assert len(secrets_used) == 1  # one token for every container


def test_rayjob_containers_are_hardened_and_pinned() -> None:
    job = by_kind("rayjob.yaml")["RayJob"]
    for role, pod in _rayjob_pods(job):
        assert pod["containers"], role
        for container in pod["containers"] + pod.get("initContainers", []):
            assert_hardened(container, pod)
            for var in container.get("env", []):
                if SECRET_WORDS.search(var["name"]):
                    assert "secretKeyRef" in var.get("valueFrom", {}), \
                        f"{role}: {var['name']} must come from a Secret"
    # the head reads the dataset into a writable volume (the root filesystem is read-only)
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    data_dir = parse_args(job["spec"]["entrypoint"].split()[3:]).data_dir
    assert str(data_dir) in {m["mountPath"] for m in head["containers"][0]["volumeMounts"]}


def test_rayjob_driver_signs_in_to_mlflow_from_a_secret() -> None:
    job = by_kind("rayjob.yaml")["RayJob"]
    (head,) = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"]
    user = secret_ref(head, "MLFLOW_TRACKING_USERNAME")
    password = secret_ref(head, "MLFLOW_TRACKING_PASSWORD")
    assert user[0] == password[0] and user[1] != password[1]


def test_rayjob_dashboard_is_reached_only_by_the_operator_and_the_submitter() -> None:
    """The dashboard's Jobs API runs code. KubeRay's operator polls it over the pod network, so
    it cannot be on 127.0.0.1 alone; it is never published (ClusterIP, no Ingress), and a
    NetworkPolicy admits port 8265 only from the submitter pod and the operator."""
    kinds = by_kind("rayjob.yaml")
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
    peers = peers_on_port(policy, 8265)
    submitter = job["spec"]["submitterPodTemplate"]["metadata"]["labels"]
    admitted = [p["podSelector"]["matchLabels"] for p in peers]
    assert any(labels.items() <= submitter.items() for labels in admitted), "the submitter"
    assert {"app.kubernetes.io/name": "kuberay-operator"} in admitted, "the KubeRay operator"
    for labels in admitted:  # only the operator, the submitter and the cluster's own pods
        assert labels in ({"app.kubernetes.io/name": "kuberay-operator"}, submitter, selector), \
            labels


# ---------------------------------------------------------------------- image and packages
def test_dockerfile_pins_its_base_and_packages_and_runs_as_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line.strip() for line in text.replace("\\\n", " ").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    bases = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
    assert bases
    for base in bases:
        assert_digest(base)
    runs = [line[4:] for line in lines if line.upper().startswith("RUN ")]
    assert any("pip install" in run for run in runs)
    for run in runs:
        assert_pip_pinned(run)
    users = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    assert users and re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]), \
        "end as a non-root user, by number (Kubernetes checks runAsNonRoot against it)"


def test_constraints_pin_the_tested_versions_of_every_dependency() -> None:
    path = DEPLOY / "constraints.txt"
    assert_exact_pins(path)
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
