"""The search space: Optuna's define-by-run walk over the table of dimensions.

``SearchSpace`` reads ``trainables.config.DIMENSIONS`` in order.  A dimension that does not
apply to the values drawn so far (``Dimension.applies``) is not suggested and keeps its
default; a categorical one gets the choices that still have a valid completion (the
combinations ``dimensions.combination_problem`` accepts, narrowed by the pins); a number
its range (``Dimension.search_range``).  A dimension whose choices or range depend on
another (``split_by``) is a separate Optuna parameter per value of it, named
``margin | loss=contrastive``, so one name never has two distributions.  ``--set KEY=VALUE``
pins replace a dimension.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from trainables.config import DIMENSIONS, SEARCHED, ConfigError, TrialConfig
from trainables.dimensions import combination_problem

# The categorical dimensions the combination rules are about (and the encoder, whose
# choices the study narrows): their valid combinations are enumerated once per space.
STRUCTURAL = tuple(name for name in SEARCHED if DIMENSIONS[name].kind == "str")


def optuna_name(name: str, values: Mapping[str, Any]) -> str:
    """The Optuna parameter of dimension ``name`` for a trial with ``values`` so far."""
    split = DIMENSIONS[name].split_by
    return name if split is None else f"{name} | {split}={values.get(split)}"


def dimension_of(param: str) -> str:
    """The dimension an Optuna parameter stands for (``optuna_name``'s inverse)."""
    return param.split(" | ", 1)[0]


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

    @cached_property
    def combinations(self) -> list[dict[str, Any]]:
        """Every valid assignment of the structural dimensions under the pins."""
        return valid_combinations(self.pins, {"encoder": self.encoders})

    def __call__(self, trial: Any) -> dict[str, Any]:
        """Suggest one configuration; returns the values that are not Optuna params."""
        combos = self.combinations
        if not combos:
            raise ConfigError(pin_problem(self.pins, {"encoder": self.encoders}) or
                              f"the pins {self.pins} leave no valid configuration")
        values: dict[str, Any] = {}
        constants: dict[str, Any] = {**self.fixed}
        for name in SEARCHED:
            dim = DIMENSIONS[name]
            if name in self.pins:
                values[name] = constants[name] = self.pins[name]
            elif not dim.applies(values):
                values[name] = dim.default
            elif dim.kind == "float":
                span = dim.search_range(values)
                if span is None:
                    values[name] = dim.default
                    continue
                values[name] = trial.suggest_float(optuna_name(name, values), *span, log=dim.log)
            else:
                choices = self._choices(name, values, combos)
                if len(choices) == 1:
                    values[name] = constants[name] = choices[0]
                else:
                    values[name] = trial.suggest_categorical(optuna_name(name, values), choices)
            if name in STRUCTURAL:
                combos = [c for c in combos if c[name] == values[name]]
        for key, value in self.pins.items():
            constants.setdefault(key, value)
        constants["seed"] = trial_seed(self.study_seed, trial.number)
        return constants

    def _choices(self, name: str, values: dict[str, Any], combos: list[dict]) -> list[Any]:
        if name in STRUCTURAL:
            return list(dict.fromkeys(c[name] for c in combos))
        return list(DIMENSIONS[name].choices)


def valid_combinations(pins: Mapping[str, Any],
                       narrowed: Mapping[str, tuple] | None = None) -> list[dict[str, Any]]:
    """The assignments of ``STRUCTURAL`` dimensions that go together, with the pinned ones
    fixed (``narrowed`` replaces some dimensions' choices), in table order."""
    narrowed = narrowed or {}
    axes = [(pins[n],) if n in pins else tuple(narrowed.get(n, DIMENSIONS[n].choices))
            for n in STRUCTURAL]
    combos = (dict(zip(STRUCTURAL, values, strict=True)) for values in itertools.product(*axes))
    return [c for c in combos if combination_problem({**pins, **c}, DIMENSIONS) is None]


def pin_problem(pins: Mapping[str, Any], narrowed: Mapping[str, tuple] | None = None) -> str | None:
    """Why the pins admit no configuration (one line), or None when they do: the smallest
    set of pins that cannot go together, and what each of them needs of the others."""
    if valid_combinations(pins, narrowed):
        return None
    keys = [k for k in pins if k in STRUCTURAL]
    conflict = next((subset for size in range(1, len(keys) + 1)
                     for subset in itertools.combinations(keys, size)
                     if not valid_combinations({k: pins[k] for k in subset}, narrowed)), keys)
    needs = {k: _forced(k, pins[k], narrowed) for k in conflict}
    shared = {d for k, forced in needs.items() for d in forced
              if d in pins or sum(d in f for f in needs.values()) > 1}
    reasons = [f"{k}={pins[k]!r} needs " + ", ".join(f"{d}={v!r}" for d, v in forced.items()
                                                       if d in shared)
               for k, forced in needs.items() if shared & set(forced)]
    named = ", ".join(f"{k}={pins[k]!r}" for k in conflict)
    return (f"{named} cannot go together" + (f": {'; '.join(reasons)}" if reasons else ""))


def _forced(key: str, value: Any, narrowed: Mapping[str, tuple] | None) -> dict[str, Any]:
    """The structural dimensions that take one value in every valid combination with
    ``key=value`` alone."""
    combos = valid_combinations({key: value}, narrowed)
    anyway = valid_combinations({}, narrowed)  # one value without any pin: not the pin's doing
    return {d: combos[0][d] for d in STRUCTURAL
            if d != key and combos and len({c[d] for c in combos}) == 1
            and len({c[d] for c in anyway}) > 1}


def trial_seed(study_seed: int, trial_number: int) -> int:
    """A trial's torch seed, derived from the study seed and the trial's number."""
    return int(np.random.SeedSequence([study_seed, trial_number]).generate_state(1)[0] >> 1)


def trial_config(tune_config: dict[str, Any]) -> TrialConfig:
    """The typed config of a Tune trial: Optuna's ``name | split=value`` keys lose their
    suffix."""
    values: dict[str, Any] = {}
    for param, value in tune_config.items():
        key = dimension_of(param)
        if key in values and values[key] != value:
            raise ValueError(f"config key {key!r} given twice: {values[key]!r} and {value!r}")
        values[key] = value
    return TrialConfig.from_dict(values)
