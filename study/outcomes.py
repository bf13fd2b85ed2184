"""A trial's outcome, as Ray's view of it decides, and the words recorded with its run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from study.schema import FAILED, FINISHED, INTERRUPTED, OBJECTIVE, STOPPED_EARLY, TEST


def outcome_of(status: str, last_result: dict[str, Any] | None, max_epochs: int) -> str:
    """A trial's outcome from Ray's status and its last result."""
    if status == "ERROR":
        return FAILED
    if status != "TERMINATED":
        return INTERRUPTED
    epochs = int((last_result or {}).get("epoch", 0))
    return FINISHED if epochs >= max_epochs else STOPPED_EARLY


def describe(outcome: str, metrics: dict[str, float]) -> str:
    """A trial run's description in the MLflow UI: its outcome and main figures."""
    epoch = int(metrics.get("epoch", 0))
    text = f"{outcome.replace('_', ' ')} after {epoch} epoch(s)."
    if OBJECTIVE in metrics:
        text += f" Objective {OBJECTIVE} {metrics[OBJECTIVE]:.4f} (at epoch {epoch})."
    shown = [(name, metrics[f"{TEST}{name}"]) for name in (
        "probe_accuracy", "knn_accuracy", "precision_at_1", "map_at_r")
        if f"{TEST}{name}" in metrics]
    if shown:
        text += " Test split, scored once: " + ", ".join(f"{n} {v:.4f}" for n, v in shown) + "."
    return text


def error_text(trial: Any) -> str:
    """The trial's error message and traceback as Ray recorded it."""
    path = getattr(trial, "error_file", None)
    if path and Path(path).is_file():
        return Path(path).read_text(errors="replace")
    msg = getattr(trial, "error_msg", None)
    return str(msg) if msg else "trial failed (no error text recorded by Ray)"
