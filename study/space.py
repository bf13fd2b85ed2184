"""The search space: Optuna's define-by-run, so conditional dimensions stay honest.

The loss choices depend on the mode and the positives (``LOSS_SPECS``: in mode ``batch``
the loss follows the positives, ``ntxent`` for instance, ``supcon`` for class), the margin
exists only for margin losses with a range per loss, the temperature only for ``ntxent``
and ``supcon``, the augmentation strength and the choice of positives only when there is
an augmentation (so ``ntxent`` only then), the encoder choice on the dataset and device.
A dimension that only exists under a condition is named ``key@condition`` in Optuna (its
distribution differs per condition); ``trial_config`` strips the suffix.
``--set KEY=VALUE`` pins replace a dimension.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainables.config import (
    AUGMENTATION_CHOICES,
    LOSS_SPECS,
    LOSSES_BY_MODE,
    MINING_CHOICES,
    MODE_CHOICES,
    POSITIVES_CHOICES,
    ConfigError,
    TrialConfig,
)

# Ranges of the numeric dimensions; the margin's depends on the loss, and exists only for
# the losses whose LossSpec lists it (as does the temperature).
MARGIN_RANGE: dict[str, tuple[float, float]] = {
    "cosine_embedding": (0.0, 0.8),
    "contrastive": (0.5, 2.0),
    "triplet_margin": (0.05, 1.0),
}
TEMPERATURE_RANGE = (0.05, 0.5)  # searched on a log scale
AUG_STRENGTH_RANGE = (0.5, 1.5)
LR_RANGE = (3e-4, 1e-2)
EMBEDDING_DIMS = (16, 32, 64, 128)
BATCH_SIZES = (64, 128, 256)

# Dimensions the space searches (the rest of TrialConfig is budget, fixed per study).
SEARCHED = (
    "augmentation", "aug_strength", "positives", "mode", "loss", "mining", "margin",
    "temperature", "embedding_dim", "encoder", "lr", "batch_size",
)


@dataclass(frozen=True)
class SearchSpace:
    """A define-by-run space: call it with an Optuna trial, get the trial's config dict.

    pins: dimensions fixed by ``--set`` (validated values).
    fixed: the study's budget and evaluation settings (epochs, train_subset, ...).
    encoders: the encoder choices for this dataset and device.
    study_seed: with the Optuna trial number, derives each trial's torch seed.
    """

    pins: dict[str, Any] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    encoders: tuple[str, ...] = ("small_cnn",)
    study_seed: int = 0

    def __call__(self, trial: Any) -> dict[str, Any]:
        """Suggest one configuration; returns the values that are not Optuna params."""
        constants: dict[str, Any] = {**self.fixed}

        def pick(key: str, suggest) -> Any:
            if key in self.pins:
                constants[key] = self.pins[key]
                return self.pins[key]
            return suggest()

        def categorical(key: str, choices: tuple, name: str | None = None) -> Any:
            if key in self.pins:  # a pin wins; TrialConfig names any contradiction it makes
                return pick(key, lambda: None)
            if not choices:
                raise ConfigError(f"the pins {self.pins} leave no valid value for {key}")
            if len(choices) == 1:
                constants[key] = choices[0]
                return choices[0]
            return pick(key, lambda: trial.suggest_categorical(name or key, list(choices)))

        # A pinned value narrows the choices of the dimensions it depends on.
        positives_choices = POSITIVES_CHOICES
        if "loss" in self.pins:
            positives_choices = LOSS_SPECS[self.pins["loss"]].positives
        if "positives" in self.pins:
            positives_choices = (self.pins["positives"],)
        augmentations = AUGMENTATION_CHOICES
        if "class" not in positives_choices:  # instance positives need an augmentation
            augmentations = tuple(a for a in augmentations if a != "none")
        augmentation = categorical("augmentation", augmentations)
        if augmentation == "none":
            positives = constants.setdefault("positives", self.pins.get("positives", "class"))
            if "aug_strength" in self.pins:
                constants["aug_strength"] = self.pins["aug_strength"]
        else:
            pick("aug_strength", lambda: trial.suggest_float(
                f"aug_strength@{augmentation}", *AUG_STRENGTH_RANGE))
            positives = categorical("positives", positives_choices)
        if "loss" in self.pins:
            modes = (LOSS_SPECS[self.pins["loss"]].mode,)
        else:  # the modes that have a loss for these positives (and allow a pinned mining)
            modes = tuple(m for m in MODE_CHOICES if _losses(m, positives)
                          and (m == "triplet" or self.pins.get("mining", "random") == "random"))
        mode = categorical("mode", modes)
        losses = _losses(mode, positives)
        # the loss's Optuna name carries every condition its choices depend on
        loss = categorical("loss", losses, name=f"loss@{mode}" if losses == LOSSES_BY_MODE[mode]
                           else f"loss@{mode},{positives}")
        if mode == "triplet":
            categorical("mining", MINING_CHOICES)
        elif "mining" not in self.pins:
            constants["mining"] = "random"
        hyperparameters = LOSS_SPECS[loss].hyperparameters
        if "margin" in hyperparameters:
            low, high = MARGIN_RANGE.get(loss, (0.0, 1.0))
            pick("margin", lambda: trial.suggest_float(f"margin@{loss}", low, high))
        if "temperature" in hyperparameters:
            pick("temperature", lambda: trial.suggest_float(
                f"temperature@{loss}", *TEMPERATURE_RANGE, log=True))
        categorical("embedding_dim", EMBEDDING_DIMS)
        categorical("encoder", self.encoders)
        pick("lr", lambda: trial.suggest_float("lr", *LR_RANGE, log=True))
        categorical("batch_size", BATCH_SIZES)
        for key, value in self.pins.items():
            constants.setdefault(key, value)
        constants["seed"] = trial_seed(self.study_seed, trial.number)
        return constants


def _losses(mode: str, positives: str) -> tuple[str, ...]:
    """The losses of ``mode`` defined for ``positives``."""
    return tuple(name for name in LOSSES_BY_MODE[mode] if positives in LOSS_SPECS[name].positives)


def trial_seed(study_seed: int, trial_number: int) -> int:
    """A trial's torch seed, derived from the study seed and the trial's number."""
    return int(np.random.SeedSequence([study_seed, trial_number]).generate_state(1)[0] >> 1)


def trial_config(tune_config: dict[str, Any]) -> TrialConfig:
    """The typed config of a Tune trial: ``key@condition`` names lose their suffix."""
    values: dict[str, Any] = {}
    for name, value in tune_config.items():
        key = name.split("@", 1)[0]
        if key in values and values[key] != value:
            raise ValueError(f"config key {key!r} given twice: {values[key]!r} and {value!r}")
        values[key] = value
    return TrialConfig.from_dict(values)
