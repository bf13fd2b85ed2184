"""The per-epoch judges of an embedding: a linear probe, a kNN classifier, retrieval metrics.

Embeddings are (N, D) float tensors or arrays; labels are (N,) integers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def knn_accuracy(
    train_emb: Tensor, train_y: Tensor, test_emb: Tensor, test_y: Tensor, k: int = 10
) -> float:
    """Accuracy of a k-nearest-neighbour majority vote under cosine similarity.

    Each test embedding takes the most frequent label among its ``k`` most similar training
    embeddings (ties: the smallest label).  Computed in test chunks of 1024 on the
    embeddings' device.
    """
    k = min(k, len(train_emb))
    train_n = torch.nn.functional.normalize(train_emb.float(), dim=1)
    test_n = torch.nn.functional.normalize(test_emb.float(), dim=1)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    correct = 0
    for start in range(0, len(test_n), 1024):
        sims = test_n[start : start + 1024] @ train_n.T
        neighbours = sims.topk(k, dim=1).indices
        votes = torch.zeros(len(neighbours), num_classes, device=sims.device)
        votes.scatter_add_(1, train_y[neighbours], torch.ones_like(neighbours, dtype=votes.dtype))
        predicted = votes.argmax(dim=1)
        correct += int((predicted == test_y[start : start + 1024]).sum())
    return correct / len(test_n)


def retrieval_metrics(
    ref_emb: Tensor, ref_y: Tensor, query_emb: Tensor, query_y: Tensor, chunk: int = 1024
) -> dict[str, float]:
    """Precision@1 and MAP@R of queries retrieving references by cosine similarity.

    As defined in Musgrave, Belongie & Lim (2020), "A Metric Learning Reality Check", with
    queries and references disjoint (the trial: test embeddings against the training sample):

    - ``precision_at_1``: share of queries whose most similar reference has their label.
    - ``map_at_r``: for a query with R references of its label, the references ranked by
      similarity, rel(i) = 1 if the i-th has the query's label and P(i) the precision of the
      first i: ``AP@R = (1/R) * sum_{i<=R} P(i) * rel(i)``; averaged over the queries with
      R > 0 (0.0 when there are none).

    ``ref_emb`` (N, D) with labels ``ref_y`` (N,); ``query_emb`` (M, D) with ``query_y`` (M,).
    Computed in query chunks of ``chunk`` on the embeddings' device (one (chunk, N)
    similarity block and its top max-R at a time).  Ties in similarity are ranked in
    ``torch.topk``'s order.
    """
    ref_n = torch.nn.functional.normalize(ref_emb.float(), dim=1)
    query_n = torch.nn.functional.normalize(query_emb.float(), dim=1)
    num_classes = int(max(ref_y.max(), query_y.max())) + 1
    r_of_class = torch.bincount(ref_y, minlength=num_classes)  # (C,)
    top = max(1, min(int(r_of_class[query_y].max()), len(ref_n)))
    ranks = torch.arange(1, top + 1, device=ref_n.device, dtype=torch.float32)  # (top,)
    hits_at_1, ap_sum, with_r = 0, 0.0, 0
    for start in range(0, len(query_n), chunk):
        y = query_y[start : start + chunk]
        neighbours = (query_n[start : start + chunk] @ ref_n.T).topk(top, dim=1).indices
        r = r_of_class[y]  # (c,)
        rel = (ref_y[neighbours] == y[:, None]) & (ranks[None, :] <= r[:, None])  # (c, top)
        hits_at_1 += int(rel[:, 0].sum())
        precision = rel.float().cumsum(dim=1) / ranks  # P(i), (c, top)
        ap = (precision * rel).sum(dim=1) / r.clamp_min(1)
        ap_sum += float(ap.sum())
        with_r += int((r > 0).sum())
    return {
        "precision_at_1": hits_at_1 / len(query_n),
        "map_at_r": ap_sum / with_r if with_r else 0.0,
    }


def probe_accuracy(
    train_emb: np.ndarray, train_y: np.ndarray, test_emb: np.ndarray, test_y: np.ndarray,
    seed: int = 0,
) -> float:
    """Test accuracy of a multinomial logistic regression fitted on training embeddings.

    The "classifier on top of the frozen embedding": features are standardised with the
    training statistics; scikit-learn's ``LogisticRegression`` (L-BFGS, C=1).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=1.0, max_iter=300, random_state=seed)
    )
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train_emb, train_y)
    return float(model.score(test_emb, test_y))
