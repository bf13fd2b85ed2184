"""Judging an embedding on a split: a linear probe, a kNN classifier, retrieval metrics.

``scores`` gives a split's ``trainables.metrics.Scores``: every epoch on the validation
split (inside the trial, on its device), once at the end on the test split.  The probe and
the kNN classifier are fitted on (take their neighbours from) a fixed stratified sample of
the training split; retrieval is within the split itself, leave-one-out, as Musgrave,
Belongie & Lim (2020) define it.  Embeddings are (N, D) float tensors, labels (N,) int64
in 0..K-1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from trainables.metrics import Scores
from trainables.probe import Probe, fit_probe


def scores(ref_emb: Tensor, ref_y: Tensor, emb: Tensor, y: Tensor, num_classes: int,
           knn_k: int, probe: Probe | None = None) -> Scores:
    """How well (N, D) embeddings ``emb`` of one split with labels ``y`` serve it: a probe
    and a kNN vote from the training sample ``ref_emb`` / ``ref_y``, retrieval within the
    split.  ``probe``: the one fitted on that sample already (several splits judged from
    one sample share it), else it is fitted here."""
    if probe is None:
        probe = fit_probe(ref_emb, ref_y, num_classes)
    retrieval = retrieval_metrics(emb, y)
    return Scores(probe_accuracy=probe.accuracy(emb, y),
                  probe_converged=float(probe.converged),
                  knn_accuracy=knn_accuracy(ref_emb, ref_y, emb, y, k=knn_k),
                  precision_at_1=retrieval["precision_at_1"], map_at_r=retrieval["map_at_r"])


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


def retrieval_metrics(emb: Tensor, labels: Tensor, chunk: int = 1024) -> dict[str, float]:
    """Precision@1 and MAP@R of a split retrieving itself by cosine similarity, each
    embedding a query against all the others (leave-one-out; Musgrave et al. 2020).

    - ``precision_at_1``: share of queries whose most similar other embedding has their
      label (a query whose class has no other member counts as a miss).
    - ``map_at_r``: for a query with R other embeddings of its label, ranked by similarity,
      rel(i) = 1 if the i-th has the query's label and P(i) the precision of the first i:
      ``AP@R = (1/R) * sum_{i<=R} P(i) * rel(i)``; averaged over the queries with R > 0
      (0.0 when there are none).

    ``emb`` (N, D) with labels (N,).  Computed in query chunks of ``chunk`` on the
    embeddings' device (one (chunk, N) similarity block and its top max-R at a time).  Ties
    in similarity are ranked in ``torch.topk``'s order.
    """
    normed = torch.nn.functional.normalize(emb.float(), dim=1)
    n = len(normed)
    num_classes = int(labels.max()) + 1
    r_of_class = torch.bincount(labels, minlength=num_classes) - 1  # others of the class
    top = max(1, min(int(r_of_class[labels].max()), n - 1))
    ranks = torch.arange(1, top + 1, device=normed.device, dtype=torch.float32)  # (top,)
    hits_at_1, ap_sum, with_r = 0, 0.0, 0
    for start in range(0, n, chunk):
        y = labels[start : start + chunk]
        sims = normed[start : start + chunk] @ normed.T
        rows = torch.arange(len(y), device=sims.device)
        sims[rows, rows + start] = float("-inf")  # never retrieve oneself
        neighbours = sims.topk(top, dim=1).indices
        r = r_of_class[y]  # (c,)
        same = labels[neighbours] == y[:, None]
        hits_at_1 += int(same[:, 0].sum())
        rel = same & (ranks[None, :] <= r[:, None])  # (c, top)
        precision = rel.float().cumsum(dim=1) / ranks  # P(i), (c, top)
        ap = (precision * rel).sum(dim=1) / r.clamp_min(1)
        ap_sum += float(ap.sum())
        with_r += int((r > 0).sum())
    return {
        "precision_at_1": hits_at_1 / n,
        "map_at_r": ap_sum / with_r if with_r else 0.0,
    }
