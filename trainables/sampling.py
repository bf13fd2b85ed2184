"""Pair and triplet sampling as batched index arithmetic (no per-sample Python), and the
stratified samples that splits and evaluation take.

``positives='class'``: a positive is another image of the anchor's class, a negative an
image of another class.  ``positives='instance'``: a positive is the anchor image itself
(the caller augments it into a second, independent view), a negative any other image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# Evaluation samples are drawn with this seed, not a trial's: every trial of a study is
# judged on the same images.
EVALUATION_SEED = 1234


@dataclass(frozen=True)
class ClassIndex:
    """Training indices grouped by class, for drawing same- and other-class images.

    ``order``: (N,) indices sorted by label; class ``k`` occupies
    ``order[start[k] : start[k] + count[k]]``.
    """

    order: Tensor
    start: Tensor
    count: Tensor

    @classmethod
    def build(cls, labels: Tensor, num_classes: int) -> ClassIndex:
        order = torch.argsort(labels, stable=True)
        count = torch.bincount(labels, minlength=num_classes)
        start = torch.cumsum(count, 0) - count
        return cls(order, start, count)

    def draw(self, classes: Tensor, generator: torch.Generator) -> Tensor:
        """One random training index of each requested class: (B,) -> (B,)."""
        u = torch.rand(classes.shape, generator=generator, device=classes.device)
        offset = (u * self.count[classes]).long().clamp_max(self.count[classes] - 1)
        return self.order[self.start[classes] + offset]

    def other_class(self, classes: Tensor, generator: torch.Generator) -> Tensor:
        """A uniformly random class among the non-empty classes other than each given one."""
        present = torch.nonzero(self.count > 0).squeeze(1)
        k = len(present)
        position = torch.searchsorted(present, classes)
        shift = torch.randint(1, k, classes.shape, generator=generator, device=classes.device)
        return present[(position + shift) % k]


def _other_image(anchors: Tensor, n: int, generator: torch.Generator) -> Tensor:
    shift = torch.randint(1, n, anchors.shape, generator=generator, device=anchors.device)
    return (anchors + shift) % n


def sample_positives(
    anchors: Tensor, labels: Tensor, index: ClassIndex, positives: str, generator: torch.Generator
) -> Tensor:
    """One positive index per anchor, (B,): the anchor itself for ``instance`` (its second
    view), a random image of the anchor's class for ``class`` (possibly the anchor itself).

    ``labels`` are the training labels (N,); ``anchors`` are indices into them.
    """
    if positives == "instance":
        return anchors
    return index.draw(labels[anchors], generator)


def sample_triplets(
    anchors: Tensor, labels: Tensor, index: ClassIndex, positives: str, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Anchor, positive and negative indices, each (B,).

    ``labels`` are the training labels (N,); ``anchors`` are indices into them.
    """
    positive = sample_positives(anchors, labels, index, positives, generator)
    if positives == "instance":
        return anchors, positive, _other_image(anchors, len(labels), generator)
    negative = index.draw(index.other_class(labels[anchors], generator), generator)
    return anchors, positive, negative


def sample_pairs(
    anchors: Tensor, labels: Tensor, index: ClassIndex, positives: str, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Left and right indices and a target (B,): +1 similar, -1 dissimilar.

    Balanced: the first half of the batch (rounded up) gets similar partners, the rest
    dissimilar ones; positions are random since the anchors are.
    """
    _, positive, negative = sample_triplets(anchors, labels, index, positives, generator)
    b = len(anchors)
    similar = torch.arange(b, device=anchors.device) < (b + 1) // 2
    partner = torch.where(similar, positive, negative)
    target = similar.float() * 2 - 1
    return anchors, partner, target


def stratified_indices(labels: Tensor, size: int, seed: int) -> Tensor:
    """``size`` indices into ``labels`` (N,) with every class in its share of the whole, as
    a sorted (size,) tensor; all N indices when ``size`` is 0 or at least N.

    Class k gets ``size * n_k / N`` places, rounded by largest remainder (at least one for
    every class when ``size`` allows), drawn uniformly within the class by a generator
    seeded with ``seed``: the same labels, size and seed give the same sample, so every
    trial of a study is judged on the same images.  Data that arrive sorted by class (the
    offline CIFAR-10 test split) give a balanced sample, not the first classes.
    """
    n = len(labels)
    if size <= 0 or size >= n:
        return torch.arange(n)
    labels = labels.cpu()
    classes, counts = torch.unique(labels, return_counts=True)
    share = counts.double() * size / n
    places = share.floor().long()
    if size >= len(classes):  # a class too small for its share still shows once
        places = places.clamp_min(1)
    remainder = size - int(places.sum())
    if remainder > 0:
        order = torch.argsort(share - share.floor(), descending=True, stable=True)
        places[order[:remainder]] += 1
    while int(places.sum()) > size:  # the minimum of 1 overshot: take from the largest
        places[torch.argmax(places)] -= 1
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for k, take in zip(classes.tolist(), places.tolist(), strict=True):
        members = torch.nonzero(labels == k).squeeze(1)
        chosen.append(members[torch.randperm(len(members), generator=g)[:take]])
    return torch.cat(chosen).sort().values
