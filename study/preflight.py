"""Checks that run before any trial: each failure is a one-line ``UsageError`` (exit 2)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from study.spec import UsageError
from study.store import sqlite_path

CLOUD_SCHEMES = ("s3", "gs", "gcs", "abfs", "az", "hdfs")


def check_tracking_uri(uri: str, timeout_s: float = 8.0) -> None:
    """The MLflow store answers: a server within ``timeout_s``, an SQLite file's folder is
    writable."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        url = uri.rstrip("/") + "/api/2.0/mlflow/experiments/search"
        request = urllib.request.Request(
            url, data=json.dumps({"max_results": 1}).encode(), method="POST",
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s):
                return
        except urllib.error.HTTPError as err:
            if err.code in (401, 403):
                return  # it answers; credentials are MLflow's business (MLFLOW_TRACKING_TOKEN)
            raise UsageError(f"--tracking-uri {uri} answered HTTP {err.code}; is it an MLflow "
                             "tracking server?") from None
        except (OSError, urllib.error.URLError) as err:
            reason = getattr(err, "reason", err)
            raise UsageError(f"--tracking-uri {uri} does not answer ({reason}); start the "
                             "MLflow server or point --tracking-uri elsewhere") from None
    if parsed.scheme == "sqlite":
        path = sqlite_path(uri)
        if path is None or not path.is_absolute():
            raise UsageError(f"--tracking-uri {uri}: use an absolute SQLite path, "
                             "sqlite:////abs/path/mlflow.db")
        _check_writable(path.parent, f"--tracking-uri {uri}")


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
