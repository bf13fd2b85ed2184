"""Miners against brute-force definitions: the triplets really are hardest / semi-hard."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.nn import functional as F

from trainables.miners import batch_hard, semi_hard


def _batch(seed: int, n: int = 30, classes: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(n, 5, generator=g, dtype=torch.float64), dim=1)
    return z, torch.randint(0, classes, (n,), generator=g)


def _d(z: torch.Tensor, i: int, j: int) -> float:
    return float(torch.linalg.vector_norm(z[i] - z[j]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_hard_picks_farthest_positive_and_closest_negative(seed: int) -> None:
    z, y = _batch(seed)
    a, p, n = batch_hard(z, y, margin=0.2)
    expected_anchors = [i for i in range(len(z))
                        if any(y[j] == y[i] and j != i for j in range(len(z)))
                        and any(y[j] != y[i] for j in range(len(z)))]
    assert a.tolist() == expected_anchors
    for i, pi, ni in zip(a.tolist(), p.tolist(), n.tolist(), strict=True):
        positives = [j for j in range(len(z)) if y[j] == y[i] and j != i]
        negatives = [j for j in range(len(z)) if y[j] != y[i]]
        assert _d(z, i, pi) == pytest.approx(max(_d(z, i, j) for j in positives))
        assert _d(z, i, ni) == pytest.approx(min(_d(z, i, j) for j in negatives))


@pytest.mark.parametrize("margin", [0.1, 0.5])
def test_semi_hard_matches_brute_force(margin: float) -> None:
    z, y = _batch(3, n=24)
    a, p, n = semi_hard(z, y, margin=margin)
    expected = {}
    for i, j in itertools.permutations(range(len(z)), 2):
        if y[i] != y[j]:
            continue
        d_ap = _d(z, i, j)
        semis = [(_d(z, i, k), k) for k in range(len(z))
                 if y[k] != y[i] and d_ap < _d(z, i, k) < d_ap + margin]
        if semis:
            expected[(i, j)] = min(semis)[1]
    got = {(i, j): k for i, j, k in zip(a.tolist(), p.tolist(), n.tolist(), strict=True)}
    assert got == expected and len(got) > 0


def test_instance_labels_pair_views_of_one_image() -> None:
    # two views of images 0..3 plus two more images: positives are the other view only
    z, _ = _batch(4, n=10)
    ids = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 7, 8])
    a, p, _ = batch_hard(z, ids, margin=0.2)
    assert all(ids[i] == ids[j] and i != j for i, j in zip(a.tolist(), p.tolist(), strict=True))
    assert sorted(a.tolist()) == list(range(8))
