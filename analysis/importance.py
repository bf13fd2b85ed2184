"""Parameter importance: Optuna's fANOVA on an in-memory study rebuilt from MLflow trials.

fANOVA (Hutter, Hoos & Leyton-Brown 2014) fits a random forest of the objective on the
settings and splits its variance by dimension. The search space is conditional, and fANOVA
needs every dimension in every trial, so the importance is computed per *scope*:

- ``all trials``: the unconditional dimensions (augmentation, mode, embedding_dim, ...).
- one scope per condition: ``augmentation ≠ none`` adds aug_strength and positives,
  ``mode = triplet`` the triplet mining;
  ``mode = pair`` adds the loss (its choices depend on the mode); ``loss = X`` adds the
  margin (its scale depends on the loss).

A scope with fewer than ``MIN_TRIALS`` scored trials, or whose metric does not vary, is
reported as such instead of computed.  The forest is random: each importance is the mean
over the forest seeds ``SEEDS``, with its standard deviation as the spread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.dimensions import dimension
from study.schema import OBJECTIVE, OBJECTIVE_MODE

# fANOVA's forest learns the metric from the trials themselves: below 20 trials a dozen
# dimensions are each learnt from a handful of points and the shares mostly reflect noise.
MIN_TRIALS = 20
SEEDS = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class Scope:
    """A subset of trials and the dimensions whose importance is computed on it.

    name: e.g. ``all trials`` or ``augmentation ≠ none``.
    mask: boolean Series over the trials frame's index.
    dimensions: the candidate dimensions (those varying within the scope are used).
    """

    name: str
    mask: pd.Series
    dimensions: tuple[str, ...]


@dataclass(frozen=True)
class ImportanceResult:
    """One scope's result: ``importances`` (dimension -> share of variance, mean over the
    forest ``SEEDS``, largest first) with their standard deviation over the seeds
    (``spread``), or, when not computed, a ``note`` saying why; ``n``: scored trials used;
    ``constant``: candidate dimensions left out because they take one value in the scope."""

    scope: str
    n: int
    importances: dict[str, float] = field(default_factory=dict)
    spread: dict[str, float] = field(default_factory=dict)
    note: str | None = None
    constant: tuple[str, ...] = ()


def scopes(trials: pd.DataFrame, searched: tuple[str, ...]) -> list[Scope]:
    """The scopes of a study: ``all trials`` first, then one per condition of a searched
    conditional dimension, kept only when that dimension varies within it."""
    plain = tuple(d for d in searched if not dimension(d).conditional)
    result = [Scope("all trials", pd.Series(True, index=trials.index), plain)]
    candidates: dict[str, tuple[pd.Series, list[str]]] = {}
    for name in searched:
        dim = dimension(name)
        if dim.only_if is not None and dim.row.when.key in trials:
            candidates.setdefault(dim.only_if,
                                  (dim.condition_mask(trials), []))[1].append(name)
        if dim.loss_hyperparameter and dim.per is None and "loss" in trials:
            candidates.setdefault(f"loss ∈ {{{', '.join(dim.losses())}}}",
                                  (dim.condition_mask(trials), []))[1].append(name)
        for other in (dim.choices_per, dim.per):
            if other is not None and other in trials:
                for value in trials[other].dropna().unique():
                    candidates.setdefault(f"{other} = {value}",
                                          (trials[other] == value, []))[1].append(name)
    for label, (mask, extra) in candidates.items():
        if any(trials.loc[mask & dimension(d).applies(trials), d].nunique() > 1
               for d in extra):
            result.append(Scope(label, mask, plain + tuple(extra)))
    return result


def param_importance(trials: pd.DataFrame, dimensions: tuple[str, ...], *,
                     scope: str = "all trials", seeds: tuple[int, ...] = SEEDS) -> ImportanceResult:
    """fANOVA importance of ``dimensions`` for the ``OBJECTIVE`` column of ``trials``.

    Only scored trials (metric present) count; dimensions with one value among them are
    left out. Returns an ``ImportanceResult`` with a ``note`` instead of importances when
    there are fewer than ``MIN_TRIALS`` scored trials, nothing varies, or the metric is
    constant.
    """
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    scored = trials[trials[OBJECTIVE].notna()]
    n = len(scored)
    varying = tuple(d for d in dimensions if d in scored and scored[d].nunique(dropna=True) > 1)
    constant = tuple(d for d in dimensions if d not in varying)
    if n < MIN_TRIALS:
        return ImportanceResult(scope, n, note=f"not enough trials: n={n} scored "
                                f"(needs {MIN_TRIALS})", constant=constant)
    if not varying:
        return ImportanceResult(scope, n, note="no searched dimension varies in this scope",
                                constant=constant)
    if scored[OBJECTIVE].nunique() < 2:
        return ImportanceResult(scope, n, note=f"every trial has the same {OBJECTIVE}",
                                constant=constant)
    scored = scored.dropna(subset=list(varying))
    distributions = {}
    for name in varying:
        dim = dimension(name)
        if dim.numeric:
            distributions[name] = FloatDistribution(float(scored[name].min()),
                                                    float(scored[name].max()), log=dim.log)
        else:
            distributions[name] = CategoricalDistribution(
                sorted({_plain(v) for v in scored[name]}, key=str))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if OBJECTIVE_MODE == "max" else "minimize")
    study.add_trials([
        optuna.trial.create_trial(
            params={name: _plain(row[name]) for name in varying},
            distributions=distributions, value=float(row[OBJECTIVE]))
        for _, row in scored.iterrows()
    ])
    runs = pd.DataFrame([get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=s))
                         for s in seeds]).astype(float)
    mean, spread = runs.mean(), runs.std(ddof=1).fillna(0.0)
    order = mean[np.isfinite(mean)].sort_values(ascending=False).index
    return ImportanceResult(scope, len(scored), {k: float(mean[k]) for k in order},
                            {k: float(spread[k]) for k in order}, constant=constant)


def _plain(value: object) -> object:
    """numpy scalars -> Python scalars (Optuna's distributions accept only the latter);
    integral floats of int dimensions stay floats here, which Optuna accepts."""
    return value.item() if isinstance(value, np.generic) else value


def study_importance(trials: pd.DataFrame, searched: tuple[str, ...]) -> list[ImportanceResult]:
    """``param_importance`` for every scope of ``scopes`` (main scope first)."""
    return [param_importance(trials[s.mask], s.dimensions, scope=s.name)
            for s in scopes(trials, searched)]


def importance_table(results: list[ImportanceResult]) -> pd.DataFrame:
    """Long table for CSV: ``scope, n, dimension, importance, spread, note`` (one row per
    computed importance; one row with an empty dimension per scope that was not computed)."""
    rows = []
    for r in results:
        if r.importances:
            rows += [{"scope": r.scope, "n": r.n, "dimension": d, "importance": v,
                      "spread": r.spread.get(d, np.nan), "note": ""}
                     for d, v in r.importances.items()]
        else:
            rows.append({"scope": r.scope, "n": r.n, "dimension": "", "importance": np.nan,
                         "spread": np.nan, "note": r.note or ""})
    return pd.DataFrame(rows, columns=["scope", "n", "dimension", "importance", "spread", "note"])
