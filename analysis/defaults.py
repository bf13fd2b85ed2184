"""What the report's command line needs before it imports the analysis itself (pandas,
scipy: seconds), so that ``python -m analysis.summarize --help`` and its usage errors are
instant."""

from __future__ import annotations

import re

LEADERBOARD_TOP = 10  # trials in a leaderboard


def slug(name: str) -> str:
    """A file-name-safe version of ``name``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "study"
