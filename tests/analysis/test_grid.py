"""The seed grid's facts on constructed data with known answers, checked against numpy and
scipy: cell tables with the raw-pixel floor, seed-paired comparisons, representatives,
budget (the observations' verdicts: ``test_observations``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis.grid import (
    ACCURACY_METRICS,
    REPRESENTATIVE_BY,
    budget,
    cell_stats,
    comparison_rows,
    comparisons,
    grid_frame,
    is_seed_grid,
    representatives,
)
from analysis.load import Study
from analysis.stats import holm, paired_test, t_ci
from study.presets import GRID_AUGMENTATIONS as AUGMENTATIONS
from study.presets import GRID_MODES as MODES
from study.schema import OBJECTIVE, TEST_METRICS
from study.space import trial_seed
from tests.analysis.synthetic import grid

PROBE = ACCURACY_METRICS[0]


def test_accuracy_metrics_are_recorded_test_scores():
    assert set(ACCURACY_METRICS) <= set(TEST_METRICS)
    assert ACCURACY_METRICS == ("test_probe_accuracy", "test_precision_at_1", "test_map_at_r")


# ---------------------------------------------------------------------------- statistics
def test_t_ci_matches_scipy():
    x = np.array([0.91, 0.88, 0.93])
    low, high = t_ci(x)
    ref = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert (low, high) == pytest.approx(ref, rel=1e-12)
    assert all(math.isnan(v) for v in t_ci([0.9]))
    assert t_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)


def test_paired_test_uses_t_below_six_pairs_and_wilcoxon_from_six():
    a, b = np.array([0.90, 0.85, 0.93]), np.array([0.86, 0.84, 0.88])
    r = paired_test(a, b)
    assert r.test == "paired t" and r.n == 3 and (r.n_pos, r.n_neg) == (3, 0)
    assert r.p == pytest.approx(sps.ttest_rel(a, b).pvalue)
    assert r.diffs == pytest.approx(tuple(a - b))
    assert r.mean == pytest.approx((a - b).mean())
    assert (r.ci_low, r.ci_high) == pytest.approx(t_ci(a - b))
    rng = np.random.default_rng(0)
    x, y = rng.normal(0.9, 0.02, 8), rng.normal(0.88, 0.02, 8)
    w = paired_test(x, y)
    assert w.test == "wilcoxon" and w.p == pytest.approx(sps.wilcoxon(x - y).pvalue)
    # NaN pairs are dropped; one pair or no spread: no test
    assert paired_test([0.9, np.nan], [0.8, 0.7]).n == 1
    assert math.isnan(paired_test([0.9], [0.8]).p)
    same = paired_test([0.9, 0.8, 0.7], [0.8, 0.7, 0.6])
    assert math.isnan(same.p) and same.test.startswith("none")
    with pytest.raises(ValueError, match="same length"):
        paired_test([1.0, 2.0], [1.0])


# ---------------------------------------------------------------------------- tables
def test_cell_stats_against_numpy():
    frame = grid(lambda aug, mode, i: {PROBE: 0.8 + 0.05 * AUGMENTATIONS.index(aug)
                                       + 0.02 * (mode == "triplet") + 0.01 * i})
    stats = cell_stats(frame, PROBE)
    assert list(zip(stats["augmentation"], stats["mode"], strict=True)) == [
        (a, m) for a in AUGMENTATIONS for m in MODES]
    for row in stats.itertuples():
        x = frame.loc[(frame["augmentation"] == row.augmentation)
                      & (frame["mode"] == row.mode), PROBE].to_numpy()
        assert row.n == 5
        assert row.mean == pytest.approx(x.mean())
        assert row.sd == pytest.approx(x.std(ddof=1))
        ref = sps.t.interval(0.95, 4, loc=x.mean(), scale=sps.sem(x))
        assert (row.ci_low, row.ci_high) == pytest.approx(ref)
        assert math.isnan(row.floor) and row.beats_floor is None  # no floor recorded


def test_cells_are_checked_against_the_floor():
    # none: every trial above the floor; rotation: mean above, two trials not; simclr: below
    offsets = {"none": [0.1] * 5, "rotation": [0.05, 0.05, 0.05, -0.01, -0.02],
               "simclr": [-0.05, 0.01, -0.04, -0.05, -0.02]}
    frame = grid(lambda aug, mode, i: {PROBE: 0.8 + offsets[aug][i]}, noise=0.0,
                 floor={PROBE: 0.8})
    stats = cell_stats(frame, PROBE).set_index(["augmentation", "mode"])
    for mode in MODES:
        assert stats.loc[("none", mode), ["beats_floor", "n_not_above_floor"]].tolist() == [True, 0]
        assert stats.loc[("rotation", mode), ["beats_floor", "n_not_above_floor"]].tolist() \
            == [True, 2]
        assert stats.loc[("simclr", mode), ["beats_floor", "n_not_above_floor"]].tolist() \
            == [False, 4]
    assert (stats["floor"] == 0.8).all()


def test_comparisons_pair_by_seed_and_holm():
    # triplet = pair + 0.03 for every seed, while the seeds differ a lot: only pairing sees it
    frame = grid(lambda aug, mode, i: {PROBE: 0.7 + 0.05 * i + 0.03 * (mode == "triplet")},
                 noise=0.002)
    table = comparisons(frame, "exp", PROBE)
    assert len(table) == 9
    mode_rows = table[table["kind"] == "mode"]
    assert list(mode_rows["within"]) == list(AUGMENTATIONS)
    for row in mode_rows.itertuples():
        assert (row.a, row.b, row.n, row.n_pos) == ("triplet", "pair", 5, 5)
        assert row.mean == pytest.approx(0.03, abs=0.005)
        assert row.clear
        pair = frame[(frame["augmentation"] == row.within) & (frame["mode"] == "pair")]
        trip = frame[(frame["augmentation"] == row.within) & (frame["mode"] == "triplet")]
        diffs = (trip.set_index("seed_index")[PROBE] - pair.set_index("seed_index")[PROBE])
        assert sorted(row.diffs) == pytest.approx(sorted(diffs.to_numpy()))
    aug_rows = table[table["kind"] == "augmentation"]
    assert {(r.a, r.b) for r in aug_rows.itertuples()} == {
        ("rotation", "none"), ("simclr", "none"), ("simclr", "rotation")}
    assert not aug_rows["clear"].any()
    ok = table["p"].notna()
    assert table.loc[ok, "p_holm"].to_numpy() == pytest.approx(holm(table.loc[ok, "p"]))
    # typed records carry the same rows
    rows = comparison_rows(table)
    assert [(r.kind, r.within, r.a, r.b) for r in rows] == list(
        zip(table["kind"], table["within"], table["a"], table["b"], strict=True))
    assert all(r.n == 5 and isinstance(r.clear, bool) for r in rows)


def test_holm_by_hand():
    # sorted: 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> running max 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, np.nan, 0.01]) == pytest.approx([0.5, np.nan, 0.02], nan_ok=True)


def test_representative_is_the_median_probe_seed():
    frame = grid(lambda aug, mode, i: {REPRESENTATIVE_BY: [0.5, 0.9, 0.7, 0.6, 0.8][i]}, noise=0.0)
    picks = representatives(frame, "exp")
    assert set(picks) == {(a, m) for a in AUGMENTATIONS for m in MODES}
    assert all(p["seed_index"] == 2 for p in picks.values())  # 0.7, the median of 5
    even = grid(lambda aug, mode, i: {REPRESENTATIVE_BY: [0.5, 0.9, 0.7, 0.6][i]}, seeds=4,
                noise=0.0)
    assert all(p["seed_index"] == 3 for p in representatives(even, "exp").values())  # 0.6


# ---------------------------------------------------------------------------- loading
def _study(name: str, trials: pd.DataFrame, preset: str | None = "seed-grid",
           study_seed: int = 4, grid_seeds: int = 2) -> Study:
    parents = pd.DataFrame({"run_id": ["parent"], "study_seed": [study_seed],
                            "grid_seeds": [grid_seeds], "preset": [preset],
                            "dataset": ["digits"], "floor_test_probe_accuracy": [0.85],
                            "floor_val_probe_accuracy": [0.84]})
    return Study(name, "1", trials, parents)


def test_grid_frame_numbers_seeds_by_the_study_seed():
    seeds = [trial_seed(4, 1), trial_seed(4, 0)]  # index 1 first: order must not matter
    rows = [{"parent_run_id": "parent", "augmentation": a, "mode": m, "seed": s, OBJECTIVE: 0.9,
             PROBE: 0.88, "epochs": 2, "epochs_run": 2, "train_subset": 300, "eval_train": 300,
             "images_seen": 2 * 300 * (3 if m == "triplet" else 2), "experiment": "g"}
            for a in AUGMENTATIONS for m in MODES for s in seeds]
    rows.append({**rows[0], OBJECTIVE: np.nan})  # unscored trials are left out
    study = _study("g", pd.DataFrame(rows))
    assert is_seed_grid(study)
    assert not is_seed_grid(_study("s", pd.DataFrame(rows), preset="search"))
    frame = grid_frame([study])
    assert len(frame) == 12 and set(frame["dataset"]) == {"digits"}
    assert dict(zip(frame["seed"], frame["seed_index"], strict=True)) == {seeds[0]: 1,
                                                                           seeds[1]: 0}
    assert set(frame["pair_key"]) == {f"parent:{s}" for s in seeds}
    # the floor comes from the parent run, unprefixed metric -> floor_<metric> column
    assert (frame["floor_test_probe_accuracy"] == 0.85).all()
    assert frame["floor_test_map_at_r"].isna().all()
    b = budget(study)
    assert (b.epochs, b.epochs_run, b.train_subset, b.seeds_per_cell, b.grid_seeds) == (
        (2,), (2,), (300,), (2, 2), 2)
    assert b.images_seen == {"pair": (1200,), "triplet": (1800,)}
    assert b.compute_matched is False  # triplet encodes 3 views per anchor, pair 2
    assert b.shortfalls() == {"epochs": (2, 5), "train_subset": (300, 10_000), "seeds": (2, 3)}


def test_budget_says_when_compute_is_matched_or_unknown():
    rows = [{"parent_run_id": "parent", "augmentation": a, "mode": m, "seed": 1, OBJECTIVE: 0.9,
             "epochs": 6, "epochs_run": 6, "train_subset": 0, "images_seen": 6000.0}
            for a in AUGMENTATIONS for m in MODES]
    b = budget(_study("g", pd.DataFrame(rows), grid_seeds=3))
    assert b.compute_matched is True and b.shortfalls() == {"seeds": (1, 3)}
    b = budget(_study("g", pd.DataFrame(rows).assign(images_seen=np.nan)))
    assert b.compute_matched is None
