"""Preset studies: fixed grids run through the same machinery as a search.

``seed-grid`` reproduces the original study's comparison: the full factorial of
augmentation (none / rotation / simclr) x mode (pair with cosine-embedding loss, triplet with
triplet-margin loss), at fixed settings, each cell repeated over the same seeds (so cells
are compared seed by seed).
"""

from __future__ import annotations

from typing import Any

from study.space import trial_seed
from trainables.config import AUGMENTATION_CHOICES

# The original study's losses, with torch's default margins (cosine 0, triplet 1.0).
ORIGINAL_LOSS = {"pair": ("cosine_embedding", 0.0), "triplet": ("triplet_margin", 1.0)}
# Everything else is fixed; --set overrides any of it.
SEED_GRID_FIXED: dict[str, Any] = {
    "positives": "class", "mining": "random", "embedding_dim": 64, "encoder": "small_cnn",
    "lr": 1e-3, "batch_size": 128, "aug_strength": 1.0,
}
PRESETS = ("seed-grid",)


def seed_grid(n_seeds: int, study_seed: int, budget: dict[str, Any],
              pins: dict[str, Any]) -> list[dict[str, Any]]:
    """The grid's trial configs: augmentation x mode x seed, ``len = 3 * 2 * n_seeds``.

    Seed index i gets the same torch seed in every cell.
    """
    configs = []
    for augmentation in AUGMENTATION_CHOICES:
        for mode, (loss, margin) in ORIGINAL_LOSS.items():
            for index in range(n_seeds):
                configs.append({
                    **SEED_GRID_FIXED, **budget, "augmentation": augmentation, "mode": mode,
                    "loss": loss, "margin": margin, **pins,
                    "seed": trial_seed(study_seed, index),
                })
    return configs
