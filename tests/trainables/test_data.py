"""Datasets: built-ins from a data directory, arrays folders, and their one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from trainables.data import DataError, load_dataset


def _write(folder: Path, split: str, x: np.ndarray, y: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{split}.npz", x=x, y=y)


def test_mnist_from_data_dir(mnist_dir: Path) -> None:
    data = load_dataset("mnist", mnist_dir, download=False)
    assert data.train_x.shape == (60_000, 1, 28, 28) and data.train_x.dtype == torch.uint8
    assert data.test_x.shape == (10_000, 1, 28, 28)
    assert data.num_classes == 10 and data.train_y.dtype == torch.int64
    assert int(data.train_y[0]) == 5  # MNIST's famous first label


def test_missing_builtin_names_dir_and_option(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path / "nowhere", download=False)
    message = str(err.value)
    assert "nowhere" in message and "--data-dir" in message and "\n" not in message


def test_digits_offline() -> None:
    data = load_dataset("digits")
    assert data.image_shape == (1, 16, 16)
    assert len(data.train_y) == 1400 and len(data.test_y) == 397
    assert data.train_x.max() > 200


@pytest.mark.parametrize("channels", [None, 3])
def test_arrays_folder(tmp_path: Path, channels: int | None) -> None:
    shape = (20, 8, 8) if channels is None else (20, 8, 8, channels)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        _write(tmp_path, split, rng.integers(0, 256, shape, dtype=np.uint8), np.arange(20) % 4)
    data = load_dataset(str(tmp_path))
    assert data.image_shape == ((1 if channels is None else 3), 8, 8)
    assert data.num_classes == 4
    # channels-last arrays become channels-first without scrambling pixels
    with np.load(tmp_path / "train.npz") as npz:
        x0 = npz["x"][0]
    expected = x0[None] if channels is None else x0.transpose(2, 0, 1)
    assert np.array_equal(data.train_x[0].numpy(), expected)


@pytest.mark.parametrize(
    "x,y,message",
    [
        (np.zeros((10, 8, 8), np.float32), np.zeros(10, int), "dtype float32; expected uint8"),
        (np.zeros((10, 8), np.uint8), np.zeros(10, int), r"shape \(10, 8\); expected \(N, H, W\)"),
        (np.zeros((10, 8, 8), np.uint8), np.zeros(9, int), "10 images but y holds 9 labels"),
        (np.zeros((10, 8, 8), np.uint8), np.zeros(10, float), "expected \\(N,\\) integers"),
    ],
)
def test_bad_arrays(tmp_path: Path, x: np.ndarray, y: np.ndarray, message: str) -> None:
    _write(tmp_path, "train", x, y)
    _write(tmp_path, "test", x, y)
    with pytest.raises(DataError, match=message):
        load_dataset(str(tmp_path))


def test_missing_npz_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="train.npz is missing"):
        load_dataset(str(tmp_path))
    with pytest.raises(DataError, match="unknown dataset 'imagenet'.*mnist"):
        load_dataset("imagenet")
