"""Triplet miners: choose (anchor, positive, negative) index triples from a batch's embeddings.

A miner sees every embedding of the step's batch, ``z`` (N, D), and a label per embedding
(N,): the class for ``positives='class'``, the training-image index for
``positives='instance'`` (two views of one image share it).  It returns three (T,) index
tensors into ``z``, computed with batched tensor ops (pytorch-metric-learning's convention:
a miner returns index tuples, the loss takes them).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Triplets = tuple[Tensor, Tensor, Tensor]


def pairwise_distance(z: Tensor, p: float = 2.0) -> Tensor:
    """All p-norm distances between rows, (N, D) -> (N, N)."""
    return torch.cdist(z, z, p=p)


def _masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def batch_hard(z: Tensor, labels: Tensor, margin: float, p: float = 2.0) -> Triplets:
    """Batch-hard mining (Hermans, Beyer & Leibe 2017, "In Defense of the Triplet Loss"):
    every embedding is an anchor, with its farthest positive and its closest negative.
    Anchors without a positive or a negative in the batch are left out."""
    d = pairwise_distance(z.detach(), p)
    positive, negative = _masks(labels)
    keep = positive.any(1) & negative.any(1)
    hardest_p = torch.where(positive, d, torch.full_like(d, -1.0)).argmax(1)
    hardest_n = torch.where(negative, d, torch.full_like(d, float("inf"))).argmin(1)
    anchors = torch.arange(len(z), device=z.device)
    return anchors[keep], hardest_p[keep], hardest_n[keep]


def semi_hard(z: Tensor, labels: Tensor, margin: float, p: float = 2.0) -> Triplets:
    """Semi-hard mining (Schroff, Kalenichenko & Philbin 2015, FaceNet): for every positive
    pair (a, p) of the batch, the closest negative that is still farther from the anchor
    than the positive, d(a, p) < d(a, n) < d(a, p) + margin.  Pairs without such a negative
    are left out."""
    d = pairwise_distance(z.detach(), p)
    positive, negative = _masks(labels)
    a, pos = positive.nonzero(as_tuple=True)
    d_ap = d[a, pos]
    d_an = d[a]  # (P, N)
    valid = negative[a] & (d_an > d_ap[:, None]) & (d_an < d_ap[:, None] + margin)
    closest = torch.where(valid, d_an, torch.full_like(d_an, float("inf"))).min(1)
    keep = torch.isfinite(closest.values)
    return a[keep], pos[keep], closest.indices[keep]


MINERS: dict[str, Callable[[Tensor, Tensor, float, float], Triplets]] = {
    "semihard": semi_hard,
    "hard": batch_hard,
}
