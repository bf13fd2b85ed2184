"""Each mode's views and loss inputs: the layout its losses and miners expect."""

from __future__ import annotations

import pytest
import torch

from trainables.dimensions import LOSSES, MODE
from trainables.miners import batch_hard
from trainables.modes import LAYOUTS, mining_inputs
from trainables.sampling import ClassIndex, sample_pairs, sample_triplets


def _setup(seed: int = 0) -> tuple[torch.Tensor, ClassIndex, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 5, (200,), generator=g)
    anchors = torch.randperm(200, generator=g)[:16]
    return labels, ClassIndex.build(labels, 5), anchors


def test_every_loss_has_its_mode() -> None:
    assert set(LAYOUTS) == set(MODE)
    assert {row.mode for row in LOSSES} == set(LAYOUTS)


@pytest.mark.parametrize("positives", ["class", "instance"])
def test_batch_mode_views_are_anchors_and_positives(positives: str) -> None:
    labels, index, anchors = _setup()
    batch = LAYOUTS["batch"].sample(anchors, labels, index, positives, torch.Generator().manual_seed(1))
    assert batch.target is None and len(batch.indices) == 2 * len(anchors)
    first, second = batch.indices.chunk(2)
    assert torch.equal(first, anchors)
    assert torch.equal(labels[second], labels[anchors])  # a positive shares the class
    if positives == "instance":
        assert torch.equal(second, anchors)  # the same image, augmented independently later
        assert torch.equal(batch.labels, batch.indices)
    else:
        assert torch.equal(batch.labels, labels[batch.indices])
    z = torch.randn(len(batch.indices), 4)
    inputs = LAYOUTS["batch"].loss_inputs(z, batch)
    assert inputs[0] is z and torch.equal(inputs[1], batch.labels)


@pytest.mark.parametrize("positives", ["class", "instance"])
def test_pair_and_triplet_modes_keep_the_sampling_streams(positives: str) -> None:
    labels, index, anchors = _setup(2)
    pair = LAYOUTS["pair"].sample(anchors, labels, index, positives, torch.Generator().manual_seed(3))
    left, partner, target = sample_pairs(anchors, labels, index, positives,
                                         torch.Generator().manual_seed(3))
    assert torch.equal(pair.indices, torch.cat([left, partner]))
    assert torch.equal(pair.target, target)
    triplet = LAYOUTS["triplet"].sample(anchors, labels, index, positives,
                                      torch.Generator().manual_seed(4))
    groups = sample_triplets(anchors, labels, index, positives, torch.Generator().manual_seed(4))
    assert torch.equal(triplet.indices, torch.cat(groups))

    z = torch.randn(3 * len(anchors), 4)
    a, p, n = LAYOUTS["triplet"].loss_inputs(z, triplet)
    assert torch.equal(torch.cat([a, p, n]), z)
    x1, x2, t = LAYOUTS["pair"].loss_inputs(z[: 2 * len(anchors)], pair)
    assert x1.shape == x2.shape == (len(anchors), 4) and torch.equal(t, target)


def test_mining_inputs_are_the_miners_triplets() -> None:
    labels, index, anchors = _setup(5)
    batch = LAYOUTS["triplet"].sample(anchors, labels, index, "class", torch.Generator().manual_seed(6))
    z = torch.nn.functional.normalize(torch.randn(len(batch.indices), 4), dim=1)
    a, p, n = batch_hard(z, batch.labels, 0.2)
    mined = mining_inputs(batch_hard, 0.2, 2.0)(z, batch)
    assert all(torch.equal(x, y) for x, y in zip(mined, (z[a], z[p], z[n]), strict=True))


def test_views_per_anchor() -> None:
    assert {name: mode.views_per_anchor for name, mode in LAYOUTS.items()} == {
        "pair": 2, "triplet": 3, "batch": 2}
