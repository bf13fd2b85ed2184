"""Each loss against torch's own implementation or a brute-force loop."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from trainables.losses import build_loss


def _unit(b: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(b, d, generator=g, dtype=torch.float64), dim=1)


@pytest.mark.parametrize("margin", [-0.5, 0.0, 0.3])
def test_cosine_embedding_matches_torch(margin: float) -> None:
    x1, x2 = _unit(64, 8, 0), _unit(64, 8, 1)
    target = torch.where(torch.arange(64) % 3 == 0, 1.0, -1.0).double()
    ours = build_loss("cosine_embedding", margin=margin)(x1, x2, target)
    ref = torch.nn.CosineEmbeddingLoss(margin=margin)(x1, x2, target)
    assert torch.allclose(ours, ref, atol=1e-10)


@pytest.mark.parametrize("margin,p", [(0.2, 2.0), (1.0, 2.0), (0.5, 1.0)])
def test_triplet_margin_matches_torch(margin: float, p: float) -> None:
    a, pos, neg = _unit(50, 6, 2), _unit(50, 6, 3), _unit(50, 6, 4)
    ours = build_loss("triplet_margin", margin=margin, p_norm=p)(a, pos, neg)
    ref = torch.nn.TripletMarginLoss(margin=margin, p=p)(a, pos, neg)
    assert torch.allclose(ours, ref, atol=1e-10)


@pytest.mark.parametrize("margin", [0.5, 1.5])
def test_contrastive_matches_brute_force(margin: float) -> None:
    x1, x2 = _unit(40, 5, 5), _unit(40, 5, 6)
    target = torch.where(torch.arange(40) % 2 == 0, 1.0, -1.0).double()
    ours = build_loss("contrastive", margin=margin)(x1, x2, target)
    total = 0.0
    for i in range(40):
        d = math.sqrt(sum((float(x1[i, k]) - float(x2[i, k])) ** 2 for k in range(5)))
        total += 0.5 * d * d if target[i] > 0 else 0.5 * max(0.0, margin - d) ** 2
    assert float(ours) == pytest.approx(total / 40, abs=1e-5)


def test_losses_have_gradients_and_reward_the_right_geometry() -> None:
    a = _unit(16, 4, 7).requires_grad_()
    loss_fn = build_loss("triplet_margin", margin=0.5)
    near = a.detach() + 0.01
    far = -a.detach()
    good = loss_fn(a, near, far)
    bad = loss_fn(a, far, near)
    assert float(good) == pytest.approx(0.0, abs=1e-3) and float(bad) > 1.0
    bad.backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()


def test_unknown_loss_names_choices() -> None:
    with pytest.raises(ValueError, match="choose one of cosine_embedding"):
        build_loss("hinge", margin=0.1)
