"""Start or join Ray, and check that the study can run on what it joined.

Without ``--address`` (or ``$RAY_ADDRESS``) the driver starts a local Ray that listens on
127.0.0.1 only, with token authentication (``study.local_ray``). With it, the driver joins
an existing cluster: one started by hand (``ray start``), by the cluster launcher
(``ray up deploy/aws-gpu.yaml``) or by KubeRay; under ``ray job submit`` Ray sets
``RAY_ADDRESS`` for the driver, so no option is needed there.

After connecting, before any trial, :func:`check_cluster` refuses what cannot work on the
cluster it found (``UsageError``: one line, exit code 2):

- a ``--storage-path`` that only this machine can see, on a cluster of more than one node:
  a trial on another node writes its checkpoints (``embedding.npz``, from which the driver
  draws the t-SNE plot) under that path on *its* disk, where the driver cannot read them.
  Shared means a cloud URI (``s3://``, ``gs://``, ...), a path on a network filesystem
  (:data:`NETWORK_FS_TYPES`, looked up in ``/proc/mounts``), or a path the user declares
  shared with ``--shared-storage``;
- an MLflow SQLite store or ``--storage-path`` inside the copy of ``--working-dir`` that
  ``ray job submit`` unpacks for the driver: Ray deletes or reuses that folder.

MLflow itself needs no cluster check: only the driver writes to it (``study.tracking``), so
a tracking server or a local SQLite file on the driver's machine both lose nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from study.spec import StudySpec, UsageError
from study.store import sqlite_path

# Filesystem types (third field of /proc/mounts) whose files every node that mounts them
# sees: network and cluster filesystems.
NETWORK_FS_TYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph", "cephfs",
    "glusterfs", "ocfs2", "gfs2", "afs", "pvfs2", "orangefs", "wekafs", "fuse",
})
# FUSE filesystems are counted as shared (sshfs, s3fs, gcsfuse, juicefs, ...) except these
# helpers, which serve local files.
LOCAL_FUSE_TYPES = frozenset({
    "fuse.lxcfs", "fuse.fuse-overlayfs", "fuse.gvfsd-fuse", "fuse.portal", "fuse.squashfuse",
    "fuse.bindfs", "fuse.encfs", "fuse.gocryptfs", "fuse.ntfs-3g", "fuse.vmhgfs-fuse",
})


@dataclass(frozen=True)
class ClusterInfo:
    """What the driver joined: alive nodes and their total resources."""

    nodes: int
    cpus: float
    gpus: float
    address: str | None  # None: a local Ray started by this driver


# ---------------------------------------------------------------------- shared storage
def parse_mounts(text: str) -> list[tuple[str, str]]:
    """``(mount point, filesystem type)`` of each line of ``/proc/mounts`` text, in order.

    The kernel escapes space, tab, newline and backslash in mount points as octal
    (``\\040``); they are unescaped here.
    """
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            mounts.append((_unescape(fields[1]), fields[2]))
    return mounts


def _unescape(field: str) -> str:
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mount_of(path: str, mounts_text: str) -> tuple[str, str]:
    """The mount holding ``path``: the longest mount point that is ``path`` or one of its
    parents (the last such line wins, as a later mount hides an earlier one)."""
    target = Path(os.path.realpath(path))
    best = ("/", "unknown")
    best_len = -1
    for point, fstype in parse_mounts(mounts_text):
        mount = Path(point)
        if (target == mount or mount in target.parents) and len(mount.parts) >= best_len:
            best, best_len = (point, fstype), len(mount.parts)
    return best


def is_network_fs(fstype: str) -> bool:
    """Whether files on a filesystem of this type are seen by every node that mounts it."""
    if fstype in LOCAL_FUSE_TYPES:
        return False
    return fstype in NETWORK_FS_TYPES or fstype.startswith("fuse.")


def is_uri(path: str) -> bool:
    """A cloud or other remote URI (``s3://``, ``gs://``, ``abfs://``, ...), not ``file://``."""
    scheme = urlparse(path).scheme
    return "://" in path and scheme not in ("", "file")


def is_shared_path(path: str, mounts_text: str) -> bool:
    """Whether every node of a cluster can read and write ``path``: a remote URI, or a path
    whose mount has a network filesystem type."""
    if is_uri(path):
        return True
    local = path[len("file://"):] if path.startswith("file://") else path
    return is_network_fs(mount_of(local, mounts_text)[1])


def storage_problem(storage_path: str, nodes: int, declared_shared: bool,
                    mounts_text: str) -> str | None:
    """Why Ray's results cannot live at ``storage_path`` on a cluster of ``nodes`` alive
    nodes, or None when they can."""
    if nodes <= 1 or declared_shared or is_shared_path(storage_path, mounts_text):
        return None
    local = storage_path[len("file://"):] if storage_path.startswith("file://") else storage_path
    point, fstype = mount_of(local, mounts_text)
    return (f"--storage-path {storage_path} is on this machine's local disk ({fstype} mounted "
            f"at {point}) but the Ray cluster has {nodes} nodes: trials on other nodes cannot "
            "write their checkpoints there and the driver could not read them; use storage "
            "every node shares (--storage-path s3://bucket/studies, gs://..., or an NFS "
            "mount), or add --shared-storage if this path is the same shared folder on every "
            "node")


def job_dir_problem(tracking_uri: str, storage_path: str, cwd: str,
                    environ: dict[str, str]) -> str | None:
    """Why a ``ray job submit`` driver would lose its records, or None.

    A job driver runs in Ray's unpacked copy of ``--working-dir``
    (``.../runtime_resources/working_dir_files/_ray_pkg_<hash>``), which Ray garbage-collects
    and reuses for the next job with the same files: the default ``sqlite:///$PWD/mlflow.db``
    and ``./ray_results`` must not land there.
    """
    if "RAY_JOB_CONFIG_JSON_ENV_VAR" not in environ or "runtime_resources" not in cwd:
        return None
    here = Path(os.path.realpath(cwd))
    places = []
    if sqlite_path(tracking_uri) is not None:
        places.append(("--tracking-uri", tracking_uri, str(sqlite_path(tracking_uri))))
    if not is_uri(storage_path):
        places.append(("--storage-path", storage_path, storage_path))
    for option, value, path in places:
        where = Path(os.path.realpath(path))
        if where == here or here in where.parents:
            return (f"{option} {value} lies inside the job's copy of --working-dir ({cwd}), "
                    "which Ray deletes or reuses: pass --tracking-uri http://MLFLOW:5000 (or "
                    "sqlite:////abs/path/mlflow.db outside it) and --storage-path s3://... "
                    "(or a shared folder) in the job's entrypoint")
    return None


def read_mounts() -> str:
    try:
        return Path("/proc/mounts").read_text()
    except OSError:  # not Linux: no mount table; only URIs and --shared-storage count
        return ""


# ---------------------------------------------------------------------- connect and check
def alive_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def cluster_info(address: str | None) -> ClusterInfo:
    import ray

    total = ray.cluster_resources()
    return ClusterInfo(nodes=len(alive_nodes()), cpus=float(total.get("CPU", 0.0)),
                       gpus=float(total.get("GPU", 0.0)), address=address)


def check_cluster(spec: StudySpec, info: ClusterInfo, tracking_uri: str,
                  mounts_text: str | None = None) -> None:
    """Refuse, before any trial, what cannot work on the joined cluster (``UsageError``)."""
    problem = job_dir_problem(tracking_uri, spec.storage_path, os.getcwd(), dict(os.environ))
    problem = problem or storage_problem(
        spec.storage_path, info.nodes, spec.shared_storage,
        read_mounts() if mounts_text is None else mounts_text)
    if problem:
        raise UsageError(problem)


def connect(spec: StudySpec) -> ClusterInfo:
    """Start a local Ray or join ``spec.address``, then :func:`check_cluster`.

    Idempotent: an already connected driver is only checked. On a refusal Ray is shut down
    and ``UsageError`` raised (print it as one line, exit 2); nothing has run.
    """
    import ray

    if not ray.is_initialized():
        _init(spec)
    info = cluster_info(spec.address)
    try:
        check_cluster(spec, info, spec.tracking_uri)
    except UsageError:
        ray.shutdown()
        raise
    return info


def _init(spec: StudySpec) -> None:
    import ray

    if not spec.address:
        from study.local_ray import start

        start()  # on loopback: no traffic leaves the machine
        return
    try:
        ray.init(address=spec.address, log_to_driver=False, configure_logging=False)
    except Exception as err:  # ConnectionError, AuthenticationError, RuntimeError, ValueError
        ray.shutdown()
        raise UsageError(
            f"--address {spec.address}: cannot join the Ray cluster ({_reason(err)}); check that it "
            "runs (`ray status` on the head) and, as clusters use token authentication, set "
            "RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH "
            "or ~/.ray/auth_token; `ray get-auth-token` on the head prints it)") from None


def _reason(err: BaseException) -> str:
    """One line saying why ``ray.init`` failed: a refused token, else the error's first line."""
    chain, seen = [], err
    while seen is not None and len(chain) < 6:
        chain.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    text = " ".join(chain)
    if "InvalidAuthToken" in text or "AuthenticationError" in text:
        return "it refused this driver's authentication token"
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return first[:200]
