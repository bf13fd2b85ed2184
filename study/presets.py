"""Presets: what Tune runs.  Each preset turns the study's spec and search space into one
``Plan`` record: param space, searcher, scheduler, trials and the dimensions it varies.

``search`` (the default): Optuna's TPE proposes each trial from the define-by-run space,
ASHA stops weak trials after each epoch.
``seed-grid``: the original study's comparison, the full factorial of augmentation (none /
rotation / simclr) x mode (pair with cosine-embedding loss, triplet with triplet-margin
loss) at fixed settings, each cell repeated over the same seeds (so cells are compared seed
by seed), every trial trained to the end.

Ray is imported inside the functions: reading a preset's design (the analysis does) never
starts it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from study.schema import OBJECTIVE, OBJECTIVE_MODE, TIME_ATTR
from study.secrets import redact
from study.space import SearchSpace, trial_seed
from trainables.config import DIMENSIONS, SEARCHED
from trainables.dimensions import AUGMENTATION

if TYPE_CHECKING:
    from study.spec import StudySpec

# The seed grid's design: the original study's losses, with torch's default margins.
ORIGINAL_LOSS = {"pair": ("cosine_embedding", 0.0), "triplet": ("triplet_margin", 1.0)}
GRID_AUGMENTATIONS = tuple(sorted(DIMENSIONS["augmentation"].choices,
                                key=lambda name: AUGMENTATION[name].strength))  # weakest first
GRID_MODES = tuple(ORIGINAL_LOSS)
GRID_CELLS = len(GRID_AUGMENTATIONS) * len(GRID_MODES)
# Everything else is fixed; --set overrides any of it.
SEED_GRID_FIXED: dict[str, Any] = {
    "positives": "class", "mining": "random", "embedding_dim": 64, "encoder": "small_cnn",
    "lr": 1e-3, "batch_size": 128, "aug_strength": 1.0,
}


@dataclass(frozen=True)
class Plan:
    """What one study hands to Tune.

    num_samples: Tune's ``num_samples`` (a grid runs once through its ``grid_search``).
    trials: how many trials the study runs in all (a resumed study counts to this).
    searched: the dimensions the study varies.
    params: the preset's own parent-run params (``study.schema.PARENT_PARAMS``).
    """

    preset: str
    param_space: dict[str, Any]
    searcher: Any
    scheduler: Any
    num_samples: int
    trials: int
    searched: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)


def search(spec: StudySpec, space: SearchSpace) -> Plan:
    """Optuna TPE over the space (seeded), ASHA on the objective after every epoch."""
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter

    from study.searcher import ResumableOptunaSearch

    storage, name = optuna_storage(spec)
    searcher: Any = ResumableOptunaSearch(space=space, metric=OBJECTIVE, mode=OBJECTIVE_MODE,
                                          seed=spec.seed, storage=storage, study_name=name)
    if spec.max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=spec.max_concurrent)
    scheduler = ASHAScheduler(time_attr=TIME_ATTR, max_t=spec.max_epochs,
                              grace_period=spec.grace_period,
                              reduction_factor=spec.reduction_factor)
    return Plan("search", {}, searcher, scheduler, spec.num_samples, spec.num_samples,
                tuple(k for k in SEARCHED if k not in spec.pins),
                {"scheduler": "ASHA", "grace_period": spec.grace_period,
                 "reduction_factor": spec.reduction_factor,
                 "optuna_storage": redact(spec.optuna_storage), "optuna_study": name})


def optuna_storage(spec: StudySpec) -> tuple[Any, str]:
    """The Optuna storage the search keeps its study in (``--optuna-storage``; an SQLite
    file is first opened under a lock, as the MLflow store is) and a study name unique to
    this study: ``optuna-dashboard URL`` then shows the search as it runs.  A resumed study
    keeps both: Ray's saved searcher holds them."""
    import optuna

    from study.store import first_open, sqlite_path

    path = sqlite_path(spec.optuna_storage)
    if path is not None:
        with first_open(path):
            storage = optuna.storages.RDBStorage(spec.optuna_storage)
    else:
        storage = optuna.storages.RDBStorage(spec.optuna_storage)
    return storage, f"{spec.experiment_name}-{time.strftime('%Y%m%d-%H%M%S')}"


def seed_grid(spec: StudySpec, space: SearchSpace) -> Plan:
    """The grid as Tune's ``grid_search``: augmentation x mode x seed, the loss and margin
    following the mode; seed index i gets the same torch seed in every cell.  Pins replace
    grid values; nothing is stopped early."""
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler
    from ray.tune.search import BasicVariantGenerator

    grid = {
        "augmentation": tune.grid_search(list(GRID_AUGMENTATIONS)),
        "mode": tune.grid_search(list(GRID_MODES)),
        "seed": tune.grid_search([trial_seed(spec.seed, i) for i in range(spec.grid_seeds)]),
        "loss": tune.sample_from(_original_loss),
        "margin": tune.sample_from(_original_margin),
    }
    trials = GRID_CELLS * spec.grid_seeds
    return Plan("seed-grid", {**SEED_GRID_FIXED, **space.fixed, **grid, **spec.pins},
                BasicVariantGenerator(max_concurrent=spec.max_concurrent or 0), FIFOScheduler(),
                1, trials, ("augmentation", "mode"),
                {"scheduler": "FIFO", "grid_seeds": spec.grid_seeds})


def _original_loss(spec: Any) -> str:
    return ORIGINAL_LOSS[spec.config["mode"]][0]


def _original_margin(spec: Any) -> float:
    return ORIGINAL_LOSS[spec.config["mode"]][1]


PRESETS: dict[str, Callable[[StudySpec, SearchSpace], Plan]] = {
    "search": search,
    "seed-grid": seed_grid,
}
