"""The cluster definitions in deploy/: valid for Ray and KubeRay."""

from __future__ import annotations

import pytest

from study.spec import parse_args
from tests.study.helpers import ROOT

DEPLOY = ROOT / "deploy"


def _yaml(name: str) -> list[dict]:
    yaml = pytest.importorskip("yaml")
    return [doc for doc in yaml.safe_load_all((DEPLOY / name).read_text()) if doc]


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


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


def test_rayjob_manifest_has_what_kuberay_needs() -> None:
    (job,) = _yaml("rayjob.yaml")
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
        ref = env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
        secrets_used.add((ref["name"], ref["key"]))
    assert len(secrets_used) == 1  # one token for every container


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
