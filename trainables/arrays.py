"""Arrays folders: ``train.npz``, ``test.npz`` (and ``val.npz``) read without trusting their
headers.

An arrays folder holds ``train.npz`` and ``test.npz``, and optionally ``val.npz`` (then the
validation split; else the study holds one out of train), each with ``x`` (uint8 images,
(N, H, W) or (N, H, W, C)) and ``y`` (integer labels).  ``load_arrays`` checks every array on the
.npy header inside the archive before reading it: the .npy format, the dtypes and shapes
(``trainables.data.check_arrays``), that each member holds the bytes its header declares,
and that the four arrays decode to at most ``MAX_DATASET_BYTES``.  Only then are the arrays
read, with ``np.lib.format`` and no pickles, so memory grows with the data only.  Every
failure, a file that is not a .npz included, is a ``DataError`` with one line.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np

from trainables.data import DataError, Dataset, abbreviated, check_arrays, from_arrays

# The most bytes the four arrays of an arrays folder (x and y of train and test) may decode
# to, checked on their .npy headers before any array is read.  16 GiB is 90 times CIFAR-10
# and more than ImageNet at 64x64 pixels (15 GiB); the driver holds the dataset in memory,
# Ray's object store holds a copy, and every trial copies it onto its device, so a larger
# dataset would not run here anyway.  Raise it for a machine with the memory to match.
MAX_DATASET_BYTES = 16 * 2**30


def load_arrays(folder: str | Path) -> Dataset:
    """A folder with ``train.npz`` and ``test.npz``, each holding ``x`` and ``y``.

    Checked before any array is read, from the .npy headers inside the archives: dtypes,
    shapes, that each array holds the bytes its header declares, and that the four arrays
    decode to at most ``MAX_DATASET_BYTES``.  Memory then grows with the data only.
    """
    folder = Path(folder)
    paths = []
    headers = []
    for split in ("train", "test", "val"):
        path = folder / f"{split}.npz"
        if split == "val" and not path.is_file():
            break  # optional: without it the study holds a validation split out of train
        if not path.is_file():
            raise DataError(
                f"arrays dataset {folder}: {path.name} is missing; the folder needs train.npz "
                "and test.npz with arrays x (uint8) and y (labels)"
            )
        members = _read(path, _npz_headers)
        x, y = members["x"], members["y"]
        check_arrays(str(path), x.shape, x.dtype, y.shape, y.dtype)
        paths.append(path)
        headers.append(members)
    total = sum(m.nbytes for members in headers for m in members.values())
    if total > MAX_DATASET_BYTES:
        raise DataError(
            f"arrays dataset {folder}: x and y of both splits decode to {_size(total)}, above "
            f"the limit of {_size(MAX_DATASET_BYTES)} (trainables.arrays.MAX_DATASET_BYTES); "
            "use a subset of the images, or raise the limit on a machine with the memory"
        )
    train, test, *val = (_read(p, partial(_npz_arrays, members=m))
                         for p, m in zip(paths, headers, strict=True))
    return from_arrays(folder.name, train, test, where=tuple(str(p) for p in paths),
                       val=val[0] if val else None)


@dataclass(frozen=True)
class _Member:
    """One array of a .npz archive as its header declares it."""

    name: str  # the zip member, ``x.npy``
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int  # what the array decodes to, from the header


def _npz_headers(path: Path) -> dict[str, _Member]:
    """The headers of ``x`` and ``y`` in a .npz, read without reading the arrays.

    Refuses a member whose header declares more bytes than the member holds (a forged or
    truncated file: ``np.load`` would allocate the declared size first).
    """
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        members = {}
        for key in ("x", "y"):
            member = f"{key}.npy" if f"{key}.npy" in names else key
            if member not in names:
                continue
            with zf.open(member) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise DataError(
                        f"{path}: {member} is .npy format {version[0]}.{version[1]}, which is "
                        "only used for structured arrays; save x and y with numpy.savez"
                    )
                held = zf.getinfo(member).file_size - f.tell()
            if any(n < 0 for n in shape):
                raise DataError(f"{path}: {member} declares shape {shape}; dimensions must be 0 or more")
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes > held:
                raise DataError(
                    f"{path}: {member} declares shape {shape} {dtype} ({_size(nbytes)}) but holds "
                    f"{_size(held)}; the file is truncated or its header is wrong: write it again "
                    "with numpy.savez"
                )
            members[key] = _Member(member, shape, dtype, nbytes)
    missing = {"x", "y"} - set(members)
    if missing:
        found = [n.removesuffix(".npy") for n in names]
        raise DataError(
            f"{path}: array(s) {', '.join(sorted(missing))} missing; found "
            f"{abbreviated(found) or 'none'}; expected x and y"
        )
    return members


def _npz_arrays(path: Path, members: dict[str, _Member]) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` of a .npz whose headers were checked (no pickles, as ``np.load``)."""
    with zipfile.ZipFile(path) as zf:
        arrays = []
        for key in ("x", "y"):
            with zf.open(members[key].name) as f:
                arrays.append(np.lib.format.read_array(f, allow_pickle=False))
    return arrays[0], arrays[1]


_T = TypeVar("_T")


def _read(path: Path, read: Callable[[Path], _T]) -> _T:
    """``read(path)``, with every way a file can fail to be a .npz as one ``DataError`` line."""
    try:
        return read(path)
    except DataError:
        raise
    except (OSError, ValueError, EOFError, RuntimeError, NotImplementedError,
            zipfile.BadZipFile, zlib.error) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: cannot be read as .npz ({reason})") from None


def _size(n: int) -> str:
    """A byte count for people: ``78.4 TiB``, ``12.0 MiB``, ``300 bytes``."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} bytes"
