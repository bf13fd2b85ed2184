"""tools.check_pages on tiny pages: it finds horizontal overflow and broken images (needs
Chromium; skipped without it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools.check_pages import main, run_checks
from tools.chromium import find_chromium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")

_PNG_1x1 = bytes.fromhex(  # a 1x1 PNG, the smallest image that shows
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def _page(folder: Path, name: str, body: str) -> str:
    path = folder / f"{name}.html"
    path.write_text(f"<!DOCTYPE html><html><body style='margin:0'>{body}</body></html>")
    return path.as_uri()


def test_overflow_and_broken_images_found(tmp_path: Path) -> None:
    (tmp_path / "dot.png").write_bytes(_PNG_1x1)
    pages = [
        ("fits", _page(tmp_path, "fits", "<p>short</p><img src='dot.png' alt='dot'>"
                       "<div style='overflow-x:auto'><table><tr><td style='white-space:nowrap'>"
                       + "x" * 400 + "</td></tr></table></div>")),
        ("wide", _page(tmp_path, "wide", "<table><tr><td style='white-space:nowrap'>"
                       + "x" * 400 + "</td></tr></table>")),
        ("broken", _page(tmp_path, "broken", "<img src='missing.png' alt='gone'>")),
    ]
    results = {r.name: r for r in run_checks(pages, tmp_path / "shots", chromium=find_chromium(None),
                                             width=640, height=480, timeout=30, quiet=0.3)}
    assert results["fits"].problems() == [] and results["fits"].images == 1
    wide = results["wide"].problems()
    assert len(wide) == 1 and "overflows horizontally" in wide[0] and "in a 640px window" in wide[0]
    assert "table" in wide[0]  # the widest element is named, to say where to look
    assert results["broken"].problems() == ["broken: broken image 'gone'"]
    for name in results:
        assert (tmp_path / "shots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_exit_codes(tmp_path: Path, capsys) -> None:
    fits = Path(_page(tmp_path, "fits", "<p>fine</p>")[len("file://"):])
    assert main(["--report", str(fits), "--out", str(tmp_path / "shots"), "--quiet", "0.3"]) == 0
    wide = Path(_page(tmp_path, "wide", "<div style='width:3000px'>wide</div>")[len("file://"):])
    assert main(["--report", str(wide), "--out", str(tmp_path / "shots"), "--quiet", "0.3"]) == 1
    assert "PROBLEM" in capsys.readouterr().out
    assert main(["--report", str(tmp_path / "nothing.html")]) == 2
