"""Probe and kNN against scikit-learn, retrieval metrics against brute force, on toy data;
the t-SNE picture decodes as a PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from trainables.evaluate import knn_accuracy, probe_accuracy, retrieval_metrics
from trainables.metrics import STRUCTURE_METRICS
from trainables.pictures import judge_embedding


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
    pictures = judge_embedding(x[:, :dim], y, ["a", "b", "c", "d"], title="test plot")
    assert (pictures.raw is not None) == (dim == 2)
    assert set(pictures.measures) == set(STRUCTURE_METRICS)
    for png in (pictures.tsne, pictures.raw or pictures.tsne):
        img = Image.open(io.BytesIO(png))
        img.load()
        assert img.format == "PNG" and img.size[0] > 300


def _retrieval_brute(ref: np.ndarray, ref_y: np.ndarray, query: np.ndarray,
                     query_y: np.ndarray) -> tuple[float, float]:
    """Precision@1 and MAP@R (Musgrave et al. 2020) with explicit loops."""
    hits, aps = 0, []
    for q, y in zip(query, query_y, strict=True):
        sims = [float(np.dot(q, r) / (np.linalg.norm(q) * np.linalg.norm(r))) for r in ref]
        ranked = sorted(range(len(ref)), key=lambda j: -sims[j])
        hits += int(ref_y[ranked[0]] == y)
        r = sum(1 for label in ref_y if label == y)
        if r == 0:
            continue
        found, ap = 0, 0.0
        for i in range(1, r + 1):
            if ref_y[ranked[i - 1]] == y:
                found += 1
                ap += found / i  # P(i) * rel(i)
        aps.append(ap / r)
    return hits / len(query), (sum(aps) / len(aps) if aps else 0.0)


@pytest.mark.parametrize("spread,chunk", [(0.5, 1024), (2.0, 7), (8.0, 64)])
def test_retrieval_matches_brute_force(spread: float, chunk: int) -> None:
    x, y = _blobs(260, 6, spread)
    ref, ref_y, query, query_y = x[:200], y[:200], x[200:], y[200:]
    query_y[:3] = 7  # a class with no reference: a miss at 1, left out of MAP@R
    got = retrieval_metrics(torch.from_numpy(ref), torch.from_numpy(ref_y),
                            torch.from_numpy(query), torch.from_numpy(query_y), chunk=chunk)
    p1, map_r = _retrieval_brute(ref, ref_y, query, query_y)
    assert got["precision_at_1"] == pytest.approx(p1, abs=1e-12)
    assert got["map_at_r"] == pytest.approx(map_r, abs=1e-6)
    assert 0.0 < got["map_at_r"] <= 1.0


def test_retrieval_hand_made_case() -> None:
    # references on the unit circle: class 0 at 0, 10, 20 degrees, class 1 at 90 and 100;
    # cosine similarity falls with the angle between directions
    def at(degrees: list[float]) -> torch.Tensor:
        rad = torch.tensor(degrees, dtype=torch.float64).deg2rad()
        return torch.stack([rad.cos(), rad.sin()], dim=1)

    ref = at([0, 10, 20, 90, 100])
    ref_y = torch.tensor([0, 0, 0, 1, 1])
    # (query at degrees, class): references by angle off; R; rel over the top R; AP@R
    # A (3, 0):  0, 10, 20 (3, 7, 17 off) first; R = 3; rel 1 1 1;  AP 1;   hit at 1
    # B (62, 0): 90, 100, 20 (28, 38, 42); R = 3;        rel 0 0 1;  AP (1/3) / 3 = 1/9
    # C (52, 1): 20, 90 (32, 38);          R = 2;        rel 0 1;    AP (1/2) / 2 = 1/4
    # D (80, 1): 90, 100 (10, 20);         R = 2;        rel 1 1;    AP 1;   hit at 1
    query = at([3, 62, 52, 80])
    got = retrieval_metrics(ref, ref_y, query, torch.tensor([0, 0, 1, 1]))
    assert got["precision_at_1"] == pytest.approx(2 / 4)
    assert got["map_at_r"] == pytest.approx((1 + 1 / 9 + 1 / 4 + 1) / 4)


def test_retrieval_perfect_and_worst() -> None:
    ref = torch.eye(3).repeat(4, 1)  # 12 references, 4 per class, class = axis
    ref_y = torch.arange(3).repeat(4)
    perfect = retrieval_metrics(ref, ref_y, torch.eye(3), torch.arange(3))
    assert perfect == {"precision_at_1": 1.0, "map_at_r": 1.0}
    worst = retrieval_metrics(ref, ref_y, torch.eye(3), torch.tensor([1, 2, 0]))
    assert worst == {"precision_at_1": 0.0, "map_at_r": 0.0}
