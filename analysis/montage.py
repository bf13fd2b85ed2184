"""The one t-SNE montage: chosen trials' ``tsne.png`` artifacts side by side in one figure.

Both reports use it: the search report shows the best trial of each augmentation x mode cell
that has a trial, the seed-grid report each cell's median-probe seed.  Only panels with a
trial are drawn; a trial whose plot is missing shows its caption and says so.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.plots import DPI, pyplot
from study.schema import TSNE_PLOT

COLUMNS = 3  # panels per row


@dataclass(frozen=True)
class Panel:
    """One trial in the montage: its run, a heading (what it stands for) and a caption."""

    run_id: str
    heading: str
    caption: str


def tsne_montage(client: Any, panels: list[Panel], path: Path, *, title: str) -> Path:
    """Download each panel's t-SNE plot and draw them in rows of ``COLUMNS``; returns
    ``path``."""
    plt = pyplot()
    from PIL import Image

    rows = max(1, -(-len(panels) // COLUMNS))
    columns = max(1, min(COLUMNS, len(panels)))
    fig, axes = plt.subplots(rows, columns, figsize=(4.4 * columns, 4.6 * rows),
                             layout="constrained", squeeze=False)
    with tempfile.TemporaryDirectory() as tmp:
        for ax, panel in zip(axes.flat, panels, strict=False):
            image = download_plot(client, panel.run_id, Path(tmp) / panel.run_id)
            if image is not None:
                with Image.open(image) as im:
                    ax.imshow(np.asarray(im.convert("RGB")))
            else:
                ax.text(0.5, 0.5, "no t-SNE plot recorded", ha="center", va="center",
                        transform=ax.transAxes, color="grey")
            ax.set_title(f"{panel.heading}\n{panel.caption}", fontsize="small")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def download_plot(client: Any, run_id: str, folder: Path) -> Path | None:
    """The run's t-SNE plot downloaded into ``folder``, or None when it has none."""
    folder.mkdir(parents=True, exist_ok=True)
    with _no_progress_bar():
        try:
            return Path(client.download_artifacts(run_id, TSNE_PLOT, str(folder)))
        except Exception:  # noqa: BLE001 - a missing artifact shows as "no t-SNE plot"
            return None


@contextmanager
def _no_progress_bar() -> Iterator[None]:
    """MLflow draws a progress bar per download on stderr; switch it off meanwhile."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    old = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old
