"""Typed config at the boundary: unknown keys, types and values fail with their names."""

from __future__ import annotations

import pytest

from trainables.config import ConfigError, TrialConfig, parse_value


def test_defaults_round_trip() -> None:
    cfg = TrialConfig()
    assert TrialConfig.from_dict(cfg.to_dict()) == cfg


def test_integral_floats_become_ints() -> None:
    cfg = TrialConfig.from_dict({"embedding_dim": 32.0, "lr": 1})
    assert cfg.embedding_dim == 32 and isinstance(cfg.embedding_dim, int)
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)


@pytest.mark.parametrize(
    "values,message",
    [
        ({"colour": 1}, "unknown config key.*colour.*valid keys: augmentation"),
        ({"augmentation": "flip"}, "augmentation='flip'.*none, rotation, simclr"),
        ({"mode": "pair"}, "loss='triplet_margin' is not defined for mode='pair'.*cosine_embedding"),
        ({"embedding_dim": 1}, "embedding_dim=1 is too small"),
        ({"embedding_dim": 3.5}, "embedding_dim=3.5 must be a whole number"),
        ({"lr": "fast"}, "lr='fast' must be a number"),
        ({"lr": 0}, r"lr=0.0 is out of range"),
        ({"positives": "instance"}, "positives='instance' needs augmentation≠'none'"),
        ({"mode": "pair", "loss": "cosine_embedding", "margin": 1.5},
         r"margin=1.5 is out of range for loss='cosine_embedding'.*\[0.0, 1.0\]"),
        ({"encoder": "vit"}, "encoder='vit'.*small_cnn, resnet18"),
        ({"mode": "batch"}, "loss='triplet_margin' is not defined for mode='batch'.*ntxent, supcon"),
        ({"mode": "triplet", "loss": "supcon"}, "loss='supcon' is not defined for mode='triplet'"),
        ({"mode": "batch", "loss": "ntxent"},
         "loss='ntxent' is defined for positives='instance' only, not positives='class'; "
         "set positives='instance' with augmentation rotation or simclr, "
         "or use loss='supcon' for positives='class'"),
        ({"mode": "batch", "loss": "ntxent", "augmentation": "simclr"},
         "loss='ntxent' is defined for positives='instance' only.*; set positives='instance', "
         "or use loss='supcon'"),
        ({"mode": "batch", "loss": "supcon", "positives": "instance", "augmentation": "rotation"},
         "loss='supcon' is defined for positives='class' only, not positives='instance'; "
         "set positives='class', or use loss='ntxent' for positives='instance'"),
        ({"mode": "batch", "loss": "ntxent", "positives": "instance"},
         "positives='instance' needs augmentation≠'none'.*use positives='class'"),
        ({"mode": "batch", "loss": "supcon", "mining": "hard"}, "mining='hard' needs mode='triplet'"),
        ({"mode": "batch", "loss": "supcon", "temperature": 0},
         r"temperature=0.0 is out of range.*\(0.0, 1.0\]"),
        ({"temperature": 1.5}, r"temperature=1.5 is out of range"),
        ({"temperature": "warm"}, "temperature='warm' must be a number"),
    ],
)
def test_bad_values_name_the_key(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrialConfig.from_dict(values)


def test_parse_value() -> None:
    assert parse_value("embedding_dim", "16") == 16
    assert parse_value("margin", "0.25") == 0.25
    assert parse_value("mode", "pair") == "pair"
    with pytest.raises(ConfigError, match="embedding_dim='big' must be an integer"):
        parse_value("embedding_dim", "big")
    with pytest.raises(ConfigError, match="unknown config key 'size'"):
        parse_value("size", "3")


@pytest.mark.parametrize(
    "values",
    [
        {"mode": "batch", "loss": "supcon"},
        {"mode": "batch", "loss": "supcon", "augmentation": "simclr", "temperature": 1.0},
        {"mode": "batch", "loss": "ntxent", "positives": "instance", "augmentation": "rotation",
         "temperature": 0.05},
    ],
)
def test_batch_losses_with_their_positives_are_valid(values: dict) -> None:
    cfg = TrialConfig.from_dict(values)
    assert TrialConfig.from_dict(cfg.to_dict()) == cfg
    assert parse_value("temperature", "0.07") == 0.07
    assert parse_value("loss", "ntxent") == "ntxent" and parse_value("mode", "batch") == "batch"


def test_losses_of_each_mode_come_from_the_loss_rows() -> None:
    from trainables.config import DIMENSIONS
    from trainables.dimensions import LOSSES, losses_of

    assert {m: losses_of(m) for m in DIMENSIONS["mode"].choices} == {
        "pair": ("cosine_embedding", "contrastive"), "triplet": ("triplet_margin",),
        "batch": ("ntxent", "supcon")}
    assert all(row.mode in DIMENSIONS["mode"].choices for row in LOSSES)


def test_applied_leaves_out_what_does_not_apply() -> None:
    ntxent = TrialConfig.from_dict({"mode": "batch", "loss": "ntxent", "positives": "instance",
                                    "augmentation": "rotation"})
    assert {"temperature", "aug_strength", "positives"} <= set(ntxent.applied())
    assert not {"margin", "mining", "p_norm"} & set(ntxent.applied())
    plain = TrialConfig()  # triplet, no augmentation
    assert {"margin", "mining", "p_norm", "width"} <= set(plain.applied())
    assert not {"temperature", "aug_strength", "positives"} & set(plain.applied())
    assert "width" not in TrialConfig(encoder="resnet18").applied()
