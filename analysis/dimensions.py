"""The analysis's view of the table of dimensions (``trainables.config.DIMENSIONS``):
per-trial masks of where a dimension applies, and how to group and bin it.

Nothing here is a second copy of the rules: the condition a dimension exists under, its
scale and what splits it all come from its row.  Every statistic in the report groups
trials through ``applies`` so that a trial whose value of a dimension was forced (not
searched) never counts for that value.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from trainables.config import DIMENSIONS, SEARCHED
from trainables.dimensions import AUGMENTATION, Dimension, losses_using


@dataclass(frozen=True)
class View:
    """One dimension as the analysis reads it.

    numeric: continuous values, grouped into quantile bins; else grouped by value.
    per: bins are made within each value of this dimension, its units depending on it (the
        margin: a cosine for one loss, a distance for the others).
    choices_per: the dimension whose value decides this one's choices (the loss by mode).
    """

    row: Dimension

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def numeric(self) -> bool:
        return self.row.numeric

    @property
    def log(self) -> bool:
        return self.row.log

    @property
    def per(self) -> str | None:
        return self.row.split_by if self.row.search_per is not None else None

    @property
    def choices_per(self) -> str | None:
        return self.row.split_by if not self.row.numeric else None

    @property
    def only_if(self) -> str | None:
        """The condition it exists under, as text (``augmentation ≠ none``), or None."""
        return str(self.row.when) if self.row.when is not None else None

    @property
    def loss_hyperparameter(self) -> bool:
        return self.row.loss_hyperparameter

    @property
    def conditional(self) -> bool:
        """True when the dimension exists, or means the same, only under a condition."""
        return (self.row.when is not None or self.per is not None
                or self.choices_per is not None or self.loss_hyperparameter)

    def losses(self) -> tuple[str, ...]:
        """The losses built with this dimension (empty unless a loss hyperparameter)."""
        return losses_using(self.name) if self.loss_hyperparameter else ()

    def condition_mask(self, trials: pd.DataFrame) -> pd.Series:
        """Boolean mask over ``trials``: rows where the dimension's condition holds (all rows
        when it has none)."""
        if not (self.row.when is not None or self.loss_hyperparameter):
            return pd.Series(True, index=trials.index)
        return trials.apply(lambda row: self.row.applies(row.to_dict()), axis=1).astype(bool) \
            if len(trials) else pd.Series(True, index=trials.index)

    def applies(self, trials: pd.DataFrame) -> pd.Series:
        """Boolean mask over ``trials``: rows where this dimension was searched and has a
        value."""
        values = trials[self.name] if self.name in trials else pd.Series(index=trials.index,
                                                                          dtype=object)
        return self.condition_mask(trials) & values.notna()

    def condition_text(self) -> str:
        """A phrase naming the condition ('' when unconditional)."""
        parts = []
        if self.only_if is not None:
            parts.append(f"only trials with {self.only_if}")
        if self.loss_hyperparameter:
            parts.append(f"only trials whose loss uses it ({', '.join(self.losses())})")
        if self.choices_per is not None:
            parts.append(f"its choices depend on the {self.choices_per}")
        if self.per is not None:
            parts.append(f"binned within each {self.per}, since its meaning depends on the {self.per}")
        return "; ".join(parts)


# The dimensions the analysis looks at, in the search space's order.
ANALYSED = SEARCHED


def dimension(name: str) -> View:
    """The analysis's view of dimension ``name`` (a ``TrialConfig`` field)."""
    return View(DIMENSIONS[name])


def value_order(name: str, values: pd.Series) -> list:
    """The display order of a categorical dimension's values: augmentations weakest to
    strongest, other choices in the table's order, anything else sorted."""
    present = list(pd.unique(values.dropna()))
    if name in DIMENSIONS and DIMENSIONS[name].kind == "str":
        choices = DIMENSIONS[name].choices
        if name == "augmentation":
            choices = tuple(sorted(choices, key=lambda a: AUGMENTATION[a].strength))
        known = [c for c in choices if c in present]
        return known + sorted((v for v in present if v not in known), key=str)
    return sorted(present)
