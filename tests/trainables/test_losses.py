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


# ---- batch losses: NT-Xent (SimCLR) and SupCon (Khosla et al. 2020) ----------------------

def _cos(z: torch.Tensor, i: int, j: int) -> float:
    a, b = z[i].tolist(), z[j].tolist()
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def _ntxent_brute(z: torch.Tensor, tau: float) -> float:
    """SimCLR's loss, literally: views k and k + B show image k; mean over the 2B views of
    -log(exp(s(i, j(i))/tau) / sum_{k != i} exp(s(i, k)/tau))."""
    n = len(z)
    b = n // 2
    total = 0.0
    for i in range(n):
        j = (i + b) % n
        denominator = sum(math.exp(_cos(z, i, k) / tau) for k in range(n) if k != i)
        total += -math.log(math.exp(_cos(z, i, j) / tau) / denominator)
    return total / n


def _supcon_brute(z: torch.Tensor, labels: list[int], tau: float) -> float:
    """Khosla et al.'s L_out, literally: mean over anchors with a positive of
    -1/|P(i)| sum_{p in P(i)} log(exp(s_ip/tau) / sum_{a != i} exp(s_ia/tau))."""
    n = len(z)
    losses = []
    for i in range(n):
        positives = [p for p in range(n) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        denominator = sum(math.exp(_cos(z, i, a) / tau) for a in range(n) if a != i)
        losses.append(-sum(math.log(math.exp(_cos(z, i, p) / tau) / denominator)
                           for p in positives) / len(positives))
    return sum(losses) / len(losses)


def _two_views(b: int, d: int, seed: int, noise: float = 0.5) -> torch.Tensor:
    """(2B, D) unit vectors: rows k and k + B are noisy copies of one random vector."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(b, d, generator=g, dtype=torch.float64)
    views = base.repeat(2, 1) + noise * torch.randn(2 * b, d, generator=g, dtype=torch.float64)
    return F.normalize(views, dim=1)


@pytest.mark.parametrize("tau", [0.05, 0.1, 0.5, 1.0])
def test_ntxent_matches_brute_force(tau: float) -> None:
    z = _two_views(6, 5, seed=10)
    ids = torch.arange(6).repeat(2)  # instance labels: view k and k + B share image k
    ours = build_loss("ntxent", temperature=tau)(z, ids)
    assert float(ours) == pytest.approx(_ntxent_brute(z, tau), rel=1e-9)


@pytest.mark.parametrize("tau", [0.05, 0.1, 0.5, 1.0])
def test_supcon_matches_brute_force(tau: float) -> None:
    z = _unit(14, 4, 11)
    labels = [0, 1, 2, 0, 1, 2, 0, 3, 1, 1, 2, 4, 0, 5]  # classes 3, 4, 5: no positive
    ours = build_loss("supcon", temperature=tau)(z, torch.tensor(labels))
    assert float(ours) == pytest.approx(_supcon_brute(z, labels, tau), rel=1e-9)


def test_batch_losses_normalise_their_input() -> None:
    z = _two_views(5, 4, seed=12)
    ids = torch.arange(5).repeat(2)
    scale = torch.linspace(0.5, 3.0, 10, dtype=torch.float64)[:, None]
    for name in ("ntxent", "supcon"):
        loss_fn = build_loss(name, temperature=0.2)
        assert torch.allclose(loss_fn(z * scale, ids), loss_fn(z, ids), atol=1e-12)


@pytest.mark.parametrize("name", ["ntxent", "supcon"])
def test_lower_temperature_sharpens(name: str) -> None:
    # positives closest: a sharper softmax puts more mass on them, the loss falls towards 0;
    # positives farthest (views swapped against the labels' grouping): the loss grows.
    z = _two_views(8, 6, seed=13, noise=0.2)
    ids = torch.arange(8).repeat(2)
    wrong = torch.cat([torch.arange(8), torch.arange(8).roll(1)])
    taus = [1.0, 0.5, 0.2, 0.1, 0.05]
    right = [float(build_loss(name, temperature=t)(z, ids)) for t in taus]
    assert right == sorted(right, reverse=True) and right[-1] < 0.05
    # brute force agrees at each temperature (NT-Xent = SupCon when each view has one positive)
    assert right == pytest.approx([_ntxent_brute(z, t) for t in taus], rel=1e-9)
    swapped = [float(build_loss(name, temperature=t)(z, wrong)) for t in taus]
    assert swapped == sorted(swapped) and swapped[-1] > 5.0


def _pml():
    return pytest.importorskip("pytorch_metric_learning.losses")


@pytest.mark.parametrize("tau", [0.07, 0.1, 0.5])
def test_ntxent_matches_pytorch_metric_learning(tau: float) -> None:
    pml = _pml()
    z = _two_views(16, 8, seed=14)
    ids = torch.arange(16).repeat(2)
    ours = build_loss("ntxent", temperature=tau)(z, ids)
    assert torch.allclose(ours, pml.NTXentLoss(temperature=tau)(z, ids), atol=1e-9)
    # with class labels (several positives per view) the pair-wise definition still agrees
    classes = torch.randint(0, 4, (32,), generator=torch.Generator().manual_seed(0))
    ours = build_loss("ntxent", temperature=tau)(z, classes)
    assert torch.allclose(ours, pml.NTXentLoss(temperature=tau)(z, classes), atol=1e-9)


@pytest.mark.parametrize("tau", [0.07, 0.1, 0.5])
def test_supcon_matches_pytorch_metric_learning(tau: float) -> None:
    pml = _pml()
    z = _unit(40, 8, 15)
    labels = torch.randint(0, 6, (40,), generator=torch.Generator().manual_seed(1))
    labels[-1] = 9  # one view without a positive: left out of the mean by both
    ours = build_loss("supcon", temperature=tau)(z, labels)
    assert torch.allclose(ours, pml.SupConLoss(temperature=tau)(z, labels), atol=1e-9)


@pytest.mark.parametrize("name", ["ntxent", "supcon"])
def test_batch_losses_are_finite_in_degenerate_batches(name: str) -> None:
    loss_fn = build_loss(name, temperature=0.1)
    for labels in (torch.zeros(6, dtype=torch.long), torch.arange(6), torch.zeros(1, dtype=torch.long)):
        z = _unit(len(labels), 4, 16).requires_grad_()
        loss = loss_fn(z, labels)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    # no positive pair at all: nothing to learn, a zero loss
    assert float(loss_fn(_unit(6, 4, 17), torch.arange(6))) == 0.0


def test_every_loss_row_has_a_class_built_with_its_hyperparameters() -> None:
    from trainables.dimensions import LOSS
    from trainables.losses import LOSS_CLASSES

    assert set(LOSS_CLASSES) == set(LOSS)
    values = {"margin": 0.3, "p_norm": 1.0, "temperature": 0.2}
    for name, spec in LOSS.items():
        loss_fn = build_loss(name, **values)  # each takes what it declares, ignores the rest
        for key in spec.hyperparameters:
            attribute = "p" if key == "p_norm" else key
            assert getattr(loss_fn, attribute) == values[key]
    with pytest.raises(TypeError, match="unknown loss hyperparameter.*temprature"):
        build_loss("ntxent", temprature=0.1)


def test_no_mined_triplet_gives_a_zero_loss_not_nan() -> None:
    from trainables.miners import semi_hard
    from trainables.modes import mined_inputs

    z = torch.nn.functional.normalize(torch.randn(6, 4), dim=1).requires_grad_()
    labels = torch.arange(6)  # no two views share a label: no positive pair, no triplet
    loss = build_loss("triplet_margin", margin=0.2)(*mined_inputs(semi_hard, 0.2, 2.0, z,
                                                                  _Batch(labels)))
    assert float(loss) == 0.0
    loss.backward()
    assert torch.equal(z.grad, torch.zeros_like(z))


class _Batch:
    def __init__(self, labels: torch.Tensor) -> None:
        self.labels = labels
