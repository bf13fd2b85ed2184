"""Checks that run before any trial: each failure is a one-line ``UsageError`` (exit 2)."""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse, urlunparse

from study.secrets import redact
from study.spec import STORAGE_SCHEMES, StudySpec, UsageError
from study.store import sqlite_path

CLOUD_SCHEMES = STORAGE_SCHEMES
# Database stores MLflow's SQLAlchemy store accepts (with an optional +driver suffix).
DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")


def check_tracking_uri(uri: str, timeout_s: float = 8.0) -> None:
    """The MLflow store can be used: a server answers within ``timeout_s``, an SQLite
    file's folder is writable, a database URI's driver is installed; any other scheme is
    refused.  Messages show the URI redacted; userinfo never reaches a name lookup."""
    shown = redact(uri)
    scheme = urlparse(uri).scheme.lower()
    if scheme in ("http", "https"):
        _check_server(uri, shown, timeout_s)
    elif scheme == "sqlite":
        path = sqlite_path(uri)
        if path is None or not path.is_absolute():
            raise UsageError(f"--tracking-uri {shown}: use an absolute SQLite path, "
                             "sqlite:////abs/path/mlflow.db")
        _check_writable(path.parent, f"--tracking-uri {shown}")
    elif scheme.split("+", 1)[0] in DATABASE_SCHEMES:
        _check_database_driver(uri, shown)
    elif scheme in ("", "file"):
        raise UsageError(f"--tracking-uri {shown}: MLflow 3 no longer writes a folder store; "
                         "use sqlite:////abs/path/mlflow.db or a tracking server http://HOST:5000")
    else:
        raise UsageError(f"--tracking-uri {shown}: unknown scheme {scheme!r}; use "
                         "sqlite:////abs/path/mlflow.db, http(s)://HOST:PORT or a database "
                         f"URI ({', '.join(s + '://' for s in DATABASE_SCHEMES)})")


def _check_server(uri: str, shown: str, timeout_s: float) -> None:
    """POST one experiment search to the server.  The request goes to the URI's host name
    only (``urlparse(...).hostname`` excludes the userinfo); credentials in the userinfo
    travel as a Basic authorization header, as MLflow's own client sends them."""
    parsed = urlparse(uri)
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError as err:  # a port that is not a number
        raise UsageError(f"--tracking-uri {shown}: {redact(str(err))}") from None
    if not host:
        raise UsageError(f"--tracking-uri {shown}: no host name; use http://HOST:PORT")
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    url = urlunparse((parsed.scheme, netloc, parsed.path.rstrip("/")
                      + "/api/2.0/mlflow/experiments/search", "", "", ""))
    headers = {"Content-Type": "application/json"}
    if parsed.username is not None:
        pair = f"{unquote(parsed.username)}:{unquote(parsed.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    request = urllib.request.Request(url, data=json.dumps({"max_results": 1}).encode(),
                                     method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            return
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            return  # it answers; credentials are MLflow's business (MLFLOW_TRACKING_TOKEN)
        raise UsageError(f"--tracking-uri {shown} answered HTTP {err.code}; is it an MLflow "
                         "tracking server?") from None
    except (OSError, urllib.error.URLError) as err:
        reason = redact(str(getattr(err, "reason", err))).replace("\n", " ")
        raise UsageError(f"--tracking-uri {shown} does not answer ({reason}); start the "
                         "MLflow server or point --tracking-uri elsewhere") from None


def _check_database_driver(uri: str, shown: str) -> None:
    """SQLAlchemy reads the URI and its driver (the DB-API module) imports."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(uri)
        url.get_dialect().import_dbapi()
    except ImportError as err:
        raise UsageError(
            f"--tracking-uri {shown}: its database driver is not installed (no module "
            f"{err.name or str(err)!r}); install that module (PostgreSQL: psycopg or "
            "psycopg2 with postgresql+psycopg2://, MySQL: mysqlclient or pymysql with "
            "mysql+pymysql://, SQL Server: pyodbc) or use another store") from None
    except (ArgumentError, NoSuchModuleError, ValueError) as err:
        first = (redact(str(err)).strip().splitlines() or [type(err).__name__])[0]
        raise UsageError(f"--tracking-uri {shown}: not a database URI SQLAlchemy reads "
                         f"({first[:200]})") from None


def check_resources(spec: StudySpec, cpus: float, gpus: float) -> None:
    """A trial's resources fit on the machine (a local Ray) or the cluster joined:
    otherwise Ray would keep the trial PENDING forever."""
    where = "this machine" if spec.address is None else "the cluster"
    if spec.cpus_per_trial > cpus:
        raise UsageError(f"--cpus-per-trial {spec.cpus_per_trial:g} is more than the {cpus:g} "
                         f"CPUs {where} has: no trial could start; use at most {cpus:g}")
    gpu = spec.gpus_per_trial
    if gpu and gpus == 0:
        raise UsageError(
            f"--gpus-per-trial {gpu:g} asks for GPUs but {where} has none; "
            "drop the option (trials then run on CPU cores)")
    if gpu and gpu > gpus:
        raise UsageError(f"--gpus-per-trial {gpu:g} is more than the {gpus:g} GPUs {where} "
                         f"has: no trial could start; use at most {gpus:g}")


def local_cpus() -> int:
    """The cores this process may run on (an upper bound of what a local Ray counts; the
    count Ray reports is checked again once it runs)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_storage_path(path: str) -> None:
    """Ray can write its results there (cloud URIs are left to Ray)."""
    if urlparse(path).scheme in CLOUD_SCHEMES:
        return
    _check_writable(Path(path), f"--storage-path {path}")


def _check_writable(folder: Path, what: str) -> None:
    """The folder, or the nearest ancestor that exists, is a writable directory (nothing is
    created here: a refused command leaves no trace)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{what}: cannot write to {folder} ({existing} is not a directory); "
                         "choose a writable location")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{what}: cannot write to {folder} ({existing} is not writable); "
                         "choose a writable location")
