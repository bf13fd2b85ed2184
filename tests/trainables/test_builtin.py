"""Built-in datasets through torchvision (and scikit-learn's digits): found, or refused with
the real cause (files missing, no network, a corrupt file), the layout to put in place, and
no folder left behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from trainables.data import DataError, load_dataset


def test_mnist_from_data_dir(mnist_dir: Path) -> None:
    data = load_dataset("mnist", mnist_dir, download=False)
    assert data.train_x.shape == (54_000, 1, 28, 28) and data.train_x.dtype == torch.uint8
    assert data.val_x.shape == (6_000, 1, 28, 28)  # 10 % held out for validation
    assert data.test_x.shape == (10_000, 1, 28, 28)
    assert data.num_classes == 10 and data.train_y.dtype == torch.int64
    assert int(data.test_y[0]) == 7  # MNIST's first test label


# ----------------------------------------------------------------- built-ins that fail to load
# Each failure is one line with its real cause (files missing, no network, a corrupt file),
# the layout to put at --data-dir, only options the CLI has, and no folder left empty.

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")
CIFAR_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
               "test_batch", "batches.meta")


def _one_line(err: pytest.ExceptionInfo[DataError], *needles: str) -> str:
    message = str(err.value)
    assert "\n" not in message and "Traceback" not in message, message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def _cli_line(err: pytest.ExceptionInfo[DataError], *needles: str) -> str:
    """One line naming ``needles``, never torchvision's advice of an option we lack."""
    message = _one_line(err, *needles)
    assert "download=True" not in message and "You can use" not in message, message
    return message


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.fixture
def offline(monkeypatch) -> str:
    """torchvision's download addresses pointed at a closed loopback port: a download is
    refused at once, and no test ever reaches an outside address."""
    import socket

    import torchvision.datasets as tvd

    with socket.socket() as s:  # a port that was free a moment ago and is closed now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}/"
    for cls in (tvd.MNIST, tvd.FashionMNIST):
        monkeypatch.setattr(cls, "mirrors", [base])
    for cls in (tvd.CIFAR10, tvd.CIFAR100):
        monkeypatch.setattr(cls, "url", base + cls.filename)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return base


@pytest.mark.parametrize("name,folder,files", [("mnist", "MNIST/raw", MNIST_FILES),
                                               ("cifar10", "cifar-10-batches-py", CIFAR_FILES)])
def test_missing_with_downloads_off_lists_the_layout(tmp_path: Path, name: str, folder: str,
                                                     files: tuple[str, ...]) -> None:
    with pytest.raises(DataError) as err:
        load_dataset(name, tmp_path / "nowhere", download=False)
    message = _cli_line(err, "downloads are off: --no-download", f"{tmp_path}/nowhere/{folder}/",
                        ", ".join(files), "none there", "--data-dir", "leave out --no-download")
    if name == "mnist":
        assert "NAME.gz" in message  # the files as downloaded are taken too
    assert _tree(tmp_path) == []  # nothing created


def test_missing_some_files_names_them(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES[:3]:
        (raw / name).write_bytes(b"")
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path, download=False)
    _cli_line(err, "missing: t10k-labels-idx1-ubyte;")


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST/raw"), ("fashion-mnist", "FashionMNIST/raw"),
                                         ("cifar10", "cifar-10-batches-py")])
def test_download_without_network_names_the_cause(tmp_path: Path, offline: str, name: str,
                                                  folder: str) -> None:
    (tmp_path / "data").mkdir()  # existed before: kept; what the download made: removed
    with pytest.raises(DataError) as err:
        load_dataset(name, tmp_path / "data" / "new", download=True)
    _cli_line(err, "could not be downloaded into", f"{tmp_path}/data/new/{folder}",
              "Connection refused", offline, "--no-download", "--data-dir")
    assert _tree(tmp_path) == ["data"]


def _idx(values: np.ndarray) -> bytes:
    """An IDX file (MNIST's format) of uint8 ``values``."""
    header = bytes([0, 0, 8, values.ndim]) + b"".join(d.to_bytes(4, "big") for d in values.shape)
    return header + values.astype(np.uint8).tobytes()


def _tiny_mnist(raw: Path, gz: bool = False) -> None:
    """40 training and 10 test images of 2 classes in MNIST's layout (gzipped or not)."""
    import gzip

    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (40, 28, 28)),
              "train-labels-idx1-ubyte": np.arange(40) % 2,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (10, 28, 28)),
              "t10k-labels-idx1-ubyte": np.arange(10) % 2}
    for name, values in arrays.items():
        data = _idx(values)
        (raw / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)


@pytest.mark.parametrize("download", [False, True])
@pytest.mark.parametrize("content,needles", [
    # MNIST's header (60,000 images of 28x28) and the first 4,984 bytes of pixels
    (bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (60_000, 28, 28)) + bytes(4984),
     ("is truncated: 5,000 bytes", "promises 47,040,016")),
    (b"<html>captive portal</html>", ("is not an IDX file",)),
])
def test_corrupt_file_is_named(tmp_path: Path, offline: str, download: bool, content: bytes,
                               needles: tuple[str, ...]) -> None:
    raw = tmp_path / "MNIST" / "raw"
    _tiny_mnist(raw)
    (raw / "train-images-idx3-ubyte").write_bytes(content)
    before = _tree(tmp_path)
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path, download=download)
    fix = "delete it and run again" if download else "replace it with an intact copy"
    _cli_line(err, "MNIST is corrupt", f"{raw}/train-images-idx3-ubyte", *needles, fix)
    assert _tree(tmp_path) == before  # nothing deleted, nothing added


def test_corrupt_cifar_fails_its_checksum(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in CIFAR_FILES:
        (folder / name).write_bytes(b"not a pickle")
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", tmp_path, download=False)
    _cli_line(err, "CIFAR10 is corrupt", f"{folder}/data_batch_1 fails its checksum",
              "and 6 more file(s)")


def test_gzipped_files_are_taken_with_downloads_off(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    _tiny_mnist(raw, gz=True)
    data = load_dataset("mnist", tmp_path, download=False)
    assert (len(data.train_y) + len(data.val_y), len(data.test_y)) == (40, 10)
    assert data.train_x.shape[1:] == (1, 28, 28)
    (raw / "train-images-idx3-ubyte").unlink()
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path, download=False)
    _cli_line(err, "MNIST is corrupt", "train-images-idx3-ubyte.gz cannot be unpacked", "BadGzipFile")
    assert not (raw / "train-images-idx3-ubyte").exists()  # nothing half-written
    assert not list(raw.glob(".*partial"))


def test_digits_offline() -> None:
    data = load_dataset("digits")
    assert data.image_shape == (1, 16, 16)
    assert (len(data.train_y), len(data.val_y), len(data.test_y)) == (1260, 140, 397)
    assert data.train_x.max() > 200
