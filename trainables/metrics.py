"""What a trial measures, named and documented once.  Standard library only: the study
records these names and the analysis reads them back without importing torch.

After every epoch a trial reports its ``Progress`` and its ``Scores`` on the validation
split (``val_`` names): the searcher, the scheduler and the choice of the best trial read
only those.  Once, at its end, the trial is scored on the test split (``test_`` names) and
its last embedding's ``Structure`` is measured, on the embedding and on its t-SNE map
(``tsne_`` names).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

NAN = float("nan")


def _metric(doc: str) -> float:
    return field(default=NAN, metadata={"doc": doc})


@dataclass(frozen=True)
class Progress:
    """How far and how fast a trial has trained, after an epoch."""

    epoch: float = _metric("epochs completed (1-based)")
    loss: float = _metric("mean training loss over the epoch")
    images_seen: float = _metric("training views encoded so far (a triplet step encodes 3 per "
                                 "anchor, a pair or batch step 2): the compute spent")
    epoch_time_s: float = _metric("wall time of the epoch's training steps, seconds")
    eval_time_s: float = _metric("wall time of the epoch's validation judgement (embedding, "
                                 "probe, kNN, retrieval), seconds")
    images_per_s: float = _metric("training views encoded per second")


@dataclass(frozen=True)
class Scores:
    """How well an embedding serves a split (Musgrave, Belongie & Lim 2020, "A Metric
    Learning Reality Check": the split's own embeddings are queries and references)."""

    probe_accuracy: float = _metric(
        "accuracy of a logistic-regression probe fitted on a stratified sample of the "
        "training split's embeddings (trainables.probe)")
    probe_converged: float = _metric("1 when the probe's solver reached its tolerance, else 0")
    knn_accuracy: float = _metric(
        "cosine k-nearest-neighbour vote of the same training sample (k = knn_k)")
    precision_at_1: float = _metric(
        "share of the split's embeddings whose most cosine-similar other embedding of the "
        "split has their class (leave-one-out)")
    map_at_r: float = _metric(
        "MAP@R within the split, leave-one-out: R = the other embeddings of the query's class")


@dataclass(frozen=True)
class Structure:
    """How an embedding is shaped (``trainables.structure``)."""

    silhouette: float = _metric(
        "mean silhouette of the points grouped by class (Rousseeuw 1987): near 1 for tight, "
        "separated clusters, near 0 or below when classes overlap")
    line_likeness: float = _metric(
        "how 1-D each class is locally: the mean linearity (λ1 − λ2) / λ1 of each point's "
        "same-class neighbourhood; 1 on segments and curves, low on blobs, split or not")
    fragmentation: float = _metric(
        "pieces a class falls into beyond one: connected components of each class's "
        "neighbour graph, minus 1, averaged over classes")
    effective_rank: float = _metric(
        "effective rank of the embedding (Roy & Vetterli 2007): exp of the entropy of its "
        "normalised singular values; near 1 for a collapsed embedding")


def docs(record: type, prefix: str = "", suffix: str = "") -> dict[str, str]:
    """``{prefix + name: documentation + suffix}`` of a metrics dataclass's fields."""
    return {f"{prefix}{f.name}": f"{f.metadata['doc']}{suffix}" for f in fields(record)}


VAL, TEST, TSNE = "val_", "test_", "tsne_"
EPOCH_METRICS: dict[str, str] = {**docs(Progress),
                                 **docs(Scores, VAL, "; on the validation split, every epoch")}
TEST_METRICS: dict[str, str] = docs(Scores, TEST, "; on the test split, once at the end")
# Effective rank is the embedding's own: a 2-D map's would say nothing.
MAP_STRUCTURE = tuple(f.name for f in fields(Structure) if f.name != "effective_rank")
STRUCTURE_METRICS: dict[str, str] = {
    **docs(Structure),
    **{f"{TSNE}{k}": f"{v}; on the 2-D t-SNE map" for k, v in docs(Structure).items()
       if k in MAP_STRUCTURE},
}
END_TIME = "end_time_s"
END_METRICS: dict[str, str] = {
    **TEST_METRICS, **STRUCTURE_METRICS,
    END_TIME: "wall time of the end-of-trial judgement (test scores, t-SNE map, plots), s",
}
