"""One driver per study: an OS file lock that the driver holds while it runs.

A second driver of a study whose driver is alive (a new run or a ``--resume`` of the same
``--experiment-name`` with the same ``--storage-path``) is refused with one line, exit
code 2; a study whose driver crashed can be resumed at once.

Decision: ``fcntl.flock`` on a lock file, not a heartbeat.  The kernel releases the lock
when the driver's process ends, however it ends (exit, Ctrl-C, SIGKILL, OOM kill), so there
is no stale-lock timeout to wait out or to guess, no thread refreshing a tag, and no window
in which two drivers both judge a heartbeat stale.  The file descriptor is not inherited
(Python opens files non-inheritable), so Ray's processes that outlive a killed driver do
not keep the lock.

Where the lock lives, and what it protects:

- a local ``--storage-path`` (the default ``./ray_results``, or a shared NFS/Lustre mount):
  ``<storage>/.<name>.lock``, beside Ray's experiment folders ``<name>-<run id>``, at the
  storage folder's real path (a symlink does not make a second lock).  Every driver that
  keeps the study's Ray state there, on this machine or, on a network filesystem whose
  ``flock`` reaches the server (Linux NFSv4, Lustre with ``flock``), on another, is
  excluded.
- a cloud ``--storage-path`` (``s3://``, ``gs://``, ...): object stores have no locks, so
  the lock file is on this machine, ``$XDG_RUNTIME_DIR`` or the temp folder,
  ``siamese-study-<uid>/<hash of the storage URI>-<name>.lock``.  It excludes drivers on
  this machine (``ray job submit`` runs every driver on the head node); two drivers on
  *different* machines sharing a bucket are not excluded.  For that case the trial runs
  carry their driver's id (``study.schema.DRIVER_TAG``) and a driver retires only runs of
  its own lineage (``study.recorder``), so an earlier driver never deletes a later one's
  runs.

The lock is taken before anything of the study is created; releasing it removes the lock
file (and a storage folder the lock itself created, when still empty), so a refused command
leaves nothing behind.  Locking the file, then checking that the path still names the
locked file, makes removal safe against a driver that opened the file just before.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import secrets
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from study.spec import StudySpec, UsageError


class StudyLockedError(UsageError):
    """Another driver of the study holds its lock (one line, exit code 2)."""


def new_driver_id() -> str:
    """``host:pid:random``: names this driver in the lock file and on the runs it makes."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def lock_path(storage_path: str, name: str) -> Path:
    """The study's lock file (see the module docstring)."""
    if "://" not in storage_path:
        return Path(os.path.realpath(storage_path)) / f".{name}.lock"
    digest = hashlib.sha256(storage_path.rstrip("/").encode()).hexdigest()[:16]
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"siamese-study-{os.getuid()}" / f"{digest}-{name}.lock"


@dataclass
class StudyLock:
    """The held lock of one study; ``release()`` (or process exit) frees it."""

    path: Path
    driver_id: str
    _fd: int | None = None
    _made: list[Path] = field(default_factory=list)  # folders this lock created

    def release(self) -> None:
        """Remove the lock file while holding it, unlock, and remove the folders the lock
        created if they are still empty.  Idempotent."""
        if self._fd is not None:
            with contextlib.suppress(FileNotFoundError):
                if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                    self.path.unlink()
            os.close(self._fd)
            self._fd = None
        for folder in reversed(self._made):
            with contextlib.suppress(OSError):  # not empty: Ray's results are there
                folder.rmdir()
        self._made = []

    def __enter__(self) -> StudyLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire(spec: StudySpec, driver_id: str | None = None) -> StudyLock:
    """Take the lock of ``spec``'s study; ``StudyLockedError`` when another driver holds it."""
    path = lock_path(spec.storage_path, spec.experiment_name)
    made = _make_folders(path.parent, private="://" in spec.storage_path)
    lock = StudyLock(path, driver_id or new_driver_id(), _made=made)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = _read_holder(fd)
            os.close(fd)
            lock.release()
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UsageError(f"cannot lock {path} ({err.strerror}); choose another "
                                 "--storage-path") from None
            raise StudyLockedError(_refusal(spec, path, holder)) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed this file as we opened it: lock the new one
    lock._fd = fd
    _write_holder(fd, lock.driver_id, spec)
    return lock


def _make_folders(folder: Path, private: bool) -> list[Path]:
    missing = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for each in reversed(missing):
        each.mkdir(mode=0o700 if private else 0o777)
    return list(reversed(missing))


def _write_holder(fd: int, driver_id: str, spec: StudySpec) -> None:
    info = {"driver": driver_id, "pid": os.getpid(), "host": socket.gethostname(),
            "started": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "study": spec.experiment_name, "command": spec.command}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)


def _read_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 65536, 0) or b"{}")
    except (OSError, ValueError):
        return {}


def _refusal(spec: StudySpec, path: Path, holder: dict) -> str:
    who = (f"pid {holder['pid']} on {holder.get('host', '?')}, since {holder.get('started', '?')}"
           if "pid" in holder else "another process")
    return (f"study {spec.experiment_name!r} is running: its driver ({who}) holds {path}; "
            "wait for it to end, or stop it (Ctrl-C) and continue the study with --resume; "
            "for a separate study choose another --experiment-name")
