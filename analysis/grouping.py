"""Which group each trial falls in for a dimension: its value, or its quantile bin.

Categorical dimensions (and the few-valued embedding_dim, batch_size) group by value.
Numeric ones (aug_strength, margin, lr) group by quantile bins; the margin is binned
within each loss, its meaning depending on the loss. Trials where a dimension does not
apply (``Dimension.applies``) get no group.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.dimensions import dimension, value_order
from analysis.stats import assign_bins, quantile_edges


def dimension_groups(trials: pd.DataFrame, name: str,
                     reference: pd.DataFrame | None = None) -> pd.Series:
    """An ordered categorical Series (index of ``trials``) naming each trial's group for
    dimension ``name``; NaN where the dimension does not apply.

    Bin edges of numeric dimensions come from ``reference`` (default ``trials``), so that
    several studies can share one set of bins.
    """
    dim = dimension(name)
    reference = trials if reference is None else reference
    applies = dim.applies(trials)
    if not dim.numeric:
        order = value_order(name, reference.loc[dim.applies(reference), name])
        order += [v for v in value_order(name, trials.loc[applies, name]) if v not in order]
        labels = [str(v) for v in order]
        codes = trials[name].map({v: i for i, v in enumerate(order)})
        codes = codes.where(applies, -1).fillna(-1).astype(int)
        return pd.Series(pd.Categorical.from_codes(codes, categories=labels, ordered=True),
                         index=trials.index, name=name)
    if dim.per is None:
        edges = quantile_edges(reference.loc[dim.applies(reference), name], log=dim.log)
        groups = assign_bins(trials[name].where(applies), edges)
        return pd.Series(groups, index=trials.index, name=name)
    # Bins within each value of ``dim.per``, labelled "<per value>: [low, high)".
    per_values = value_order(dim.per, reference[dim.per])
    labels: list[str] = []
    result = pd.Series(np.nan, index=trials.index, dtype=object)
    for value in per_values:
        ref_rows = dim.applies(reference) & (reference[dim.per] == value)
        edges = quantile_edges(reference.loc[ref_rows, name], log=dim.log)
        rows = applies & (trials[dim.per] == value)
        bins = assign_bins(trials.loc[rows, name], edges)
        labels += [f"{value}: {b}" for b in bins.categories]
        result.loc[rows] = [f"{value}: {b}" if isinstance(b, str) else np.nan for b in bins]
    return pd.Series(pd.Categorical(result, categories=labels, ordered=True),
                     index=trials.index, name=name)
