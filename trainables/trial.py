"""One trial: train a siamese encoder on pairs, triplets or batches of views, judge it
after every epoch.

Runs without Ray: ``run_trial(config, dataset, report=...)``.  The order of events:
build (seeded model, optimiser, class index; data to the device once) -> for each epoch:
draw anchors, build the mode's views (``trainables.modes``) for a chunk of steps, augment
the chunk's views in one batched call (``VIEWS_PER_CALL`` images: on a GPU a step's few
hundred images would leave augmentation bound by kernel launches), then per step: encode,
loss, step -> embed the fixed evaluation sample, probe, kNN and retrieval metrics ->
``report(EpochReport)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from trainables.augment import augment
from trainables.config import TrialConfig
from trainables.data import Dataset
from trainables.encoders import build_encoder
from trainables.evaluate import knn_accuracy, probe_accuracy, retrieval_metrics
from trainables.losses import build_loss
from trainables.miners import MINERS
from trainables.modes import MODES, mining_inputs
from trainables.sampling import ClassIndex

# Images converted and augmented per call: the views of several training steps at once.
VIEWS_PER_CALL = 4096

# The per-epoch metrics dict, documented once.  Every value is a float.
METRIC_DOCS: dict[str, str] = {
    "epoch": "epochs completed (1-based)",
    "loss": "mean training loss over the epoch",
    "knn_accuracy": "cosine kNN accuracy of test embeddings against the training sample",
    "probe_accuracy": "test accuracy of a logistic-regression probe on the frozen embedding",
    "precision_at_1": "share of test embeddings whose most cosine-similar training-sample "
                      "embedding has their class (Musgrave et al. 2020)",
    "map_at_r": "MAP@R of test embeddings retrieving the training sample by cosine similarity, "
                "R = the query class's count there (Musgrave et al. 2020)",
    "epoch_time_s": "wall time of the epoch's training steps, seconds",
    "eval_time_s": "wall time of the epoch's evaluation (embedding, probe, kNN, retrieval), "
                   "seconds",
    "images_per_s": "training images encoded per second (views, not anchors)",
}


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite: the trial diverged."""


@dataclass(frozen=True)
class EpochReport:
    """What a trial reports after each epoch.

    metrics: the flat dict documented in ``METRIC_DOCS``.
    embedding: (M, D) float32 L2-normalised test embeddings (M = tsne_samples), the last
        evaluated embedding that the t-SNE plot is drawn from.
    labels: (M,) their class labels.
    state: what ``run_trial(resume=...)`` needs to continue after this epoch (epoch, model,
        optimiser, scheduler and generator states); references to live tensors, so save it
        (``torch.save``) inside the report callback.
    """

    metrics: dict[str, float]
    embedding: np.ndarray
    labels: np.ndarray
    state: dict[str, Any] = field(default_factory=dict, repr=False)


Reporter = Callable[[EpochReport], None]


def pick_device(requested: str | None = None) -> torch.device:
    """``requested`` if given, else CUDA when available, else the CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _evaluation_indices(n: int, size: int, seed: int = 1234) -> Tensor:
    """A fixed random subset of ``size`` indices out of ``n`` (all when size is 0 or >= n).

    Independent of the trial's seed, so every trial is judged on the same images.
    """
    if size <= 0 or size >= n:
        return torch.arange(n)
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)[:size].sort().values


class _Views:
    """Turns uint8 images into normalised float views: convert, augment, normalise."""

    def __init__(self, cfg: TrialConfig, mean: Tensor, std: Tensor) -> None:
        self.kind = cfg.augmentation
        self.strength = cfg.aug_strength
        self.mean = mean.view(1, -1, 1, 1)
        self.std = std.view(1, -1, 1, 1)

    def __call__(self, images: Tensor, generator: torch.Generator | None) -> Tensor:
        x = images.float().div_(255)
        if generator is not None:
            x = augment(x, self.kind, self.strength, generator)
        return ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def embed(model: nn.Module, views: _Views, images: Tensor, batch: int = 1024) -> Tensor:
    """L2-normalised embeddings (N, D) of un-augmented images (N, C, H, W) uint8."""
    model.eval()
    out = [F.normalize(model(views(images[i : i + batch], None)).float(), dim=1)
           for i in range(0, len(images), batch)]
    model.train()
    return torch.cat(out)


def run_trial(
    cfg: TrialConfig,
    data: Dataset,
    *,
    device: torch.device | str | None = None,
    report: Reporter | None = None,
    resume: dict[str, Any] | None = None,
) -> EpochReport | None:
    """Train and judge one configuration; call ``report`` after every epoch.

    ``resume``: an ``EpochReport.state`` saved earlier; training continues after its epoch
    with the same numbers as an uninterrupted run.  Returns the last epoch's report (None
    when ``resume`` had already finished every epoch).  Raises ``NonFiniteLossError`` as
    soon as the loss stops being finite.
    """
    device = pick_device(str(device) if device else None)
    torch.manual_seed(cfg.seed)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)

    # Build: statistics, data on the device once, the model, the optimiser.
    mean = torch.tensor(data.mean, device=device)
    std = torch.tensor(data.std, device=device)
    data = data.to(device)
    views = _Views(cfg, mean, std)
    index = ClassIndex.build(data.train_y, data.num_classes)
    model = build_encoder(cfg.encoder, data.image_shape[0], cfg.embedding_dim, cfg.width)
    model = model.to(device, memory_format=torch.channels_last)
    loss_fn = build_loss(cfg.loss, margin=cfg.margin, p_norm=cfg.p_norm,
                         temperature=cfg.temperature)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_train = len(data.train_y)
    anchors_per_epoch = min(cfg.train_subset or n_train, n_train)
    steps_per_epoch = max(1, anchors_per_epoch // cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=steps_per_epoch * cfg.epochs, pct_start=0.15
    )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    eval_train = _evaluation_indices(n_train, cfg.eval_train).to(device)
    eval_test = _evaluation_indices(len(data.test_y), cfg.eval_test).to(device)
    tsne_count = min(cfg.tsne_samples, len(eval_test))
    mode = MODES[cfg.mode]
    miner = MINERS.get(cfg.mining)  # None for "random": the sampled triplets as they are
    loss_inputs = mode.loss_inputs if miner is None else mining_inputs(
        miner, cfg.margin, cfg.p_norm)

    first_epoch = 1
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        generator.set_state(resume["generator"].to(generator.get_state().device))
        first_epoch = int(resume["epoch"]) + 1

    last: EpochReport | None = None
    for epoch in range(first_epoch, cfg.epochs + 1):
        # Train one epoch.
        start = time.perf_counter()
        order = torch.randperm(n_train, generator=generator, device=device)[:anchors_per_epoch]
        loss_sum = torch.zeros((), device=device)
        for step, batch, x in _chunked_views(order, steps_per_epoch, cfg, mode, data, index,
                                             views, generator):
            with autocast:
                z = F.normalize(model(x).float(), dim=1)
            loss = loss_fn(*loss_inputs(z, batch))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach()
            if step % 25 == 0 or step == steps_per_epoch - 1:
                _check_finite(loss_sum, epoch, step)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_time = time.perf_counter() - start

        # Judge the epoch on the fixed evaluation sample.
        start = time.perf_counter()
        train_emb = embed(model, views, data.train_x[eval_train])
        test_emb = embed(model, views, data.test_x[eval_test])
        train_lab, test_lab = data.train_y[eval_train], data.test_y[eval_test]
        knn = knn_accuracy(train_emb, train_lab, test_emb, test_lab, k=cfg.knn_k)
        retrieval = retrieval_metrics(train_emb, train_lab, test_emb, test_lab)
        probe = probe_accuracy(
            train_emb.cpu().numpy(), train_lab.cpu().numpy(),
            test_emb.cpu().numpy(), test_lab.cpu().numpy(), seed=cfg.seed,
        )
        eval_time = time.perf_counter() - start

        metrics = {
            "epoch": float(epoch),
            "loss": float(loss_sum) / steps_per_epoch,
            "knn_accuracy": knn,
            "probe_accuracy": probe,
            **retrieval,
            "epoch_time_s": train_time,
            "eval_time_s": eval_time,
            "images_per_s": steps_per_epoch * cfg.batch_size * mode.views_per_anchor / train_time,
        }
        state = {"epoch": epoch, "model": model.state_dict(),
                 "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "generator": generator.get_state()}
        last = EpochReport(
            metrics,
            test_emb[:tsne_count].cpu().numpy(),
            test_lab[:tsne_count].cpu().numpy(),
            state,
        )
        if report is not None:
            report(last)
    return last


def _chunked_views(order: Tensor, steps: int, cfg: TrialConfig, mode: Any, data: Dataset,
                   index: ClassIndex, views: _Views,
                   generator: torch.Generator) -> Iterator[tuple[int, Any, Tensor]]:
    """(step, sampled batch, its augmented views) for each step of an epoch.

    Samples the batches of ``chunk`` steps, then converts and augments all their views in
    one call and hands them out step by step."""
    chunk = max(1, VIEWS_PER_CALL // (cfg.batch_size * mode.views_per_anchor))
    augmenting = generator if cfg.augmentation != "none" else None
    for first in range(0, steps, chunk):
        batches = [mode.sample(order[s * cfg.batch_size : (s + 1) * cfg.batch_size],
                               data.train_y, index, cfg.positives, generator)
                   for s in range(first, min(first + chunk, steps))]
        images = data.train_x[torch.cat([b.indices for b in batches])]
        xs = views(images, augmenting).split([len(b.indices) for b in batches])
        yield from zip(range(first, first + len(batches)), batches, xs, strict=True)


def _check_finite(loss_sum: Tensor, epoch: int, step: int) -> None:
    value = float(loss_sum)
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"training loss became {value} at epoch {epoch}, step {step}; "
            "the trial diverged (lower the lr, or check the loss settings)"
        )
