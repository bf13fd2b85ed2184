"""The end-of-trial judgement of the last evaluated embedding: its t-SNE map, the plots of
it, and the structure measures of both (``trainables.structure``)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from trainables.metrics import TSNE_PREFIX
from trainables.structure import structure


@dataclass(frozen=True)
class Pictures:
    """tsne: PNG of the t-SNE map; raw: PNG of the embedding's own axes (D = 2 only);
    measures: ``trainables.metrics.STRUCTURE_METRICS`` of the embedding and of its map."""

    tsne: bytes
    raw: bytes | None
    measures: dict[str, float]


def judge_embedding(
    embedding: np.ndarray, labels: np.ndarray, class_names: Sequence[str], title: str,
    seed: int = 0,
) -> Pictures:
    """t-SNE once, then the plots and the structure measures of (N, D) ``embedding``."""
    tsne = tsne_map(embedding, seed)
    raw = (scatter_png(embedding, labels, class_names, title, xlabel="embedding 1",
                       ylabel="embedding 2") if embedding.shape[1] == 2 else None)
    measures = {**asdict(structure(embedding, labels)),
                **{f"{TSNE_PREFIX}{k}": v for k, v in asdict(structure(tsne, labels)).items()}}
    return Pictures(scatter_png(tsne, labels, class_names, title), raw, measures)


def tsne_map(embedding: np.ndarray, seed: int = 0) -> np.ndarray:
    """A 2-D t-SNE map (van der Maaten & Hinton 2008) of (N, D) embeddings -> (N, 2).

    Perplexity is 30, or less for tiny samples (it must stay below N).
    """
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(embedding) - 1) // 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return tsne.fit_transform(embedding.astype(np.float32)).astype(np.float32)


def scatter_png(
    points: np.ndarray, labels: np.ndarray, class_names: Sequence[str], title: str,
    xlabel: str = "t-SNE 1", ylabel: str = "t-SNE 2",
) -> bytes:
    """A PNG scatter plot of (N, 2) points coloured by class, with a legend and a title."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["tab10" if len(class_names) <= 10 else "tab20"]
    for k, name in enumerate(class_names):
        mask = labels == k
        if mask.any():
            ax.scatter(points[mask, 0], points[mask, 1], s=4, color=cmap(k % cmap.N), label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9, wrap=True)
    if len(class_names) <= 20:
        ax.legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5),
                  title="class")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
