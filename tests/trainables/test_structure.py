"""Structure measures on constructed embeddings with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from trainables.structure import line_likeness, silhouette, structure


def test_tight_clusters_have_high_silhouette_and_round_shape() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], float)
    labels = np.repeat(np.arange(4), 50)
    points = centres[labels] + rng.normal(scale=0.1, size=(200, 2))
    assert silhouette(points, labels) > 0.95
    assert line_likeness(points, labels) == pytest.approx(0.5, abs=0.1)  # round: 1/d


def test_points_on_lines_are_line_like() -> None:
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), 40)
    t = rng.uniform(-5, 5, size=120)
    directions = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    points = t[:, None] * directions[labels] + rng.normal(scale=1e-3, size=(120, 3))
    assert line_likeness(points, labels) == pytest.approx(1.0, abs=1e-4)


def test_hand_computed_values() -> None:
    # class 0: (0,0),(2,0),(4,0) lies on a line; class 1: a square's corners, round
    points = np.array([[0, 0], [2, 0], [4, 0], [10, 10], [10, 12], [12, 10], [12, 12]], float)
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    assert line_likeness(points, labels) == pytest.approx((1.0 + 0.5) / 2)
    # silhouette of the first point by hand: a = mean(2, 4) = 3; b = mean distance to class 1
    d = np.linalg.norm(points[3:] - points[0], axis=1).mean()
    s0 = (d - 3) / max(d, 3)
    from sklearn.metrics import silhouette_samples

    assert silhouette_samples(points, labels)[0] == pytest.approx(s0)
    assert silhouette(points, labels) == pytest.approx(silhouette_samples(points, labels).mean())


def test_overlapping_classes_score_near_zero() -> None:
    rng = np.random.default_rng(2)
    points = rng.normal(size=(300, 4))
    labels = rng.integers(0, 3, 300)
    values = structure(points, labels)
    assert abs(values.silhouette) < 0.1
    assert 0.25 <= values.line_likeness < 0.5  # 4-D isotropic: near 1/4, noise above
