"""A tiny document model rendered twice: Markdown (images linked) and one self-contained HTML
file (images embedded as ``data:image/png;base64,`` URIs), and the report's formatters.

Every number in a report goes through ``fmt``, every p-value through ``fmt_p`` and every
estimate with its interval through ``fmt_interval``: a missing or non-finite value prints
as "–", never as "nan".
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

MISSING = "–"


def fmt(value: Any, digits: int = 3) -> str:
    """A value for a report: floats with ``digits`` significant digits (scientific notation
    below 1e-3), ints as is, None/NaN/inf as "–"."""
    if value is None:
        return MISSING
    if isinstance(value, float) or getattr(getattr(value, "dtype", None), "kind", "") == "f":
        x = float(value)
        if not math.isfinite(x):
            return MISSING
        if x != 0 and abs(x) < 1e-3:
            return f"{x:.{max(digits - 1, 0)}e}"
        return f"{x:.{digits}g}"
    try:
        if pd.isna(value):
            return MISSING
    except (TypeError, ValueError):
        pass
    return str(value)


def fmt_p(p: float | None, untested: str = MISSING) -> str:
    """A p-value: two significant digits, "<0.001" below that, ``untested`` when missing."""
    if p is None or not math.isfinite(p):
        return untested
    return f"{p:.2g}" if p >= 0.001 else "<0.001"


def fmt_interval(mean: float, low: float = math.nan, high: float = math.nan, *,
                 n: int | None = None, signed: bool = False, decimals: int = 3) -> str:
    """``mean [low, high] (n=…)`` with ``decimals`` decimals (``+`` signs for differences);
    without an interval (fewer than 2 values) the mean alone; "–" without a mean."""
    if mean is None or not math.isfinite(mean):
        return MISSING if not n else f"{MISSING} (n={n})"
    number = f"{{:{'+' if signed else ''}.{decimals}f}}".format
    text = number(mean)
    if math.isfinite(low) and math.isfinite(high):
        text += f" [{number(low)}, {number(high)}]"
    elif n is not None:
        text += " (no interval)"
    return text + (f" (n={n})" if n is not None else "")


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """Text with ``code`` and **bold** spans (the only inline markup)."""

    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A DataFrame shown as is; cells are formatted with ``fmt``."""

    frame: pd.DataFrame


@dataclass(frozen=True)
class Image:
    path: Path
    alt: str


Block = Heading | Paragraph | Bullets | Table | Image


def _cell(value: Any) -> str:
    return fmt(value, 4) if isinstance(value, float) else fmt(value)


def markdown(blocks: list[Block], base: Path) -> str:
    """The document as Markdown; image links are relative to ``base`` (the report folder)."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            out.append(block.text)
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            out.append(_markdown_table(block.frame))
        elif isinstance(block, Image):
            out.append(f"![{block.alt}]({block.path.relative_to(base).as_posix()})")
    return "\n\n".join(out) + "\n"


def _markdown_table(frame: pd.DataFrame) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(esc(str(c)) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(esc(_cell(v)) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


# Nothing may make the page wider than the window: every table sits in its own box that
# scrolls sideways when the table cannot be narrowed enough; cells wrap at spaces, and a cell
# with a long unbreakable token (a path, a settings string) may break it anywhere; numbers
# never break; images and long words in prose shrink or wrap to the column.
_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; overflow-wrap: break-word; }
div.table { max-width: 100%; overflow-x: auto; margin: 0.8em 0; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th.long, td.long { overflow-wrap: anywhere; word-break: break-word; min-width: 12em; }
td.num { white-space: nowrap; }
th { background: #f2f2f2; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; height: auto; display: block; margin: 0.8em 0; }
code { background: #f2f2f2; padding: 0 0.2em; }
h1, h2, h3 { margin-top: 1.6em; }
"""

# A cell holding a token this long (no space to wrap at) may break it anywhere (class "long").
_LONG_TOKEN = 24


def html_document(blocks: list[Block], title: str) -> str:
    """The document as one self-contained HTML page (images inlined as base64 PNG)."""
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 1), 6)
            body.append(f"<h{level}>{_inline(block.text)}</h{level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            items = "".join(f"<li>{_inline(i)}</li>" for i in block.items)
            body.append(f"<ul>{items}</ul>")
        elif isinstance(block, Table):
            body.append(_html_table(block.frame))
        elif isinstance(block, Image):
            data = base64.b64encode(block.path.read_bytes()).decode("ascii")
            body.append(f'<img alt="{html.escape(block.alt)}" src="data:image/png;base64,{data}">')
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _html_table(frame: pd.DataFrame) -> str:
    """A table in a ``<div class="table">`` box that scrolls sideways when it must; cells
    marked ``num`` (numbers: never broken) or ``long`` (a long token: broken anywhere)."""
    def cell(tag: str, value: Any, text: str) -> str:
        if pd.api.types.is_number(value) and not isinstance(value, bool):
            tag += ' class="num"'
        elif any(len(word) > _LONG_TOKEN for word in text.split()):
            tag += ' class="long"'
        return f"<{tag}>{html.escape(text)}</{tag.split()[0]}>"

    head = "".join(cell("th", None, str(c)) for c in frame.columns)
    rows = "".join("<tr>" + "".join(cell("td", v, _cell(v)) for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def _inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
