"""Hostile arrays folders through the command line: exit 2 and one line, never a traceback
or a memory blow-up (the checks themselves are tested in tests/trainables/test_data.py)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from study.run import main


def _folder(root: Path, train_y: np.ndarray, test_y: np.ndarray) -> Path:
    folder = root / "arrays"
    folder.mkdir()
    for split, y in (("train", train_y), ("test", test_y)):
        np.savez(folder / f"{split}.npz", x=np.zeros((len(y), 8, 8), np.uint8), y=y)
    return folder


def _forged(root: Path) -> Path:
    """train.npz's x header claims 10**11 images of 28x28 and holds 64 bytes."""
    folder = _folder(root, np.arange(12) % 3, np.arange(3))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "shape": (10**11, 28, 28), "fortran_order": False})
    y = io.BytesIO()
    np.save(y, np.arange(12) % 3)
    with zipfile.ZipFile(folder / "train.npz", "w") as zf:
        zf.writestr("x.npy", header.getvalue() + bytes(64))
        zf.writestr("y.npy", y.getvalue())
    return folder


@pytest.mark.parametrize(
    "make,needles",
    [
        (_forged, ("train.npz", "x.npy", "(100000000000, 28, 28)", "holds 64 bytes")),
        (lambda root: _folder(root, np.array([0, 1] * 6 + [2**64 - 1], np.uint64), np.arange(2)),
         ("train.npz", "18446744073709551615")),
        (lambda root: _folder(root, np.arange(5), np.arange(5)),
         ("train.npz", "5 images for 5 classes", "10 images")),
        (lambda root: _folder(root, np.arange(12) % 3, np.array([0, 1, 7])),
         ("test.npz", "label(s) 7 never occur")),
    ],
    ids=["header-claims-1e11-images", "uint64-minus-one", "five-images", "unseen-test-label"],
)
def test_bad_arrays_folder_exits_2_with_one_line(tmp_path: Path, capsys, monkeypatch, make,
                                                 needles: tuple[str, ...]) -> None:
    monkeypatch.chdir(tmp_path)
    folder = make(tmp_path)
    assert main(["--dataset", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
