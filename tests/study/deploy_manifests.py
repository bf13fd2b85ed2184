"""The deploy/ manifests read for tests, and the hardening every one of them must keep.

``yaml_documents`` and ``by_kind`` read a manifest; ``env_vars``, ``secret_ref`` and
``peers_on_port`` look inside one; the ``assert_*`` checks are the rules the launcher, the
RayJob, the MLflow server and the Dockerfile share: images pinned by digest, pip installs
pinned to exact versions, containers non-root with a restrictive securityContext and no
secret on a command line.  Used by test_deploy_ray.py and test_deploy_mlflow.py.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.study.helpers import ROOT

DEPLOY = ROOT / "deploy"
DIGEST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:-]*@sha256:[0-9a-f]{64}$")  # REGISTRY: a placeholder
SECRET_WORDS = re.compile(r"password|passwd|secret|token|postgres(ql)?://", re.IGNORECASE)
# Where the launcher and the Dockerfile put the repository on a node.
REMOTE_ROOT = "/home/ray/siamese-study/"


def yaml_documents(name: str) -> list[dict]:
    """The non-empty YAML documents of ``deploy/<name>`` (skips the test without PyYAML)."""
    yaml = pytest.importorskip("yaml")
    return [doc for doc in yaml.safe_load_all((DEPLOY / name).read_text()) if doc]


def by_kind(name: str) -> dict[str, dict]:
    """The documents of ``deploy/<name>`` by their ``kind``; one document per kind."""
    docs = yaml_documents(name)
    kinds = {d["kind"]: d for d in docs}
    assert len(kinds) == len(docs), f"{name}: one document per kind"
    return kinds


def env_vars(container: dict) -> dict[str, dict]:
    """A container's ``env`` entries by variable name."""
    return {e["name"]: e for e in container.get("env", [])}


def secret_ref(container: dict, name: str) -> tuple[str, str]:
    """(Secret name, key) that the environment variable ``name`` is read from."""
    ref = env_vars(container)[name]["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def assert_digest(image: str) -> None:
    """Pinned by digest (a tag may precede it for readers): ``repo[:tag]@sha256:<64 hex>``."""
    assert DIGEST.match(image), f"{image}: pin the image by digest, repo@sha256:<64 hex>"


def assert_exact_pins(path: Path) -> None:
    """Every requirement line of a pip constraints/requirements file is ``name==version``."""
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    pins = [line for line in lines if line]
    assert pins, f"{path} pins nothing"
    for line in pins:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[^=<>~!*\s]+", line), \
            f"{path}: {line!r} is not an exact pin (name==version)"


def assert_pip_pinned(command: str) -> None:
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
            assert_exact_pins(ROOT / file[len(REMOTE_ROOT):])


def assert_hardened(container: dict, pod_spec: dict) -> None:
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
    assert_digest(container["image"])


def _admits(rule: dict, port: int) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port for p in ports)


def peers_on_port(policy: dict, port: int) -> list[dict]:
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
