"""How an embedding is shaped: clustered classes, or classes stretched along lines.

The original study saw triplet training give clusters and pair training line-like
structures in t-SNE plots.  These two numbers measure that, on the embedding itself and on
its 2-D t-SNE map:

``silhouette``: the mean silhouette coefficient of the points grouped by class (Rousseeuw
1987), Euclidean distance; in [-1, 1]: near 1 for tight, well separated class clusters,
near 0 for overlapping classes, negative when points sit closer to another class.

``line_likeness``: for each class, the share of its variance along its first principal axis
(the largest eigenvalue of its covariance over the trace), averaged over classes; in
[1/d, 1] for d dimensions: 1 when every class lies on a line, 1/d for round (isotropic)
classes (0.5 on a 2-D map).
"""

from __future__ import annotations

import numpy as np

from trainables.metrics import Structure


def silhouette(points: np.ndarray, labels: np.ndarray, max_points: int = 5000,
               seed: int = 0) -> float:
    """Mean silhouette coefficient of (N, d) points by class; a fixed random subsample of
    ``max_points`` keeps it O(max_points^2).  NaN when fewer than two classes are present."""
    from sklearn.metrics import silhouette_score

    if len(np.unique(labels)) < 2:
        return float("nan")
    sample = None if len(points) <= max_points else max_points
    return float(silhouette_score(points, labels, sample_size=sample, random_state=seed))


def line_likeness(points: np.ndarray, labels: np.ndarray) -> float:
    """Mean over classes (with at least 3 points) of the first principal axis' share of the
    class's variance; NaN when no class has 3 points."""
    shares = []
    for k in np.unique(labels):
        members = points[labels == k].astype(np.float64)
        if len(members) < 3:
            continue
        centred = members - members.mean(axis=0)
        variances = np.linalg.svd(centred, compute_uv=False) ** 2
        total = variances.sum()
        if total > 0:
            shares.append(variances[0] / total)
    return float(np.mean(shares)) if shares else float("nan")


def structure(points: np.ndarray, labels: np.ndarray) -> Structure:
    """The structure measures of (N, d) points by class."""
    return Structure(silhouette=silhouette(points, labels),
                     line_likeness=line_likeness(points, labels))
