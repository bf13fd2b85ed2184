"""The report's figures, each written as a PNG; every function returns the path it wrote.

matplotlib is imported and switched to the Agg backend inside each function (no display,
no import-time side effect). Figures use ``layout="constrained"`` so labels never overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from study.schema import OBJECTIVE

OUTCOME_COLOURS = {"finished": "tab:blue", "stopped_early": "tab:orange",
                   "failed": "tab:red", "running": "tab:gray", "interrupted": "tab:purple"}
DPI = 110


def metric_label(metric: str = OBJECTIVE) -> str:
    """Axis label of the objective, with its unit."""
    unit = "fraction correct, 0-1" if metric.endswith("accuracy") else "final value"
    return f"{metric} ({unit})"


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display), imported when first needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rotate(ax: Any, labels: Sequence[str]) -> None:
    if len(labels) > 5 or max((len(s.split("\n")[0]) for s in labels), default=0) > 12:
        ax.tick_params(axis="x", labelrotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")


def box_plot(groups: Sequence[str], values: Sequence[np.ndarray],
             outcomes: Sequence[Sequence[str]] | None, path: Path, *, title: str,
             xlabel: str, ylabel: str = "", seed: int = 0) -> Path:
    """Box plot of ``values[i]`` per group, with every value drawn as a jittered point
    (coloured by its trial's outcome when ``outcomes`` is given; legend included).
    Tick labels carry each group's n. Groups with no values are skipped."""
    plt = pyplot()
    keep = [i for i, v in enumerate(values) if len(v)]
    labels = [f"{groups[i]}\nn={len(values[i])}" for i in keep]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(keep) + 3.5), 4.2), layout="constrained")
    rng = np.random.default_rng(seed)
    if keep:
        ax.boxplot([values[i] for i in keep], positions=range(len(keep)), widths=0.5,
                   showfliers=False, medianprops={"color": "black"})
        seen: set[str] = set()
        for pos, i in enumerate(keep):
            x = pos + rng.uniform(-0.15, 0.15, size=len(values[i]))
            kinds = list(outcomes[i]) if outcomes is not None else ["trial"] * len(values[i])
            for kind in dict.fromkeys(kinds):
                sel = np.array([k == kind for k in kinds])
                ax.scatter(x[sel], np.asarray(values[i])[sel], s=22, alpha=0.8, zorder=3,
                           color=OUTCOME_COLOURS.get(kind, "tab:blue"),
                           label=kind.replace("_", " ") if kind not in seen else None)
                seen.add(kind)
        ax.set_xticks(range(len(keep)), labels)
        _rotate(ax, labels)
        if seen:
            ax.legend(title="trial outcome", fontsize="small", title_fontsize="small",
                      loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: hides no point
    else:
        ax.text(0.5, 0.5, "no trial with a value", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or metric_label())
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def heat_map(means: np.ndarray, counts: np.ndarray, rows: Sequence[str], cols: Sequence[str],
             path: Path, *, title: str, row_label: str, col_label: str,
             colour_label: str) -> Path:
    """Heat map of ``means`` (rows x cols), each cell annotated with its mean and n; cells
    without trials are grey and say "no trial"; colour bar labelled ``colour_label``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.5, 1.6 * len(cols) + 2.5), max(3.2, 0.9 * len(rows) + 1.8)),
                           layout="constrained")
    masked = np.ma.masked_invalid(np.asarray(means, dtype=float))
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
    finite = masked.compressed()
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.01, vmax + 0.01
    image = ax.imshow(masked, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for r in range(len(rows)):
        for c in range(len(cols)):
            if counts[r, c] and np.isfinite(means[r, c]):
                shade = (means[r, c] - vmin) / (vmax - vmin)
                ax.text(c, r, f"{means[r, c]:.3f}\nn={int(counts[r, c])}", ha="center",
                        va="center", color="white" if shade < 0.6 else "black")
            else:
                ax.text(c, r, "no trial", ha="center", va="center", color="black")
    ax.set_xticks(range(len(cols)), list(cols))
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=colour_label)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def importance_bars(importances: dict[str, float], path: Path, *, title: str) -> Path:
    """Horizontal bars of each dimension's importance (share of explained variance, %)."""
    plt = pyplot()
    names = list(importances)[::-1]
    shares = [100.0 * importances[n] for n in names]
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(names) + 1.6), layout="constrained")
    bars = ax.barh(names, shares, color="tab:blue")
    ax.bar_label(bars, labels=[f"{s:.0f} %" for s in shares], padding=3)
    ax.set_xlim(0, max(shares + [1.0]) * 1.2)
    ax.set_xlabel("importance (% of the metric's variance explained, fANOVA)")
    ax.set_ylabel("searched dimension")
    ax.set_title(title)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
