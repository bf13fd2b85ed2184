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
    # Each anchor's negative distances in ascending order; for every (a, j), the first one
    # strictly farther than d(a, j) is the semi-hard candidate: one batched searchsorted.
    negative_d, order = torch.where(negative, d, torch.full_like(d, float("inf"))).sort(
        dim=1, stable=True)
    slot = torch.searchsorted(negative_d, d.contiguous(), right=True).clamp_max(len(z) - 1)
    candidate_d = negative_d.gather(1, slot)
    valid = positive & (candidate_d > d) & (candidate_d < d + margin)
    anchors, positives = valid.nonzero(as_tuple=True)
    return anchors, positives, order.gather(1, slot)[anchors, positives]


MINERS: dict[str, Callable[[Tensor, Tensor, float, float], Triplets]] = {
    "semihard": semi_hard,
    "hard": batch_hard,
}
