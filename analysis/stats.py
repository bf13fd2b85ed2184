"""Statistics on trial results: pure functions on arrays and DataFrames.

- ``bootstrap_ci``: percentile bootstrap CI of the mean (Efron & Tibshirani 1993, ch. 13),
  and ``group_interval``, which takes Student's t instead for small groups.
- ``mann_whitney``: two-sided Mann-Whitney U test (scipy's, exact or asymptotic by size),
  and ``min_mann_whitney_p``, the smallest p a test of two group sizes can give.
- ``holm``: Holm's step-down adjustment of p-values (Holm 1979), controls the FWER.
- ``quantile_edges`` / ``assign_bins``: group a numeric dimension into quantile bins.
- ``summarize_groups`` / ``pairwise_tests``: per-value tables and pairwise comparisons.
- ``t_ci``: Student-t confidence interval of the mean, for the few repeats of one setting.
- ``paired_test``: matched samples (the same seeds): per-seed differences, their mean with a
  t interval, sign counts, and a paired test (Wilcoxon signed-rank, or the paired t-test when
  too few pairs for Wilcoxon to reach ``ALPHA``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats as sps

N_RESAMPLES = 2000
CONFIDENCE = 0.95
ALPHA = 0.05
SMALL_GROUP = 10  # below this many values an interval of the mean is Student's t
# Wilcoxon's signed-rank test: its smallest two-sided p with n pairs is 2 / 2**n (n=5:
# 0.0625, n=6: 0.031), so below 6 pairs it can never reach ALPHA and the paired t-test is used.
WILCOXON_MIN_N = 6


def bootstrap_ci(values: Sequence[float] | np.ndarray, *, n_resamples: int = N_RESAMPLES,
                 confidence: float = CONFIDENCE, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean.

    Returns ``(low, high)``; ``(nan, nan)`` for fewer than 2 values (no spread to resample).
    The same seed gives the same interval.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def mann_whitney(a: Sequence[float] | np.ndarray,
                 b: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test of ``a`` against ``b``.

    Returns ``(U of a, p)``; ``U > len(a) * len(b) / 2`` means ``a`` tends to be larger.
    """
    result = sps.mannwhitneyu(np.asarray(a, float), np.asarray(b, float),
                              alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values, in the input order.

    Sort ascending, multiply the i-th smallest (0-based) by ``m - i``, take the running
    maximum, cap at 1. NaN entries are left NaN and not counted in ``m``.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out


def n_bins_for(n: int) -> int:
    """How many quantile bins ``n`` values support (about 5 or more values per bin)."""
    if n >= 20:
        return 4
    if n >= 9:
        return 3
    if n >= 4:
        return 2
    return 1


def quantile_edges(values: Sequence[float] | np.ndarray, n_bins: int | None = None,
                   log: bool = False) -> np.ndarray:
    """Edges of ``n_bins`` equal-count bins of the finite values (default ``n_bins_for``).

    Quantiles of log-values when ``log`` (the same edges for a monotone transform, but
    interpolated on the log scale). Duplicate edges merge (fewer bins). Returns an
    increasing array of ``bins + 1`` edges, the first and last the minimum and maximum;
    an empty array when there are no finite values.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.array([])
    n_bins = n_bins_for(x.size) if n_bins is None else max(1, n_bins)
    qs = np.linspace(0.0, 1.0, n_bins + 1)
    edges = np.exp(np.quantile(np.log(x), qs)) if log and (x > 0).all() else np.quantile(x, qs)
    edges[0], edges[-1] = x.min(), x.max()
    return np.unique(edges)


def bin_label(low: float, high: float, last: bool) -> str:
    """``[low, high)``, or ``[low, high]`` for the last bin, with 3 significant digits."""
    return f"[{low:.3g}, {high:.3g}{']' if last else ')'}"


def assign_bins(values: Sequence[float] | np.ndarray | pd.Series,
                edges: np.ndarray) -> pd.Categorical:
    """Label each value with its bin ``[edge_i, edge_i+1)`` (the last bin closed).

    Values outside the edges or not finite get NaN. Returns an ordered Categorical whose
    categories are the bin labels in increasing order (one category ``[v, v]`` when all
    edges coincide).
    """
    x = np.asarray(values, dtype=float)
    if len(edges) == 0:
        return pd.Categorical([np.nan] * len(x), categories=[], ordered=True)
    if len(edges) == 1:
        label = bin_label(edges[0], edges[0], True)
        codes = np.where(x == edges[0], 0, -1)
        return pd.Categorical.from_codes(codes, categories=[label], ordered=True)
    labels = [bin_label(lo, hi, i == len(edges) - 2)
              for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True))]
    codes = np.searchsorted(edges, x, side="right") - 1
    codes = np.where(x == edges[-1], len(edges) - 2, codes)
    inside = np.isfinite(x) & (x >= edges[0]) & (x <= edges[-1])
    codes = np.where(inside, codes, -1)
    return pd.Categorical.from_codes(codes, categories=labels, ordered=True)


def group_interval(values: Sequence[float] | np.ndarray, seed: int = 0) -> tuple[float, float, str]:
    """The 95 % interval of the mean of a group: Student's t below ``SMALL_GROUP`` values
    (a percentile bootstrap of a handful of values is far too narrow), the percentile
    bootstrap from there on; ``(low, high, method)``, NaN for fewer than 2 values."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < SMALL_GROUP:
        return (*t_ci(x), "t")
    return (*bootstrap_ci(x, seed=seed), "bootstrap")


def summarize_groups(groups: pd.Series, values: pd.Series, *, seed: int = 0) -> pd.DataFrame:
    """Per-group statistics of ``values`` (aligned by index; NaN values are dropped).

    Returns one row per group, in the group order (categories of an ordered Categorical,
    else first appearance), with columns ``group, n, mean, median, ci_low, ci_high, ci``
    (``ci_*``: 95 % interval of the mean by ``group_interval``, ``ci`` its method; NaN for
    n < 2).
    """
    frame = pd.DataFrame({"group": groups, "value": values}).dropna(subset=["value", "group"])
    order = (list(groups.cat.categories) if isinstance(groups.dtype, pd.CategoricalDtype)
             else list(pd.unique(groups.dropna())))
    rows = []
    for i, group in enumerate(order):
        x = frame.loc[frame["group"] == group, "value"].to_numpy(float)
        low, high, method = group_interval(x, seed=seed + i)
        rows.append({"group": group, "n": int(x.size),
                     "mean": float(x.mean()) if x.size else np.nan,
                     "median": float(np.median(x)) if x.size else np.nan,
                     "ci_low": low, "ci_high": high, "ci": method})
    return pd.DataFrame(rows, columns=["group", "n", "mean", "median", "ci_low", "ci_high", "ci"])


def min_mann_whitney_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p-value an exact Mann-Whitney test of groups of ``n_a`` and
    ``n_b`` values can give (every value of one group above every value of the other):
    ``2 / C(n_a + n_b, n_a)``, 1 when a group is empty.  Groups of 3 and 3 cannot go below
    0.1, so testing them at 0.05 could never find a difference."""
    if n_a < 1 or n_b < 1:
        return 1.0
    return min(1.0, 2.0 / math.comb(n_a + n_b, n_a))


def pairwise_tests(groups: pd.Series, values: pd.Series, *, higher_is_better: bool = True,
                   alpha: float = ALPHA) -> pd.DataFrame:
    """Mann-Whitney U between every pair of groups whose sizes can reach ``alpha``,
    Holm-adjusted across the tested pairs.

    Returns one row per pair ``(a, b)`` (group order as in ``summarize_groups``) with
    columns ``a, b, n_a, n_b, median_a, median_b, U, p, p_holm, winner, untested``:
    ``winner`` is the better group when ``p_holm < alpha`` (by the U statistic's direction)
    else None; a pair whose smallest possible p (``min_mann_whitney_p``) is not below
    ``alpha`` is not tested (``p`` NaN) and ``untested`` gives that smallest p.
    """
    summary = summarize_groups(groups, values)
    frame = pd.DataFrame({"group": groups, "value": values}).dropna(subset=["value", "group"])
    rows = []
    for a, b in combinations(summary["group"], 2):
        xa = frame.loc[frame["group"] == a, "value"].to_numpy(float)
        xb = frame.loc[frame["group"] == b, "value"].to_numpy(float)
        floor_p = min_mann_whitney_p(xa.size, xb.size)
        u, p = mann_whitney(xa, xb) if floor_p < alpha else (np.nan, np.nan)
        rows.append({"a": a, "b": b, "n_a": xa.size, "n_b": xb.size,
                     "median_a": float(np.median(xa)) if xa.size else np.nan,
                     "median_b": float(np.median(xb)) if xb.size else np.nan,
                     "U": u, "p": p, "untested": np.nan if floor_p < alpha else floor_p})
    columns = ["a", "b", "n_a", "n_b", "median_a", "median_b", "U", "p", "untested"]
    table = pd.DataFrame(rows, columns=columns)
    table["p_holm"] = holm(table["p"].to_numpy()) if len(table) else []
    winners = []
    for row in table.itertuples(index=False):
        half = row.n_a * row.n_b / 2  # U above half: a tends to be larger
        clear = np.isfinite(row.p_holm) and row.p_holm < alpha and half != row.U
        winners.append((row.a if (half < row.U) == higher_is_better else row.b)
                        if clear else None)
    table["winner"] = winners
    return table


def t_ci(values: Sequence[float] | np.ndarray,
         confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student-t confidence interval of the mean: ``mean ± t(n-1) * sd / sqrt(n)``.

    For a handful of repeats of one setting (seeds), where a percentile bootstrap of 3 values
    is far too narrow. ``(nan, nan)`` for fewer than 2 finite values; ``(mean, mean)`` when
    every value is the same.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return math.nan, math.nan
    half = float(sps.t.ppf(0.5 + confidence / 2.0, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return float(x.mean() - half), float(x.mean() + half)


@dataclass(frozen=True)
class Paired:
    """A paired comparison of ``a`` against ``b`` (differences ``a - b``).

    diffs: the per-pair differences, in the input order (pairs with a non-finite value
        dropped); mean, ci_low, ci_high: their mean and its t interval (``t_ci``);
    n_pos, n_neg: pairs where ``a`` is larger, smaller; test: "wilcoxon", "paired t" or
        "none" (with the reason); p: its two-sided p-value (NaN when untested).
    """

    diffs: tuple[float, ...]
    mean: float
    ci_low: float
    ci_high: float
    n_pos: int
    n_neg: int
    test: str
    p: float

    @property
    def n(self) -> int:
        return len(self.diffs)


def paired_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
                wilcoxon_min_n: int = WILCOXON_MIN_N) -> Paired:
    """Compare matched values ``a[i]`` and ``b[i]`` (e.g. the same seed in two settings).

    Wilcoxon signed-rank (scipy, two-sided) from ``wilcoxon_min_n`` pairs on; the paired
    t-test (``scipy.stats.ttest_rel``, assumes roughly normal differences) for 2 to
    ``wilcoxon_min_n - 1`` pairs; no test for fewer than 2 pairs or differences without
    spread (all equal: t is undefined).
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples must have the same length, got {x.size} and {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    d = x[ok] - y[ok]
    low, high = t_ci(d)
    mean = float(d.mean()) if d.size else math.nan
    test, p = "none (fewer than 2 pairs)", math.nan
    # differences equal up to rounding have no spread: t would be a huge, meaningless number
    spread = d.size >= 2 and np.ptp(d) > 1e-12 * max(1.0, float(np.abs(d).max()))
    if d.size >= max(2, wilcoxon_min_n) and np.any(d != 0):
        test, p = "wilcoxon", float(sps.wilcoxon(d).pvalue)
    elif spread:
        test, p = "paired t", float(sps.ttest_rel(x[ok], y[ok]).pvalue)
    elif d.size >= 2:
        test = "none (every difference is the same)"
    return Paired(tuple(float(v) for v in d), mean, low, high, int((d > 0).sum()),
                  int((d < 0).sum()), test, p)
