"""The original study's three observations, judged from a seed grid's facts into typed
findings: each holds its verdict and its evidence (counts, comparison rows, statistics) and
no sentence (``analysis.observations_report`` writes those).

1. "Augmentation changes results, but more is not always better": ``observation_1``, per
   experiment, over every augmentation comparison (stronger − weaker within a mode) of the
   grid's family and every accuracy metric.
2. "Harder images change the picture": ``observation_2``, per pair of experiments, whether
   each effect of the family differs between them (per-seed differences, Welch, Holm).
3. "Triplet training leads to clusters, pair training to line-like structures":
   ``observation_3``, per experiment, four seed-matched checks of the structure measures.

Only clear results decide a verdict (Holm-adjusted p below ``ALPHA`` within the stated
family); means without a clear test are evidence, never a verdict. Each verdict is one of
SUPPORTED, MIXED, NOT_SUPPORTED, or NO_DATA when nothing could be tested.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.grid import (
    ACCURACY_METRICS,
    Comparison,
    cell_stats,
    cell_values,
    comparison_rows,
    comparisons,
)
from analysis.stats import ALPHA, holm, paired_test
from study.presets import GRID_AUGMENTATIONS, GRID_MODES

SUPPORTED, NOT_SUPPORTED, MIXED = "supported", "not supported", "mixed"
NEEDS_BOTH, NO_DATA = "needs both datasets", "not enough data"
JUDGED = (SUPPORTED, NOT_SUPPORTED, MIXED)
# Observation 3's measures per space, and the mode each measure should favour.
SPACES = {"embedding": ("silhouette", "line_likeness"),
          "t-SNE map": ("tsne_silhouette", "tsne_line_likeness")}
FAVOURED = {"silhouette": "triplet", "line_likeness": "pair"}
SILHOUETTES = tuple(m for measures in SPACES.values() for m in measures if "silhouette" in m)


def metrics_in(frame: pd.DataFrame, experiments: Sequence[str]) -> list[str]:
    """The accuracy metrics every one of ``experiments`` recorded for some trial."""
    rows = frame[frame["experiment"].isin(experiments)]
    return [m for m in ACCURACY_METRICS if m in rows and all(
        rows.loc[rows["experiment"] == e, m].notna().any() for e in experiments)]


def combine(verdicts: Iterable[str]) -> str:
    """One observation's verdict across scopes: the common verdict when all agree, else
    mixed; scopes without a judgement are ignored (NO_DATA when none has one)."""
    judged = [v for v in verdicts if v in JUDGED]
    if not judged:
        return NO_DATA
    return judged[0] if len(set(judged)) == 1 else MIXED


# ---------------------------------------------------------------------------- observation 1
@dataclass(frozen=True)
class AugmentationFinding:
    """Observation 1 in one experiment.

    compared: augmentation comparisons of the family over the accuracy metrics (3 pairs x
    2 modes x metrics); tested: those with a p-value; clear: every clear one (p_holm <
    ALPHA within its metric's family of ``grid.comparisons``), in family order.
    """

    experiment: str
    verdict: str
    compared: int
    tested: int
    clear: tuple[Comparison, ...]

    @property
    def drops(self) -> tuple[Comparison, ...]:
        """Clear comparisons where the stronger augmentation scores lower."""
        return tuple(c for c in self.clear if c.mean < 0)

    @property
    def gains(self) -> tuple[Comparison, ...]:
        """Clear comparisons where the stronger augmentation scores higher."""
        return tuple(c for c in self.clear if c.mean > 0)

    @property
    def contradicted(self) -> tuple[Comparison, ...]:
        """Clear drops whose pair and mode are clearly better on another metric."""
        gained = {(c.within, c.a, c.b) for c in self.gains}
        return tuple(c for c in self.drops if (c.within, c.a, c.b) in gained)


def observation_1(frame: pd.DataFrame, experiment: str, alpha: float = ALPHA) -> AugmentationFinding:
    """"Augmentation changes results, but more is not always better", in one experiment.

    Supported: some clear drop (stronger − weaker < 0) is not contradicted, i.e. the same
    pair and mode is not clearly better on another metric; mixed: every clear drop is
    contradicted; not supported: no clear drop (no clear effect at all, or only clear
    gains); not enough data: no augmentation comparison could be tested.
    """
    rows = [c for metric in metrics_in(frame, [experiment])
            for c in comparison_rows(comparisons(frame, experiment, metric, alpha))
            if c.kind == "augmentation"]
    tested = sum(math.isfinite(c.p) for c in rows)
    finding = AugmentationFinding(experiment, NO_DATA, len(rows), tested,
                                  tuple(c for c in rows if c.clear))
    if not tested:
        return finding
    if not finding.drops:
        verdict = NOT_SUPPORTED
    else:
        verdict = MIXED if len(finding.contradicted) == len(finding.drops) else SUPPORTED
    return replace(finding, verdict=verdict)


# ---------------------------------------------------------------------------- observation 2
@dataclass(frozen=True)
class EffectShift:
    """One comparison of the family on one metric in two experiments: its per-seed
    differences in each, Welch's t-test between them, Holm across every shift of the pair;
    ``clear_first`` / ``clear_second``: whether the effect itself is clear in that
    experiment (its paired test, Holm within that experiment's family)."""

    metric: str
    kind: str
    within: str
    a: str
    b: str
    first: tuple[float, ...]
    second: tuple[float, ...]
    t: float
    p: float
    p_holm: float
    differs: bool
    clear_first: bool
    clear_second: bool

    @property
    def mean_first(self) -> float:
        return float(np.mean(self.first)) if self.first else math.nan

    @property
    def mean_second(self) -> float:
        return float(np.mean(self.second)) if self.second else math.nan

    @property
    def reverses(self) -> bool:
        """The effect is clear in both experiments, with opposite signs.  Opposite mean signs
        alone are not enough: an effect of about 0 on one side (+0.001 against -0.024) has
        the sign of its noise; that effect appears or vanishes, it does not reverse."""
        return self.clear_first and self.clear_second and self.mean_first * self.mean_second < 0

    @property
    def change(self) -> str:
        """``reverses``, ``same sign``, or ``clear in one only`` (opposite or zero mean signs
        without a clear effect on both sides)."""
        if self.reverses:
            return "reverses"
        return "same sign" if self.mean_first * self.mean_second > 0 else "clear in one only"


@dataclass(frozen=True)
class LevelShift:
    """Context, never a verdict: a metric's mean over the cells in each experiment."""

    metric: str
    mean_first: float
    mean_second: float


@dataclass(frozen=True)
class DatasetFinding:
    """Observation 2 for a pair of experiments (``first`` → ``second``)."""

    first: str
    second: str
    dataset_first: str
    dataset_second: str
    verdict: str
    shifts: tuple[EffectShift, ...]
    levels: tuple[LevelShift, ...]

    @property
    def tested(self) -> int:
        return sum(math.isfinite(s.p) for s in self.shifts)

    @property
    def differing(self) -> tuple[EffectShift, ...]:
        return tuple(s for s in self.shifts if s.differs)

    @property
    def reversals(self) -> tuple[EffectShift, ...]:
        return tuple(s for s in self.differing if s.reverses)

    @property
    def same_dataset(self) -> bool:
        return self.dataset_first == self.dataset_second


def welch(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Welch's two-sided t-test of ``x`` against ``y`` (``scipy.stats.ttest_ind``,
    ``equal_var=False``): ``(t, p)``; NaN when a sample has fewer than 2 values or neither
    has spread (t undefined; rounding would make it a huge, meaningless number)."""
    a, b = np.asarray(x, float), np.asarray(y, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2 or not (_spread(a) or _spread(b)):
        return math.nan, math.nan
    result = sps.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def _spread(x: np.ndarray) -> bool:
    return bool(np.ptp(x) > 1e-12 * max(1.0, float(np.abs(x).max())))


def observation_2(frame: pd.DataFrame, first: str, second: str,
                  alpha: float = ALPHA) -> DatasetFinding:
    """"Harder images change the picture": does an effect differ between two experiments?

    For each comparison of the family and each accuracy metric both recorded, the per-seed
    differences in ``first`` against those in ``second`` (Welch), Holm across all of them; an
    effect differs when p_holm < alpha. Supported: some effect differs and reverses (clear
    in each experiment, with opposite signs); mixed: effects differ in magnitude only, or
    are clear in one experiment only; not supported: none differs clearly; not enough data:
    no shift could be tested (fewer than 2 seeds per cell in an experiment). A level
    difference between the datasets is context (``levels``) only: a harder dataset lowers
    every cell without changing any effect.
    """
    raw = []
    for metric in metrics_in(frame, [first, second]):
        pairs = zip(comparison_rows(comparisons(frame, first, metric, alpha)),
                    comparison_rows(comparisons(frame, second, metric, alpha)), strict=True)
        raw += [(metric, ca, cb, *welch(ca.diffs, cb.diffs)) for ca, cb in pairs]
    adjusted = holm([p for *_, p in raw])
    shifts = tuple(EffectShift(metric, ca.kind, ca.within, ca.a, ca.b, ca.diffs, cb.diffs, t, p,
                               float(ph), bool(ph < alpha), bool(ca.clear), bool(cb.clear))
                   for (metric, ca, cb, t, p), ph in zip(raw, adjusted, strict=True))
    levels = []
    for metric in metrics_in(frame, [first, second]):
        means = cell_stats(frame[frame["experiment"].isin([first, second])], metric)
        by = means.groupby("experiment")["mean"].mean()
        levels.append(LevelShift(metric, float(by.get(first, math.nan)),
                                 float(by.get(second, math.nan))))
    datasets = [str(frame.loc[frame["experiment"] == e, "dataset"].iloc[0])
                if (frame["experiment"] == e).any() else "unknown" for e in (first, second)]
    finding = DatasetFinding(first, second, *datasets, NO_DATA, shifts, tuple(levels))
    if not finding.tested:
        return finding
    verdict = SUPPORTED if finding.reversals else MIXED if finding.differing else NOT_SUPPORTED
    return replace(finding, verdict=verdict)


# ---------------------------------------------------------------------------- observation 3
@dataclass(frozen=True)
class StructureCheck:
    """One of observation 3's checks: the ``favoured`` mode minus the ``other`` on one
    structure measure, matched by (augmentation, seed); status "holds" (clearly in the
    favoured direction), "reversed" (clearly the other way) or "unclear"."""

    experiment: str
    space: str
    measure: str
    favoured: str
    other: str
    diffs: tuple[float, ...]
    mean: float
    ci_low: float
    ci_high: float
    n_pos: int
    n_neg: int
    test: str
    p: float
    p_holm: float
    status: str

    @property
    def n(self) -> int:
        return len(self.diffs)


@dataclass(frozen=True)
class StructureFinding:
    """Observation 3 in one experiment; ``negative``: the silhouette measures whose every
    value in the experiment is below 0 (classes overlap in every cell, so "clusters" only
    compare degrees of overlap)."""

    experiment: str
    verdict: str
    checks: tuple[StructureCheck, ...]
    negative: tuple[str, ...]

    @property
    def holds(self) -> int:
        return sum(c.status == "holds" for c in self.checks)

    @property
    def reversed(self) -> int:
        return sum(c.status == "reversed" for c in self.checks)


def structure_checks(frame: pd.DataFrame, experiment: str,
                     alpha: float = ALPHA) -> tuple[StructureCheck, ...]:
    """Observation 3's four checks in one experiment: for each space and measure, the
    favoured mode minus the other, matched by (augmentation, seed), Holm across the four."""
    raw = []
    for space, measures in SPACES.items():
        for measure in measures:
            favoured = FAVOURED[measure.removeprefix("tsne_")]
            other = next(m for m in GRID_MODES if m != favoured)
            a, b = [], []
            for aug in GRID_AUGMENTATIONS:
                xa = cell_values(frame, experiment, aug, favoured, measure)
                xb = cell_values(frame, experiment, aug, other, measure)
                keys = [k for k in xa.index if k in xb.index]
                a += list(xa[keys])
                b += list(xb[keys])
            raw.append((space, measure, favoured, other, paired_test(a, b)))
    adjusted = holm([r.p for *_, r in raw])
    checks = []
    for (space, measure, favoured, other, r), ph in zip(raw, adjusted, strict=True):
        clear = bool(ph < alpha)
        status = "holds" if clear and r.mean > 0 else "reversed" if clear and r.mean < 0 \
            else "unclear"
        checks.append(StructureCheck(experiment, space, measure, favoured, other, r.diffs,
                                     r.mean, r.ci_low, r.ci_high, r.n_pos, r.n_neg, r.test, r.p,
                                     float(ph), status))
    return tuple(checks)


def negative_silhouettes(frame: pd.DataFrame, experiment: str) -> tuple[str, ...]:
    """The silhouette measures (``SILHOUETTES``) whose every recorded value in
    ``experiment`` is below 0."""
    rows = frame[frame["experiment"] == experiment]
    return tuple(m for m in SILHOUETTES if m in rows and rows[m].notna().any()
                 and bool((rows[m].dropna() < 0).all()))


def observation_3(frame: pd.DataFrame, experiment: str, alpha: float = ALPHA) -> StructureFinding:
    """"Triplet training gives clusters, pair training lines", in one experiment: triplet's
    silhouette above pair's and pair's line-likeness above triplet's, in the embedding and
    in the t-SNE map. Supported: all four checks hold clearly; mixed: some hold; not
    supported: none holds; not enough data: no check could be tested."""
    checks = structure_checks(frame, experiment, alpha)
    finding = StructureFinding(experiment, NO_DATA, checks,
                               negative_silhouettes(frame, experiment))
    if not any(math.isfinite(c.p) for c in checks):
        return finding
    verdict = SUPPORTED if finding.holds == len(checks) else MIXED if finding.holds \
        else NOT_SUPPORTED
    return replace(finding, verdict=verdict)


# ---------------------------------------------------------------------------- all three
@dataclass(frozen=True)
class Findings:
    """The three observations over a grid's experiments; ``datasets`` holds one finding per
    pair of experiments (none with a single experiment)."""

    augmentation: tuple[AugmentationFinding, ...]
    datasets: tuple[DatasetFinding, ...]
    structure: tuple[StructureFinding, ...]

    def overall(self) -> dict[int, str]:
        """Each observation's verdict across its scopes (``combine``); observation 2 needs
        two experiments."""
        return {1: combine(f.verdict for f in self.augmentation),
                2: combine(f.verdict for f in self.datasets) if self.datasets else NEEDS_BOTH,
                3: combine(f.verdict for f in self.structure)}


def judge(frame: pd.DataFrame, experiments: Sequence[str], alpha: float = ALPHA) -> Findings:
    """All three observations for ``experiments`` (in the given order)."""
    return Findings(
        tuple(observation_1(frame, e, alpha) for e in experiments),
        tuple(observation_2(frame, a, b, alpha) for i, a in enumerate(experiments)
              for b in experiments[i + 1:]),
        tuple(observation_3(frame, e, alpha) for e in experiments))
