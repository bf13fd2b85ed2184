"""Datasets: arrays folders, labels, sizes, the validation split, and their one-line errors
(the built-in datasets: test_builtin.py)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from trainables.data import DataError, load_dataset


def _write(folder: Path, split: str, x: np.ndarray, y: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{split}.npz", x=x, y=y)


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
    from trainables.arrays import load_arrays  # as read, before a validation split is held out

    assert np.array_equal(load_arrays(tmp_path).train_x[0].numpy(), expected)


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


# --------------------------------------------------------------------------- hostile inputs
# Each bad input is refused with one line that names the file, the value and the fix, and
# no input makes memory grow beyond what its arrays hold.


def _one_line(err: pytest.ExceptionInfo[DataError], *needles: str) -> str:
    message = str(err.value)
    assert "\n" not in message and "Traceback" not in message, message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def _folder(tmp_path: Path, train_y: np.ndarray, test_y: np.ndarray | None = None) -> Path:
    """An arrays folder of random 8x8 images with the given labels (test: train's labels)."""
    test_y = train_y if test_y is None else test_y
    rng = np.random.default_rng(0)
    for split, y in (("train", train_y), ("test", test_y)):
        _write(tmp_path, split, rng.integers(0, 256, (len(y), 8, 8), dtype=np.uint8), y)
    return tmp_path


@pytest.mark.parametrize(
    "values,dtype",
    [
        ((3, 10**7, 2**62), np.int64),  # 10**7 once made kNN votes of (queries, 10**7)
        ((0, 2**62, 2**63 - 1), np.uint64),  # 2**62 once built a list of 2**62 class names
        ((1, 5, 9), np.uint8),  # 1-based or gappy labels: no empty phantom classes
        ((-0, 7, 120), np.int8),
    ],
)
def test_labels_become_0_to_k_minus_1(tmp_path: Path, values: tuple[int, ...], dtype) -> None:
    import tracemalloc

    from trainables.arrays import load_arrays
    from trainables.evaluate import knn_accuracy, retrieval_metrics

    train_y = np.array([values[i % 3] for i in range(12)], dtype=dtype)
    test_y = np.array(values[::-1], dtype=dtype)
    folder = _folder(tmp_path, train_y, test_y)
    tracemalloc.start()
    try:
        data = load_arrays(folder)  # the labels as read; a validation split comes after
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20  # a few kB of arrays, however large the labels
    assert data.classes == tuple(str(v) for v in values)  # the original values name the classes
    assert data.train_y.tolist() == [i % 3 for i in range(12)]
    assert data.test_y.tolist() == [2, 1, 0] and data.train_y.dtype == torch.int64
    # class-indexed tensors downstream are sized by K = 3, not by the largest label
    emb = torch.randn(12, 4)
    assert 0.0 <= knn_accuracy(emb, data.train_y, emb[:3], data.test_y, k=3) <= 1.0
    assert set(retrieval_metrics(emb, data.train_y)) == {"precision_at_1", "map_at_r"}


@pytest.mark.parametrize(
    "y,needles",
    [
        # a uint64 -1: read as 2**64 - 1, never wrapped to -1 and let through
        (np.array([0, 1] * 5 + [2**64 - 1], np.uint64), ("18446744073709551615", "uint64", "-1")),
        (np.array([0, 1] * 5 + [-3], np.int8), ("negative label -3", "drop those images")),
        (np.array([True, False] * 6), ("dtype bool", "expected (N,) integers")),
        (np.array([0.0, 1.0] * 6), ("dtype float64", "expected (N,) integers")),
    ],
)
def test_bad_labels_refused(tmp_path: Path, y: np.ndarray, needles: tuple[str, ...]) -> None:
    folder = _folder(tmp_path, y)
    with pytest.raises(DataError) as err:
        load_dataset(str(folder))
    _one_line(err, "train.npz", *needles)


def test_object_labels_refused(tmp_path: Path) -> None:
    y = np.array([0, 1] * 6, dtype=object)  # np.savez pickles object arrays
    folder = _folder(tmp_path, y)
    with pytest.raises(DataError) as err:
        load_dataset(str(folder))
    _one_line(err, "train.npz", "dtype object")


def _npz(path: Path, members: dict[str, tuple[dict, bytes]]) -> None:
    """A .npz written by hand: each member a .npy header (any claim) and the given bytes."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, (header, payload) in members.items():
            buf = io.BytesIO()
            np.lib.format.write_array_header_1_0(buf, header)
            zf.writestr(name, buf.getvalue() + payload)


def _header(shape: tuple[int, ...], descr: str) -> dict:
    return {"descr": descr, "shape": shape, "fortran_order": False}


def test_forged_header_refused_before_allocation(tmp_path: Path) -> None:
    import tracemalloc

    _folder(tmp_path, np.arange(12) % 3)
    y = np.zeros(10, np.int64)
    _npz(tmp_path / "train.npz", {
        "x.npy": (_header((10**11, 28, 28), "|u1"), bytes(64)),  # 78 TB claimed, 64 bytes held
        "y.npy": (_header((10,), "<i8"), y.tobytes()),
    })
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as err:
            load_dataset(str(tmp_path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20
    _one_line(err, "train.npz", "x.npy", "(100000000000, 28, 28)", "holds 64 bytes", "numpy.savez")


def test_bad_header_dtype_refused_before_reading(tmp_path: Path) -> None:
    _folder(tmp_path, np.arange(12) % 3)
    _npz(tmp_path / "test.npz", {
        "x.npy": (_header((12, 8, 8), "|u1"), bytes(12 * 64)),
        "y.npy": (_header((12,), "<f4"), bytes(48)),
    })
    with pytest.raises(DataError) as err:
        load_dataset(str(tmp_path))
    _one_line(err, "test.npz", "dtype float32", "expected (N,) integers")


def test_dataset_above_the_memory_cap_refused(tmp_path: Path, monkeypatch) -> None:
    from trainables import arrays

    monkeypatch.setattr(arrays, "MAX_DATASET_BYTES", 1000)
    _folder(tmp_path, np.arange(12) % 3)  # 2 x (12 x 64 + 12 x 8) bytes = 1.7 KiB
    with pytest.raises(DataError) as err:
        load_dataset(str(tmp_path))
    _one_line(err, "decode to 1.7 KiB", "limit of 1000 bytes", "MAX_DATASET_BYTES")


def test_not_a_zip_and_missing_member(tmp_path: Path) -> None:
    _folder(tmp_path, np.arange(12) % 3)
    (tmp_path / "train.npz").write_bytes(b"not a zip archive at all")
    with pytest.raises(DataError) as err:
        load_dataset(str(tmp_path))
    _one_line(err, "train.npz", "cannot be read as .npz")
    _npz(tmp_path / "train.npz", {"x.npy": (_header((12, 8, 8), "|u1"), bytes(12 * 64))})
    with pytest.raises(DataError) as err:
        load_dataset(str(tmp_path))
    _one_line(err, "array(s) y missing; found x")


@pytest.mark.parametrize(
    "train_y,test_y,needles",
    [
        # the audit's 5 images of 5 classes: probe 0.0, no warning
        ([0, 1, 2, 3, 4], [0, 1, 2, 3, 4], ("train.npz", "5 images for 5 classes", "10 images")),
        ([0, 0, 0, 0, 0, 1], [0, 1], ("train.npz", "1 of 2 classes have 2 or more images")),
        ([4, 4, 4], [4], ("train.npz", "1 class", "at least 2 classes")),
        ([0, 1, 2, 3] * 5, [0, 1, 2], ("test.npz", "3 images for 4 classes", "4 images")),
    ],
)
def test_too_small_to_train_and_judge(
    tmp_path: Path, train_y: list[int], test_y: list[int], needles: tuple[str, ...]
) -> None:
    folder = _folder(tmp_path, np.array(train_y), np.array(test_y))
    with pytest.raises(DataError) as err:
        load_dataset(str(folder))
    _one_line(err, *needles)


def test_test_labels_absent_from_train_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path, np.arange(12) % 3, np.array([0, 1, 2, 9, 2**40]))
    with pytest.raises(DataError) as err:
        load_dataset(str(folder))
    _one_line(err, "test.npz", "label(s) 9, 1099511627776 never occur in the training labels")


def test_builtin_names_follow_the_remap() -> None:
    data = load_dataset("digits")
    assert data.classes == tuple(str(i) for i in range(10))
    assert int(data.train_y.max()) == data.num_classes - 1


def test_validation_is_held_out_stratified_and_fixed_by_the_seed(digits) -> None:
    from trainables.builtin import load_digits
    from trainables.data import default_val_size, with_validation

    raw = load_digits()
    assert digits.val_x is not None and len(digits.val_y) == default_val_size(1400, 10) == 140
    assert torch.bincount(digits.val_y).tolist() == [14] * 10
    assert len(digits.train_y) + len(digits.val_y) == 1400
    # the held-out images are gone from train: no image is in both
    rows = {bytes(x.numpy()) for x in digits.train_x}
    assert not any(bytes(x.numpy()) in rows for x in digits.val_x)
    again = with_validation(raw, None, 0)
    assert torch.equal(again.val_x, digits.val_x)
    other = with_validation(raw, None, 1)
    assert not torch.equal(other.val_x, digits.val_x)
    with pytest.raises(DataError, match="--val-size 5: .*choose a size in \\[10, 700\\]"):
        with_validation(raw, 5, 0)


def test_an_arrays_folder_val_npz_is_the_validation_split(tmp_path) -> None:
    from trainables.data import load_dataset

    rng = np.random.default_rng(0)
    for split, n in (("train", 60), ("test", 20), ("val", 30)):
        np.savez(tmp_path / f"{split}.npz", x=rng.integers(0, 255, (n, 8, 8), dtype=np.uint8),
                 y=np.arange(n) % 3)
    data = load_dataset(str(tmp_path), val_size=5)
    assert (len(data.train_y), len(data.val_y), len(data.test_y)) == (60, 30, 20)
    assert data.val_source.endswith("val.npz")


def test_digits_are_scikit_learns_digits_upsampled() -> None:
    from sklearn.datasets import load_digits as sklearn_digits

    from trainables.builtin import load_digits

    bunch = sklearn_digits()
    x = torch.nn.functional.interpolate(torch.tensor(bunch.images, dtype=torch.float32)[:, None]
                                        / 16, size=(16, 16), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    data = load_digits()
    assert torch.equal(torch.cat([data.train_x, data.test_x]), x)
    assert torch.cat([data.train_y, data.test_y]).tolist() == bunch.target.tolist()
    assert len(data.train_y) == 1400
