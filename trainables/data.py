"""Datasets, loaded once as uint8 tensors (the driver loads; trials receive them).

A dataset is named either by a built-in name (``mnist``, ``fashion-mnist``, ``cifar10``,
``cifar100`` through torchvision from a data directory; ``digits`` from scikit-learn, offline)
or by a folder holding ``train.npz`` and ``test.npz`` arrays (``x`` uint8 (N, H, W) or
(N, H, W, C), ``y`` integer labels).  Every failure is a ``DataError`` with one line that
names the problem and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


class DataError(ValueError):
    """A dataset that cannot be found or read, with a one-line explanation."""


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 (N, C, H, W) tensors and labels as int64 (N,), train and test.

    ``mean`` and ``std`` are per-channel statistics of the training images in [0, 1] units,
    used to normalise the encoder's input.
    """

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    classes: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)

    @property
    def mean(self) -> tuple[float, ...]:
        x = self.train_x[:10_000].float().div_(255)
        return tuple(x.mean(dim=(0, 2, 3)).tolist())

    @property
    def std(self) -> tuple[float, ...]:
        x = self.train_x[:10_000].float().div_(255)
        return tuple(x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())

    def to(self, device: torch.device | str) -> Dataset:
        """The same dataset with every tensor on ``device`` (one copy, done once per trial)."""
        return Dataset(
            self.name,
            self.train_x.to(device),
            self.train_y.to(device),
            self.test_x.to(device),
            self.test_y.to(device),
            self.classes,
        )


def _from_arrays(
    name: str, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
    classes: tuple[str, ...] | None = None,
) -> Dataset:
    tensors = []
    for split, (x, y) in (("train", train), ("test", test)):
        _check_arrays(name, split, x, y)
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        tensors += [torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))]
    train_x, train_y, test_x, test_y = tensors
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(
            f"{name}: train images are {tuple(train_x.shape[1:])} but test images are "
            f"{tuple(test_x.shape[1:])}; both splits need the same image shape"
        )
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    if classes is None:
        classes = tuple(str(i) for i in range(n_classes))
    if len(torch.unique(train_y)) < 2:
        raise DataError(f"{name}: the training labels hold fewer than 2 classes; need at least 2")
    return Dataset(name, train_x, train_y, test_x, test_y, classes)


def _check_arrays(name: str, split: str, x: np.ndarray, y: np.ndarray) -> None:
    where = f"{name} {split}"
    if x.dtype != np.uint8:
        raise DataError(f"{where}: x has dtype {x.dtype}; expected uint8 pixels (0-255)")
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 3)):
        raise DataError(
            f"{where}: x has shape {x.shape}; expected (N, H, W) or (N, H, W, C) with C 1 or 3"
        )
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: y has shape {y.shape} and dtype {y.dtype}; expected (N,) integers")
    if len(x) != len(y):
        raise DataError(f"{where}: x holds {len(x)} images but y holds {len(y)} labels; they must match")
    if len(x) == 0:
        raise DataError(f"{where}: no images; the split must not be empty")
    if y.min() < 0:
        raise DataError(f"{where}: y holds negative labels ({y.min()}); labels must be 0..K-1")


def load_arrays(folder: str | Path) -> Dataset:
    """A folder with ``train.npz`` and ``test.npz``, each holding ``x`` and ``y``."""
    folder = Path(folder)
    splits = []
    for split in ("train", "test"):
        path = folder / f"{split}.npz"
        if not path.is_file():
            raise DataError(
                f"arrays dataset {folder}: {path.name} is missing; the folder needs train.npz "
                "and test.npz with arrays x (uint8) and y (labels)"
            )
        try:
            with np.load(path) as npz:
                missing = {"x", "y"} - set(npz.files)
                if missing:
                    raise DataError(
                        f"{path}: array(s) {', '.join(sorted(missing))} missing; "
                        f"found {', '.join(npz.files) or 'none'}; expected x and y"
                    )
                splits.append((npz["x"], npz["y"]))
        except (OSError, ValueError) as err:
            if isinstance(err, DataError):
                raise
            raise DataError(f"{path}: cannot be read as .npz ({err})") from None
    return _from_arrays(folder.name, splits[0], splits[1])


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images), upsampled to 16x16; offline.

    Split: the first 1,400 images train, the rest test.  Pixels 0..16 are scaled to 0..255.
    """
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.from_numpy(bunch.images).float()[:, None] / 16.0
    x = torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8)[:, 0].numpy()
    y = bunch.target.astype(np.int64)
    classes = tuple(str(i) for i in range(10))
    return _from_arrays("digits", (x[:1400], y[:1400]), (x[1400:], y[1400:]), classes)


def _torchvision_loader(cls_name: str, files: str) -> Callable[[Path, bool], Dataset]:
    def load(data_dir: Path, download: bool) -> Dataset:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        splits = []
        try:
            for train in (True, False):
                ds = cls(root=str(data_dir), train=train, download=download)
                x = np.asarray(ds.data)
                y = np.asarray(ds.targets)
                splits.append((x, y))
        except RuntimeError as err:
            hint = "" if download else " (downloads are off)"
            raise DataError(
                f"{cls_name} not found under {data_dir}{hint}: expected {files}; "
                f"point --data-dir at the folder that holds them ({str(err).splitlines()[0]})"
            ) from None
        except OSError as err:
            raise DataError(
                f"{cls_name} could not be downloaded into {data_dir} ({err.__class__.__name__}: "
                f"{err}); copy {files} there, or point --data-dir at a folder that has them"
            ) from None
        return _from_arrays(cls_name.lower(), splits[0], splits[1], tuple(ds.classes))

    return load


BUILTIN: dict[str, Callable[[Path, bool], Dataset]] = {
    "mnist": _torchvision_loader("MNIST", "MNIST/raw/train-images-idx3-ubyte and friends"),
    "fashion-mnist": _torchvision_loader(
        "FashionMNIST", "FashionMNIST/raw/train-images-idx3-ubyte and friends"
    ),
    "cifar10": _torchvision_loader("CIFAR10", "cifar-10-batches-py/"),
    "cifar100": _torchvision_loader("CIFAR100", "cifar-100-python/"),
    "digits": lambda data_dir, download: load_digits(),
}


def load_dataset(name: str, data_dir: str | Path = "data", *, download: bool = True) -> Dataset:
    """Load a dataset by built-in name or arrays folder.

    Args:
        name: one of ``BUILTIN`` or a path to a folder with ``train.npz`` and ``test.npz``.
        data_dir: torchvision's root folder for the built-in datasets.
        download: let torchvision download a missing built-in dataset (needs the internet).
    """
    if name in BUILTIN:
        data_dir = Path(data_dir).expanduser().absolute()
        return BUILTIN[name](data_dir, download)
    path = Path(name).expanduser()
    if path.is_dir():
        return load_arrays(path)
    raise DataError(
        f"unknown dataset {name!r}: use one of {', '.join(BUILTIN)} or a folder holding "
        "train.npz and test.npz"
    )
