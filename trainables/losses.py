"""Contrastive losses, composed from a distance (pytorch-metric-learning's convention).

Every loss here receives L2-normalised embeddings (the trial normalises them), so margins
live on the unit hypersphere: Euclidean distances in [0, 2], cosine similarities in [-1, 1].
Pair losses take ``(x1, x2, target)`` with (B, D) embeddings and target (B,) in {+1, -1}
(+1 similar); triplet losses take anchor, positive, negative (B, D).  All return the batch
mean, a scalar.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def lp_distance(a: Tensor, b: Tensor, p: float = 2.0, eps: float = 1e-6) -> Tensor:
    """Row-wise p-norm distance ||a - b + eps||_p, (B, D) x (B, D) -> (B,).

    The ``eps`` keeps the gradient finite at zero distance (as ``torch.pairwise_distance``).
    """
    return torch.linalg.vector_norm(a - b + eps, ord=p, dim=-1)


def cosine_similarity(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise cosine similarity, (B, D) x (B, D) -> (B,) in [-1, 1]."""
    return F.cosine_similarity(a, b, dim=-1, eps=1e-8)


class CosineEmbeddingLoss(nn.Module):
    """``1 - cos(x1, x2)`` for similar pairs, ``max(0, cos(x1, x2) - margin)`` for dissimilar
    ones: the semantics of ``torch.nn.CosineEmbeddingLoss``."""

    def __init__(self, margin: float) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, x1: Tensor, x2: Tensor, target: Tensor) -> Tensor:
        cos = cosine_similarity(x1, x2)
        loss = torch.where(target > 0, 1 - cos, (cos - self.margin).clamp_min(0))
        return loss.mean()


class ContrastiveLoss(nn.Module):
    """Hadsell, Chopra & LeCun (2006), "Dimensionality Reduction by Learning an Invariant
    Mapping": ``d^2 / 2`` for similar pairs and ``max(0, margin - d)^2 / 2`` for dissimilar
    ones, with ``d`` the Euclidean distance."""

    def __init__(self, margin: float) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, x1: Tensor, x2: Tensor, target: Tensor) -> Tensor:
        d = lp_distance(x1, x2, 2.0)
        loss = torch.where(target > 0, d.pow(2), (self.margin - d).clamp_min(0).pow(2)) / 2
        return loss.mean()


class TripletMarginLoss(nn.Module):
    """``max(0, d(a, p) - d(a, n) + margin)`` with the p-norm distance ``d`` (Schroff et al.
    2015, FaceNet; ``torch.nn.TripletMarginLoss`` semantics)."""

    def __init__(self, margin: float, p: float = 2.0) -> None:
        super().__init__()
        self.margin = margin
        self.p = p

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        d_ap = lp_distance(anchor, positive, self.p)
        d_an = lp_distance(anchor, negative, self.p)
        return (d_ap - d_an + self.margin).clamp_min(0).mean()


LOSSES: dict[str, Callable[..., nn.Module]] = {
    "cosine_embedding": lambda margin, p_norm: CosineEmbeddingLoss(margin),
    "contrastive": lambda margin, p_norm: ContrastiveLoss(margin),
    "triplet_margin": lambda margin, p_norm: TripletMarginLoss(margin, p_norm),
}


def build_loss(name: str, *, margin: float, p_norm: float = 2.0) -> nn.Module:
    """The registered loss ``name`` with its hyperparameters."""
    if name not in LOSSES:
        raise ValueError(f"loss={name!r} is not valid; choose one of {', '.join(LOSSES)}")
    return LOSSES[name](margin=margin, p_norm=p_norm)
