"""The end-of-trial judgement, made once whichever epoch a trial ended at: the test
split embedded by the model of that epoch, its scores, a t-SNE map of a stratified sample of
its embeddings, the plots, and the structure measures of the embedding and of the map
(``trainables.structure``).

It works from the model's saved weights (``embed_splits``: the checkpoint every epoch
writes), so the driver can make it for a trial the scheduler stopped, in a process of its
own, off the trials' path (``judge_trial``).  Plotting is best-effort: a map that cannot be
drawn (too few points, a t-SNE that fails) leaves a note instead of a picture, never an
exception.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainables.config import TrialConfig
from trainables.data import Dataset
from trainables.evaluate import scores
from trainables.metrics import END_TIME, MAP_STRUCTURE, TEST, TSNE
from trainables.sampling import EVALUATION_SEED, stratified_indices
from trainables.structure import structure

# Fewer points than this make no t-SNE map worth drawing (perplexity needs a neighbourhood).
MIN_MAP_POINTS = 10


@dataclass(frozen=True)
class Embeddings:
    """A trial's embeddings, float32 and L2-normalised: ``train`` (M, D) of the fixed
    training sample with labels ``train_y`` (M,), ``test`` (T, D) of the test split's sample
    with ``test_y`` (T,)."""

    train: np.ndarray
    train_y: np.ndarray
    test: np.ndarray
    test_y: np.ndarray

    def save(self, path: str | Path) -> None:
        np.savez(path, **asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> Embeddings:
        with np.load(path, allow_pickle=False) as npz:
            return cls(**{k: npz[k] for k in ("train", "train_y", "test", "test_y")})


@dataclass(frozen=True)
class Conclusion:
    """metrics: the test ``Scores`` (``test_`` names), the structure measures (``tsne_`` on
    the map) and ``END_TIME``; tsne: PNG of the t-SNE map; raw: PNG of the embedding's own
    axes (D = 2 only); notes: what could not be made, and why."""

    metrics: dict[str, float]
    tsne: bytes | None = None
    raw: bytes | None = None
    notes: list[str] = field(default_factory=list)


def trained_model(model_state: dict[str, Any], cfg: TrialConfig, data: Dataset,
                  device: torch.device) -> tuple[torch.nn.Module, Any]:
    """A trial's encoder with its saved weights on ``device`` (channels-last, as it trained),
    and the un-augmented views (``trainables.trial._Views``) its embeddings are made from."""
    from trainables.encoders import build_encoder
    from trainables.trial import _Views

    model = build_encoder(cfg.encoder, data.image_shape[0], cfg.embedding_dim, cfg.width)
    model.load_state_dict(model_state)
    model = model.to(device, memory_format=torch.channels_last)
    views = _Views(cfg, torch.tensor(data.mean, device=device), torch.tensor(data.std, device=device))
    return model, views


def embed_splits(model_state: dict[str, Any], cfg: TrialConfig, data: Dataset,
                 device: torch.device) -> Embeddings:
    """The training sample and the test split's sample embedded by a trial's model
    (``cfg.eval_train`` and ``cfg.eval_test`` stratified images, as every trial samples
    them), on ``device``."""
    from trainables.trial import embed

    model, views = trained_model(model_state, cfg, data, device)
    train_rows = stratified_indices(data.train_y, cfg.eval_train, EVALUATION_SEED)
    test_rows = stratified_indices(data.test_y, cfg.eval_test, EVALUATION_SEED)
    train, test = embed(model, views, data.train_x[train_rows].to(device),
                        data.test_x[test_rows].to(device))
    return Embeddings(train.cpu().numpy(), data.train_y[train_rows].numpy(),
                      test.cpu().numpy(), data.test_y[test_rows].numpy())


# The dataset of a judge process (``start_judge``): a worker of the driver's pool holds one
# copy, sent once when it starts rather than with every trial.
_JUDGE_DATA: list[Dataset] = []


def start_judge(data: Dataset) -> None:
    """Prepare a process of the driver's judge pool: one thread (torch, BLAS, OpenMP; the
    driver runs several of them beside the trials, on the cores the trials leave), the
    dataset the judgements embed, and a watch on the driver (``_end_with``)."""
    import atexit
    import threading

    from threadpoolctl import threadpool_limits

    threading.Thread(target=_end_with, args=(os.getppid(),), daemon=True,
                     name="judge-watches-driver").start()
    torch.set_num_threads(1)
    threadpool_limits(1)
    _JUDGE_DATA[:] = [data]
    # What a judgement uses, made ready now: a pool started early (study.judges) then has
    # its first judgement as fast as the rest.  scikit-learn's t-SNE (maps of more than
    # EXACT_ON_CPU_UP_TO points on a CPU) is only imported: the warm-up's map is small.
    import sklearn.manifold  # noqa: F401

    _warm_up(data)
    # When the pool ends this process, skip Python's teardown of those modules (0.9 s a
    # process here, which the study's end waited for): a judge leaves nothing to tidy.
    atexit.register(os._exit, 0)


def _warm_up(data: Dataset) -> None:
    """One throw-away judgement, of an untrained encoder on a few dozen images, so that a
    trial's first judgement costs what the later ones cost.  Importing the modules is not
    enough: torch's optimisers (the probe's L-BFGS) import ``torch._dynamo`` when first
    used, and matplotlib loads its fonts at its first drawing (a judge's first judgement of
    a small map took 2.5 s here against 0.7 s for the next ones).  Best-effort: a failure
    here is left for a real judgement to report."""
    from trainables.encoders import build_encoder

    size = max(MIN_MAP_POINTS, 4 * data.num_classes)
    try:
        cfg = TrialConfig(eval_train=size, eval_test=size, tsne_samples=size, width=4)
        model = build_encoder(cfg.encoder, data.image_shape[0], cfg.embedding_dim, cfg.width)
        judge_trial(model.state_dict(), cfg.to_dict(), data.classes, "warm-up")
    except Exception:  # noqa: BLE001, S110 - only a head start: nothing depends on it
        pass


def _end_with(driver: int, every: float = 1.0) -> None:
    """End this judge process once the driver that started it is gone (killed: SIGKILL, a
    crash).  A pool worker would otherwise wait for work forever, as an orphan: it holds
    the write end of its own task queue, so the queue never reports the driver's end."""
    while os.getppid() == driver:
        time.sleep(every)
    os._exit(0)


def judge_trial(model_state: dict[str, Any], config: dict[str, Any], class_names: Sequence[str],
                title: str) -> Conclusion:
    """A trial's end-of-trial judgement in a judge process: embed with its last model (on
    a GPU when the machine has one), then ``conclude``."""
    from trainables.trial import pick_device

    cfg = TrialConfig.from_dict(config)
    start = time.perf_counter()
    device = pick_device()
    emb = embed_splits(model_state, cfg, _JUDGE_DATA[0], device)
    end = conclude(emb, class_names, title, knn_k=cfg.knn_k, tsne_samples=cfg.tsne_samples,
                   seed=cfg.seed, device=device)
    end.metrics[END_TIME] = time.perf_counter() - start
    return end


def conclude(emb: Embeddings, class_names: Sequence[str], title: str, *, knn_k: int,
             tsne_samples: int, seed: int = 0, device: torch.device | None = None) -> Conclusion:
    """The test scores, then (best-effort) the t-SNE map of ``tsne_samples`` test embeddings
    (stratified), its plots and the structure measures; the map on ``device`` when that is
    a GPU (``tsne_map``)."""
    start = time.perf_counter()
    test = scores(*(torch.from_numpy(a) for a in (emb.train, emb.train_y, emb.test, emb.test_y)),
                  num_classes=len(class_names), knn_k=knn_k)
    result = Conclusion({f"{TEST}{k}": v for k, v in asdict(test).items()})
    labels = torch.from_numpy(emb.test_y)
    sample = stratified_indices(labels, tsne_samples, EVALUATION_SEED).numpy()
    points, point_labels = emb.test[sample], emb.test_y[sample]
    if tsne_samples == 0 or len(points) < MIN_MAP_POINTS:
        result.notes.append(f"no t-SNE map: {len(points) if tsne_samples else 0} test "
                            f"embeddings sampled (tsne_samples={tsne_samples}); it needs "
                            f"{MIN_MAP_POINTS} or more")
    else:
        try:
            result = _pictures(result, points, point_labels, class_names, title, seed, device)
        except Exception as err:  # noqa: BLE001 - a plot must never end the study
            result.notes.append(f"no t-SNE map: {type(err).__name__}: {err}".splitlines()[0])
    result.metrics[END_TIME] = time.perf_counter() - start
    return result


def _pictures(result: Conclusion, points: np.ndarray, labels: np.ndarray,
              class_names: Sequence[str], title: str, seed: int,
              device: torch.device | None) -> Conclusion:
    tsne = tsne_map(points, seed, device)
    raw = (scatter_png(points, labels, class_names, title, xlabel="embedding 1",
                       ylabel="embedding 2") if points.shape[1] == 2 else None)
    on_map = asdict(structure(tsne, labels, with_rank=False))
    measures = {**asdict(structure(points, labels)),
                **{f"{TSNE}{k}": on_map[k] for k in MAP_STRUCTURE}}
    return Conclusion({**result.metrics, **measures}, scatter_png(tsne, labels, class_names, title),
                      raw, result.notes)


# Up to this many points the exact t-SNE in torch is the faster one on a CPU thread too
# (benchmarks.bench_tsne --sizes 300,500,700,1000,1500 --only sklearn,torch: one thread,
# 64-D MNIST embeddings, torch against scikit-learn's Barnes-Hut: 300 points 0.5 s against
# 1.1 s, 500 points 0.8 s against 2.8 s, 1,000 points 2.1 s against 6.0 s, 1,500 points
# 6.4 s against 7.8 s; trustworthiness equal to 0.001); above it Barnes-Hut's N log N wins
# (2,000 points: 18.0 s against 13.5 s).
EXACT_ON_CPU_UP_TO = 1500


def tsne_map(embedding: np.ndarray, seed: int = 0,
             device: torch.device | None = None) -> np.ndarray:
    """A 2-D t-SNE map (van der Maaten & Hinton 2008) of (N, D) embeddings -> (N, 2).

    Perplexity is 30, or less for tiny samples (it must stay below N).  On a CUDA ``device``,
    or for at most ``EXACT_ON_CPU_UP_TO`` points, the exact t-SNE of ``trainables.tsne``
    (``seed`` unused: its start is PCA); else scikit-learn's Barnes-Hut t-SNE
    (:func:`barnes_hut_map`).
    """
    on_gpu = device is not None and torch.device(device).type == "cuda"
    if not on_gpu and len(embedding) > EXACT_ON_CPU_UP_TO:
        return barnes_hut_map(embedding, seed)
    from trainables.tsne import tsne

    points = torch.from_numpy(np.ascontiguousarray(embedding, dtype=np.float32))
    return tsne(points.to(device or "cpu"), perplexity(len(embedding))).cpu().numpy()


def barnes_hut_map(embedding: np.ndarray, seed: int = 0) -> np.ndarray:
    """scikit-learn's Barnes-Hut t-SNE map of (N, D) embeddings from a PCA start, at the
    perplexity of :func:`tsne_map`."""
    from sklearn.manifold import TSNE

    tsne = TSNE(n_components=2, perplexity=perplexity(len(embedding)), init="pca",
                random_state=seed)
    return tsne.fit_transform(embedding.astype(np.float32)).astype(np.float32)


def perplexity(n: int) -> float:
    """The maps' perplexity for ``n`` points: 30, or less for tiny samples (it must stay
    below ``n``); every t-SNE option (``benchmarks.bench_tsne``) uses it."""
    return float(min(30, max(2, (n - 1) // 3)))


def scatter_png(
    points: np.ndarray, labels: np.ndarray, class_names: Sequence[str], title: str,
    xlabel: str = "t-SNE 1", ylabel: str = "t-SNE 2",
) -> bytes:
    """A PNG scatter plot of (N, 2) points coloured by class, with a legend and a title."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["tab10" if len(class_names) <= 10 else "tab20"]
    for k, name in enumerate(class_names):
        mask = labels == k
        if mask.any():
            ax.scatter(points[mask, 0], points[mask, 1], s=4, color=cmap(k % cmap.N), label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9, wrap=True)
    if len(class_names) <= 20:
        ax.legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5),
                  title="class")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
