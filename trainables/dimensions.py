"""The rows the configuration is built from: what each setting is, which values it takes,
when it applies, and which losses, modes and augmentations exist.

Standard library only: the study's search space and the analysis read these tables without
importing torch.  ``trainables.config.TrialConfig`` declares one field per dimension with
``dimension(...)``; the tables below say what each loss, mode and augmentation is.  Adding
one is a row here plus its function in ``losses.py``, ``modes.py`` or ``augment.py``
(registered under the row's name).

Every combination rule lives in :func:`combination_problem`: a loss belongs to one mode
and accepts some positives; a categorical dimension that does not apply (its ``when`` does
not hold) must keep its default; a loss hyperparameter applies only to the losses that list
it.  ``TrialConfig`` validation, the study's define-by-run space and the analysis all call
it or :meth:`Dimension.applies`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Condition:
    """The dimension applies only when ``key`` equals (``=``) or differs from (``≠``) ``value``."""

    key: str
    op: str
    value: str

    def holds(self, values: Mapping[str, Any]) -> bool:
        same = values.get(self.key) == self.value
        return same if self.op == "=" else not same

    def __str__(self) -> str:
        return f"{self.key} {self.op} {self.value}"


@dataclass(frozen=True)
class Loss:
    """A loss: the mode whose step batches it consumes, the positives it is defined for, the
    ``TrialConfig`` fields it is built with (and their accepted range where the loss
    narrows it: ``bounds``), and where it comes from."""

    name: str
    mode: str
    positives: tuple[str, ...]
    hyperparameters: tuple[str, ...]
    reference: str
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Mode:
    """A training mode: how many views a step encodes per anchor, and what they are."""

    name: str
    views_per_anchor: int
    doc: str


@dataclass(frozen=True)
class Augmentation:
    """An augmentation recipe; ``strength`` orders them (0 none, higher stronger), which the
    analysis reads as "weakest to strongest"."""

    name: str
    strength: int
    doc: str


POSITIVES = ("class", "instance")
MODES = (
    Mode("pair", 2, "two images, similar or dissimilar"),
    Mode("triplet", 3, "anchor, positive, negative"),
    Mode("batch", 2, "each anchor and one positive; all 2B views of the step in one loss"),
)
LOSSES = (
    Loss("cosine_embedding", "pair", POSITIVES, ("margin",), "torch.nn.CosineEmbeddingLoss",
         bounds={"margin": (0.0, 1.0)}),  # a cosine similarity
    Loss("contrastive", "pair", POSITIVES, ("margin",), "Hadsell, Chopra & LeCun 2006"),
    Loss("triplet_margin", "triplet", POSITIVES, ("margin", "p_norm"),
         "Schroff, Kalenichenko & Philbin 2015 (FaceNet)"),
    Loss("ntxent", "batch", ("instance",), ("temperature",), "Chen et al. 2020 (SimCLR)"),
    Loss("supcon", "batch", ("class",), ("temperature",), "Khosla et al. 2020"),
)
AUGMENTATIONS = (
    Augmentation("none", 0, "no augmentation"),
    Augmentation("rotation", 1, "pad-rotate-scale: ±15°·strength, ±10 %·strength scale and shift"),
    Augmentation("simclr", 2, "random resized crop, colour jitter, grayscale (RGB), blur"),
)
MINING = ("random", "semihard", "hard")
ENCODERS = ("small_cnn", "resnet18")

LOSS = {row.name: row for row in LOSSES}
MODE = {row.name: row for row in MODES}
AUGMENTATION = {row.name: row for row in AUGMENTATIONS}
LOSS_HYPERPARAMETERS = tuple(dict.fromkeys(h for row in LOSSES for h in row.hyperparameters))


def losses_of(mode: str, positives: str | None = None) -> tuple[str, ...]:
    """The losses of ``mode`` (defined for ``positives`` when given), in table order."""
    return tuple(row.name for row in LOSSES if row.mode == mode
                 and (positives is None or positives in row.positives))


def losses_using(hyperparameter: str) -> tuple[str, ...]:
    """The losses built with ``hyperparameter``."""
    return tuple(row.name for row in LOSSES if hyperparameter in row.hyperparameters)


Range = tuple[float, float]


@dataclass(frozen=True)
class Dimension:
    """One setting of a trial (one ``TrialConfig`` field).

    name, kind: the field's name and type (``str``, ``int`` or ``float``), filled in from the
        field.  default: its value when not set, and the value of a categorical dimension
        that does not apply.
    choices: a string dimension's valid values; a number's searched values (``int``).
    search: a float's searched range; ``search_per``: one range per value of ``split_by``
        (the units differ: the margin is a cosine for one loss, a distance for others).
    log: searched (and binned) on a log scale.
    minimum / maximum, minimum_open: the accepted range of a number.
    when: it applies only under this condition.  A loss hyperparameter (one listed by a row
        of ``LOSSES``) applies, besides, only to the losses that list it.
    split_by: the dimension whose value selects its choices or range: the search gives each
        value of it its own parameter (``loss`` per ``mode``, ``margin`` per ``loss``).
    searched: part of the search space (else a budget setting, fixed per study).
    """

    name: str = ""
    kind: str = "str"
    default: Any = None
    choices: tuple = ()
    search: Range | None = None
    search_per: Mapping[str, Range] | None = None
    log: bool = False
    minimum: float | None = None
    maximum: float | None = None
    minimum_open: bool = False
    when: Condition | None = None
    split_by: str | None = None
    searched: bool = False
    doc: str = ""

    @property
    def numeric(self) -> bool:
        """True for a continuous dimension (searched in a range, analysed in bins)."""
        return self.kind == "float"

    @property
    def loss_hyperparameter(self) -> bool:
        return self.name in LOSS_HYPERPARAMETERS

    def applies(self, values: Mapping[str, Any]) -> bool:
        """Whether this dimension means anything for a trial with these values."""
        if self.when is not None and not self.when.holds(values):
            return False
        if self.loss_hyperparameter:
            row = LOSS.get(values.get("loss"))
            return row is None or self.name in row.hyperparameters
        return True

    def condition_text(self) -> str:
        """When the dimension applies, in words ('' when always)."""
        parts = [str(self.when)] if self.when is not None else []
        if self.loss_hyperparameter:
            parts.append(f"loss ∈ {{{', '.join(losses_using(self.name))}}}")
        return " and ".join(parts)

    def search_range(self, values: Mapping[str, Any]) -> Range | None:
        """The searched range for a trial with these values (None: not searched there)."""
        if self.search_per is not None:
            return self.search_per.get(values.get(self.split_by or ""))
        return self.search


def dimension(default: Any, **spec: Any) -> Any:
    """A ``TrialConfig`` field that is a row of the table: ``x: int = dimension(3, ...)``."""
    return field(default=default, metadata={"dimension": Dimension(default=default, **spec)})


def combination_problem(values: Mapping[str, Any], dimensions: Mapping[str, Dimension]) -> str | None:
    """Why these values do not go together (one line naming the values and the fix), or None.

    The rules: the loss belongs to the mode, accepts the positives and bounds its
    hyperparameters (``LOSSES``); a categorical dimension that does not apply keeps its
    default.
    """
    loss, mode, positives = values.get("loss"), values.get("mode"), values.get("positives")
    row = LOSS.get(loss)
    if row is not None and mode is not None and row.mode != mode:
        return (f"loss={loss!r} is not defined for mode={mode!r}; "
                f"choose one of {', '.join(losses_of(mode))}")
    if row is not None and positives is not None and positives not in row.positives:
        return _positives_problem(row, positives, values.get("augmentation"), dimensions)
    for name, (low, high) in (row.bounds.items() if row is not None else ()):
        if name in values and not low <= values[name] <= high:
            return (f"{name}={values[name]} is out of range for loss={row.name!r}; use a value "
                    f"in [{low}, {high}]")
    for dim in dimensions.values():
        value = values.get(dim.name, dim.default)
        if dim.kind == "str" and dim.when is not None and value != dim.default \
                and not dim.when.holds(values):
            when = dim.when
            needed = f"{when.key}={when.value!r}" if when.op == "=" else f"{when.key}≠{when.value!r}"
            return (f"{dim.name}={value!r} needs {needed} ({dim.name} applies only when {when}, "
                    f"and {when.key} is {values.get(when.key)!r}); use {dim.name}={dim.default!r}"
                    f" or change {when.key}")
    return None


def _positives_problem(row: Loss, positives: str, augmentation: Any,
                       dimensions: Mapping[str, Dimension]) -> str:
    """Why ``row`` cannot take ``positives``, and the two ways out."""
    needed = " or ".join(repr(p) for p in row.positives)
    fix = f"set positives={row.positives[0]!r}"
    when = dimensions["positives"].when if "positives" in dimensions else None
    if when is not None and row.positives[0] != dimensions["positives"].default \
            and not when.holds({"augmentation": augmentation}):
        others = [a.name for a in AUGMENTATIONS if when.holds({"augmentation": a.name})]
        fix += f" with augmentation {' or '.join(others)}"
    others = losses_of(row.mode, positives)
    alternative = f"loss={others[0]!r}" if others else f"a mode other than {row.mode!r}"
    return (f"loss={row.name!r} is defined for positives={needed} only, not "
            f"positives={positives!r}; {fix}, or use {alternative} for positives={positives!r}")
