"""The facts of a ``--preset seed-grid`` study: numbers and structured results, no sentences.

A seed grid (``study.presets``) runs augmentation (none / rotation / simclr) x mode (pair
with cosine-embedding loss, triplet with triplet-margin loss), every cell at the same
settings and over the same seeds, every trial trained to the end (FIFO). Seed index i has
the same torch seed in every cell, so cells are compared seed by seed (``paired_test``).

The grid compares TEST figures (``ACCURACY_METRICS``): validation scores exist to steer a
search, and a grid selects nothing, so each trial's final test scores are honest figures.
Each experiment is judged against its raw-pixel floor (``Study.floor``), carried in the
frame as ``floor_<metric>`` columns.

- ``grid_frame``: the scored trials of one or several grid studies, with seed index and floor.
- ``cell_stats``: mean, t interval, n and the floor check of a metric per cell.
- ``comparisons``: the family of paired comparisons within one experiment (mode per
  augmentation, augmentation pairs per mode), Holm-corrected as one family;
  ``comparison_rows`` turns its table into typed ``Comparison`` records.
- ``representatives``: the median-probe trial of each cell (for the t-SNE grid).
- ``budget``: epochs, training subset, images seen per mode and seeds of each experiment.

A difference is *clear* when its Holm-adjusted p-value (within its family) is below ``ALPHA``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from analysis.load import Study
from analysis.stats import ALPHA, Paired, holm, paired_test, t_ci
from study.presets import GRID_AUGMENTATIONS, GRID_MODES
from study.schema import FLOOR, TEST
from study.space import trial_seed

GRID_PRESET = "seed-grid"
ACCURACY_METRICS = tuple(f"{TEST}{name}" for name in
                         ("probe_accuracy", "precision_at_1", "map_at_r"))
REPRESENTATIVE_BY = ACCURACY_METRICS[0]
# Below these a grid's budget is small: encoders may not yet show what trained ones would.
SMALL_EPOCHS = 5
SMALL_TRAIN_SUBSET = 10_000
FEW_SEEDS = 3


def is_seed_grid(study: Study) -> bool:
    """True when a parent run of the study says ``preset=seed-grid``."""
    parents = study.parents
    return "preset" in parents and bool((parents["preset"] == GRID_PRESET).any())


def floor_column(metric: str) -> str:
    """The frame column holding ``metric``'s raw-pixel floor (the parent run's metric name)."""
    return f"{FLOOR}{metric}"


def grid_frame(studies: list[Study]) -> pd.DataFrame:
    """The scored trials of ``studies`` (one row each), with ``dataset``, ``seed_index``
    (the trial's position among its study's grid seeds, i: ``trial_seed(study_seed, i)``;
    by rank of the seed when the parent run does not say), ``pair_key`` (parent run and
    seed: the unit matched across cells) and ``floor_<metric>`` for each accuracy metric
    (the study's raw-pixel floor; NaN when the parent run logged none)."""
    frames = []
    for study in studies:
        trials = study.scored.copy()
        trials["dataset"] = dataset_of(study)
        index = pd.Series(pd.NA, index=trials.index, dtype="Int64")
        for parent in study.parents.itertuples():
            rows = trials["parent_run_id"] == parent.run_id
            known = {}
            if pd.notna(parent.study_seed) and pd.notna(getattr(parent, "grid_seeds", np.nan)):
                known = {trial_seed(int(parent.study_seed), i): i
                         for i in range(int(parent.grid_seeds))}
            ranks = {s: i for i, s in enumerate(sorted(trials.loc[rows, "seed"].dropna().unique()))}
            index[rows] = [known.get(int(s), ranks.get(s)) if pd.notna(s) else pd.NA
                           for s in trials.loc[rows, "seed"]]
        trials["seed_index"] = index
        trials["pair_key"] = trials["parent_run_id"].astype(str) + ":" + trials["seed"].astype(str)
        floor = study.floor
        for metric in ACCURACY_METRICS:
            trials[floor_column(metric)] = floor.get(metric, np.nan)
        frames.append(trials)
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def dataset_of(study: Study) -> str:
    """The dataset(s) the study's parent runs name, or "unknown"."""
    values = study.parents["dataset"].dropna().unique() if "dataset" in study.parents else []
    return ", ".join(str(v) for v in values) or "unknown"


def cell_values(frame: pd.DataFrame, experiment: str, augmentation: str, mode: str,
                metric: str) -> pd.Series:
    """The metric of one cell's trials, indexed by ``pair_key`` (NaN dropped)."""
    rows = frame[(frame["experiment"] == experiment) & (frame["augmentation"] == augmentation)
                 & (frame["mode"] == mode)]
    if metric not in rows:
        return pd.Series(dtype=float)
    rows = rows.drop_duplicates("pair_key", keep="last")  # one value per seed
    return rows.set_index("pair_key")[metric].dropna()


def floor_of(frame: pd.DataFrame, experiment: str, metric: str) -> float:
    """The raw-pixel floor of ``metric`` in ``experiment`` (NaN when unknown)."""
    column = floor_column(metric)
    rows = frame.loc[frame["experiment"] == experiment]
    if column not in rows or rows[column].isna().all():
        return math.nan
    return float(rows[column].dropna().iloc[0])


CELL_COLUMNS = ["experiment", "dataset", "augmentation", "mode", "n", "mean", "sd", "ci_low",
                "ci_high", "floor", "beats_floor", "n_not_above_floor"]


def cell_stats(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per (experiment, augmentation, mode), grid order: ``CELL_COLUMNS``.

    ``ci_*``: 95 % t interval of the mean over seeds; ``floor``: the experiment's raw-pixel
    floor of ``metric``; ``beats_floor``: the cell's mean is above it (None when the floor
    or the mean is unknown); ``n_not_above_floor``: the cell's trials that do not beat it.
    """
    rows = []
    for experiment in pd.unique(frame["experiment"]) if len(frame) else []:
        dataset = frame.loc[frame["experiment"] == experiment, "dataset"].iloc[0]
        floor = floor_of(frame, experiment, metric)
        for aug in GRID_AUGMENTATIONS:
            for mode in GRID_MODES:
                x = cell_values(frame, experiment, aug, mode, metric).to_numpy(float)
                low, high = t_ci(x)
                mean = float(x.mean()) if x.size else math.nan
                known = math.isfinite(floor) and math.isfinite(mean)
                rows.append({"experiment": experiment, "dataset": dataset, "augmentation": aug,
                             "mode": mode, "n": int(x.size), "mean": mean,
                             "sd": float(x.std(ddof=1)) if x.size > 1 else math.nan,
                             "ci_low": low, "ci_high": high, "floor": floor,
                             "beats_floor": bool(mean > floor) if known else None,
                             "n_not_above_floor": int((x <= floor).sum())
                             if math.isfinite(floor) else 0})
    return pd.DataFrame(rows, columns=CELL_COLUMNS)


def family() -> list[tuple[str, str, tuple[str, str], tuple[str, str]]]:
    """The comparisons within one experiment: ``(kind, within, a, b)`` with a, b cells.

    triplet - pair for each augmentation; for each mode, each stronger augmentation minus
    each weaker one (rotation - none, simclr - none, simclr - rotation).
    """
    out = [("mode", aug, (aug, GRID_MODES[1]), (aug, GRID_MODES[0])) for aug in GRID_AUGMENTATIONS]
    for mode in GRID_MODES:
        out += [("augmentation", mode, (strong, mode), (weak, mode))
                for weak, strong in combinations(GRID_AUGMENTATIONS, 2)]
    return out


def paired_cells(frame: pd.DataFrame, experiment: str, metric: str, a: tuple[str, str],
                 b: tuple[str, str]) -> Paired:
    """Cell ``a`` = (augmentation, mode) minus cell ``b``, matched by seed."""
    xa = cell_values(frame, experiment, *a, metric)
    xb = cell_values(frame, experiment, *b, metric)
    keys = [k for k in xa.index if k in xb.index]
    return paired_test(xa[keys].to_numpy(float), xb[keys].to_numpy(float))


COMPARISON_COLUMNS = ["experiment", "metric", "kind", "within", "a", "b", "n", "diffs", "mean",
                      "ci_low", "ci_high", "n_pos", "n_neg", "test", "p", "p_holm", "clear"]


def comparisons(frame: pd.DataFrame, experiment: str, metric: str,
                alpha: float = ALPHA) -> pd.DataFrame:
    """The ``family`` of paired comparisons of ``metric`` in ``experiment`` (``a`` minus
    ``b``, a and b named by the setting that differs), Holm-adjusted across the family;
    ``clear``: ``p_holm < alpha``."""
    rows = []
    for kind, within, a, b in family():
        r = paired_cells(frame, experiment, metric, a, b)
        name_a, name_b = (a[1], b[1]) if kind == "mode" else (a[0], b[0])
        rows.append({"experiment": experiment, "metric": metric, "kind": kind, "within": within,
                     "a": name_a, "b": name_b, "n": r.n, "diffs": r.diffs, "mean": r.mean,
                     "ci_low": r.ci_low, "ci_high": r.ci_high, "n_pos": r.n_pos,
                     "n_neg": r.n_neg, "test": r.test, "p": r.p})
    table = pd.DataFrame(rows, columns=COMPARISON_COLUMNS[:-2])
    table["p_holm"] = holm(table["p"].to_numpy(float))
    table["clear"] = table["p_holm"] < alpha
    return table


@dataclass(frozen=True)
class Comparison:
    """One row of ``comparisons``: ``a − b`` within ``within`` (an augmentation for a mode
    comparison, a mode for an augmentation comparison), per-seed ``diffs``, their mean and t
    interval, sign counts, the paired test and its Holm-adjusted p within the family."""

    experiment: str
    metric: str
    kind: str
    within: str
    a: str
    b: str
    diffs: tuple[float, ...]
    mean: float
    ci_low: float
    ci_high: float
    n_pos: int
    n_neg: int
    test: str
    p: float
    p_holm: float
    clear: bool

    @property
    def n(self) -> int:
        return len(self.diffs)


def comparison_rows(table: pd.DataFrame) -> tuple[Comparison, ...]:
    """``comparisons``' table as ``Comparison`` records, in table order."""
    names = [f.name for f in fields(Comparison)]
    return tuple(Comparison(**{k: _plain(r[k]) for k in names}) for r in table.to_dict("records"))


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones, so that records compare and print plainly."""
    return value.item() if isinstance(value, np.generic) else value


def representatives(frame: pd.DataFrame, experiment: str) -> dict[tuple[str, str], pd.Series]:
    """Per (augmentation, mode) cell, its median-probe trial by ``REPRESENTATIVE_BY``: the
    trial at sorted position ``(n - 1) // 2`` (the lower middle for even n), ties by seed
    index; trials without that metric are left out."""
    picks = {}
    for aug in GRID_AUGMENTATIONS:
        for mode in GRID_MODES:
            rows = frame[(frame["experiment"] == experiment) & (frame["augmentation"] == aug)
                         & (frame["mode"] == mode)]
            rows = rows[rows[REPRESENTATIVE_BY].notna()] if REPRESENTATIVE_BY in rows else rows[:0]
            rows = rows.sort_values([REPRESENTATIVE_BY, "seed_index"])
            if len(rows):
                picks[(aug, mode)] = rows.iloc[(len(rows) - 1) // 2]
    return picks


# ---------------------------------------------------------------------------- budget
@dataclass(frozen=True)
class Budget:
    """What one experiment's grid trials were given and reached (as their params and last
    metrics say); every tuple holds the distinct values, sorted.

    epochs: asked; epochs_run: reached (the epoch every comparison is made at);
    images_seen: mode -> training views a trial encoded by its last epoch (compute);
    seeds_per_cell: (fewest, most) scored trials in a cell; grid_seeds: as the parent asked.
    """

    experiment: str
    dataset: str
    epochs: tuple[int, ...]
    epochs_run: tuple[int, ...]
    train_subset: tuple[int, ...]
    eval_train: tuple[int, ...]
    images_seen: dict[str, tuple[int, ...]]
    seeds_per_cell: tuple[int, int]
    grid_seeds: int | None

    @property
    def compute_matched(self) -> bool | None:
        """True when every trial of every mode encoded the same number of views, False when
        they differ, None when a mode did not record ``images_seen``."""
        if len(self.images_seen) < len(GRID_MODES) or not all(self.images_seen.values()):
            return None
        return len({v for values in self.images_seen.values() for v in values}) == 1

    def shortfalls(self) -> dict[str, tuple[int, int]]:
        """What makes this budget small: ``{what: (value, threshold)}`` for ``epochs``,
        ``train_subset`` (anchors per epoch, 0 = the whole set is never small) and
        ``seeds`` (per cell); empty when nothing is."""
        out = {}
        if self.epochs_run and max(self.epochs_run) < SMALL_EPOCHS:
            out["epochs"] = (max(self.epochs_run), SMALL_EPOCHS)
        subsets = [s for s in self.train_subset if s > 0]
        if subsets and max(subsets) < SMALL_TRAIN_SUBSET:
            out["train_subset"] = (max(subsets), SMALL_TRAIN_SUBSET)
        if self.seeds_per_cell[0] < FEW_SEEDS:
            out["seeds"] = (self.seeds_per_cell[0], FEW_SEEDS)
        return out


def budget(study: Study) -> Budget:
    """The budget of a grid study's scored trials."""
    trials = study.scored

    def values(name: str, rows: pd.DataFrame = trials) -> tuple[int, ...]:
        return tuple(sorted(int(round(v)) for v in rows[name].dropna().unique())) \
            if name in rows else ()

    counts = [int(((trials["augmentation"] == a) & (trials["mode"] == m)).sum())
              for a in GRID_AUGMENTATIONS for m in GRID_MODES]
    asked = study.parents["grid_seeds"].dropna() if "grid_seeds" in study.parents else []
    seen = {m: values("images_seen", trials[trials["mode"] == m]) for m in GRID_MODES}
    return Budget(study.name, dataset_of(study), values("epochs"), values("epochs_run"),
                  values("train_subset"), values("eval_train"), seen,
                  (min(counts), max(counts)), int(max(asked)) if len(asked) else None)
