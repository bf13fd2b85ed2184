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
from trainables.config import CHOICES, LOSS_SPECS


@dataclass(frozen=True)
class Dimension:
    """One searched dimension.

    name: the ``TrialConfig`` field (and MLflow param) name.
    numeric: True for continuous values, grouped into quantile bins; False for choices.
    log: bins and plots of a numeric dimension use a log scale.
    only_if: ``(other_dimension, "=" or "≠", value)``: the dimension exists only in trials
        that meet this condition (elsewhere its value is a forced default).
    per: a dimension whose value changes this one's meaning; numeric bins are made within
        each of its values (the margin is in cosine units for one loss, distances for others).
    choices_per: a dimension whose value decides this one's choices (the loss's by the mode).
    loss_hyperparameter: the dimension exists only in trials whose loss is built with it
        (``LOSS_SPECS[loss].hyperparameters``: the margin is unused by ntxent and supcon).
    """

    name: str
    numeric: bool = False
    log: bool = False
    only_if: tuple[str, str, str] | None = None
    per: str | None = None
    choices_per: str | None = None
    loss_hyperparameter: bool = False

    @property
    def conditional(self) -> bool:
        """True when the dimension exists, or means the same, only under a condition."""
        return (self.only_if is not None or self.per is not None
                or self.choices_per is not None or self.loss_hyperparameter)

    def condition_label(self) -> str:
        """``only_if`` as text, e.g. ``augmentation ≠ none`` ('' when there is none)."""
        return " ".join(self.only_if) if self.only_if is not None else ""

    def losses(self) -> tuple[str, ...]:
        """The losses built with this dimension (empty unless ``loss_hyperparameter``)."""
        if not self.loss_hyperparameter:
            return ()
        return tuple(loss for loss, spec in LOSS_SPECS.items() if self.name in spec.hyperparameters)

    def condition_mask(self, trials: pd.DataFrame) -> pd.Series:
        """Boolean mask over ``trials``: rows that meet ``only_if`` (all rows when none)."""
        mask = pd.Series(True, index=trials.index)
        if self.only_if is not None:
            other, op, value = self.only_if
            if other in trials:
                same = trials[other].astype(str) == value
                mask &= same if op == "=" else ~same
        if self.loss_hyperparameter and "loss" in trials:
            mask &= trials["loss"].map(lambda loss: loss not in LOSS_SPECS
                                       or self.name in LOSS_SPECS[loss].hyperparameters)
        return mask

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
            parts.append(f"only trials with {self.condition_label()}")
        if self.loss_hyperparameter:
            parts.append(f"only trials whose loss uses it ({', '.join(self.losses())})")
        if self.choices_per is not None:
            parts.append(f"its choices depend on the {self.choices_per}")
        if self.per is not None:
            parts.append(f"binned within each {self.per}, since its meaning depends on the {self.per}")
        return "; ".join(parts)


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("augmentation"),
        Dimension("aug_strength", numeric=True, only_if=("augmentation", "≠", "none")),
        Dimension("positives", only_if=("augmentation", "≠", "none")),
        Dimension("mode"),
        Dimension("loss", choices_per="mode"),
        Dimension("mining", only_if=("mode", "=", "triplet")),
        Dimension("margin", numeric=True, per="loss", loss_hyperparameter=True),
        # The same softmax temperature for ntxent and supcon: bins across both losses.
        Dimension("temperature", numeric=True, log=True, loss_hyperparameter=True),
        Dimension("embedding_dim"),
        Dimension("encoder"),
        Dimension("lr", numeric=True, log=True),
        Dimension("batch_size"),
    )
}
# Every dimension the space searches should be described above (checked by the tests); one
# that is not is analysed as an unconditional categorical dimension.
MISSING = tuple(name for name in SEARCHED if name not in DIMENSIONS)
# The dimensions the analysis looks at, in the search space's order.
ANALYSED = tuple(dict.fromkeys((*SEARCHED, *DIMENSIONS)))


LOSS_HYPERPARAMETERS = tuple(dict.fromkeys(
    h for spec in LOSS_SPECS.values() for h in spec.hyperparameters))


def dimension(name: str) -> Dimension:
    """The description of dimension ``name``; one not described above is a numeric loss
    hyperparameter (binned per loss) when a loss is built with it, else a plain categorical
    dimension."""
    if name in DIMENSIONS:
        return DIMENSIONS[name]
    if name in LOSS_HYPERPARAMETERS:
        return Dimension(name, numeric=True, per="loss", loss_hyperparameter=True)
    return Dimension(name)


def value_order(name: str, values: pd.Series) -> list:
    """The display order of a categorical dimension's values: the config's order of choices
    where it has one, else sorted (numbers numerically)."""
    present = list(pd.unique(values.dropna()))
    if name in CHOICES:
        known = [c for c in CHOICES[name] if c in present]
        return known + sorted((v for v in present if v not in known), key=str)
    return sorted(present)
