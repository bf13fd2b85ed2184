"""The raw-pixel floor: the pixels judged under the trials' protocol, checked against
scikit-learn's probe on the same stratified samples."""

from __future__ import annotations

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from trainables.config import TrialConfig
from trainables.floor import pixels, raw_pixel_floor
from trainables.sampling import EVALUATION_SEED, stratified_indices


def test_floor_probe_matches_sklearn_on_the_same_samples(digits) -> None:
    budget = TrialConfig(eval_train=600, eval_test=300)
    floor = raw_pixel_floor(digits, budget)
    train = stratified_indices(digits.train_y, 600, EVALUATION_SEED)
    test = stratified_indices(digits.test_y, 300, EVALUATION_SEED)
    x, y = pixels(digits, digits.train_x[train]).numpy(), digits.train_y[train].numpy()
    xt, yt = pixels(digits, digits.test_x[test]).numpy(), digits.test_y[test].numpy()
    scaler = StandardScaler().fit(x)
    expected = LogisticRegression(max_iter=2000).fit(scaler.transform(x), y).score(
        scaler.transform(xt), yt)
    assert floor["test_probe_accuracy"] == pytest.approx(expected, abs=0.005)
    assert set(floor) == {f"{s}{k}" for s in ("val_", "test_") for k in (
        "probe_accuracy", "probe_converged", "knn_accuracy", "precision_at_1", "map_at_r")}
    assert 0.8 < floor["val_precision_at_1"] <= 1.0  # digits' pixels are a strong floor
