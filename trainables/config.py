"""One trial's configuration: a frozen, typed record built once from a plain dict.

The field names are the contract between the trial, the study's search space, the
MLflow params and the analysis (which groups by them). ``TrialConfig.from_dict`` is the
only place a dict becomes a config: unknown keys, wrong types and invalid values fail
there, with the key's name and the valid choices.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

MODE_CHOICES = ("pair", "triplet", "batch")
POSITIVES_CHOICES = ("class", "instance")


@dataclass(frozen=True)
class LossSpec:
    """What a loss is defined for; the search space and the trial read it, not the loss's name.

    mode: the batch layout the loss consumes (a ``MODE_CHOICES`` value): ``pair`` ->
        ``(x1, x2, target)``, ``triplet`` -> ``(anchor, positive, negative)``, ``batch`` ->
        ``(z, labels)`` (every view of the step, labelled so that positives share a label).
    positives: the ``positives`` values the loss is defined for.
    hyperparameters: the ``TrialConfig`` fields the loss is built with (``build_loss``).
    """

    mode: str
    positives: tuple[str, ...]
    hyperparameters: tuple[str, ...]


# Every loss, the mode it belongs to, the positives it accepts and its hyperparameters.
# The search space reads these tables too, so that it only proposes valid combinations.
LOSS_SPECS: dict[str, LossSpec] = {
    "cosine_embedding": LossSpec("pair", POSITIVES_CHOICES, ("margin",)),
    "contrastive": LossSpec("pair", POSITIVES_CHOICES, ("margin",)),
    "triplet_margin": LossSpec("triplet", POSITIVES_CHOICES, ("margin", "p_norm")),
    # SimCLR's loss: the positive is the other augmented view of the same image.
    "ntxent": LossSpec("batch", ("instance",), ("temperature",)),
    # Khosla et al.'s loss: every other view of the same class is a positive.
    "supcon": LossSpec("batch", ("class",), ("temperature",)),
}
LOSSES_BY_MODE: dict[str, tuple[str, ...]] = {
    mode: tuple(name for name, spec in LOSS_SPECS.items() if spec.mode == mode)
    for mode in MODE_CHOICES
}
LOSS_CHOICES = tuple(LOSS_SPECS)
AUGMENTATION_CHOICES = ("none", "rotation", "simclr")
ENCODER_CHOICES = ("small_cnn", "resnet18")
MINING_CHOICES = ("random", "semihard", "hard")

CHOICES: dict[str, tuple[str, ...]] = {
    "augmentation": AUGMENTATION_CHOICES,
    "mode": MODE_CHOICES,
    "loss": LOSS_CHOICES,
    "positives": POSITIVES_CHOICES,
    "encoder": ENCODER_CHOICES,
    "mining": MINING_CHOICES,
}


class ConfigError(ValueError):
    """A configuration value that is unknown, ill-typed or out of range."""


@dataclass(frozen=True, kw_only=True)
class TrialConfig:
    """Everything one trial needs to know, validated.

    Searched dimensions
        augmentation: ``none`` | ``rotation`` | ``simclr`` (see ``trainables.augment``).
        aug_strength: scale of the augmentation's random ranges, in (0, 2]; 1 is the default
            magnitude (rotation: +-15 degrees, +-10 % scale; simclr: SimCLR's jitter 0.4).
        mode: ``pair`` (two images, similar or dissimilar), ``triplet`` (anchor, positive,
            negative) or ``batch`` (each anchor and its positive, all 2B views of the step
            scored against each other by one loss).
        loss: ``cosine_embedding`` | ``contrastive`` (pair), ``triplet_margin`` (triplet),
            ``ntxent`` (batch, instance positives; SimCLR) | ``supcon`` (batch, class
            positives; Khosla et al. 2020); see ``LOSS_SPECS``.
        margin: the margin losses' margin (cosine units for ``cosine_embedding``, distance
            units otherwise); unused by ``ntxent`` and ``supcon``.
        temperature: the softmax temperature of ``ntxent`` and ``supcon``, in (0, 1]
            (cosine similarities are divided by it); unused by the other losses.
        embedding_dim: output size D of the encoder.
        positives: ``class`` (another image of the same class) or ``instance`` (another
            augmented view of the same image; label-free, needs an augmentation); a loss accepts
            only the positives of its ``LossSpec``.
        mining: for triplets, ``random`` (the sampled triplets as they are), ``semihard`` or
            ``hard`` (batch-hard): triplets re-mined from all of the step's embeddings
            (see ``trainables.miners``).
        encoder: ``small_cnn`` or ``resnet18`` (CIFAR-style: 3x3 stem, no max-pool).
        width: ``small_cnn``'s base channel count w (blocks of w, 2w, 4w channels; 32 by
            default, 16 is about 3x cheaper on a CPU); ``resnet18`` has fixed widths.
        lr: Adam learning rate; weight_decay: AdamW decoupled weight decay.
        batch_size: number of anchors per step (a triplet step encodes 3x that many images,
            a pair or batch step 2x).
    Budget and evaluation
        epochs: training epochs; train_subset: anchors per epoch (0 = the whole training set).
        eval_train: training images embedded to fit the probe and as kNN references.
        eval_test: test images embedded to score probe and kNN (0 = the whole test split).
        tsne_samples: test embeddings kept for the t-SNE plot.
        knn_k: neighbours of the kNN classifier. p_norm: the triplet loss's p-norm.
        seed: fixes initialisation, sampling and augmentation.
    """

    augmentation: str = "none"
    aug_strength: float = 1.0
    mode: str = "triplet"
    loss: str = "triplet_margin"
    margin: float = 0.2
    temperature: float = 0.1
    embedding_dim: int = 64
    positives: str = "class"
    mining: str = "random"
    encoder: str = "small_cnn"
    width: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 1
    train_subset: int = 0
    eval_train: int = 10_000
    eval_test: int = 0
    tsne_samples: int = 2_000
    knn_k: int = 10
    p_norm: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name, choices in CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                raise ConfigError(
                    f"{name}={value!r} is not valid; choose one of {', '.join(choices)}"
                )
        allowed = LOSSES_BY_MODE[self.mode]
        if self.loss not in allowed:
            raise ConfigError(
                f"loss={self.loss!r} is not defined for mode={self.mode!r}; "
                f"choose one of {', '.join(allowed)}"
            )
        accepted = LOSS_SPECS[self.loss].positives
        if self.positives not in accepted:
            raise ConfigError(_positives_message(self.loss, self.positives, self.augmentation))
        if self.mining != "random" and self.mode != "triplet":
            raise ConfigError(
                f"mining={self.mining!r} needs mode='triplet'; use mining='random' with pairs"
            )
        if self.positives == "instance" and self.augmentation == "none":
            raise ConfigError(
                "positives='instance' with augmentation='none' makes both views identical; "
                "choose augmentation rotation or simclr, or positives='class'"
            )
        _check_range("aug_strength", self.aug_strength, 0.0, 2.0, low_open=True)
        _check_range("margin", self.margin, 0.0, 100.0)
        if self.loss == "cosine_embedding":
            _check_range("margin", self.margin, -1.0, 1.0)
        _check_range("temperature", self.temperature, 0.0, 1.0, low_open=True)
        _check_range("lr", self.lr, 0.0, 10.0, low_open=True)
        _check_range("weight_decay", self.weight_decay, 0.0, 10.0)
        _check_range("p_norm", self.p_norm, 0.0, 100.0, low_open=True)
        for name, low in (
            ("embedding_dim", 2),
            ("width", 4),
            ("batch_size", 2),
            ("epochs", 1),
            ("train_subset", 0),
            ("eval_train", 10),
            ("eval_test", 0),
            ("tsne_samples", 0),
            ("knn_k", 1),
        ):
            if getattr(self, name) < low:
                raise ConfigError(f"{name}={getattr(self, name)} is too small; use {low} or more")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrialConfig:
        """Build a config from a dict (e.g. a Tune trial's config).

        Unknown keys and values of the wrong type raise ``ConfigError`` naming the key.
        Integral floats are accepted for int fields (Optuna may hand back 64.0).
        """
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown config key(s) {', '.join(unknown)}; valid keys: {', '.join(known)}"
            )
        kwargs = {key: _coerce(key, value, known[key].type) for key, value in values.items()}
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """A flat dict of every field: what MLflow records as params."""
        return dataclasses.asdict(self)


def _positives_message(loss: str, positives: str, augmentation: str) -> str:
    """Why ``loss`` cannot take ``positives``, and the two ways out."""
    spec = LOSS_SPECS[loss]
    needed = " or ".join(repr(p) for p in spec.positives)
    fix = f"set positives={spec.positives[0]!r}"
    if spec.positives == ("instance",) and augmentation == "none":
        fix += " with augmentation rotation or simclr"
    others = [name for name in LOSSES_BY_MODE[spec.mode]
              if positives in LOSS_SPECS[name].positives]
    alternative = f"loss={others[0]!r}" if others else f"a mode other than {spec.mode!r}"
    return (f"loss={loss!r} is defined for positives={needed} only, not positives={positives!r}; "
            f"{fix}, or use {alternative} for positives={positives!r}")


def _coerce(key: str, value: Any, type_name: Any) -> Any:
    type_name = type_name if isinstance(type_name, str) else type_name.__name__
    if type_name == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{key}={value!r} must be a string")
        return value
    if type_name == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}={value!r} must be an integer")
        if int(value) != value:
            raise ConfigError(f"{key}={value!r} must be a whole number")
        return int(value)
    if type_name == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}={value!r} must be a number")
        return float(value)
    raise TypeError(f"unsupported field type {type_name} for {key}")


def _check_range(
    name: str, value: float, low: float, high: float, *, low_open: bool = False
) -> None:
    too_low = value <= low if low_open else value < low
    if too_low or value > high or value != value:
        bound = "(" if low_open else "["
        raise ConfigError(f"{name}={value} is out of range; use a value in {bound}{low}, {high}]")


def parse_value(key: str, text: str) -> Any:
    """Parse a ``KEY=VALUE`` string's value into the field's type (for CLIs' ``--set``)."""
    known = {f.name: f for f in fields(TrialConfig)}
    if key not in known:
        raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(known)}")
    type_name = known[key].type
    type_name = type_name if isinstance(type_name, str) else type_name.__name__
    if type_name == "str":
        if text not in CHOICES[key]:
            raise ConfigError(f"{key}={text!r} is not valid; choose one of {', '.join(CHOICES[key])}")
        return text
    try:
        return int(text) if type_name == "int" else float(text)
    except ValueError:
        kind = "an integer" if type_name == "int" else "a number"
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
