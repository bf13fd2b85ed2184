"""Parameter importance on synthetic trials whose metric one dimension drives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.importance import MIN_TRIALS, param_importance, scopes, study_importance
from study.schema import OBJECTIVE
from tests.analysis.synthetic import random_config, synthetic_metric

PLAIN = ("augmentation", "mode", "embedding_dim", "lr", "batch_size")


def _trials(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        cfg = random_config(rng)
        rows.append({**cfg.to_dict(), OBJECTIVE: synthetic_metric(cfg, rng)})
    frame = pd.DataFrame(rows)
    frame["embedding_dim"] = frame["embedding_dim"].astype("Int64")  # as analysis.load types it
    return frame


def test_the_driving_dimension_is_most_important():
    result = param_importance(_trials(40), PLAIN)
    assert result.note is None and result.n == 40
    assert next(iter(result.importances)) == "mode"
    assert sum(result.importances.values()) == pytest.approx(1.0)
    # seeded: the same numbers twice; a spread over the forest seeds beside each share
    assert param_importance(_trials(40), PLAIN).importances == result.importances
    assert set(result.spread) == set(result.importances)
    assert all(v >= 0 for v in result.spread.values()) and max(result.spread.values()) > 0
    one = param_importance(_trials(40), PLAIN, seeds=(3,))
    assert set(one.spread.values()) == {0.0} and one.importances != result.importances


def test_too_few_trials_or_nothing_to_explain_gives_a_note():
    few = param_importance(_trials(MIN_TRIALS - 1), PLAIN)
    assert few.importances == {}
    assert few.note == f"not enough trials: n={MIN_TRIALS - 1} scored (needs {MIN_TRIALS})"
    flat = _trials(MIN_TRIALS + 5).assign(**{OBJECTIVE: 0.5})
    assert "same" in param_importance(flat, PLAIN).note
    unscored = _trials(10).assign(**{OBJECTIVE: np.nan})
    assert param_importance(unscored, PLAIN).note.startswith("not enough trials: n=0")


def test_conditional_dimensions_get_their_own_scopes():
    trials = _trials(30, seed=1)
    searched = ("augmentation", "aug_strength", "positives", "mode", "loss", "mining", "margin",
                "temperature", "embedding_dim", "lr", "batch_size")
    found = {s.name: s for s in scopes(trials, searched)}
    assert found["all trials"].dimensions == PLAIN
    aug = found["augmentation ≠ none"]
    assert {"aug_strength", "positives"} <= set(aug.dimensions)
    assert (trials.loc[aug.mask, "augmentation"] != "none").all()
    assert "loss" in found["mode = pair"].dimensions
    assert "mining" in found["mode = triplet"].dimensions
    triplet = found["mode = triplet"]  # one loss only with triplets: left out as constant
    assert "loss" in param_importance(trials[triplet.mask], triplet.dimensions).constant
    assert "mode = triplet" not in {s.name for s in scopes(trials, PLAIN + ("loss",))}
    assert "margin" in found["loss = triplet_margin"].dimensions
    assert "loss = ntxent" not in found  # the margin is no hyperparameter of ntxent
    temperature = found["loss ∈ {ntxent, supcon}"]
    assert "temperature" in temperature.dimensions
    assert trials.loc[temperature.mask, "loss"].isin(["ntxent", "supcon"]).all()
    results = study_importance(trials, searched)
    assert results[0].scope == "all trials"
    assert all(r.importances or r.note for r in results)
