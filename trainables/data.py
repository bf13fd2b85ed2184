"""Datasets, loaded once as uint8 tensors (the driver loads; trials receive them).

A dataset is named either by a built-in name (``mnist``, ``fashion-mnist``, ``cifar10``,
``cifar100`` through torchvision from a data directory; ``digits`` from scikit-learn, offline),
loaded by ``trainables.builtin``, or by a folder holding ``train.npz`` and ``test.npz`` arrays
(``x`` uint8 (N, H, W) or (N, H, W, C), ``y`` integer labels), read by ``trainables.arrays``.
This module holds the ``Dataset`` record, the checks every dataset passes (``check_arrays`` on
dtypes and shapes, ``from_arrays`` on labels and split sizes), the validation split
(``with_validation``) and ``load_dataset``.  Every failure is a ``DataError`` with one line
that names the problem and the fix.

Whatever the files hold, memory grows with the data only: an arrays folder is checked on its
.npy headers before any array is read (``trainables.arrays.load_arrays``), and labels of
every dataset are remapped to 0..K-1 with K bounded by the number of images (``from_arrays``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


class DataError(ValueError):
    """A dataset that cannot be found or read, with a one-line explanation."""


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 (N, C, H, W) tensors and labels as int64 (N,): train, validation and
    test splits.

    Labels are 0..K-1 with K = ``num_classes`` = ``len(classes)``; every class has at least
    one training image, K is at most half the training images, and every validation and test
    label occurs in training (``from_arrays`` guarantees it), so ``max label + 1 == K``.
    The validation split steers the search; the test split only reports.  It is empty until
    ``with_validation`` holds one out of train (or an arrays folder's ``val.npz`` gives it).

    ``mean`` and ``std`` are per-channel statistics of the training images in [0, 1] units,
    used to normalise the encoder's input.
    """

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    classes: tuple[str, ...]
    val_x: Tensor | None = None
    val_y: Tensor | None = None
    val_source: str = ""  # where the validation split came from, for the record

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
        moved = {k: getattr(self, k).to(device) if getattr(self, k) is not None else None
                 for k in ("train_x", "train_y", "test_x", "test_y", "val_x", "val_y")}
        return dataclasses.replace(self, **moved)


def default_val_size(n_train: int, num_classes: int) -> int:
    """The validation split held out of ``n_train`` training images by default: 10 %, at
    most 10,000 (MNIST 6,000, CIFAR-10 5,000, digits 140), and for tiny datasets at least two
    images per class (retrieval needs another image of the query's class)."""
    return min(10_000, max(2 * num_classes, round(0.1 * n_train)), n_train // 2)


def with_validation(data: Dataset, size: int | None, seed: int) -> Dataset:
    """``data`` with a validation split: the one it has (an arrays folder's ``val.npz``), or
    ``size`` images (default ``default_val_size``) held out of train, stratified by class
    and drawn with ``seed`` (the study seed), so every trial of a study shares it.

    Refused with one line: a size that leaves too little to train on, or fewer images than
    classes (every class should be judged)."""
    if data.val_x is not None:
        return data
    from trainables.sampling import stratified_indices

    n = len(data.train_y)
    size = default_val_size(n, data.num_classes) if size is None else size
    if not data.num_classes <= size <= n // 2:
        raise DataError(
            f"--val-size {size}: the validation split needs at least one image per class "
            f"({data.num_classes}) and at most half the {n} training images; choose a size "
            f"in [{data.num_classes}, {n // 2}]"
        )
    held = stratified_indices(data.train_y, size, seed)
    keep = torch.ones(n, dtype=torch.bool)
    keep[held] = False
    _check_sizes((f"{data.name} train (after holding out {size} for validation)",
                  f"{data.name} validation"),
                 np.bincount(data.train_y[keep].numpy(), minlength=data.num_classes), size)
    return dataclasses.replace(
        data, train_x=data.train_x[keep], train_y=data.train_y[keep], val_x=data.train_x[held],
        val_y=data.train_y[held],
        val_source=f"{size} training images held out, stratified by class (seed {seed})")


_INT64_MAX = int(np.iinfo(np.int64).max)


def from_arrays(
    name: str, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
    classes: tuple[str, ...] | None = None, *, where: tuple[str, ...] | None = None,
    val: tuple[np.ndarray, np.ndarray] | None = None,
) -> Dataset:
    """A ``Dataset`` from numpy arrays, checked, with labels remapped to 0..K-1.

    ``x`` is uint8 (N, H, W) or (N, H, W, C) with C 1 or 3; ``y`` (N,) integers of any width
    and signedness.  ``classes`` names the label values 0, 1, ... when the dataset has names
    (torchvision's); ``where`` says which file or split each error is about (default
    ``"<name> train"``, ``"<name> test"``, ``"<name> val"``); ``val``: a validation split
    given with the data (checked like the test split).

    Labels are class identifiers, not indices: they are remapped to 0..K-1 in the order of
    the K distinct training labels, so every class-indexed tensor (the sampler's class
    index, the kNN vote, the retrieval counts) has K entries however large a label is, and K
    is at most half the training images.  The original values name the classes (``"7"``)
    when the dataset has no names.  Refused, each with one line:

    - labels read exactly in every integer dtype, never wrapped around: a negative label
      (often a marker for an unlabelled image) and a uint64 label above int64's range (often
      -1 written unsigned);
    - test labels that never occur in training: neither the probe nor the kNN can predict a
      class they never saw, so those images would count as errors in every trial;
    - splits too small to train and judge, see ``_check_sizes``.
    """
    splits = [train, test] + ([val] if val is not None else [])
    where = where or tuple(f"{name} {s}" for s in ("train", "test", "val")[:len(splits)])
    for place, (x, y) in zip(where, splits, strict=True):
        check_arrays(place, x.shape, x.dtype, y.shape, y.dtype)
    for place, (x, _) in zip(where[1:], splits[1:], strict=True):
        if _chw(x.shape) != _chw(train[0].shape):
            raise DataError(
                f"{place}: images are {_chw(x.shape)} but training images are "
                f"{_chw(train[0].shape)}; every split needs the same image shape"
            )
    values = _label_values(where[0], train[1])  # (K,) sorted distinct training labels
    for place, (_, y) in zip(where[1:], splits[1:], strict=True):
        unseen = np.setdiff1d(_label_values(place, y), values)
        if len(unseen):
            raise DataError(
                f"{place}: label(s) {abbreviated(unseen)} never occur in the training labels; "
                "the probe and the kNN cannot predict a class they never saw: drop those "
                "images or add training images of those classes"
            )
    if classes is None:
        names = tuple(str(v) for v in values.tolist())
    elif int(values[-1]) >= len(classes):
        raise DataError(
            f"{where[0]}: label {int(values[-1])} has no class name (the dataset names "
            f"{len(classes)} classes, labels 0..{len(classes) - 1})"
        )
    else:
        names = tuple(classes[v] for v in values.tolist())
    tensors = []
    for x, y in splits:
        y = np.searchsorted(values, y.astype(np.int64)).astype(np.int64)
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        tensors += [torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)]
    _check_sizes(where, np.bincount(tensors[1].numpy(), minlength=len(values)), len(tensors[3]))
    if val is not None:
        _check_sizes((where[0], where[2]), np.bincount(tensors[1].numpy(), minlength=len(values)),
                     len(tensors[5]))
        return Dataset(name, *tensors[:4], names, *tensors[4:], val_source=f"{where[2]}")
    return Dataset(name, *tensors, names)


def _chw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """An image's (C, H, W) from the array shape (N, H, W) or (N, H, W, C)."""
    return (1, *shape[1:]) if len(shape) == 3 else (shape[3], shape[1], shape[2])


def check_arrays(
    where: str, x_shape: tuple[int, ...], x_dtype: np.dtype, y_shape: tuple[int, ...],
    y_dtype: np.dtype,
) -> None:
    """Refuse images and labels of the wrong dtype or shape; shapes and dtypes only, so an
    arrays folder is checked on its .npy headers before anything is read."""
    if x_dtype != np.uint8:
        raise DataError(f"{where}: x has dtype {x_dtype}; expected uint8 pixels (0-255)")
    if len(x_shape) not in (3, 4) or (len(x_shape) == 4 and x_shape[3] not in (1, 3)):
        raise DataError(
            f"{where}: x has shape {x_shape}; expected (N, H, W) or (N, H, W, C) with C 1 or 3"
        )
    if min(x_shape[1:3]) < 1:
        raise DataError(f"{where}: x has shape {x_shape}; images need a height and width of 1 or more")
    # bool is not an integer dtype here: True/False are flags, not class labels.
    if len(y_shape) != 1 or y_dtype.kind not in "iu":
        raise DataError(f"{where}: y has shape {y_shape} and dtype {y_dtype}; expected (N,) integers")
    if x_shape[0] != y_shape[0]:
        raise DataError(
            f"{where}: x holds {x_shape[0]} images but y holds {y_shape[0]} labels; they must match"
        )
    if x_shape[0] == 0:
        raise DataError(f"{where}: no images; the split must not be empty")


def _label_values(where: str, y: np.ndarray) -> np.ndarray:
    """The sorted distinct labels of ``y`` as int64 (K,), checked in ``y``'s own dtype.

    ``np.unique`` keeps the dtype and ``int()`` reads its ends exactly, so a uint64 label of
    2**64 - 1 is seen as that, never as -1.  Memory: one sorted copy of ``y``.
    """
    values = np.unique(y)
    low, high = int(values[0]), int(values[-1])
    if low < 0:
        raise DataError(
            f"{where}: y holds negative label {low}; labels must be 0 or more (a negative label "
            "often marks an unlabelled image): drop those images or relabel them"
        )
    if high > _INT64_MAX:
        raise DataError(
            f"{where}: y ({y.dtype}) holds label {high}, above int64's largest {_INT64_MAX} "
            f"(it is {high - 2**64} written unsigned, often a marker for an unlabelled image): "
            "drop those images or relabel them"
        )
    return values.astype(np.int64)


def _check_sizes(where: tuple[str, ...], counts: np.ndarray, n_test: int) -> None:
    """Refuse splits too small to train and judge an embedding, with the minimum.

    ``counts`` (K,): training images per class (every class has one or more); ``n_test``:
    test images.  The minimums:

    - 2 classes: a contrastive negative is an image of another class, and the probe (a
      logistic regression) cannot be fitted on one class;
    - 2 training images per class on average (K <= N / 2): a class needs a positive pair;
      it also bounds every class-indexed tensor by the data;
    - 2 classes with 2 or more training images: pairs of distinct images of one class, set
      against another class, are what the encoder learns from;
    - as many test images as classes: fewer cannot show every class once, and the scores of
      a handful of images are noise (5 training images gave a probe accuracy of 0.0).
    """
    k, n_train = len(counts), int(counts.sum())
    if k < 2:
        raise DataError(
            f"{where[0]}: the labels hold 1 class; contrastive training needs at least 2 classes"
        )
    if n_train < 2 * k:
        raise DataError(
            f"{where[0]}: {n_train} images for {k} classes; need at least 2 per class on average "
            f"({2 * k} images): add training images or merge classes"
        )
    paired = int((counts >= 2).sum())
    if paired < 2:
        raise DataError(
            f"{where[0]}: {paired} of {k} classes have 2 or more images; need at least 2 such "
            "classes (a positive pair and a negative): add training images"
        )
    if n_test < k:
        raise DataError(
            f"{where[1]}: {n_test} images for {k} classes; the test split needs at least one "
            f"image per class ({k} images) to judge the embedding: add test images"
        )


def abbreviated(values: Sequence[object] | np.ndarray, limit: int = 5) -> str:
    """The first ``limit`` values, comma-separated, and how many more (keeps errors short)."""
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def load_dataset(name: str, data_dir: str | Path = "data", *, download: bool = True,
                 val_size: int | None = None, seed: int = 0) -> Dataset:
    """Load a dataset by built-in name or arrays folder, with its validation split.

    Args:
        name: one of ``trainables.builtin.BUILTIN`` or a path to a folder with ``train.npz``
            and ``test.npz`` (and ``val.npz``: then the validation split).
        data_dir: torchvision's root folder for the built-in datasets.
        download: let torchvision download a missing built-in dataset (needs the internet).
        val_size, seed: the validation split held out of train (``with_validation``).
    """
    from trainables.builtin import BUILTIN  # here: trainables.builtin imports this module

    if name in BUILTIN:
        data_dir = Path(data_dir).expanduser().absolute()
        return with_validation(BUILTIN[name](data_dir, download), val_size, seed)
    path = Path(name).expanduser()
    if path.is_dir():
        from trainables.arrays import load_arrays  # here: trainables.arrays imports this module

        return with_validation(load_arrays(path), val_size, seed)
    raise DataError(
        f"unknown dataset {name!r}: use one of {', '.join(BUILTIN)} or a folder holding "
        "train.npz and test.npz"
    )
