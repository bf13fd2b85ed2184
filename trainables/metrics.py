"""What a trial measures, named and documented once.  Standard library only: the study
records these names and the analysis reads them back without importing torch.

``EpochMetrics`` is the flat dict a trial reports after every epoch (``asdict``); the
structure measures describe the last evaluated embedding and its t-SNE map, computed at the
end of the trial.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


def _metric(doc: str) -> float:
    return field(default=float("nan"), metadata={"doc": doc})


@dataclass(frozen=True)
class EpochMetrics:
    """One epoch's report; every value is a float."""

    epoch: float = _metric("epochs completed (1-based)")
    loss: float = _metric("mean training loss over the epoch")
    knn_accuracy: float = _metric("cosine kNN accuracy of test embeddings against the training "
                                  "sample")
    probe_accuracy: float = _metric("test accuracy of a logistic-regression probe on the frozen "
                                    "embedding")
    precision_at_1: float = _metric("share of test embeddings whose most cosine-similar "
                                    "training-sample embedding has their class (Musgrave et al. "
                                    "2020)")
    map_at_r: float = _metric("MAP@R of test embeddings retrieving the training sample by cosine "
                              "similarity, R = the query class's count there (Musgrave et al. "
                              "2020)")
    epoch_time_s: float = _metric("wall time of the epoch's training steps, seconds")
    eval_time_s: float = _metric("wall time of the epoch's evaluation (embedding, probe, kNN, "
                                 "retrieval), seconds")
    images_per_s: float = _metric("training images encoded per second (views, not anchors)")


@dataclass(frozen=True)
class Structure:
    """How an embedding is shaped (``trainables.structure``)."""

    silhouette: float = _metric("mean silhouette coefficient of the points grouped by class "
                                "(Rousseeuw 1987): near 1 for tight, separated class clusters")
    line_likeness: float = _metric("share of each class's variance along its first principal "
                                   "axis, averaged over classes")


def docs(record: type) -> dict[str, str]:
    """``{name: documentation}`` of a metrics dataclass's fields, in order."""
    return {f.name: f.metadata["doc"] for f in fields(record)}


EPOCH_METRICS: dict[str, str] = docs(EpochMetrics)
# The end-of-trial judgement: structure of the embedding, and of its t-SNE map (``tsne_``).
TSNE_PREFIX = "tsne_"
STRUCTURE_METRICS: dict[str, str] = {
    **docs(Structure),
    **{f"{TSNE_PREFIX}{name}": f"{doc}; on the 2-D t-SNE map" for name, doc in docs(Structure).items()},
}
TSNE_TIME = "tsne_time_s"
END_METRICS: dict[str, str] = {**STRUCTURE_METRICS,
                               TSNE_TIME: "wall time of the t-SNE map and its plots, seconds"}
