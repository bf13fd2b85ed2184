"""The raw-pixel floor: what an embedding must beat.

The flattened, normalised pixels, judged under the trials' own protocol (the same stratified
training sample for the probe and the kNN references, the same validation and test
samples, cosine similarity): a trained encoder that scores below them has learnt nothing a
linear probe or a neighbour search could not read off the images themselves.
"""

from __future__ import annotations

from dataclasses import asdict

import torch
from torch import Tensor

from trainables.config import TrialConfig
from trainables.data import Dataset
from trainables.evaluate import scores
from trainables.metrics import TEST, VAL
from trainables.probe import fit_probe
from trainables.sampling import EVALUATION_SEED, stratified_indices


def pixels(data: Dataset, images: Tensor) -> Tensor:
    """(N, C*H*W) float32 of uint8 images, normalised per channel as the encoder's input."""
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    return ((images.float() / 255 - mean) / std).flatten(1)


def raw_pixel_floor(data: Dataset, budget: TrialConfig) -> dict[str, float]:
    """``val_`` and ``test_`` scores of the raw pixels, sampled as a trial with ``budget``'s
    ``eval_train``, ``eval_val``, ``eval_test`` and ``knn_k`` samples them."""
    train = stratified_indices(data.train_y, budget.eval_train, EVALUATION_SEED)
    ref, ref_y = pixels(data, data.train_x[train]), data.train_y[train]
    probe = fit_probe(ref, ref_y, data.num_classes)  # one probe for both splits
    floor = {}
    for prefix, x, y, size in ((VAL, data.val_x, data.val_y, budget.eval_val),
                               (TEST, data.test_x, data.test_y, budget.eval_test)):
        rows = stratified_indices(y, size, EVALUATION_SEED)
        judged = scores(ref, ref_y, pixels(data, x[rows]), y[rows], data.num_classes,
                        budget.knn_k, probe)
        floor.update({f"{prefix}{k}": v for k, v in asdict(judged).items()})
    return floor
