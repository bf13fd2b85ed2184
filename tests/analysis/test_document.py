"""Report rendering: no "nan" ever, Markdown tables escaped, HTML self-contained."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.document import (
    Heading,
    Image,
    Paragraph,
    Table,
    fmt,
    fmt_interval,
    fmt_p,
    html_document,
    markdown,
)
from analysis.grouping import dimension_groups
from analysis.plots import box_plot
from trainables.config import DIMENSIONS


def test_fmt_never_prints_nan():
    for value in (math.nan, np.float64("nan"), None, pd.NA, math.inf, np.float32("nan")):
        assert fmt(value) == "–"
    assert fmt(0.91184, 4) == "0.9118" and fmt(3.05e-4) == "3.05e-04" and fmt(128) == "128"
    assert fmt_p(math.nan) == "–" and fmt_p(0.0004) == "<0.001" and fmt_p(0.0193) == "0.019"
    assert fmt_p(None, untested="untested") == "untested"
    assert fmt_interval(0.9512, 0.94, 0.9623, n=3) == "0.951 [0.940, 0.962] (n=3)"
    assert fmt_interval(0.5, n=1) == "0.500 (no interval) (n=1)"
    assert fmt_interval(-0.0123, -0.02, 0.001, signed=True) == "-0.012 [-0.020, +0.001]"
    assert fmt_interval(math.nan) == "–" and fmt_interval(math.nan, n=0) == "–"


def test_markdown_and_html(tmp_path):
    png = box_plot(["a", "b"], [np.array([0.1, 0.2]), np.array([])], None, tmp_path / "p.png",
                   title="t", xlabel="x")
    table = pd.DataFrame({"k|ey": ["x"], "v": [math.nan]})
    blocks = [Heading("T", 1), Paragraph("**bold** `code` <tag>"), Table(table), Image(png, "plot")]
    md = markdown(blocks, tmp_path)
    assert "| k\\|ey | v |" in md and "| x | – |" in md and "![plot](p.png)" in md
    html = html_document(blocks, "T")
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html
    assert "&lt;tag&gt;" in html and 'src="data:image/png;base64,' in html


def test_dimensions_are_grouped_where_they_apply():
    trials = pd.DataFrame({
        "augmentation": ["none", "rotation", "simclr", "rotation"],
        "aug_strength": [1.0, 0.6, 1.4, 0.9],
        "loss": ["contrastive", "contrastive", "triplet_margin", "triplet_margin"],
        "margin": [0.5, 1.5, 0.1, 0.9],
        "embedding_dim": pd.array([16, 64, 16, 128], dtype="Int64"),
    })
    strength = dimension_groups(trials, "aug_strength")
    assert pd.isna(strength[0]) and strength[1:].notna().all()  # none: not applicable
    margin = dimension_groups(trials, "margin")
    assert all(str(v).startswith(loss) for v, loss in zip(margin, trials["loss"], strict=True))
    dims = dimension_groups(trials, "embedding_dim")
    assert list(dims.cat.categories) == ["16", "64", "128"]
    assert DIMENSIONS["lr"].log and not DIMENSIONS["batch_size"].numeric


def test_html_tables_fit_the_page():
    """Every table sits in a box that scrolls sideways; a long token may break anywhere, a
    number never; the page itself has no room to overflow; the Markdown is unchanged."""
    settings = "augmentation=simclr,aug_strength=1.2990,mode=triplet,loss=triplet_margin"
    table = pd.DataFrame({"trial": ["4efe533d"], "settings": [settings], "probe": [0.9571],
                          "epochs": np.array([1], dtype=np.int64), "note": ["short words only"]})
    html = html_document([Table(table), Table(table)], "T")
    assert html.count('<div class="table"><table>') == 2 and html.count("</table></div>") == 2
    assert f'<td class="long">{settings}</td>' in html
    assert '<td class="num">0.9571</td>' in html and '<td class="num">1</td>' in html
    assert "<td>4efe533d</td>" in html and "<td>short words only</td>" in html
    css = html[html.index("<style>"):html.index("</style>")]
    for rule in ("div.table { max-width: 100%; overflow-x: auto;", "overflow-wrap: anywhere",
                 "word-break: break-word", "td.num { white-space: nowrap; }",
                 "img { max-width: 100%;", "overflow-wrap: break-word"):
        assert rule in css, rule
    assert markdown([Table(table)], Path(".")).startswith(
        "| trial | settings | probe | epochs | note |\n|---|---|---|---|---|\n| 4efe533d |")
