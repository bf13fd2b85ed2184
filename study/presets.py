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
              pins: dict[str, Any]) -> dict[str, Any]:
    """Tune's param_space of the grid: augmentation x mode x seed (3 * 2 * n_seeds trials
    with ``num_samples=1``), the loss and margin following the mode.

    Seed index i gets the same torch seed in every cell.  Pins replace grid values.
    """
    from ray import tune

    grid = {
        "augmentation": tune.grid_search(list(AUGMENTATION_CHOICES)),
        "mode": tune.grid_search(list(ORIGINAL_LOSS)),
        "seed": tune.grid_search([trial_seed(study_seed, i) for i in range(n_seeds)]),
        "loss": tune.sample_from(_original_loss),
        "margin": tune.sample_from(_original_margin),
    }
    return {**SEED_GRID_FIXED, **budget, **grid, **pins}


def _original_loss(spec: Any) -> str:
    return ORIGINAL_LOSS[spec.config["mode"]][0]


def _original_margin(spec: Any) -> float:
    return ORIGINAL_LOSS[spec.config["mode"]][1]
