"""Datasets, loaded once as uint8 tensors (the driver loads; trials receive them).

A dataset is named either by a built-in name (``mnist``, ``fashion-mnist``, ``cifar10``,
``cifar100`` through torchvision from a data directory; ``digits`` from scikit-learn, offline)
or by a folder holding ``train.npz`` and ``test.npz`` arrays (``x`` uint8 (N, H, W) or
(N, H, W, C), ``y`` integer labels), read by ``trainables.arrays``.  This module holds the
``Dataset`` record, the checks every dataset passes (``check_arrays`` on dtypes and shapes,
``from_arrays`` on labels and split sizes), the built-in loaders and ``load_dataset``.  Every
failure is a ``DataError`` with one line that names the problem and the fix.

Whatever the files hold, memory grows with the data only: an arrays folder is checked on its
.npy headers before any array is read (``trainables.arrays.load_arrays``), and labels of
every dataset are remapped to 0..K-1 with K bounded by the number of images (``from_arrays``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
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
    return from_arrays("digits", (x[:1400], y[:1400]), (x[1400:], y[1400:]), classes)


@dataclass(frozen=True)
class _Layout:
    """Where torchvision reads a built-in dataset under ``--data-dir``: ``folder`` holding
    ``files``; ``md5`` the checksums torchvision knows for them (CIFAR's; MNIST's are of
    the .gz files only); ``packed`` how else the files may come, for the messages; ``url``
    where they are downloaded from."""

    folder: str
    files: tuple[str, ...]
    md5: dict[str, str]
    packed: str
    url: str  # where torchvision downloads from (MNIST: its first mirror)


def _layout(cls: type) -> _Layout:
    """The layout torchvision's dataset class ``cls`` reads (from its own attributes)."""
    if hasattr(cls, "resources"):  # MNIST and FashionMNIST: <Name>/raw/<IDX files>
        files = tuple(name.removesuffix(".gz") for name, _ in cls.resources)
        return _Layout(f"{cls.__name__}/raw", files, {}, "or each gzipped as downloaded, NAME.gz",
                       cls.mirrors[0])
    listed = [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]
    return _Layout(cls.base_folder, tuple(name for name, _ in listed), dict(listed),
                   f"the folder unpacked from {cls.filename}", cls.url)


def _torchvision_loader(cls_name: str) -> Callable[[Path, bool], Dataset]:
    """A loader of torchvision's ``cls_name`` from a data directory, downloading when allowed.

    Every failure is one ``DataError`` line with its real cause: the files missing and
    downloads off (which files, where), the download failed (the network's own reason), or
    the files present but unreadable or failing their checksum (which file).  Folders the
    attempt created and left empty are removed; nothing that existed before is touched.
    """

    def load(data_dir: Path, download: bool) -> Dataset:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        layout = _layout(cls)
        where = data_dir / layout.folder
        created = [p for p in (where, *where.parents) if not p.exists()]  # deepest first
        try:
            legacy = data_dir / cls_name / "processed"  # torchvision < 0.9's MNIST cache
            if not download and not (legacy / "training.pt").is_file():
                _unpack_gz(cls_name, where, layout)
                missing = [f for f in layout.files if not (where / f).is_file()]
                if missing:
                    raise DataError(_missing(cls_name, data_dir, layout, missing, _DOWNLOADS_OFF))
            splits = []
            for train in (True, False):
                ds = cls(root=str(data_dir), train=train, download=download)
                splits.append((np.asarray(ds.data), np.asarray(ds.targets)))
        except DataError:
            _remove_empty(created)
            raise
        except Exception as err:  # torchvision's: download, checksum and parse errors alike
            _remove_empty(created)
            raise DataError(_diagnose(cls_name, data_dir, layout, err, download)) from err
        return from_arrays(cls_name.lower(), splits[0], splits[1], tuple(ds.classes))

    return load


def _missing(cls_name: str, data_dir: Path, layout: _Layout, missing: list[str], why: str) -> str:
    """Which files are expected where, which are missing (``why``: what kept them away)."""
    there = "none there" if len(missing) == len(layout.files) else f"missing: {', '.join(missing)}"
    fix = ("leave out --no-download to download them" if why == _DOWNLOADS_OFF else
           "fix what kept them from downloading and run again")
    return (
        f"{cls_name} not found in --data-dir {data_dir} ({why}): expected "
        f"{data_dir / layout.folder}/ holding {', '.join(layout.files)} ({layout.packed}), "
        f"{there}; copy them there, point --data-dir at the folder that holds "
        f"{layout.folder.split('/')[0]}/, or {fix}"
    )


_DOWNLOADS_OFF = "downloads are off: --no-download"


def _unpack_gz(cls_name: str, where: Path, layout: _Layout) -> None:
    """Unpack ``NAME.gz`` beside a missing ``NAME`` (MNIST's files as downloaded), as
    torchvision does only when it downloads; a damaged archive is refused, nothing half
    written is left."""
    import gzip
    import zlib

    for name in layout.files:
        packed, target = where / f"{name}.gz", where / name
        if target.exists() or not packed.is_file():
            continue
        partial = target.with_name(f".{name}.partial")
        try:
            with gzip.open(packed, "rb") as src, open(partial, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        except (OSError, EOFError, zlib.error) as err:
            partial.unlink(missing_ok=True)
            raise DataError(
                f"{cls_name} is corrupt: {packed} cannot be unpacked ({_reason(err)}); replace it "
                "with an intact copy, or delete it and leave out --no-download to download it again"
            ) from err
        partial.replace(target)


def _diagnose(cls_name: str, data_dir: Path, layout: _Layout, err: Exception,
              download: bool) -> str:
    """The one-line cause of torchvision's failure ``err``: a failed download (with the
    network's reason), missing files, or a file that is corrupt (which one)."""
    import http.client
    import urllib.error

    where = data_dir / layout.folder
    missing = [f for f in layout.files if not (where / f).is_file()]
    bad = [] if missing else _corrupt_files(where, layout)
    damaged = bad[0] + (f" (and {len(bad) - 1} more file(s))" if len(bad) > 1 else "") if bad else ""
    network = (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException)
    if download and (isinstance(err, network) or str(err).startswith("Error downloading")):
        tried: dict[str, list[str]] = {}  # reason -> the URLs that failed with it
        for url, reason in _download_reasons(err, layout.url).items():
            tried.setdefault(reason, []).append(url)
        cause = "; ".join(
            f"{'the download failed its checksum' if 'File not found or corrupted' in reason else reason}"
            f": {', '.join(urls)}" for reason, urls in tried.items())
        subject = f"{cls_name}: {damaged}, and a fresh copy" if damaged else cls_name
        return (
            f"{subject} could not be downloaded into {where} ({cause}); without a network, "
            f"copy {', '.join(layout.files)} ({layout.packed}) into {where}/ and run with "
            "--no-download, or point --data-dir at a folder that holds them"
        )
    if missing:  # torchvision failed before it fetched them (a folder it may not write, ...)
        return _missing(cls_name, data_dir, layout, missing, _reason(err))
    fix = ("delete it and run again to download a fresh copy" if download else
           "replace it with an intact copy, or delete it and leave out --no-download")
    if damaged:
        return f"{cls_name} is corrupt: {damaged}; {fix}"
    return f"{cls_name} in {where} cannot be read ({_reason(err)}); {fix}"


def _download_reasons(err: Exception, url: str) -> dict[str, str]:
    """{url: why it failed} from torchvision's download error.

    CIFAR's download raises the ``URLError`` itself; MNIST's tries each mirror and raises a
    RuntimeError whose text holds, per mirror, ``Tried <url>, got:`` and the error's text
    (the exceptions themselves are dropped, so their text is all that is left)."""
    import re

    if isinstance(err, OSError):  # URLError and socket errors: of ``url`` (CIFAR's only one)
        return {url: _reason(err)}
    text = str(err)
    name = re.match(r"Error downloading (\S+?):", text)
    found = re.findall(r"Tried (\S+), got:\n(.*)", text)
    return {mirror + (name[1] if name else ""):
            re.sub(r"^<urlopen error (.*)>$", r"\1", reason.strip()) or "no reason given"
            for mirror, reason in found} or {url: _reason(err)}


def _corrupt_files(where: Path, layout: _Layout) -> list[str]:
    """"<file> <what is wrong>" for each file that fails its checksum or its IDX header."""
    from torchvision.datasets.utils import check_integrity

    found = []
    for name in layout.files:
        path = where / name
        try:
            if name in layout.md5:  # CIFAR: torchvision's checksums
                if not check_integrity(str(path), layout.md5[name]):
                    found.append(f"{path} fails its checksum (md5 {layout.md5[name]} expected)")
            elif problem := _idx_problem(path):  # MNIST: no checksum, but a header to match
                found.append(f"{path} {problem}")
        except OSError as err:
            found.append(f"{path} cannot be read ({_reason(err)})")
    return found


_IDX_ITEM_BYTES = {8: 1, 9: 1, 11: 2, 12: 4, 13: 4, 14: 8}  # IDX type code -> bytes per value


def _idx_problem(path: Path) -> str | None:
    """What is wrong with an IDX file (MNIST's format: 2 zero bytes, a type code, the number
    of dimensions, each dimension as a big-endian uint32, the values), or None."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in _IDX_ITEM_BYTES or not 1 <= head[3] <= 3:
        return f"is not an IDX file ({size:,} bytes without an IDX header)"
    ndim = head[3]
    if len(head) < 4 + 4 * ndim:
        return f"is truncated ({size:,} bytes, shorter than its header)"
    dims = [int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + int(np.prod(dims)) * _IDX_ITEM_BYTES[head[2]]
    if size != expected:
        return (f"is {'truncated' if size < expected else 'too long'}: {size:,} bytes where its "
                f"header {tuple(dims)} promises {expected:,}")
    return None


def _reason(err: BaseException) -> str:
    """An exception as one line, its type named; torchvision's advice (``download=True``, an
    option of its Python API, not of this CLI) left out."""
    import re
    import urllib.error

    if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError):
        err = err.reason if isinstance(err.reason, BaseException) else err
    text = " ".join(str(err).split())
    text = re.split(r"\.? ?You can use download=True|\.? ?[^.]*download=True", text)[0].removesuffix(".")
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders of ``created`` (deepest first) that now exist and are empty."""
    for folder in created:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


BUILTIN: dict[str, Callable[[Path, bool], Dataset]] = {
    "mnist": _torchvision_loader("MNIST"),
    "fashion-mnist": _torchvision_loader("FashionMNIST"),
    "cifar10": _torchvision_loader("CIFAR10"),
    "cifar100": _torchvision_loader("CIFAR100"),
    "digits": lambda data_dir, download: load_digits(),
}


def load_dataset(name: str, data_dir: str | Path = "data", *, download: bool = True,
                 val_size: int | None = None, seed: int = 0) -> Dataset:
    """Load a dataset by built-in name or arrays folder, with its validation split.

    Args:
        name: one of ``BUILTIN`` or a path to a folder with ``train.npz`` and ``test.npz``
            (and ``val.npz``: then the validation split).
        data_dir: torchvision's root folder for the built-in datasets.
        download: let torchvision download a missing built-in dataset (needs the internet).
        val_size, seed: the validation split held out of train (``with_validation``).
    """
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
