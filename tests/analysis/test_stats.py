"""Statistics against independent references: scipy's bootstrap and Mann-Whitney U, Holm
by hand, binning on known values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis.stats import (
    assign_bins,
    bootstrap_ci,
    holm,
    mann_whitney,
    min_mann_whitney_p,
    n_bins_for,
    pairwise_tests,
    quantile_edges,
    summarize_groups,
    t_ci,
)


def test_bootstrap_ci_matches_scipy_percentile_interval():
    x = np.random.default_rng(3).normal(0.85, 0.05, size=25)
    low, high = bootstrap_ci(x, n_resamples=20_000, seed=1)
    ref = sps.bootstrap((x,), np.mean, n_resamples=20_000, method="percentile",
                        confidence_level=0.95, random_state=2).confidence_interval
    width = ref.high - ref.low
    assert low == pytest.approx(ref.low, abs=0.05 * width)
    assert high == pytest.approx(ref.high, abs=0.05 * width)
    assert low < x.mean() < high


def test_bootstrap_ci_is_seeded_and_undefined_below_two_values():
    x = [0.8, 0.9, 0.85, 0.7]
    assert bootstrap_ci(x, seed=5) == bootstrap_ci(x, seed=5)
    assert all(math.isnan(v) for v in bootstrap_ci([0.9]))
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)


@pytest.mark.parametrize("sizes", [(5, 7), (12, 9), (30, 40)])
def test_mann_whitney_equals_scipy(sizes):
    rng = np.random.default_rng(sum(sizes))
    a, b = rng.normal(0, 1, sizes[0]), rng.normal(0.5, 1, sizes[1])
    ref = sps.mannwhitneyu(a, b, alternative="two-sided")
    assert mann_whitney(a, b) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))


def test_holm_hand_computed_example():
    # m = 4; sorted p: 0.01, 0.02, 0.03, 0.04 -> x4, x3, x2, x1 = 0.04, 0.06, 0.06, 0.04
    # running max: 0.04, 0.06, 0.06, 0.06 ; back in input order.
    p = [0.03, 0.01, 0.04, 0.02]
    assert holm(p) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    # capped at 1, NaN skipped and not counted in m (m = 2 here)
    out = holm([0.6, np.nan, 0.2])
    assert out[0] == pytest.approx(0.6) and math.isnan(out[1]) and out[2] == pytest.approx(0.4)
    assert holm([0.7, 0.8]) == pytest.approx([1.0, 1.0])
    assert len(holm([])) == 0


def test_quantile_edges_and_bins():
    x = np.arange(1, 13, dtype=float)  # 12 values -> 3 bins of 4
    edges = quantile_edges(x)
    assert n_bins_for(12) == 3 and len(edges) == 4
    bins = assign_bins(x, edges)
    assert list(pd.Series(bins).value_counts(sort=False)) == [4, 4, 4]
    assert bins.categories[-1].endswith("]") and bins.categories[0].endswith(")")
    assert bins[0] == bins.categories[0] and bins[-1] == bins.categories[-1]
    # outside the edges or missing: no bin
    assert pd.isna(assign_bins([0.0, np.nan, 13.0], edges)).all()


def test_log_bins_and_degenerate_inputs():
    lr = np.array([1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2])
    edges = quantile_edges(lr, 3, log=True)
    assert edges[0] == pytest.approx(1e-4) and edges[-1] == pytest.approx(5e-2)
    # the 1/3 quantile sits 2/3 of the way from 5e-4 to 1e-3: geometric, not arithmetic
    assert edges[1] == pytest.approx(5e-4 * 2 ** (2 / 3))
    assert quantile_edges(lr, 3)[1] == pytest.approx(5e-4 + (2 / 3) * 5e-4)
    same = quantile_edges([0.3, 0.3, 0.3])
    assert list(assign_bins([0.3, 0.3], same)) == ["[0.3, 0.3]"] * 2
    assert len(quantile_edges([])) == 0 and len(assign_bins([1.0], np.array([]))) == 1


def test_summarize_groups_keeps_order_and_counts():
    groups = pd.Series(pd.Categorical(["b", "a", "b", "b", "a"], categories=["a", "b", "c"],
                                      ordered=True))
    values = pd.Series([0.9, 0.5, 0.7, np.nan, 0.6])
    s = summarize_groups(groups, values)
    assert list(s["group"]) == ["a", "b", "c"]
    assert list(s["n"]) == [2, 2, 0]
    assert s.loc[0, "mean"] == pytest.approx(0.55) and s.loc[1, "median"] == pytest.approx(0.8)
    assert math.isnan(s.loc[2, "mean"]) and math.isnan(s.loc[2, "ci_low"])


def test_pairwise_tests_winners_and_untestable_pairs():
    rng = np.random.default_rng(0)
    hi, lo = rng.normal(0.95, 0.01, 12), rng.normal(0.80, 0.01, 9)
    groups = pd.Series(["triplet"] * 12 + ["pair"] * 9 + ["few"] * 2)
    values = pd.Series(np.r_[hi, lo, [0.5, 0.6]])
    table = pairwise_tests(groups, values)
    assert len(table) == 3
    row = table[(table["a"] == "triplet") & (table["b"] == "pair")].iloc[0]
    ref = sps.mannwhitneyu(hi, lo, alternative="two-sided").pvalue
    assert row["p"] == pytest.approx(ref)
    # all three pairs can reach p < 0.05 (12 vs 2: 2 / C(14, 2) = 0.022; 9 vs 2: 0.036),
    # so all three are tested and this, the smallest p, is multiplied by 3
    assert row["p_holm"] == pytest.approx(min(1.0, 3 * ref))
    assert row["winner"] == "triplet"
    tested = table[(table["a"] == "pair") & (table["b"] == "few")].iloc[0]
    assert np.isfinite(tested["p"]) and math.isnan(tested["untested"])
    assert min_mann_whitney_p(2, 2) == pytest.approx(1 / 3)
    assert min_mann_whitney_p(3, 3) == pytest.approx(0.1)
    assert min_mann_whitney_p(4, 4) == pytest.approx(2 / 70)
    # the smallest possible p is what an exact test gives for fully separated groups
    assert min_mann_whitney_p(3, 4) == pytest.approx(
        sps.mannwhitneyu([1, 2, 3], [4, 5, 6, 7], method="exact").pvalue)
    small = pairwise_tests(pd.Series(["x"] * 3 + ["y"] * 3),
                           pd.Series([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]))
    assert math.isnan(small.loc[0, "p"]) and small.loc[0, "untested"] == pytest.approx(0.1)
    # lower is better flips the winner; equal groups: no winner
    flipped = pairwise_tests(groups, values, higher_is_better=False)
    assert flipped.loc[0, "winner"] == "pair"
    same = pairwise_tests(pd.Series(["x"] * 5 + ["y"] * 5), pd.Series([0.5, 0.6] * 5))
    assert same.loc[0, "winner"] is None and same.loc[0, "p_holm"] > 0.05


def test_small_groups_get_t_intervals_and_large_ones_the_bootstrap():
    rng = np.random.default_rng(3)
    small, large = rng.normal(0.9, 0.02, 5), rng.normal(0.9, 0.02, 40)
    frame = summarize_groups(pd.Series(["s"] * 5 + ["l"] * 40), pd.Series(np.r_[small, large]))
    by = frame.set_index("group")
    assert by.loc["s", "ci"] == "t" and by.loc["l", "ci"] == "bootstrap"
    assert (by.loc["s", "ci_low"], by.loc["s", "ci_high"]) == pytest.approx(t_ci(small))
