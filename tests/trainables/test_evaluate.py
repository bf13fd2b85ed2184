"""Probe and kNN against scikit-learn on toy data; the t-SNE picture decodes as a PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from trainables.evaluate import embedding_plots, knn_accuracy, probe_accuracy


def _blobs(n: int, seed: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 8)) * 2
    y = rng.integers(0, 4, n)
    return (centres[y] + rng.normal(scale=spread, size=(n, 8))).astype(np.float32), y


@pytest.mark.parametrize("k", [1, 5, 15])
def test_knn_matches_sklearn_cosine(k: int) -> None:
    x, y = _blobs(500, 0, 1.5)
    xtr, ytr, xte, yte = x[:300], y[:300], x[300:], y[300:]
    ref = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute")
    expected = ref.fit(xtr, ytr).score(xte, yte)
    ours = knn_accuracy(torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte),
                        torch.from_numpy(yte), k=k)
    # ties between equally voted classes may break differently: allow one or two test points
    assert ours == pytest.approx(expected, abs=2 / 200)
    assert 0.3 < ours < 1.0


def test_probe_matches_sklearn() -> None:
    x, y = _blobs(700, 2, 2.0)
    xtr, ytr, xte, yte = x[:400], y[:400], x[400:], y[400:]
    scaler = StandardScaler().fit(xtr)
    ref = LogisticRegression(max_iter=1000).fit(scaler.transform(xtr), ytr)
    expected = ref.score(scaler.transform(xte), yte)
    assert probe_accuracy(xtr, ytr, xte, yte) == pytest.approx(expected, abs=1 / 300)


def test_probe_is_chance_on_random_labels() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(600, 8))
    y = rng.integers(0, 4, 600)
    assert probe_accuracy(x[:400], y[:400], x[400:], y[400:]) < 0.4


@pytest.mark.parametrize("dim", [2, 8])
def test_plots_are_pngs(dim: int) -> None:
    from PIL import Image

    x, y = _blobs(120, 5, 0.5)
    plots = embedding_plots(x[:, :dim], y, ["a", "b", "c", "d"], title="test plot")
    assert set(plots) == ({"tsne.png", "embedding.png"} if dim == 2 else {"tsne.png"})
    for png in plots.values():
        img = Image.open(io.BytesIO(png))
        img.load()
        assert img.format == "PNG" and img.size[0] > 300
