"""The define-by-run space proposes only valid configurations and honours pins."""

from __future__ import annotations

import optuna
import pytest

from study.space import SearchSpace, optuna_name, trial_config, trial_seed
from trainables.config import DIMENSIONS, SEARCHED, ConfigError, TrialConfig
from trainables.dimensions import LOSS as LOSS_SPECS
from trainables.dimensions import losses_of

MARGIN_RANGE = DIMENSIONS["margin"].search_per
TEMPERATURE_RANGE = DIMENSIONS["temperature"].search

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
    configs = _draw(SearchSpace(fixed={"epochs": 2}, study_seed=3), n=200)
    seen = {(c.mode, c.loss) for c in configs}
    assert seen == {("pair", "cosine_embedding"), ("pair", "contrastive"),
                    ("triplet", "triplet_margin"), ("batch", "ntxent"), ("batch", "supcon")}
    default = TrialConfig()
    for c in configs:
        assert c.loss in losses_of(c.mode)
        assert c.positives in LOSS_SPECS[c.loss].positives
        if "margin" in LOSS_SPECS[c.loss].hyperparameters:
            low, high = MARGIN_RANGE[c.loss]
            assert low <= c.margin <= high
            assert c.temperature == default.temperature
        else:  # ntxent, supcon: the temperature is searched, the margin is not
            assert c.margin == default.margin
            assert TEMPERATURE_RANGE[0] <= c.temperature <= TEMPERATURE_RANGE[1]
        assert c.epochs == 2
        if c.augmentation == "none":
            assert c.positives == "class" and c.aug_strength == 1.0
            assert c.loss != "ntxent"
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
    with pytest.raises(ConfigError, match="mode='pair', loss='triplet_margin' cannot go together: "
                                          "loss='triplet_margin' needs mode='triplet'"):
        _draw(SearchSpace(pins={"mode": "pair", "loss": "triplet_margin"}), 1)


def test_same_study_seed_same_proposals() -> None:
    space = SearchSpace(study_seed=7)
    assert _draw(space, 20, seed=1) == _draw(space, 20, seed=1)
    assert trial_seed(7, 0) == trial_seed(7, 0) != trial_seed(8, 0)


def test_trial_config_rejects_contradicting_names() -> None:
    with pytest.raises(ValueError, match="given twice"):
        trial_config({"loss | mode=pair": "contrastive", "loss": "cosine_embedding"})


def test_optuna_names_split_by_what_decides_the_distribution() -> None:
    values = {"mode": "pair", "loss": "contrastive", "augmentation": "rotation"}
    assert optuna_name("loss", values) == "loss | mode=pair"
    assert optuna_name("margin", values) == "margin | loss=contrastive"
    assert optuna_name("aug_strength", values) == "aug_strength | augmentation=rotation"
    assert optuna_name("lr", values) == "lr"


def test_mining_only_with_triplets() -> None:
    configs = _draw(SearchSpace(), 120)
    assert {c.mining for c in configs if c.mode == "pair"} == {"random"}
    assert {c.mining for c in configs if c.mode == "triplet"} == {"random", "semihard", "hard"}
    for c in _draw(SearchSpace(pins={"mining": "semihard"}), 20):
        assert c.mode == "triplet"


def test_batch_losses_follow_the_positives() -> None:
    configs = _draw(SearchSpace(pins={"mode": "batch"}), 60)
    assert {c.loss for c in configs} == {"ntxent", "supcon"}
    for c in configs:
        assert c.loss == ("ntxent" if c.positives == "instance" else "supcon")
        assert c.mining == "random"


def test_temperature_is_searched_only_for_its_losses() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5))
    space = SearchSpace()
    for _ in range(80):
        trial = study.ask()
        constants = space(trial)
        config = trial_config({**trial.params, **constants})
        names = set(trial.params)
        uses = LOSS_SPECS[config.loss].hyperparameters
        values = config.to_dict()
        assert (optuna_name("temperature", values) in names) == ("temperature" in uses)
        assert (optuna_name("margin", values) in names) == ("margin" in uses)
    assert "temperature" in SEARCHED


def test_a_pinned_ntxent_needs_instance_positives_and_an_augmentation() -> None:
    configs = _draw(SearchSpace(pins={"loss": "ntxent"}), 30)
    for c in configs:
        assert (c.mode, c.positives) == ("batch", "instance")
        assert c.augmentation in ("rotation", "simclr")
    assert len({c.temperature for c in configs}) == len(configs)
    for c in _draw(SearchSpace(pins={"loss": "supcon", "augmentation": "rotation"}), 20):
        assert (c.mode, c.positives) == ("batch", "class")


def test_pinned_temperature_and_margin_are_kept() -> None:
    for c in _draw(SearchSpace(pins={"loss": "supcon", "temperature": 0.3, "margin": 0.5}), 10):
        assert (c.temperature, c.margin) == (0.3, 0.5)
    for c in _draw(SearchSpace(pins={"temperature": 0.2}), 30):
        assert c.temperature == 0.2


def test_pinned_positives_choose_the_batch_loss() -> None:
    for c in _draw(SearchSpace(pins={"positives": "class", "mode": "batch"}), 20):
        assert c.loss == "supcon"
    for c in _draw(SearchSpace(pins={"positives": "instance", "mode": "batch"}), 20):
        assert c.loss == "ntxent" and c.augmentation != "none"


@pytest.mark.parametrize("pins,message", [
    ({"loss": "ntxent", "positives": "class"},
     "loss='ntxent', positives='class' cannot go together: loss='ntxent' needs "
     "positives='instance'"),
    ({"loss": "supcon", "positives": "instance"},
     "loss='supcon', positives='instance' cannot go together: loss='supcon' needs "
     "positives='class'"),
    ({"loss": "ntxent", "augmentation": "none"},
     "loss='ntxent', augmentation='none' cannot go together: loss='ntxent' needs "
     "positives='instance'; augmentation='none' needs positives='class'"),
    ({"loss": "ntxent", "augmentation": "none", "positives": "instance"},
     "loss='ntxent', augmentation='none' cannot go together"),
    ({"loss": "supcon", "mining": "hard"},
     "loss='supcon', mining='hard' cannot go together: loss='supcon' needs mode='batch', "
     "mining='random'; mining='hard' needs mode='triplet', loss='triplet_margin'"),
])
def test_contradicting_batch_pins_fail_with_the_fix(pins: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _draw(SearchSpace(pins=pins), 1)
