"""The define-by-run space proposes only valid configurations and honours pins."""

from __future__ import annotations

import optuna
import pytest

from study.space import MARGIN_RANGE, SearchSpace, trial_config, trial_seed
from trainables.config import LOSSES_BY_MODE, ConfigError

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _draw(space: SearchSpace, n: int = 150, seed: int = 0) -> list:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    configs = []
    for _ in range(n):
        trial = study.ask()
        constants = space(trial)
        configs.append(trial_config({**trial.params, **constants}))
    return configs


def test_every_proposal_is_valid_and_conditional() -> None:
    configs = _draw(SearchSpace(fixed={"epochs": 2}, study_seed=3))
    seen = {(c.mode, c.loss) for c in configs}
    assert seen == {("pair", "cosine_embedding"), ("pair", "contrastive"),
                    ("triplet", "triplet_margin")}
    for c in configs:
        assert c.loss in LOSSES_BY_MODE[c.mode]
        low, high = MARGIN_RANGE[c.loss]
        assert low <= c.margin <= high
        assert c.epochs == 2
        if c.augmentation == "none":
            assert c.positives == "class" and c.aug_strength == 1.0
    assert {c.positives for c in configs if c.augmentation != "none"} == {"class", "instance"}
    assert len({c.seed for c in configs}) == len(configs)


def test_pins_replace_dimensions() -> None:
    space = SearchSpace(pins={"mode": "pair", "augmentation": "rotation", "embedding_dim": 8})
    for c in _draw(space, 40):
        assert (c.mode, c.augmentation, c.embedding_dim) == ("pair", "rotation", 8)
        assert c.loss in ("cosine_embedding", "contrastive")


def test_a_pinned_loss_restricts_the_mode() -> None:
    for c in _draw(SearchSpace(pins={"loss": "contrastive"}), 30):
        assert c.mode == "pair"


def test_pinned_instance_positives_need_an_augmentation() -> None:
    for c in _draw(SearchSpace(pins={"positives": "instance"}), 30):
        assert c.augmentation in ("rotation", "simclr")


def test_contradicting_pins_fail_with_the_key() -> None:
    with pytest.raises(ConfigError, match="loss='triplet_margin' is not defined for mode='pair'"):
        _draw(SearchSpace(pins={"mode": "pair", "loss": "triplet_margin"}), 1)


def test_same_study_seed_same_proposals() -> None:
    space = SearchSpace(study_seed=7)
    assert _draw(space, 20, seed=1) == _draw(space, 20, seed=1)
    assert trial_seed(7, 0) == trial_seed(7, 0) != trial_seed(8, 0)


def test_trial_config_rejects_contradicting_names() -> None:
    with pytest.raises(ValueError, match="given twice"):
        trial_config({"loss@pair": "contrastive", "loss": "cosine_embedding"})


def test_mining_only_with_triplets() -> None:
    configs = _draw(SearchSpace(), 120)
    assert {c.mining for c in configs if c.mode == "pair"} == {"random"}
    assert {c.mining for c in configs if c.mode == "triplet"} == {"random", "semihard", "hard"}
    for c in _draw(SearchSpace(pins={"mining": "semihard"}), 20):
        assert c.mode == "triplet"
