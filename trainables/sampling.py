"""Pair and triplet sampling as batched index arithmetic (no per-sample Python).

``positives='class'``: a positive is another image of the anchor's class, a negative an
image of another class.  ``positives='instance'``: a positive is the anchor image itself
(the caller augments it into a second, independent view), a negative any other image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


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
