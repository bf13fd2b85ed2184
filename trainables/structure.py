"""How an embedding is shaped: clustered classes, classes stretched along lines, classes in pieces.

The original study saw triplet training give clusters and pair training line-like
structures in t-SNE plots.  These numbers measure that, on the (N, D) embedding itself and
on its (N, 2) t-SNE map; every measure is unitless and invariant to rotation, translation
and uniform scaling of the points:

``silhouette``: the mean silhouette coefficient of the points grouped by class (Rousseeuw
1987), Euclidean distance; in [-1, 1]: near 1 for tight, well separated class clusters,
near 0 for overlapping classes, negative when points sit closer to another class.

``line_likeness``: how 1-D each class is locally, the mean over its points of the linear
anisotropy (λ1 − λ2) / λ1 (Westin et al. 1997) of the covariance of the point's
``LINE_K`` + 1 nearest same-class points, averaged over classes; in [0, 1]: near 1 on
segments and curves alike (0.95 on their t-SNE maps), about 0.4 for a round or elongated 2-D
blob whether it is in one piece or several (0.5-0.6 on t-SNE maps of blobs, whose texture is
grainier), lower for blobs of more dimensions (about 0.13 for an isotropic 64-D one).

``fragmentation``: how many pieces a class falls into beyond one, the connected components
of its symmetrised ``FRAGMENT_K``-nearest-neighbour graph minus 1, averaged over classes; in
[0, n / (k + 1) − 1] for n points a class: 0 when every class is one connected cloud, 1 when
each is split in two (a piece has at least k + 1 points, so stray points do not count).
On a t-SNE map it counts the map's pieces, which t-SNE can tear out of one Gaussian blob.

``effective_rank``: how many dimensions the embedding fills, exp of the entropy of its
normalised singular values (Roy & Vetterli 2007); in [1, min(N − 1, D)]: 1 for an
embedding collapsed onto a line, D for an isotropic D-dimensional cloud.  Meaningless on a
2-D map, so ``structure(..., with_rank=False)`` leaves it NaN there.

A class, or a neighbourhood, whose points all coincide to within ``COLLAPSE_RTOL`` of the
points' RMS norm (finer than float32 resolves) is *collapsed*: it has no direction, so its
linearity is 0 (not 1, a collapse is not a line); it is one piece (fragmentation 0); an
embedding collapsed to one point has NaN effective rank.
"""

from __future__ import annotations

import numpy as np

from trainables.metrics import Structure

# 15 neighbours: the local covariance of 16 points is stable enough that a round 2-D
# neighbourhood scores ~0.44 (0.51 at k = 10, 0.63 at k = 5), while with ~200 points per
# class a neighbourhood still spans under a tenth of a class, so a curve bending by 180
# degrees over a class still scores ~0.98.  Longer neighbourhoods also tolerate thicker
# lines: a 10-unit segment with noise of std 0.1 scores 0.83 (0.72 at k = 10); on t-SNE maps
# (perplexity 30) of the synthetic shapes, lines score 0.95 and blobs <= 0.6 (0.89 / 0.61
# at k = 10).
LINE_K = 15
# 10 neighbours: a piece must hold at least 11 points (5% of a 200-point class) to count,
# so stray points never do; the graph of a 200-point Gaussian blob was connected in all of
# 200 draws in 2-D and 50 in 64-D from k = 5 up (at k = 3 it had 0.37 extra pieces on average).
FRAGMENT_K = 10
# Points that coincide to 1e-6 of their RMS norm are one point: float32 (eps 1.2e-7)
# cannot tell them apart.
COLLAPSE_RTOL = 1e-6


def _check(points: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """``points`` as a float64 (N, d) array; ValueError when it or ``labels`` is misshapen."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"points must be an (N, d) array, got shape {points.shape}")
    if labels is not None and np.shape(labels) != (len(points),):
        raise ValueError(f"labels must have shape ({len(points)},) to match points, "
                         f"got {np.shape(labels)}")
    return points


def _resolution(points: np.ndarray) -> float:
    """Distance below which points count as one: ``COLLAPSE_RTOL`` x their RMS norm."""
    return COLLAPSE_RTOL * float(np.sqrt(np.mean(np.sum(points**2, axis=1)))) if len(points) else 0.0


def _neighbours(members: np.ndarray, k: int) -> np.ndarray:
    """(n, k + 1) indices of each of (n, d) ``members``' k + 1 nearest members by Euclidean
    distance, itself (or a duplicate of it) included.  scipy's KD-tree: fast on 2-D maps, and
    for ~200 points a class still ~3 ms in 64-D (sklearn's brute force costs ~60 ms a call)."""
    from scipy.spatial import cKDTree

    return cKDTree(members).query(members, k=k + 1)[1]


def silhouette(points: np.ndarray, labels: np.ndarray, max_points: int = 5000,
               seed: int = 0) -> float:
    """Mean silhouette coefficient (Rousseeuw 1987) of (N, d) points by (N,) class labels,
    Euclidean; a fixed random subsample of ``max_points`` keeps it O(max_points^2).  In
    [-1, 1]; NaN when fewer than two classes are present."""
    from sklearn.metrics import silhouette_score

    points = _check(points, labels)
    if len(np.unique(labels)) < 2:
        return float("nan")
    sample = None if len(points) <= max_points else max_points
    return float(silhouette_score(points, labels, sample_size=sample, random_state=seed))


def linearity(neighbourhoods: np.ndarray, resolution: float = 0.0) -> np.ndarray:
    """Linear anisotropy (λ1 − λ2) / λ1 (Westin et al. 1997) of the covariance of each of
    (M, m, d) neighbourhoods of m points -> (M,) in [0, 1]; 0 where the neighbourhood is
    collapsed (sqrt(λ1) <= ``resolution``, in the points' units).  λ1 >= λ2 are the two
    largest eigenvalues; taken from the (m, m) Gram matrix of the centred points when m < d
    (same nonzero eigenvalues, cheaper), so rank-deficient neighbourhoods are fine."""
    centred = neighbourhoods - neighbourhoods.mean(axis=1, keepdims=True)
    m, d = neighbourhoods.shape[1:]
    swapped = np.swapaxes(centred, 1, 2)
    scatter = centred @ swapped if m < d else swapped @ centred  # (M, min(m, d), min(m, d))
    eig = np.linalg.eigvalsh(scatter / m)  # ascending
    lam1 = eig[:, -1]
    lam2 = np.maximum(eig[:, -2], 0.0) if eig.shape[1] > 1 else np.zeros_like(lam1)
    spread = lam1 > resolution**2
    return np.where(spread, (lam1 - lam2) / np.where(spread, lam1, 1.0), 0.0)


def line_likeness(points: np.ndarray, labels: np.ndarray, k: int = LINE_K) -> float:
    """How 1-D each class is locally: for every point, the linearity (λ1 − λ2) / λ1 of the
    covariance of its neighbourhood, itself and its k nearest same-class points (Euclidean);
    averaged over the class's points, then over classes.  (N, d) points, (N,) labels.

    In [0, 1]: ~1 on segments and curves, ~0.4 on 2-D blobs (k = 15), lower on blobs of more
    dimensions; a class split into blobs scores as one blob.  Collapsed neighbourhoods score 0.
    Classes with fewer than k + 1 points are skipped; NaN when none is left."""
    if k < 2:
        raise ValueError(f"k must be at least 2 (two points always lie on a line), got {k}")
    points = _check(points, labels)
    resolution = _resolution(points)
    per_class = []
    for c in np.unique(labels):
        members = points[labels == c]
        if len(members) < k + 1:
            continue
        per_class.append(linearity(members[_neighbours(members, k)], resolution).mean())
    return float(np.mean(per_class)) if per_class else float("nan")


def components(points: np.ndarray, k: int = FRAGMENT_K) -> int:
    """Connected components of the symmetrised k-nearest-neighbour graph of (n, d) points
    (an edge i-j when j is among i's k nearest or i among j's); 1 when the points are
    collapsed; needs n >= k + 1."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    points = _check(points)
    if np.ptp(points, axis=0).max() <= _resolution(points):
        return 1
    n = len(points)
    neighbours = _neighbours(points, k)
    rows = np.repeat(np.arange(n), k + 1)
    graph = coo_matrix((np.ones(rows.size), (rows, neighbours.ravel())), shape=(n, n)).tocsr()
    return int(connected_components(graph + graph.T, directed=False)[0])


def fragmentation(points: np.ndarray, labels: np.ndarray, k: int = FRAGMENT_K) -> float:
    """Pieces a class falls into beyond one: per class, the connected components of the
    symmetrised k-nearest-neighbour graph of its points minus 1, averaged over classes.
    (N, d) points, (N,) labels.  In [0, n / (k + 1) − 1] for n points a class: a piece holds
    at least k + 1 points, so stray points join the nearest piece rather than count.
    Classes with fewer than k + 1 points are skipped; NaN when none is left."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    points = _check(points, labels)
    pieces = [components(points[labels == c], k) - 1 for c in np.unique(labels)
              if np.sum(labels == c) >= k + 1]
    return float(np.mean(pieces)) if pieces else float("nan")


def effective_rank(points: np.ndarray) -> float:
    """Effective rank (Roy & Vetterli 2007) of (N, D) points: with σ the singular values of
    the centred points and p = σ / Σσ, exp(−Σ p log p) (0 log 0 = 0).  In [1, min(N − 1, D)]:
    1 for points on a line, D for an isotropic D-dimensional Gaussian; NaN when the points
    are collapsed to one (or fewer than two are given)."""
    points = _check(points)
    if len(points) < 2:
        return float("nan")
    sv = np.linalg.svd(points - points.mean(axis=0), compute_uv=False)
    # the largest std along a direction is sv[0] / sqrt(N): collapsed when it is unresolved
    if sv[0] <= _resolution(points) * np.sqrt(len(points)):
        return float("nan")
    p = sv[sv > 0] / sv.sum()
    return float(np.exp(-np.sum(p * np.log(p))))


def structure(points: np.ndarray, labels: np.ndarray, with_rank: bool = True) -> Structure:
    """The structure measures of (N, d) points by (N,) class labels.  ``with_rank=False``
    for a t-SNE map: its effective rank says nothing (``metrics.MAP_STRUCTURE``), so it is
    left NaN and not computed."""
    points = _check(points, labels)
    return Structure(silhouette=silhouette(points, labels),
                     line_likeness=line_likeness(points, labels),
                     fragmentation=fragmentation(points, labels),
                     effective_rank=effective_rank(points) if with_rank else float("nan"))
