"""Pairs and triplets: positives share the class or the instance, negatives differ."""

from __future__ import annotations

import torch

from trainables.sampling import ClassIndex, sample_pairs, sample_triplets


def _labels() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 7, (500,), generator=g)


def test_class_triplets_share_and_differ() -> None:
    labels = _labels()
    index = ClassIndex.build(labels, 7)
    g = torch.Generator().manual_seed(1)
    anchors = torch.randperm(500, generator=g)[:256]
    a, p, n = sample_triplets(anchors, labels, index, "class", g)
    assert torch.equal(a, anchors)
    assert torch.equal(labels[p], labels[a])
    assert (labels[n] != labels[a]).all()
    # negatives cover every other class (uniform over 6 others, 256 draws)
    assert len(torch.unique(labels[n])) == 7


def test_instance_triplets() -> None:
    labels = _labels()
    index = ClassIndex.build(labels, 7)
    g = torch.Generator().manual_seed(2)
    anchors = torch.arange(0, 500, 2)
    a, p, n = sample_triplets(anchors, labels, index, "instance", g)
    assert torch.equal(p, a) and (n != a).all()
    assert n.min() >= 0 and n.max() < 500


def test_pairs_are_balanced_and_correct() -> None:
    labels = _labels()
    index = ClassIndex.build(labels, 7)
    g = torch.Generator().manual_seed(3)
    anchors = torch.randperm(500, generator=g)[:101]
    left, right, target = sample_pairs(anchors, labels, index, "class", g)
    similar = target > 0
    assert int(similar.sum()) == 51 and int((~similar).sum()) == 50
    assert torch.equal(labels[left][similar], labels[right][similar])
    assert (labels[left][~similar] != labels[right][~similar]).all()


def test_missing_classes_are_never_drawn() -> None:
    labels = torch.tensor([0, 0, 2, 2, 2, 5, 5])  # classes 1, 3, 4 empty
    index = ClassIndex.build(labels, 6)
    g = torch.Generator().manual_seed(4)
    anchors = torch.arange(7).repeat(30)
    _, p, n = sample_triplets(anchors, labels, index, "class", g)
    assert torch.equal(labels[p], labels[anchors])
    assert (labels[n] != labels[anchors]).all()


def test_same_seed_same_samples() -> None:
    labels = _labels()
    index = ClassIndex.build(labels, 7)
    runs = [
        sample_triplets(torch.arange(64), labels, index, "class", torch.Generator().manual_seed(9))
        for _ in range(2)
    ]
    assert all(torch.equal(x, y) for x, y in zip(*runs, strict=True))


def test_a_class_sorted_split_gives_a_balanced_stratified_sample() -> None:
    from trainables.sampling import stratified_indices

    # like the offline CIFAR-10 test split: class blocks, unequal sizes
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate([1000, 500, 2000, 1500, 5])])
    sample = stratified_indices(labels, 500, seed=3)
    assert len(sample) == 500 == len(torch.unique(sample))
    counts = torch.bincount(labels[sample], minlength=5).tolist()
    assert counts == [100, 50, 199, 150, 1]  # largest remainders of 5,005ths; the tiny class shows
    assert torch.equal(sample, stratified_indices(labels, 500, seed=3))  # fixed
    assert not torch.equal(sample, stratified_indices(labels, 500, seed=4))
    assert torch.equal(stratified_indices(labels, 0, seed=3), torch.arange(len(labels)))
    # the first N of the same split would be one class only
    assert torch.bincount(labels[:500], minlength=5).tolist() == [500, 0, 0, 0, 0]
