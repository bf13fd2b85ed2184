"""A split's scores: the probe against scikit-learn, kNN against scikit-learn, retrieval
(leave-one-out within the split) against brute force, on toy data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from trainables.evaluate import knn_accuracy, retrieval_metrics, scores


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


def test_scores_probe_matches_sklearn_and_knn_and_retrieval_their_functions() -> None:
    x, y = _blobs(700, 2, 2.0)
    ref, ref_y, split, split_y = x[:400], y[:400], x[400:], y[400:]
    scaler = StandardScaler().fit(ref)
    sk = LogisticRegression(max_iter=1000).fit(scaler.transform(ref), ref_y)
    got = scores(*(torch.from_numpy(a) for a in (ref, ref_y, split, split_y)), num_classes=4,
                 knn_k=5)
    assert got.probe_accuracy == pytest.approx(sk.score(scaler.transform(split), split_y),
                                               abs=1 / 300)
    assert got.probe_converged == 1.0
    assert got.knn_accuracy == knn_accuracy(torch.from_numpy(ref), torch.from_numpy(ref_y),
                                            torch.from_numpy(split), torch.from_numpy(split_y), k=5)
    p1, map_r = _retrieval_brute(split, split_y)
    assert (got.precision_at_1, got.map_at_r) == (pytest.approx(p1), pytest.approx(map_r, abs=1e-6))


def test_probe_is_chance_on_random_labels() -> None:
    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.normal(size=(600, 8)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 4, 600))
    assert scores(x[:400], y[:400], x[400:], y[400:], num_classes=4, knn_k=5).probe_accuracy < 0.4


def _retrieval_brute(emb: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Precision@1 and MAP@R (Musgrave et al. 2020) of a split retrieving itself, leave-one-
    out, with explicit loops."""
    hits, aps = 0, []
    for i, (q, y) in enumerate(zip(emb, labels, strict=True)):
        others = [j for j in range(len(emb)) if j != i]
        sims = {j: float(np.dot(q, emb[j]) / (np.linalg.norm(q) * np.linalg.norm(emb[j])))
                for j in others}
        ranked = sorted(others, key=lambda j: -sims[j])
        hits += int(labels[ranked[0]] == y)
        r = sum(1 for j in others if labels[j] == y)
        if r == 0:
            continue
        found, ap = 0, 0.0
        for rank in range(1, r + 1):
            if labels[ranked[rank - 1]] == y:
                found += 1
                ap += found / rank  # P(i) * rel(i)
        aps.append(ap / r)
    return hits / len(emb), (sum(aps) / len(aps) if aps else 0.0)


@pytest.mark.parametrize("spread,chunk", [(0.5, 1024), (2.0, 7), (8.0, 64)])
def test_retrieval_matches_brute_force(spread: float, chunk: int) -> None:
    x, y = _blobs(160, 6, spread)
    y[:1] = 7  # a class of one: a miss at 1, left out of MAP@R
    got = retrieval_metrics(torch.from_numpy(x), torch.from_numpy(y), chunk=chunk)
    p1, map_r = _retrieval_brute(x, y)
    assert got["precision_at_1"] == pytest.approx(p1, abs=1e-12)
    assert got["map_at_r"] == pytest.approx(map_r, abs=1e-6)
    assert 0.0 < got["map_at_r"] <= 1.0


def test_retrieval_hand_made_case() -> None:
    # points on the unit circle; cosine similarity falls with the angle between them
    def at(degrees: list[float]) -> torch.Tensor:
        rad = torch.tensor(degrees, dtype=torch.float64).deg2rad()
        return torch.stack([rad.cos(), rad.sin()], dim=1)

    # class 0 at 0, 10, 50 degrees, class 1 at 30, 90.  Each query against the other four,
    # by angle off; R = the others of its class; rel over the top R; AP@R:
    # 0 (c0):  10, 30, 50, 90;  R 2; rel 1 0;  AP (1/1) / 2 = 1/2;  hit
    # 10 (c0): 0, 30, 50;       R 2; rel 1 0;  AP 1/2;              hit
    # 50 (c0): 30, 10, 90;      R 2; rel 0 1;  AP (1/2) / 2 = 1/4;  miss
    # 30 (c1): 10, 50, 0;       R 1; rel 0;    AP 0;                miss
    # 90 (c1): 50, 30;          R 1; rel 0;    AP 0;                miss
    got = retrieval_metrics(at([0, 10, 50, 30, 90]), torch.tensor([0, 0, 0, 1, 1]))
    assert got["precision_at_1"] == pytest.approx(2 / 5)
    assert got["map_at_r"] == pytest.approx((1 / 2 + 1 / 2 + 1 / 4) / 5)


def test_retrieval_perfect_and_worst() -> None:
    emb = torch.eye(3).repeat(4, 1)  # 12 points, 4 per class, class = axis
    perfect = retrieval_metrics(emb, torch.arange(3).repeat(4))
    assert perfect == {"precision_at_1": 1.0, "map_at_r": 1.0}
    worst = retrieval_metrics(emb, torch.arange(12) % 4)  # every axis holds all 4 labels
    assert worst["precision_at_1"] < 0.5
