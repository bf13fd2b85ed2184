"""The seed grid's computations on constructed data with known answers, checked against
numpy and scipy: cell tables, seed-paired comparisons, representatives, budget, and the
verdicts of the original study's three observations."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis.grid import (
    MIXED,
    NO_DATA,
    NOT_SUPPORTED,
    SUPPORTED,
    Verdict,
    budget,
    cell_stats,
    combine,
    comparisons,
    grid_frame,
    is_seed_grid,
    observation_1,
    observation_2,
    observation_3,
    representatives,
    structure_checks,
)
from analysis.load import Study
from analysis.stats import paired_test, t_ci
from study.presets import GRID_AUGMENTATIONS as AUGMENTATIONS
from study.presets import GRID_MODES as MODES
from study.schema import OBJECTIVE, STRUCTURE_METRICS
from study.space import trial_seed

Values = Callable[[str, str, int], dict[str, float]]


def grid(values: Values, *, experiment: str = "exp", dataset: str = "d", seeds: int = 5,
         noise: float = 0.005, seed: int = 0) -> pd.DataFrame:
    """A grid frame as ``grid_frame`` returns it: one row per (augmentation, mode, seed
    index), each metric ``values(aug, mode, i)[metric]`` plus gaussian noise; rows shuffled
    (pairing must go by seed, not by row order)."""
    rng = np.random.default_rng(seed)
    rows = []
    for aug in AUGMENTATIONS:
        for mode in MODES:
            for i in range(seeds):
                metrics = {k: v + rng.normal(0, noise) for k, v in values(aug, mode, i).items()}
                rows.append({"experiment": experiment, "dataset": dataset, "augmentation": aug,
                             "mode": mode, "seed": 1000 + i, "seed_index": i,
                             "pair_key": f"parent:{1000 + i}", "run_id": f"{aug}-{mode}-{i}",
                             "trial_id": f"t{aug[:2]}{mode[:2]}{i}", "epochs": 3,
                             "train_subset": 20_000, "embedding_dim": 64, **metrics})
    frame = pd.DataFrame(rows)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def flat(value: float = 0.9) -> Values:
    return lambda aug, mode, i: {OBJECTIVE: value, "val_precision_at_1": value}


def structure(sil_triplet: float, sil_pair: float, line_triplet: float,
              line_pair: float) -> Values:
    def values(aug: str, mode: str, i: int) -> dict[str, float]:
        sil = sil_triplet if mode == "triplet" else sil_pair
        line = line_triplet if mode == "triplet" else line_pair
        return {OBJECTIVE: 0.9, "silhouette": sil, "tsne_silhouette": sil + 0.1,
                "line_likeness": line, "tsne_line_likeness": line + 0.2}
    return values


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
    frame = grid(lambda aug, mode, i: {OBJECTIVE: 0.8 + 0.05 * AUGMENTATIONS.index(aug)
                                       + 0.02 * (mode == "triplet") + 0.01 * i})
    stats = cell_stats(frame, OBJECTIVE)
    assert list(zip(stats["augmentation"], stats["mode"], strict=True)) == [
        (a, m) for a in AUGMENTATIONS for m in MODES]
    for row in stats.itertuples():
        x = frame.loc[(frame["augmentation"] == row.augmentation)
                      & (frame["mode"] == row.mode), OBJECTIVE].to_numpy()
        assert row.n == 5
        assert row.mean == pytest.approx(x.mean())
        assert row.sd == pytest.approx(x.std(ddof=1))
        ref = sps.t.interval(0.95, 4, loc=x.mean(), scale=sps.sem(x))
        assert (row.ci_low, row.ci_high) == pytest.approx(ref)


def test_comparisons_pair_by_seed_and_holm():
    # triplet = pair + 0.03 for every seed, while the seeds differ a lot: only pairing sees it
    frame = grid(lambda aug, mode, i: {OBJECTIVE: 0.7 + 0.05 * i + 0.03 * (mode == "triplet")},
                 noise=0.002)
    table = comparisons(frame, "exp", OBJECTIVE)
    assert len(table) == 9
    mode_rows = table[table["kind"] == "mode"]
    assert list(mode_rows["within"]) == list(AUGMENTATIONS)
    for row in mode_rows.itertuples():
        assert (row.a, row.b, row.n, row.n_pos) == ("triplet", "pair", 5, 5)
        assert row.mean == pytest.approx(0.03, abs=0.005)
        assert row.clear
        pair = frame[(frame["augmentation"] == row.within) & (frame["mode"] == "pair")]
        trip = frame[(frame["augmentation"] == row.within) & (frame["mode"] == "triplet")]
        diffs = (trip.set_index("seed_index")[OBJECTIVE] - pair.set_index("seed_index")[OBJECTIVE])
        assert sorted(row.diffs) == pytest.approx(sorted(diffs.to_numpy()))
    aug_rows = table[table["kind"] == "augmentation"]
    assert {(r.a, r.b) for r in aug_rows.itertuples()} == {
        ("rotation", "none"), ("simclr", "none"), ("simclr", "rotation")}
    assert not aug_rows["clear"].any()
    ok = table["p"].notna()
    from analysis.stats import holm

    assert table.loc[ok, "p_holm"].to_numpy() == pytest.approx(holm(table.loc[ok, "p"]))


def test_representative_is_the_median_probe_seed():
    frame = grid(lambda aug, mode, i: {OBJECTIVE: [0.5, 0.9, 0.7, 0.6, 0.8][i]}, noise=0.0)
    picks = representatives(frame, "exp")
    assert set(picks) == {(a, m) for a in AUGMENTATIONS for m in MODES}
    assert all(p["seed_index"] == 2 for p in picks.values())  # 0.7, the median of 5
    even = grid(lambda aug, mode, i: {OBJECTIVE: [0.5, 0.9, 0.7, 0.6][i]}, seeds=4, noise=0.0)
    assert all(p["seed_index"] == 3 for p in representatives(even, "exp").values())  # 0.6


# ---------------------------------------------------------------------------- loading
def _study(name: str, trials: pd.DataFrame, preset: str | None = "seed-grid",
           study_seed: int = 4, grid_seeds: int = 2) -> Study:
    parents = pd.DataFrame({"run_id": ["parent"], "study_seed": [study_seed],
                            "grid_seeds": [grid_seeds], "preset": [preset],
                            "dataset": ["digits"]})
    return Study(name, "1", trials, parents)


def test_grid_frame_numbers_seeds_by_the_study_seed():
    seeds = [trial_seed(4, 1), trial_seed(4, 0)]  # index 1 first: order must not matter
    rows = [{"parent_run_id": "parent", "augmentation": a, "mode": m, "seed": s, OBJECTIVE: 0.9,
             "epochs": 2, "train_subset": 300, "eval_train": 300, "experiment": "g"}
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
    b = budget(study)
    assert (b.epochs, b.train_subset, b.seeds_per_cell, b.grid_seeds) == ((2,), (300,), (2, 2), 2)
    assert len(b.small()) == 3  # epochs, training subset and seeds all small


# ---------------------------------------------------------------------------- verdicts
def test_observation_3_supported_when_triplet_clusters_and_pair_lines():
    frame = grid(structure(sil_triplet=0.5, sil_pair=0.2, line_triplet=0.4, line_pair=0.7))
    checks = structure_checks(frame, "exp")
    assert list(checks["status"]) == ["holds"] * 4
    assert (checks["n"] == 15).all()  # 3 augmentations x 5 seeds, matched
    v = observation_3(frame, "exp")
    assert v.verdict == SUPPORTED
    assert "silhouette triplet − pair = +0.300" in v.text


def test_observation_3_not_supported_when_reversed():
    frame = grid(structure(sil_triplet=0.2, sil_pair=0.5, line_triplet=0.7, line_pair=0.4))
    assert list(structure_checks(frame, "exp")["status"]) == ["reversed"] * 4
    v = observation_3(frame, "exp")
    assert v.verdict == NOT_SUPPORTED and "4 of 4 checks clearly reversed (0 of 4" in v.text


def test_observation_3_mixed_and_no_data():
    clusters_only = grid(structure(sil_triplet=0.5, sil_pair=0.2, line_triplet=0.5,
                                   line_pair=0.5))
    checks = structure_checks(clusters_only, "exp")
    assert list(checks["status"]) == ["holds", "unclear", "holds", "unclear"]
    assert observation_3(clusters_only, "exp").verdict == MIXED
    assert observation_3(grid(flat()).assign(**{m: np.nan for m in STRUCTURE_METRICS}),
                         "exp").verdict == NO_DATA


def _accuracy(levels: dict[str, dict[str, float]]) -> Values:
    return lambda aug, mode, i: {OBJECTIVE: levels[mode][aug]}


def test_observation_1_verdicts():
    weaker_wins = _accuracy({"pair": {"none": 0.90, "rotation": 0.95, "simclr": 0.85},
                             "triplet": {"none": 0.9, "rotation": 0.9, "simclr": 0.9}})
    v = observation_1(grid(weaker_wins), "exp")
    assert v.verdict == SUPPORTED, v.text
    assert "rotation beats it clearly" in v.text and "best rotation, worst simclr: clear" in v.text
    # a clear effect, but more augmentation is better: only half of the observation
    more_is_better = _accuracy({m: {"none": 0.85, "rotation": 0.9, "simclr": 0.95}
                                for m in MODES})
    v = observation_1(grid(more_is_better), "exp")
    assert v.verdict == MIXED and "simclr (the strongest) is the best in every mode" in v.text
    # nothing differs and simclr is (slightly) best everywhere
    jitter = {"none": [0.0] * 5, "rotation": [-0.01, 0.008, -0.006, 0.004, 0.004],
              "simclr": [0.01, -0.008, 0.006, -0.004, 0.006]}  # simclr +0.002 on average

    def flat_simclr(aug: str, mode: str, i: int) -> dict[str, float]:
        return {OBJECTIVE: 0.9 + jitter[aug][i]}

    v = observation_1(grid(flat_simclr, noise=0.0), "exp")
    assert v.verdict == NOT_SUPPORTED, v.text
    # one seed: nothing can be tested
    assert observation_1(grid(weaker_wins, seeds=1), "exp").verdict == NO_DATA


def test_observation_2_verdicts():
    first = grid(_accuracy({"pair": {a: 0.95 for a in AUGMENTATIONS},
                            "triplet": {a: 0.90 for a in AUGMENTATIONS}}), experiment="mnist")
    flipped = grid(_accuracy({"pair": {a: 0.50 for a in AUGMENTATIONS},
                              "triplet": {a: 0.60 for a in AUGMENTATIONS}}),
                   experiment="cifar", dataset="cifar10", seed=1)
    v = observation_2(pd.concat([first, flipped]), "mnist", "cifar")
    assert v.verdict == SUPPORTED, v.text
    assert "triplet − pair (none)" in v.text and "clear in both" in v.text
    same = grid(_accuracy({"pair": {"none": 0.9, "rotation": 0.8, "simclr": 0.7},
                           "triplet": {"none": 0.6, "rotation": 0.5, "simclr": 0.4}}),
                noise=0.0)
    again = same.assign(experiment="again")
    v = observation_2(pd.concat([same.assign(experiment="one"), again]), "one", "again")
    assert v.verdict == NOT_SUPPORTED, v.text
    assert "Kendall's tau 1.00" in v.text and "both experiments use the dataset d" in v.text
    # the same ranking, only lower: the level changes, the picture does not
    lower = same.assign(experiment="lower", **{OBJECTIVE: same[OBJECTIVE] - 0.2})
    lower[OBJECTIVE] += np.random.default_rng(3).normal(0, 0.001, len(lower))
    v = observation_2(pd.concat([same.assign(experiment="one"), lower]), "one", "lower")
    assert v.verdict == MIXED and "in level" in v.text, v.text


def test_combine():
    def v(verdict: str) -> Verdict:
        return Verdict(1, "x", verdict, "")

    assert combine([v(SUPPORTED), v(SUPPORTED)]) == SUPPORTED
    assert combine([v(SUPPORTED), v(NOT_SUPPORTED)]) == MIXED
    assert combine([v(NO_DATA), v(NOT_SUPPORTED)]) == NOT_SUPPORTED
    assert combine([v(NO_DATA)]) == NO_DATA
