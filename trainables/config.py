"""One trial's configuration: a frozen, typed record that is also the table of dimensions.

Each field of ``TrialConfig`` is one row (``dimensions.dimension``): its default, values or
range, log scale, when it applies and what splits its search.  ``DIMENSIONS`` reads the
rows back; the study's search space, MLflow params and the analysis all use it.
``TrialConfig.from_dict`` is the only place a dict becomes a config: unknown keys, wrong
types, values out of range and combinations that do not go together fail there, with the
key's name and the fix.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

from trainables.dimensions import (
    AUGMENTATIONS,
    ENCODERS,
    LOSSES,
    MINING,
    MODES,
    POSITIVES,
    Condition,
    Dimension,
    combination_problem,
    dimension,
)


class ConfigError(ValueError):
    """A configuration value that is unknown, ill-typed, out of range, or does not go with
    the others."""


@dataclass(frozen=True, kw_only=True)
class TrialConfig:
    """Everything one trial needs to know, validated.  Searched dimensions first, in the
    order the search proposes them; then the per-study budget and evaluation settings."""

    augmentation: str = dimension(
        "none", choices=tuple(a.name for a in AUGMENTATIONS), searched=True,
        doc="image augmentation recipe (trainables.augment)")
    aug_strength: float = dimension(
        1.0, search=(0.5, 1.5), minimum=0.0, maximum=2.0, minimum_open=True,
        when=Condition("augmentation", "≠", "none"), split_by="augmentation", searched=True,
        doc="scale of the augmentation's random ranges; 1 is the usual magnitude")
    positives: str = dimension(
        "class", choices=POSITIVES, when=Condition("augmentation", "≠", "none"), searched=True,
        doc="class: another image of the anchor's class; instance: another augmented view "
            "of the same image (label-free)")
    mode: str = dimension(
        "triplet", choices=tuple(m.name for m in MODES), searched=True,
        doc="batch layout of a step (trainables.modes)")
    loss: str = dimension(
        "triplet_margin", choices=tuple(row.name for row in LOSSES), split_by="mode",
        searched=True, doc="the loss (trainables.losses); it follows the mode and positives")
    mining: str = dimension(
        "random", choices=MINING, when=Condition("mode", "=", "triplet"), searched=True,
        doc="triplets as sampled (random) or re-mined from the step's embeddings")
    margin: float = dimension(
        0.2, search_per={"cosine_embedding": (0.0, 0.8), "contrastive": (0.5, 2.0),
                         "triplet_margin": (0.05, 1.0)},
        minimum=0.0, maximum=100.0, split_by="loss", searched=True,
        doc="margin of the margin losses: cosine units for cosine_embedding, distances else")
    temperature: float = dimension(
        0.1, search=(0.05, 0.5), log=True, minimum=0.0, maximum=1.0, minimum_open=True,
        split_by="loss", searched=True,
        doc="softmax temperature of ntxent and supcon (similarities are divided by it)")
    embedding_dim: int = dimension(64, choices=(16, 32, 64, 128), minimum=2, searched=True,
                                   doc="output size D of the encoder")
    encoder: str = dimension("small_cnn", choices=ENCODERS, searched=True,
                             doc="small_cnn, or a CIFAR-style resnet18")
    lr: float = dimension(3e-3, search=(3e-4, 1e-2), log=True, minimum=0.0, maximum=10.0,
                          minimum_open=True, searched=True, doc="AdamW learning rate (one-cycle peak)")
    batch_size: int = dimension(128, choices=(64, 128, 256), minimum=2, searched=True,
                                doc="anchors per step")
    # Budget and evaluation: fixed per study (``--set`` or the CPU / GPU budget).
    width: int = dimension(32, minimum=4, when=Condition("encoder", "=", "small_cnn"),
                           doc="small_cnn's base channel count (w, 2w, 4w)")
    weight_decay: float = dimension(0.0, minimum=0.0, maximum=10.0, doc="AdamW weight decay")
    p_norm: float = dimension(2.0, minimum=0.0, maximum=100.0, minimum_open=True,
                              doc="the triplet loss's p-norm distance")
    epochs: int = dimension(1, minimum=1, doc="training epochs")
    train_subset: int = dimension(0, minimum=0, doc="anchors per epoch (0: the whole training set)")
    eval_train: int = dimension(10_000, minimum=10,
                                doc="training images (a stratified sample) embedded to fit the "
                                    "probe and as kNN references")
    eval_val: int = dimension(0, minimum=0, doc="validation images scored every epoch, a "
                                                 "stratified sample (0: the whole split)")
    eval_test: int = dimension(0, minimum=0, doc="test images scored at the end, a stratified "
                                                  "sample (0: the whole split)")
    tsne_samples: int = dimension(2_000, minimum=0,
                                  doc="test embeddings in the t-SNE plot, a stratified sample")
    knn_k: int = dimension(10, minimum=1, doc="neighbours of the kNN classifier")
    seed: int = dimension(0, doc="fixes initialisation, sampling and augmentation")

    def __post_init__(self) -> None:
        for dim in DIMENSIONS.values():
            _check_value(dim, getattr(self, dim.name))
        problem = combination_problem(self.to_dict(), DIMENSIONS)
        if problem is not None:
            raise ConfigError(problem)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrialConfig:
        """Build a config from a dict (e.g. a Tune trial's config).

        Unknown keys and values of the wrong type raise ``ConfigError`` naming the key.
        Integral floats are accepted for int fields (Optuna may hand back 64.0).
        """
        unknown = sorted(set(values) - set(DIMENSIONS))
        if unknown:
            raise ConfigError(
                f"unknown config key(s) {', '.join(unknown)}; valid keys: {', '.join(DIMENSIONS)}"
            )
        return cls(**{key: _coerce(DIMENSIONS[key], value) for key, value in values.items()})

    def to_dict(self) -> dict[str, Any]:
        """A flat dict of every field."""
        return dataclasses.asdict(self)

    def applied(self) -> dict[str, Any]:
        """The fields that mean something for this trial: a dimension that does not apply
        (the margin of an NT-Xent trial, the strength of no augmentation) is left out."""
        values = self.to_dict()
        return {k: v for k, v in values.items() if DIMENSIONS[k].applies(values)}


def _read_dimensions() -> dict[str, Dimension]:
    return {f.name: dataclasses.replace(f.metadata["dimension"], name=f.name, kind=str(f.type))
            for f in fields(TrialConfig)}


DIMENSIONS: dict[str, Dimension] = _read_dimensions()
SEARCHED = tuple(name for name, dim in DIMENSIONS.items() if dim.searched)


def _check_value(dim: Dimension, value: Any) -> None:
    if dim.kind == "str":
        if value not in dim.choices:
            raise ConfigError(f"{dim.name}={value!r} is not valid; choose one of "
                              f"{', '.join(dim.choices)}")
        return
    if dim.kind == "int":
        if dim.minimum is not None and value < dim.minimum:
            raise ConfigError(f"{dim.name}={value} is too small; use {dim.minimum} or more")
        return
    low = -math.inf if dim.minimum is None else dim.minimum
    high = math.inf if dim.maximum is None else dim.maximum
    too_low = value <= low if dim.minimum_open else value < low
    if too_low or value > high or value != value:
        bound = "(" if dim.minimum_open else "["
        raise ConfigError(f"{dim.name}={value} is out of range; use a value in {bound}{low}, {high}]")


def _coerce(dim: Dimension, value: Any) -> Any:
    key = dim.name
    if dim.kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{key}={value!r} must be a string")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}={value!r} must be {'an integer' if dim.kind == 'int' else 'a number'}")
    if dim.kind == "int":
        if int(value) != value:
            raise ConfigError(f"{key}={value!r} must be a whole number")
        return int(value)
    return float(value)


def parse_value(key: str, text: str) -> Any:
    """Parse a ``KEY=VALUE`` string's value into the field's type (for CLIs' ``--set``)."""
    if key not in DIMENSIONS:
        raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(DIMENSIONS)}")
    dim = DIMENSIONS[key]
    if dim.kind == "str":
        if text not in dim.choices:
            raise ConfigError(f"{key}={text!r} is not valid; choose one of {', '.join(dim.choices)}")
        return text
    try:
        return int(text) if dim.kind == "int" else float(text)
    except ValueError:
        kind = "an integer" if dim.kind == "int" else "a number"
        raise ConfigError(f"{key}={text!r} must be {kind}") from None


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` (a CLI's repeated ``--set``) -> typed values by key.

    Raises ``ConfigError`` naming the item for a missing ``=``, an unknown key or a value
    of the wrong type or choice.
    """
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} is not KEY=VALUE; e.g. --set mode=triplet")
        try:
            values[key.strip()] = parse_value(key.strip(), text.strip())
        except ConfigError as err:
            raise ConfigError(f"--set {item}: {err}") from None
    return values
