"""Where a study's MLflow records live: the one place a tracking URI is resolved and an
SQLite store's path read from it.  Standard library only (``open_client`` imports MLflow
when called)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SQLITE_PREFIX = "sqlite:///"
DEFAULT_FILE = "mlflow.db"
OPTUNA_FILE = "optuna.db"
ARTIFACTS_FOLDER = "mlruns"


def resolve_tracking_uri(given: str | None = None, workdir: Path | None = None) -> str:
    """``given`` (``--tracking-uri``), else ``$MLFLOW_TRACKING_URI``, else an SQLite store
    at an absolute path in the working directory (``mlflow ui`` there finds it by
    ``--backend-store-uri``)."""
    if given:
        return given
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"{SQLITE_PREFIX}{(workdir or Path.cwd()).absolute() / DEFAULT_FILE}"


def default_optuna_storage(tracking_uri: str, workdir: Path | None = None) -> str:
    """Where the search keeps its Optuna study by default: ``optuna.db`` beside an SQLite
    MLflow store, else in the working directory."""
    path = sqlite_path(tracking_uri)
    folder = path.parent if path is not None else (workdir or Path.cwd()).absolute()
    return f"{SQLITE_PREFIX}{folder / OPTUNA_FILE}"


def artifact_location(tracking_uri: str) -> str | None:
    """Where a new experiment keeps its runs' artifacts (plots, encoders): ``mlruns/``
    beside an SQLite MLflow store, as ``optuna.db`` is, whichever folder the study was
    started from; None for a server or another store (its own default, e.g. a server's
    ``--artifacts-destination``)."""
    path = sqlite_path(tracking_uri)
    return None if path is None else (path.parent.absolute() / ARTIFACTS_FOLDER).as_uri()


def sqlite_path(uri: str) -> Path | None:
    """The file of an ``sqlite:///PATH`` URI (``sqlite:////abs/x.db`` -> ``/abs/x.db``),
    None for other stores and for SQLite in memory."""
    if not uri.startswith(SQLITE_PREFIX):
        return None
    path = uri[len(SQLITE_PREFIX):]
    return None if path in ("", ":memory:") else Path(path)


def missing_sqlite_store(uri: str) -> Path | None:
    """For an SQLite URI whose file does not exist, that path (opening it would create an
    empty store); else None."""
    path = sqlite_path(uri)
    return path if path is not None and not path.is_file() else None


def open_client(uri: str) -> Any:
    """An ``MlflowClient`` on ``uri``.  For SQLite, the store is opened first under a file
    lock beside it (``<file>.init-lock``, removed after), so drivers starting together on a
    new file do not race in MLflow's schema creation and migration."""
    from mlflow.tracking import MlflowClient

    path = sqlite_path(uri)
    if path is None:
        return MlflowClient(uri)
    with first_open(path):
        client = MlflowClient(uri)
        client.search_experiments(max_results=1)  # creates or migrates the schema
        return client


@contextlib.contextmanager
def first_open(path: Path) -> Iterator[None]:
    """Hold a file lock beside an SQLite file (``<file>.init-lock``, removed after) while
    opening it: processes starting together on a new file do not race in creating its
    schema."""
    lock = path.with_name(path.name + ".init-lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # its holder removed it as we opened it: lock the new one
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)
