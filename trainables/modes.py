"""Training modes: how one step's anchors become the views to encode and the loss's inputs.

A mode (``TrialConfig.mode``; its row in ``dimensions.MODES``, its losses the rows of
``dimensions.LOSSES`` with that mode) is laid out by two functions.  ``sample`` turns the
step's B anchors into a ``StepBatch``: the training indices of every view, grouped by role
and encoded in one forward pass, with a label per view.  ``loss_inputs`` turns the (V, D)
embeddings of those views into the positional arguments of the mode's losses.  The trial
looks both up once; it never branches on a loss's name.

=========  =====  ==========================================  ===============================
mode       views  views, in this order                        loss inputs
=========  =====  ==========================================  ===============================
pair       2B     left, partner                               ``(x1, x2, target)``
triplet    3B     anchor, positive, negative                  ``(anchor, positive, negative)``
batch      2B     anchor, positive                            ``(z, labels)``
=========  =====  ==========================================  ===============================

Triplet mining (``trainables.miners``) replaces the triplet mode's ``loss_inputs`` by
triplets re-mined from all 3B embeddings (``mined_inputs``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor

from trainables.dimensions import MODE
from trainables.miners import Triplets
from trainables.sampling import ClassIndex, sample_pairs, sample_positives, sample_triplets


@dataclass(frozen=True)
class StepBatch:
    """One step's views.

    indices: (V,) training indices of the views to encode, grouped by role (see the table).
    labels: (V,) a label per view, equal exactly for views that are positives of each other
        by construction of ``positives``: the class for ``class``, the training index for
        ``instance`` (two views of one image share it).  Miners and batch losses read it.
    target: (B,) +1 (similar) / -1 (dissimilar) for pairs; None otherwise.
    """

    indices: Tensor
    labels: Tensor
    target: Tensor | None = None


Sampler = Callable[[Tensor, Tensor, ClassIndex, str, torch.Generator], StepBatch]
LossInputs = Callable[[Tensor, StepBatch], tuple[Tensor, ...]]


def _batch(groups: tuple[Tensor, ...], labels: Tensor, positives: str,
           target: Tensor | None = None) -> StepBatch:
    indices = torch.cat(groups)
    return StepBatch(indices, labels[indices] if positives == "class" else indices, target)


def sample_pair_batch(anchors: Tensor, labels: Tensor, index: ClassIndex, positives: str,
                      generator: torch.Generator) -> StepBatch:
    """Balanced pairs (``sampling.sample_pairs``): views ``[left; partner]``, (2B,)."""
    left, partner, target = sample_pairs(anchors, labels, index, positives, generator)
    return _batch((left, partner), labels, positives, target)


def sample_triplet_batch(anchors: Tensor, labels: Tensor, index: ClassIndex, positives: str,
                         generator: torch.Generator) -> StepBatch:
    """Triplets (``sampling.sample_triplets``): views ``[anchor; positive; negative]``, (3B,)."""
    return _batch(sample_triplets(anchors, labels, index, positives, generator), labels, positives)


def sample_view_batch(anchors: Tensor, labels: Tensor, index: ClassIndex, positives: str,
                      generator: torch.Generator) -> StepBatch:
    """Each anchor and one positive: views ``[anchor; positive]``, (2B,).  With ``instance``
    the positive is the anchor image itself (augmented independently: SimCLR's two views);
    with ``class`` another image of its class.  No negatives are drawn: a batch loss
    contrasts every view with all the others."""
    positive = sample_positives(anchors, labels, index, positives, generator)
    return _batch((anchors, positive), labels, positives)


def pair_inputs(z: Tensor, batch: StepBatch) -> tuple[Tensor, ...]:
    """(2B, D) -> ``(x1, x2, target)``, each x (B, D)."""
    x1, x2 = z.chunk(2)
    assert batch.target is not None  # the pair sampler always sets it
    return x1, x2, batch.target


def triplet_inputs(z: Tensor, batch: StepBatch) -> tuple[Tensor, ...]:
    """(3B, D) -> ``(anchor, positive, negative)``, each (B, D), as sampled."""
    return tuple(z.chunk(3))


def batch_inputs(z: Tensor, batch: StepBatch) -> tuple[Tensor, ...]:
    """(2B, D) -> ``(z, labels)``: every view against every other."""
    return z, batch.labels


def mined_inputs(
    miner: Callable[[Tensor, Tensor, float, float], Triplets], margin: float, p_norm: float,
    z: Tensor, batch: StepBatch,
) -> tuple[Tensor, ...]:
    """(V, D) -> ``(anchor, positive, negative)`` (T, D): the triplets ``miner`` picks among
    all of the step's embeddings, positives and negatives judged by ``batch.labels``."""
    a, p, n = miner(z, batch.labels, margin, p_norm)
    return z[a], z[p], z[n]


def mining_inputs(miner: Callable[[Tensor, Tensor, float, float], Triplets], margin: float,
                  p_norm: float) -> LossInputs:
    """``mined_inputs`` bound to a miner and its parameters."""
    return partial(mined_inputs, miner, margin, p_norm)


@dataclass(frozen=True)
class Layout:
    """How a mode lays out a step: its sampler and its losses' inputs."""

    mode: str
    sample: Sampler
    loss_inputs: LossInputs

    @property
    def views_per_anchor(self) -> int:
        return MODE[self.mode].views_per_anchor


# The registry, one layout per row of ``dimensions.MODES``.
LAYOUTS: dict[str, Layout] = {
    "pair": Layout("pair", sample_pair_batch, pair_inputs),
    "triplet": Layout("triplet", sample_triplet_batch, triplet_inputs),
    "batch": Layout("batch", sample_view_batch, batch_inputs),
}
