"""The REAL small studies the analysis tests read, each run once per test session through
``python -m study.run`` and shared (synthetic studies: ``tests.analysis.synthetic``)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REAL_EXPERIMENT = "siamese-digits"


@dataclass(frozen=True)
class RealStudy:
    uri: str
    folder: Path
    experiment: str = REAL_EXPERIMENT


@pytest.fixture(scope="session")
def real_study(readme_study) -> RealStudy:
    """The README's 4-trial, 2-epoch digits study (``tests.conftest.readme_study``), recorded
    by the real study command; the study tests check it from MLflow's and Ray's side."""
    cwd, _ = readme_study
    return RealStudy(f"sqlite:///{cwd / 'mlflow.db'}", cwd)


GRID_EXPERIMENT = "test-grid"


@pytest.fixture(scope="session")
def real_grid(tmp_path_factory: pytest.TempPathFactory) -> RealStudy:
    """A ``--preset seed-grid`` study of the digits dataset: 3 augmentations x 2 modes x 1
    seed, 1 epoch each, recorded by the real study command."""
    folder = tmp_path_factory.mktemp("real-grid")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    command = [
        sys.executable, "-m", "study.run", "--dataset", "digits", "--preset", "seed-grid",
        "--grid-seeds", "1", "--max-epochs", "1", "--set", "train_subset=300",
        "--set", "eval_train=300", "--set", "tsne_samples=200",
        "--experiment-name", GRID_EXPERIMENT, "--tracking-uri", uri,
        "--storage-path", str(folder / "ray"), "--log-encoders", "none",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    proc = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f"study.run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return RealStudy(uri, folder, GRID_EXPERIMENT)
