"""Structure measures on synthetic shapes with a known order, and against brute-force references."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest
from sklearn.metrics import silhouette_samples

from trainables.metrics import Structure
from trainables.structure import (
    components,
    effective_rank,
    fragmentation,
    line_likeness,
    silhouette,
    structure,
)

N = 300  # points a shape
LINES = ("segment", "arc", "sine")
BLOBS = ("blob", "split", "anisotropic")


def shapes_2d(seed: int = 0) -> dict[str, np.ndarray]:
    """(N, 2) point sets of a known shape, about 10 units across."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, N)
    noise = rng.normal(scale=0.02, size=(N, 2))
    return {
        "segment": np.c_[10 * t, np.zeros(N)] + noise,
        "arc": np.c_[5 * np.cos(np.pi * t), 5 * np.sin(np.pi * t)] + noise,  # a half circle
        "sine": np.c_[10 * t, 2 * np.sin(4 * np.pi * t)] + noise,  # two periods
        "blob": rng.normal(size=(N, 2)),
        "split": rng.normal(size=(N, 2)) + np.repeat([[0.0, 0.0], [20.0, 0.0]], N // 2, axis=0),
        "anisotropic": rng.normal(size=(N, 2)) * [3.0, 1.0],
    }


def embedded(points: np.ndarray, dim: int = 64, noise: float = 0.01, seed: int = 1) -> np.ndarray:
    """(N, 2) points mapped into ``dim`` dimensions by a random orthogonal map, plus isotropic
    Gaussian noise of std ``noise`` in every coordinate."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:, :2]  # (dim, 2), orthonormal columns
    return points @ basis.T + rng.normal(scale=noise, size=(len(points), dim))


@pytest.fixture(scope="module", params=["2-D", "64-D"])
def shapes(request: pytest.FixtureRequest) -> dict[str, np.ndarray]:
    flat = shapes_2d()
    return flat if request.param == "2-D" else {k: embedded(v) for k, v in flat.items()}


def one_class(points: np.ndarray) -> np.ndarray:
    return np.zeros(len(points), dtype=int)


# ---- the known order -------------------------------------------------------------------------

def test_line_likeness_ranks_segments_and_curves_above_blobs(shapes: dict[str, np.ndarray]) -> None:
    values = {name: line_likeness(p, one_class(p)) for name, p in shapes.items()}
    assert min(values[n] for n in LINES) > 0.9
    assert max(values[n] for n in BLOBS) < 0.5
    # a class split into two blobs is not rewarded: it scores as one blob, within noise
    assert values["split"] <= values["blob"] + 0.03


def test_fragmentation_counts_the_pieces(shapes: dict[str, np.ndarray]) -> None:
    for name, points in shapes.items():
        assert fragmentation(points, one_class(points)) == (1.0 if name == "split" else 0.0), name


def test_three_far_blobs_are_two_extra_pieces() -> None:
    rng = np.random.default_rng(3)
    points = rng.normal(size=(300, 2)) + np.repeat([[0.0, 0.0], [15.0, 0.0], [0.0, 15.0]], 100, axis=0)
    assert fragmentation(points, one_class(points)) == 2.0


def test_stray_points_are_not_pieces() -> None:
    rng = np.random.default_rng(4)  # a blob with 5 points far away: under k + 1 = 11, they join it
    points = np.r_[rng.normal(size=(200, 2)), rng.normal(size=(5, 2)) + 50.0]
    assert fragmentation(points, one_class(points)) == 0.0


def test_classes_are_averaged() -> None:
    flat = shapes_2d()
    points = np.r_[flat["segment"], flat["split"] + 100.0]
    labels = np.repeat([0, 1], N)
    expected = (line_likeness(flat["segment"], one_class(flat["segment"]))
                + line_likeness(flat["split"], one_class(flat["split"]))) / 2
    assert line_likeness(points, labels) == pytest.approx(expected)
    assert fragmentation(points, labels) == 0.5


def test_isotropic_blobs_of_more_dimensions_are_less_line_like() -> None:
    rng = np.random.default_rng(5)
    by_dim = [line_likeness(rng.normal(size=(N, d)), one_class(np.empty(N))) for d in (2, 16, 64)]
    assert by_dim[0] > by_dim[1] > by_dim[2] > 0


# ---- collapse and edge cases -----------------------------------------------------------------

def test_a_collapsed_class_is_not_a_line() -> None:
    collapsed = np.tile([0.6, 0.8, 0.0], (50, 1))
    labels = one_class(collapsed)
    assert line_likeness(collapsed, labels) == 0.0
    assert fragmentation(collapsed, labels) == 0.0
    assert math.isnan(effective_rank(collapsed))
    # float32 rounding jitter of a collapsed L2-normalised embedding is no structure either
    rng = np.random.default_rng(6)
    jitter = (collapsed + rng.normal(scale=1e-7, size=collapsed.shape)).astype(np.float32)
    assert np.ptp(jitter, axis=0).max() > 0
    assert line_likeness(jitter, labels) == 0.0
    assert math.isnan(effective_rank(jitter))


def test_small_classes_are_skipped() -> None:
    rng = np.random.default_rng(7)
    points = rng.normal(size=(40, 2))
    labels = np.r_[np.zeros(30, int), np.ones(10, int)]  # class 1 has fewer than 16 points
    assert line_likeness(points, labels) == pytest.approx(line_likeness(points[:30], labels[:30]))
    assert math.isnan(line_likeness(points[30:], labels[30:]))
    assert math.isnan(fragmentation(points[30:35], labels[30:35]))


def test_bad_input_is_refused() -> None:
    points = np.zeros((20, 2))
    with pytest.raises(ValueError, match="labels"):
        line_likeness(points, np.zeros(19, int))
    with pytest.raises(ValueError, match="k must"):
        line_likeness(points, np.zeros(20, int), k=1)
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        effective_rank(np.zeros(5))


# ---- independent references ------------------------------------------------------------------

def test_linearity_of_one_neighbourhood_by_hand() -> None:
    # k + 1 = 4 points: every point's neighbourhood is the whole class
    points = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 1.0], [6.0, 1.0]])
    x, y = points[:, 0] - points[:, 0].mean(), points[:, 1] - points[:, 1].mean()
    a, b, c = np.mean(x * x), np.mean(x * y), np.mean(y * y)  # covariance [[a, b], [b, c]]
    root = math.sqrt(((a - c) / 2) ** 2 + b**2)
    lam1, lam2 = (a + c) / 2 + root, (a + c) / 2 - root
    assert line_likeness(points, one_class(points), k=3) == pytest.approx((lam1 - lam2) / lam1)


def brute_line_likeness(points: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Per point: sort distances, take the k + 1 nearest, np.cov, np.linalg.eigh."""
    per_class = []
    for c in np.unique(labels):
        members = points[labels == c]
        values = []
        for p in members:
            order = np.argsort(np.linalg.norm(members - p, axis=1), kind="stable")[: k + 1]
            lam = np.linalg.eigh(np.atleast_2d(np.cov(members[order].T, bias=True)))[0][::-1]
            values.append((lam[0] - lam[1]) / lam[0])
        per_class.append(np.mean(values))
    return float(np.mean(per_class))


@pytest.mark.parametrize("dim", [3, 20])  # neighbourhoods of 6 points: more points than d, fewer
def test_line_likeness_against_a_brute_force_loop(dim: int) -> None:
    rng = np.random.default_rng(dim)
    points = rng.normal(size=(60, dim)) * rng.uniform(0.2, 3.0, size=dim)
    labels = rng.integers(0, 2, 60)
    assert line_likeness(points, labels, k=5) == pytest.approx(brute_line_likeness(points, labels, 5))


def bfs_components(points: np.ndarray, k: int) -> int:
    """Brute-force k-nearest-neighbour lists, symmetrised adjacency sets, breadth-first search."""
    n = len(points)
    adjacent: list[set[int]] = [set() for _ in range(n)]
    for i in range(n):
        distances = [(float(np.sum((points[i] - points[j]) ** 2)), j) for j in range(n) if j != i]
        for _, j in sorted(distances)[:k]:
            adjacent[i].add(j)
            adjacent[j].add(i)
    seen, count = set(), 0
    for start in range(n):
        if start in seen:
            continue
        count += 1
        seen.add(start)
        queue = deque([start])
        while queue:
            for j in adjacent[queue.popleft()] - seen:
                seen.add(j)
                queue.append(j)
    return count


@pytest.mark.parametrize("seed", range(4))
def test_components_against_breadth_first_search(seed: int) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 8, size=(5, 3))  # some clusters close enough to merge, some not
    points = centres[rng.integers(0, 5, 40)] + rng.normal(scale=0.5, size=(40, 3))
    for k in (1, 2, 3):
        assert components(points, k) == bfs_components(points, k)


def test_effective_rank_of_a_known_spectrum() -> None:
    rng = np.random.default_rng(8)
    n, d = 100, 12
    spectrum = np.array([5.0, 3.0, 1.0, 0.5])
    # U: orthonormal columns orthogonal to the all-ones vector, so centring leaves them alone
    a = rng.normal(size=(n, 4))
    u = np.linalg.qr(a - a.mean(axis=0))[0]
    v = np.linalg.qr(rng.normal(size=(d, 4)))[0]
    points = (u * spectrum) @ v.T + 7.0  # an offset that centring removes
    p = [s / sum(spectrum) for s in spectrum]
    assert effective_rank(points) == pytest.approx(math.exp(-sum(q * math.log(q) for q in p)))


def test_effective_rank_of_lines_and_isotropic_clouds() -> None:
    rng = np.random.default_rng(9)
    direction = rng.normal(size=10)
    line = rng.normal(size=(500, 1)) * direction + 3.0  # points on a line in 10-D
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-6)
    for d in (2, 8, 32):
        assert effective_rank(rng.normal(size=(2000, d))) == pytest.approx(d, rel=0.03)
    assert math.isnan(effective_rank(np.ones((1, 4))))


def test_silhouette_against_scikit_learn() -> None:
    points = np.array([[0, 0], [2, 0], [4, 0], [10, 10], [10, 12], [12, 10], [12, 12]], float)
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    # the first point by hand: a = mean(2, 4) = 3; b = its mean distance to class 1
    b = np.linalg.norm(points[3:] - points[0], axis=1).mean()
    assert silhouette_samples(points, labels)[0] == pytest.approx((b - 3) / max(b, 3))
    assert silhouette(points, labels) == pytest.approx(silhouette_samples(points, labels).mean())
    assert math.isnan(silhouette(points, np.zeros(7, int)))


def test_structure_gathers_the_measures() -> None:
    flat = shapes_2d()
    points = np.r_[flat["segment"], flat["split"] + 100.0]
    labels = np.repeat([0, 1], N)
    values = structure(points, labels)
    assert isinstance(values, Structure)
    assert values == Structure(silhouette=silhouette(points, labels),
                               line_likeness=line_likeness(points, labels),
                               fragmentation=fragmentation(points, labels),
                               effective_rank=effective_rank(points))
    assert math.isnan(structure(points, labels, with_rank=False).effective_rank)
