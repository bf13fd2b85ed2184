"""Shared fixtures: where the offline datasets are, and small real datasets; assertion
rewriting for the deploy tests' helper module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The deploy tests' shared checks live outside a test module: rewrite their asserts too, so a
# failure shows the values compared.
pytest.register_assert_rewrite("tests.study.deploy_manifests")

# The offline copies beside the checkout (../shared/datasets); SHARED_DATASETS overrides.
SHARED = Path(os.environ.get("SHARED_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


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
