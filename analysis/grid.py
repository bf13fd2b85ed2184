"""The original study's view of a ``--preset seed-grid`` study: computations only.

A seed grid (``study.presets``) runs augmentation (none / rotation / simclr) x mode (pair
with cosine-embedding loss, triplet with triplet-margin loss), every cell at the same
settings and over the same seeds, every trial trained to the end (FIFO). Seed index i has
the same torch seed in every cell, so cells are compared seed by seed (``paired_test``).

- ``grid_frame``: the scored trials of one or several grid studies, with their seed index.
- ``cell_stats``: mean, t interval and n of a metric per (experiment, augmentation, mode).
- ``comparisons``: the paired comparisons within one experiment (mode per augmentation,
  augmentation pairs per mode), Holm-corrected as one family.
- ``representatives``: the median-probe trial of each cell (for the t-SNE grid).
- ``budget``: epochs, training subset and seeds of each experiment; ``Budget.small`` says
  why it is small.
- ``observation_1`` / ``observation_2`` / ``observation_3``: the original study's three
  observations, each judged from the data into a ``Verdict``.

Throughout, a difference is *clear* when its Holm-adjusted p-value (within its family) is
below ``ALPHA``; verdicts use only clear differences, directions by the mean are reported too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.load import Study
from analysis.stats import ALPHA, Paired, holm, paired_test, t_ci
from study.presets import GRID_AUGMENTATIONS, GRID_MODES
from study.schema import OBJECTIVE, STRUCTURE_METRICS
from study.space import trial_seed

GRID_PRESET = "seed-grid"
STRONGEST = GRID_AUGMENTATIONS[-1]
ACCURACY_METRICS = (OBJECTIVE, "val_precision_at_1")
# Observation 3's measures per space, and the mode each measure should favour.
SPACES = {"embedding": ("silhouette", "line_likeness"),
          "t-SNE map": ("tsne_silhouette", "tsne_line_likeness")}
FAVOURED = {"silhouette": "triplet", "line_likeness": "pair"}
# Below these a grid's budget is called small in the report.
SMALL_EPOCHS = 5
SMALL_TRAIN_SUBSET = 10_000
FEW_SEEDS = 3

SUPPORTED, NOT_SUPPORTED, MIXED = "supported", "not supported", "mixed"
NEEDS_BOTH, NO_DATA = "needs both datasets", "not enough data"


def is_seed_grid(study: Study) -> bool:
    """True when a parent run of the study says ``preset=seed-grid``."""
    parents = study.parents
    return "preset" in parents and bool((parents["preset"] == GRID_PRESET).any())


def grid_frame(studies: list[Study]) -> pd.DataFrame:
    """The scored trials of ``studies`` (one row each), with ``seed_index`` (the trial's
    position among its study's grid seeds, i: ``trial_seed(study_seed, i)``; by rank of the
    seed when the parent run does not say) and ``pair_key`` (parent run and seed: the unit
    matched across cells)."""
    frames = []
    for study in studies:
        trials = study.scored.copy()
        trials["dataset"] = _dataset(study)
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
        frames.append(trials)
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def _dataset(study: Study) -> str:
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


def cell_stats(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per (experiment, augmentation, mode), grid order: ``experiment, dataset,
    augmentation, mode, n, mean, sd, ci_low, ci_high`` (95 % t interval over seeds)."""
    rows = []
    for experiment in pd.unique(frame["experiment"]) if len(frame) else []:
        dataset = frame.loc[frame["experiment"] == experiment, "dataset"].iloc[0]
        for aug in GRID_AUGMENTATIONS:
            for mode in GRID_MODES:
                x = cell_values(frame, experiment, aug, mode, metric).to_numpy(float)
                low, high = t_ci(x)
                rows.append({"experiment": experiment, "dataset": dataset, "augmentation": aug,
                             "mode": mode, "n": int(x.size),
                             "mean": float(x.mean()) if x.size else np.nan,
                             "sd": float(x.std(ddof=1)) if x.size > 1 else np.nan,
                             "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=["experiment", "dataset", "augmentation", "mode", "n",
                                       "mean", "sd", "ci_low", "ci_high"])


def paired_cells(frame: pd.DataFrame, experiment: str, metric: str, a: tuple[str, str],
                 b: tuple[str, str]) -> Paired:
    """Cell ``a`` = (augmentation, mode) minus cell ``b``, matched by seed."""
    xa = cell_values(frame, experiment, *a, metric)
    xb = cell_values(frame, experiment, *b, metric)
    keys = [k for k in xa.index if k in xb.index]
    return paired_test(xa[keys].to_numpy(float), xb[keys].to_numpy(float))


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


def representatives(frame: pd.DataFrame, experiment: str) -> dict[tuple[str, str], pd.Series]:
    """Per (augmentation, mode) cell, its median-probe trial: the trial at sorted position
    ``(n - 1) // 2`` by the objective (the lower middle for even n), ties by seed index."""
    picks = {}
    for aug in GRID_AUGMENTATIONS:
        for mode in GRID_MODES:
            rows = frame[(frame["experiment"] == experiment) & (frame["augmentation"] == aug)
                         & (frame["mode"] == mode)].sort_values([OBJECTIVE, "seed_index"])
            if len(rows):
                picks[(aug, mode)] = rows.iloc[(len(rows) - 1) // 2]
    return picks


# ---------------------------------------------------------------------------- budget
@dataclass(frozen=True)
class Budget:
    """What one experiment's grid trials were given (values as the trials' params say)."""

    experiment: str
    dataset: str
    epochs: tuple[int, ...]
    train_subset: tuple[int, ...]
    eval_train: tuple[int, ...]
    seeds_per_cell: tuple[int, int]  # (fewest, most) scored trials in a cell
    grid_seeds: int | None  # as the parent run asked

    def small(self) -> list[str]:
        """Why this budget is small (empty when it is not)."""
        why = []
        if self.epochs and max(self.epochs) < SMALL_EPOCHS:
            why.append(f"{max(self.epochs)} epoch(s) (< {SMALL_EPOCHS})")
        subsets = [s for s in self.train_subset if s > 0]
        if subsets and max(subsets) < SMALL_TRAIN_SUBSET:
            why.append(f"{max(subsets)} training anchors per epoch (< {SMALL_TRAIN_SUBSET})")
        if self.seeds_per_cell[0] < FEW_SEEDS:
            why.append(f"{self.seeds_per_cell[0]} seed(s) per cell (< {FEW_SEEDS})")
        return why


def budget(study: Study) -> Budget:
    """The budget of a grid study's scored trials."""
    trials = study.scored

    def values(name: str) -> tuple[int, ...]:
        return tuple(sorted(int(v) for v in trials[name].dropna().unique())) if name in trials \
            else ()

    counts = [int(((trials["augmentation"] == a) & (trials["mode"] == m)).sum())
              for a in GRID_AUGMENTATIONS for m in GRID_MODES]
    asked = study.parents["grid_seeds"].dropna() if "grid_seeds" in study.parents else []
    return Budget(study.name, _dataset(study), values("epochs"), values("train_subset"),
                  values("eval_train"), (min(counts), max(counts)),
                  int(max(asked)) if len(asked) else None)


# ---------------------------------------------------------------------------- verdicts
@dataclass(frozen=True)
class Verdict:
    """One observation judged in one scope (a dataset, or a pair of datasets)."""

    observation: int
    scope: str
    verdict: str
    text: str


def combine(verdicts: list[Verdict]) -> str:
    """The overall verdict of one observation across scopes: the common verdict when all
    agree, else mixed (scopes without data are ignored; NO_DATA when all lack it)."""
    judged = [v.verdict for v in verdicts if v.verdict in (SUPPORTED, NOT_SUPPORTED, MIXED)]
    if not judged:
        return verdicts[0].verdict if verdicts else NO_DATA
    return judged[0] if len(set(judged)) == 1 else MIXED


def _num(x: float, digits: int = 3) -> str:
    return "–" if not math.isfinite(x) else f"{x:.{digits}f}"


def _signed(x: float, digits: int = 3) -> str:
    return "–" if not math.isfinite(x) else f"{x:+.{digits}f}"


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "untested"
    return f"{p:.2g}" if p >= 0.001 else "<0.001"


def _interval(row: Any) -> str:
    if not math.isfinite(row["ci_low"]):
        return _signed(row["mean"])
    return f"{_signed(row['mean'])} [{_signed(row['ci_low'])}, {_signed(row['ci_high'])}]"


def describe(row: Any) -> str:
    """One comparison row as text: mean difference [CI], signs over seeds, p_holm."""
    return (f"{row['a']} − {row['b']} = {_interval(row)}, {row['n_pos']}/{row['n']} seeds "
            f"higher, p_holm {_p(row['p_holm'])}")


def observation_1(frame: pd.DataFrame, experiment: str, alpha: float = ALPHA) -> Verdict:
    """"Augmentation changes results, but more is not always better", in one experiment.

    A: in some mode the best and the worst augmentation differ clearly. B: in some mode the
    strongest augmentation (simclr) is not the best by mean; B clear: a weaker augmentation
    beats it clearly. Supported: A and B clear; not supported: neither A nor B; else mixed.
    """
    table = comparisons(frame, experiment, OBJECTIVE, alpha)
    stats = cell_stats(frame[frame["experiment"] == experiment], OBJECTIVE)
    parts, a_any, b_any, b_clear = [], False, False, False
    modes_judged, modes_beaten = 0, 0
    for mode in GRID_MODES:
        means = stats[stats["mode"] == mode].set_index("augmentation")["mean"].dropna()
        if len(means) < 2:
            parts.append(f"{mode}: fewer than 2 augmentations scored")
            continue
        best, worst = means.idxmax(), means.idxmin()
        rows = table[(table["kind"] == "augmentation") & (table["within"] == mode)]
        pair = rows[rows["a"].isin([best, worst]) & rows["b"].isin([best, worst])].iloc[0]
        a_any |= bool(pair["clear"])
        text = (f"{mode}: {', '.join(f'{a} {_num(m)}' for a, m in means.items())}; range "
                f"{_num(means.max() - means.min())} (best {best}, worst {worst}: "
                f"{'clear' if pair['clear'] else 'not clear'}, {describe(pair)})")
        modes_judged += STRONGEST in means
        if STRONGEST in means and best != STRONGEST:
            b_any = True
            modes_beaten += 1
            beat = rows[(rows["a"] == STRONGEST) & (rows["b"] == best)].iloc[0]
            b_clear |= bool(beat["clear"] and beat["mean"] < 0)
            text += (f"; {STRONGEST} is not the best, {best} beats it "
                     f"{'clearly' if beat['clear'] and beat['mean'] < 0 else 'by the mean only'}")
        elif STRONGEST in means:
            text += f"; {STRONGEST} (the strongest) is the best"
        parts.append(text)
    if all("fewer than" in p for p in parts):
        return Verdict(1, experiment, NO_DATA, "; ".join(parts) + ".")
    if table.loc[table["kind"] == "augmentation", "p"].isna().all():
        return Verdict(1, experiment, NO_DATA, "no augmentation comparison can be tested "
                       "(fewer than 2 seeds matched per cell); by the mean only: "
                       + "; ".join(parts) + ".")
    verdict = SUPPORTED if a_any and b_clear else NOT_SUPPORTED if not (a_any or b_any) \
        else MIXED
    effect = ("augmentation changes the probe accuracy clearly" if a_any
              else "no clear augmentation effect")
    if b_clear:
        more = f"a weaker augmentation clearly beats {STRONGEST}, the strongest"
    elif b_any:
        more = (f"{STRONGEST} (the strongest) is not the best in {modes_beaten} of "
                f"{modes_judged} modes, but only by the mean")
    else:
        more = f"{STRONGEST} (the strongest) is the best in every mode"
    lead = f"{effect}; {more}"
    return Verdict(1, experiment, verdict, f"{lead}. " + "; ".join(parts) + ".")


def observation_2(frame: pd.DataFrame, first: str, second: str,
                  alpha: float = ALPHA) -> Verdict:
    """"Harder images change the picture": does ``second`` rank the cells differently from
    ``first``, and at another level?

    Clear flip: a comparison of the family that is clear in both experiments with opposite
    signs. Supported: at least one clear flip; mixed: no clear flip but the cells' ranking
    differs by the mean (Kendall's tau < 1 or another best cell) or the level differs clearly
    (cells paired across the experiments); not supported: otherwise.
    """
    scope = f"{first} → {second}"
    stats = cell_stats(frame[frame["experiment"].isin([first, second])], OBJECTIVE)
    wide = stats.pivot_table(index=["augmentation", "mode"], columns="experiment", values="mean")
    if first not in wide or second not in wide:
        return Verdict(2, scope, NO_DATA, "one of the experiments has no scored trial.")
    wide = wide[[first, second]].dropna()
    if len(wide) < 2:
        return Verdict(2, scope, NO_DATA, f"only {len(wide)} cell(s) scored in both.")
    tau = float(sps.kendalltau(wide[first], wide[second]).statistic)
    best = {e: "/".join(wide[e].idxmax()) for e in (first, second)}
    level = paired_test(wide[second].to_numpy(), wide[first].to_numpy())
    level_p = level.p
    level_ci = _interval({"mean": level.mean, "ci_low": level.ci_low, "ci_high": level.ci_high})
    ca, cb = (comparisons(frame, e, OBJECTIVE, alpha) for e in (first, second))
    flips, clear_flips = [], []
    for ra, rb in zip(ca.to_dict("records"), cb.to_dict("records"), strict=True):
        if not (math.isfinite(ra["mean"]) and math.isfinite(rb["mean"])):
            continue
        if np.sign(ra["mean"]) != np.sign(rb["mean"]):
            name = f"{ra['a']} − {ra['b']} ({ra['within']})"
            flips.append(name)
            if ra["clear"] and rb["clear"]:
                clear_flips.append(f"{name}: {_signed(ra['mean'])} in {first}, "
                                   f"{_signed(rb['mean'])} in {second}")
    reordered = tau < 1 - 1e-9 or best[first] != best[second]
    level_clear = math.isfinite(level_p) and level_p < alpha
    verdict = SUPPORTED if clear_flips else MIXED if (reordered or level_clear) else NOT_SUPPORTED
    text = (f"mean {OBJECTIVE} over the {len(wide)} cells {_num(wide[first].mean())} in {first} vs "
            f"{_num(wide[second].mean())} in {second} (cell by cell {level_ci}, {level.test} p "
            f"{_p(level_p)}); ranking of the cells: Kendall's tau {_num(tau, 2)}, best cell {best[first]} "
            f"vs {best[second]}; comparisons whose sign flips: "
            + (", ".join(flips) if flips else "none")
            + (f"; clear in both: {'; '.join(clear_flips)}" if clear_flips
               else "; none clear in both") + ".")
    lead = {SUPPORTED: "the picture changes: an effect reverses clearly",
            MIXED: "the picture changes only " + ("by the means (no effect reverses clearly)"
                                                  if reordered else "in level")
            + (", and the level differs clearly" if reordered and level_clear else ""),
            NOT_SUPPORTED: "the same ranking and no clear level difference"}[verdict]
    datasets = {e: frame.loc[frame["experiment"] == e, "dataset"].iloc[0] for e in (first, second)}
    if datasets[first] == datasets[second]:
        text += (f" Note: both experiments use the dataset {datasets[first]}, so any change "
                 "here is between runs, not between datasets.")
    return Verdict(2, scope, verdict, f"{lead}: {text}")


def structure_checks(frame: pd.DataFrame, experiment: str,
                     alpha: float = ALPHA) -> pd.DataFrame:
    """Observation 3's four checks in one experiment: for each space and measure, the
    favoured mode minus the other, matched by (augmentation, seed), Holm across the four.

    Columns: ``experiment, space, measure, favoured, n, mean, ci_low, ci_high, n_pos, n_neg,
    test, p, p_holm, status`` with status "holds" (clearly in the favoured direction),
    "reversed" (clearly the other way) or "unclear".
    """
    rows = []
    for space, measures in SPACES.items():
        for measure in measures:
            base = measure.removeprefix("tsne_")
            favoured = FAVOURED[base]
            other = next(m for m in GRID_MODES if m != favoured)
            a, b = [], []
            for aug in GRID_AUGMENTATIONS:
                xa = cell_values(frame, experiment, aug, favoured, measure)
                xb = cell_values(frame, experiment, aug, other, measure)
                keys = [k for k in xa.index if k in xb.index]
                a += list(xa[keys])
                b += list(xb[keys])
            r = paired_test(a, b)
            rows.append({"experiment": experiment, "space": space, "measure": measure,
                         "favoured": favoured, "n": r.n, "mean": r.mean, "ci_low": r.ci_low,
                         "ci_high": r.ci_high, "n_pos": r.n_pos, "n_neg": r.n_neg,
                         "test": r.test, "p": r.p})
    table = pd.DataFrame(rows)
    table["p_holm"] = holm(table["p"].to_numpy(float))
    clear = table["p_holm"] < alpha
    table["status"] = np.where(clear & (table["mean"] > 0), "holds",
                               np.where(clear & (table["mean"] < 0), "reversed", "unclear"))
    return table


def observation_3(frame: pd.DataFrame, experiment: str, alpha: float = ALPHA) -> Verdict:
    """"Triplet training gives clusters, pair training lines", in one experiment: triplet's
    silhouette above pair's and pair's line-likeness above triplet's, in the embedding and in
    the t-SNE map. Supported: all four checks hold clearly; not supported: none holds;
    mixed: some hold."""
    checks = structure_checks(frame, experiment, alpha)
    if (checks["n"] == 0).all():
        return Verdict(3, experiment, NO_DATA, "no trial logged the structure measures "
                       f"({', '.join(STRUCTURE_METRICS)}).")
    holds = int((checks["status"] == "holds").sum())
    verdict = SUPPORTED if holds == len(checks) else NOT_SUPPORTED if holds == 0 else MIXED
    parts = []
    for c in checks.to_dict("records"):
        other = next(m for m in GRID_MODES if m != c["favoured"])
        parts.append(f"{c['measure']} {c['favoured']} − {other} = {_interval(c)}, "
                     f"{c['n_pos']}/{c['n']} pairs higher, p_holm {_p(c['p_holm'])}: "
                     f"{c['status']}")
    expected = int((checks["mean"] > 0).sum())
    reversed_ = int((checks["status"] == "reversed").sum())
    lead = {SUPPORTED: "triplet gives tighter clusters and pair more line-like classes, "
                       "clearly, in the embedding and the t-SNE map",
            NOT_SUPPORTED: (f"{reversed_} of {len(checks)} checks clearly reversed" if reversed_
                            else "inconclusive, no check holds clearly"),
            MIXED: f"{holds} of {len(checks)} checks hold clearly"}[verdict]
    lead += f" ({expected} of {len(checks)} in the expected direction by the mean)"
    return Verdict(3, experiment, verdict, f"{lead}: " + "; ".join(parts) + ".")
