"""The built-in datasets, by name in ``BUILTIN``, and why one could not be loaded.

``mnist``, ``fashion-mnist``, ``cifar10`` and ``cifar100`` are read by torchvision from a data
directory (``--data-dir``), downloaded when allowed; ``digits`` is scikit-learn's, offline.
Each loader returns a checked ``Dataset`` (``trainables.data.from_arrays``); the validation
split is held out later, by ``trainables.data.load_dataset``.

A torchvision dataset that cannot be loaded is one ``DataError`` line with its real cause:
the files missing and downloads off (which files, in which folder, in which packings), the
download failed (the network's own reason, per mirror), or a file present but corrupt (its
checksum, or its IDX header against its size).  MNIST's files as downloaded (``NAME.gz``) are
unpacked offline, and folders a failed attempt created are removed again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainables.data import DataError, Dataset, from_arrays


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images), upsampled to 16x16; offline.

    Split: the first 1,400 images train, the rest test.  Pixels 0..16 are scaled to 0..255.

    Read from scikit-learn's own file (what ``sklearn.datasets.load_digits`` reads), without
    importing ``sklearn.datasets``: that import alone took 2 s of every study's start here.
    """
    import importlib.util

    package = importlib.util.find_spec("sklearn")  # locates it, imports nothing
    if package is None or not package.submodule_search_locations:
        raise DataError("dataset 'digits' is scikit-learn's; install scikit-learn")
    rows = np.loadtxt(Path(package.submodule_search_locations[0]) / "datasets" / "data"
                      / "digits.csv.gz", delimiter=",")
    images = rows[:, :-1].reshape(-1, 8, 8)
    x = torch.from_numpy(images).float()[:, None] / 16.0
    x = torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8)[:, 0].numpy()
    y = rows[:, -1].astype(np.int64)
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
