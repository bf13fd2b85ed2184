"""Contrastive losses, composed from a distance (pytorch-metric-learning's convention).

Every loss here receives L2-normalised embeddings (the trial normalises them), so margins
live on the unit hypersphere: Euclidean distances in [0, 2], cosine similarities in [-1, 1].
What a loss consumes is its mode (its row in ``trainables.dimensions.LOSSES``): pair losses take
``(x1, x2, target)`` with (B, D) embeddings and target (B,) in {+1, -1} (+1 similar);
triplet losses take anchor, positive, negative (B, D); batch losses take all of a step's
views ``z`` (N, D) and a label per view (N,), views sharing a label being positives of each
other.  All return a mean over the batch, a scalar.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from trainables.dimensions import LOSS, LOSS_HYPERPARAMETERS


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
    2015, FaceNet; ``torch.nn.TripletMarginLoss`` semantics).  No triplets (a miner found
    none in the batch) give 0, not NaN."""

    def __init__(self, margin: float, p_norm: float = 2.0) -> None:
        super().__init__()
        self.margin = margin
        self.p = p_norm

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        if len(anchor) == 0:  # a miner found no triplet in this batch: nothing to learn
            return anchor.sum()
        d_ap = lp_distance(anchor, positive, self.p)
        d_an = lp_distance(anchor, negative, self.p)
        return (d_ap - d_an + self.margin).clamp_min(0).mean()


def _cosine_logits(z: Tensor, temperature: float) -> Tensor:
    """All cosine similarities divided by the temperature, (N, D) -> (N, N)."""
    z = F.normalize(z, dim=1, eps=1e-8)
    return z @ z.T / temperature


class NTXentLoss(nn.Module):
    """NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen, Kornblith,
    Norouzi & Hinton 2020, "A Simple Framework for Contrastive Learning of Visual
    Representations"); InfoNCE (van den Oord et al. 2018) with cosine similarities.

    ``z`` (N, D) are views, ``labels`` (N,) say which views show the same image.  For every
    positive pair (i, p), p != i with ``labels[p] == labels[i]``, and s the cosine similarity
    divided by the temperature tau::

        l(i, p) = -log( exp(s_ip) / (exp(s_ip) + sum_{n: labels[n] != labels[i]} exp(s_in)) )

    and the loss is the mean over positive pairs.  With two views of each of B distinct
    images (N = 2B, labels = image index) each view's positive is the other view of its
    image and the 2B - 2 other views are its negatives: SimCLR's loss, averaged over the 2B
    views.  (pytorch-metric-learning's ``NTXentLoss`` semantics.)  A batch without positive
    pairs gives 0.
    """

    def __init__(self, temperature: float) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        logits = _cosine_logits(z, self.temperature)
        same = labels[:, None] == labels[None, :]
        positive = same & ~torch.eye(len(z), dtype=torch.bool, device=z.device)
        # log of each anchor's summed negative exponentials, (N, 1); -inf when it has none
        negatives = logits.masked_fill(same, float("-inf")).logsumexp(dim=1, keepdim=True)
        per_pair = torch.logaddexp(logits, negatives) - logits  # -log softmax, (N, N)
        return per_pair.masked_fill(~positive, 0).sum() / positive.sum().clamp_min(1)


class SupConLoss(nn.Module):
    """Supervised contrastive loss, the L_out variant (Khosla et al. 2020, "Supervised
    Contrastive Learning", eq. 2).

    ``z`` (N, D) are views, ``labels`` (N,) their classes; P(i) are the other views of i's
    class, A(i) all views but i, s the cosine similarity divided by the temperature tau::

        l(i) = -1/|P(i)| * sum_{p in P(i)} log( exp(s_ip) / sum_{a in A(i)} exp(s_ia) )

    and the loss is the mean over the views i that have a positive (pytorch-metric-learning's
    ``SupConLoss`` semantics).  A batch without positives gives 0.
    """

    def __init__(self, temperature: float) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        logits = _cosine_logits(z, self.temperature)
        eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
        positive = (labels[:, None] == labels[None, :]) & ~eye
        log_prob = logits - logits.masked_fill(eye, float("-inf")).logsumexp(dim=1, keepdim=True)
        count = positive.sum(dim=1)
        per_view = -log_prob.masked_fill(~positive, 0).sum(dim=1) / count.clamp_min(1)  # (N,)
        return per_view.sum() / (count > 0).sum().clamp_min(1)


# The registry: a loss's name (its row in dimensions.LOSSES) -> its class, built with the
# hyperparameters the row lists.
LOSS_CLASSES: dict[str, type[nn.Module]] = {
    "cosine_embedding": CosineEmbeddingLoss,
    "contrastive": ContrastiveLoss,
    "triplet_margin": TripletMarginLoss,
    "ntxent": NTXentLoss,
    "supcon": SupConLoss,
}
def build_loss(name: str, **hyperparameters: float) -> nn.Module:
    """The registered loss ``name``, built with those of ``hyperparameters`` it declares.

    ``hyperparameters`` are ``TrialConfig`` values (``margin``, ``p_norm``, ``temperature``);
    the trial passes them all, each loss takes the ones its row lists (others are
    ignored).  A name outside every loss's hyperparameters is a ``TypeError``.
    """
    if name not in LOSS_CLASSES:
        raise ValueError(f"loss={name!r} is not valid; choose one of {', '.join(LOSS_CLASSES)}")
    unknown = sorted(set(hyperparameters) - set(LOSS_HYPERPARAMETERS))
    if unknown:
        raise TypeError(f"unknown loss hyperparameter(s) {', '.join(unknown)}; "
                        f"known: {', '.join(LOSS_HYPERPARAMETERS)}")
    wanted = LOSS[name].hyperparameters
    return LOSS_CLASSES[name](**{k: v for k, v in hyperparameters.items() if k in wanted})
