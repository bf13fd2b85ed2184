"""Shared fixtures: where the offline datasets are, and small real datasets; assertion
rewriting for the deploy tests' helper module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The deploy tests' shared checks live outside a test module: rewrite their asserts too, so a
# failure shows the values compared.
pytest.register_assert_rewrite("tests.study.deploy_manifests")

ROOT = Path(__file__).resolve().parents[1]

# The offline copies beside the checkout (../shared/datasets); SHARED_DATASETS overrides.
SHARED = Path(os.environ.get("SHARED_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


@pytest.fixture(autouse=True)
def _in_a_folder_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own temporary folder: what MLflow writes beside the working
    directory by default (the artifacts of an experiment made without a location, in
    ``./mlruns``) lands there, never in the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """torchvision's MNIST layout: <dir>/MNIST/raw/..."""
    if not (SHARED / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.skip(f"offline MNIST not found under {SHARED}; set SHARED_DATASETS")
    return SHARED


@pytest.fixture(scope="session")
def digits():
    from trainables.data import load_dataset

    return load_dataset("digits")


def readme_command(prefix: str) -> str:
    """The README's first command line that starts with ``prefix``."""
    text = (ROOT / "README.md").read_text()
    commands = [line.strip() for line in text.splitlines() if line.strip().startswith(prefix)]
    assert commands, f"README has no command starting with {prefix!r}"
    return commands[0]


@pytest.fixture(scope="session")
def readme_study(tmp_path_factory) -> tuple[Path, object]:
    """The README's offline smoke command, run exactly as written in a fresh folder: a real
    4-trial digits study (Ray, Optuna, MLflow in ``mlflow.db`` there, experiment
    ``siamese-digits``), shared by the study tests and the analysis tests that read it."""
    from tests.study.helpers import run_cli

    cwd = tmp_path_factory.mktemp("readme-study")
    proc = run_cli(readme_command("python -m study.run --dataset digits"), cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, proc
