"""What the analysis knows about each searched dimension: kind, scale, when it applies.

The search space (``study.space``) is conditional: ``aug_strength`` and ``positives`` exist
only when there is an augmentation, and the margin's scale depends on the loss. Every
statistic in the report groups trials through ``applies`` and ``scope_of`` so that a
trial whose value of a dimension was forced (not searched) never counts for that value.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from study.space import SEARCHED
from trainables.config import CHOICES


@dataclass(frozen=True)
class Dimension:
    """One searched dimension.

    name: the ``TrialConfig`` field (and MLflow param) name.
    numeric: True for continuous values, grouped into quantile bins; False for choices.
    log: bins and plots of a numeric dimension use a log scale.
    only_if: ``(other_dimension, excluded_value)``: the dimension exists only in trials
        where ``other_dimension != excluded_value`` (elsewhere its value is a forced default).
    per: a dimension whose value changes this one's meaning; numeric bins are made within
        each of its values (the margin is in cosine units for one loss, distances for others).
    choices_per: a dimension whose value decides this one's choices (the loss's by the mode).
    """

    name: str
    numeric: bool = False
    log: bool = False
    only_if: tuple[str, str] | None = None
    per: str | None = None
    choices_per: str | None = None

    @property
    def conditional(self) -> bool:
        """True when the dimension exists, or means the same, only under a condition."""
        return self.only_if is not None or self.per is not None or self.choices_per is not None
    def applies(self, trials: pd.DataFrame) -> pd.Series:
        """Boolean mask (one per row of ``trials``): rows where this dimension was searched."""
        mask = pd.Series(True, index=trials.index)
        if self.only_if is not None:
            other, excluded = self.only_if
            if other in trials:
                mask &= trials[other].astype(str) != excluded
        return mask & trials.get(self.name, pd.Series(index=trials.index, dtype=object)).notna()

    def condition_text(self) -> str:
        """A phrase naming the condition ('' when unconditional)."""
        parts = []
        if self.only_if is not None:
            parts.append(f"only trials with {self.only_if[0]} ≠ {self.only_if[1]}")
        if self.choices_per is not None:
            parts.append(f"its choices depend on the {self.choices_per}")
        if self.per is not None:
            parts.append(f"binned within each {self.per} (its meaning depends on the {self.per})")
        return "; ".join(parts)


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("augmentation"),
        Dimension("aug_strength", numeric=True, only_if=("augmentation", "none")),
        Dimension("positives", only_if=("augmentation", "none")),
        Dimension("mode"),
        Dimension("loss", choices_per="mode"),
        Dimension("margin", numeric=True, per="loss"),
        Dimension("embedding_dim"),
        Dimension("encoder"),
        Dimension("lr", numeric=True, log=True),
        Dimension("batch_size"),
    )
}
# Every dimension the space searches must be described here (checked by the tests).
MISSING = tuple(name for name in SEARCHED if name not in DIMENSIONS)


def value_order(name: str, values: pd.Series) -> list:
    """The display order of a categorical dimension's values: the config's order of choices
    where it has one, else sorted (numbers numerically)."""
    present = list(pd.unique(values.dropna()))
    if name in CHOICES:
        known = [c for c in CHOICES[name] if c in present]
        return known + sorted(v for v in present if v not in known)
    return sorted(present)
