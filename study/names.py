"""Study names: a name becomes an MLflow experiment, a folder under ``--storage-path``
(``<name>-<run id>``), a lock file beside it and a report folder under ``reports/``, so it
must stay one short, plain path component.  Standard library only."""

from __future__ import annotations

import re

MAX_NAME = 100
_NAME = re.compile(r"[A-Za-z0-9._-]+")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a study (one line), or None when it can: 1 to ``MAX_NAME``
    characters of ``A-Z a-z 0-9 . _ -``, not starting with '.' (no '..', no hidden
    folder, no path separator)."""
    if not name:
        return "is empty"
    if len(name) > MAX_NAME:
        return f"is {len(name)} characters long; at most {MAX_NAME}"
    if not _NAME.fullmatch(name):
        bad = "".join(dict.fromkeys(c for c in name if not _NAME.fullmatch(c)))
        return (f"holds {bad!r}; use only letters, digits, '.', '_' and '-' (it names "
                "folders)")
    if name.startswith("."):
        return "starts with '.'; it names a folder, which must not be hidden or '..'"
    return None
