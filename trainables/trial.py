"""One trial: train a siamese encoder on pairs, triplets or batches of views, judge it
after every epoch.  Runs without Ray: ``run_trial(config, dataset, report=...)``.

In reading order: ``build`` (seeded model, optimiser, schedule, class index; the data on
the device once; the fixed, stratified evaluation samples) -> for each epoch
``train_epoch`` (draw anchors; build the mode's views for a chunk of steps and augment them
in one batched call, ``VIEWS_PER_CALL`` images, since on a GPU a step's few hundred images
would leave augmentation bound by kernel launches; then per step encode, loss, step) ->
``judge`` (embed the training sample and the validation sample: probe, kNN, retrieval on
validation) -> ``report(EpochReport)``.  The validation scores steer the search; the test
split is embedded and scored once, from the model of the epoch the trial ended at
(``trainables.final``), whichever that is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from trainables.augment import augment
from trainables.config import TrialConfig
from trainables.data import Dataset
from trainables.encoders import build_encoder
from trainables.evaluate import scores
from trainables.losses import build_loss
from trainables.metrics import VAL, Progress, Scores
from trainables.miners import MINERS
from trainables.modes import LAYOUTS, Layout, mining_inputs
from trainables.sampling import EVALUATION_SEED, ClassIndex, stratified_indices

# Images converted and augmented per call: the views of several training steps at once.
VIEWS_PER_CALL = 4096


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite: the trial diverged."""


@dataclass(frozen=True)
class EpochReport:
    """What a trial reports after each epoch.

    metrics: ``Progress`` and the validation ``Scores`` (``val_`` names), a flat dict of
        floats (``trainables.metrics.EPOCH_METRICS``).
    state: what ``run_trial(resume=...)`` needs to continue after this epoch (epoch, model,
        optimiser, scheduler and generator states), and what the end-of-trial judgement
        embeds the test split with (the model); references to live tensors, so save it
        (``torch.save``) inside the report callback.
    """

    metrics: dict[str, float]
    state: dict[str, Any] = field(default_factory=dict, repr=False)


Reporter = Callable[[EpochReport], None]


def pick_device(requested: str | None = None) -> torch.device:
    """``requested`` if given, else CUDA when available, else the CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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


@dataclass
class Training:
    """Everything the epochs share, made once by ``build``."""

    cfg: TrialConfig
    data: Dataset  # on the device
    device: torch.device
    generator: torch.Generator
    views: _Views
    index: ClassIndex
    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    layout: Layout
    loss_inputs: Callable[..., tuple[Tensor, ...]]
    anchors_per_epoch: int
    steps_per_epoch: int
    eval_train: Tensor  # fixed stratified samples: training images (probe fit, kNN references)
    eval_val: Tensor  # and validation images (scored every epoch)
    first_epoch: int = 1

    def state(self, epoch: int) -> dict[str, Any]:
        return {"epoch": epoch, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "generator": self.generator.get_state()}


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
    t = build(cfg, data, pick_device(str(device) if device else None), resume)
    # views encoded per epoch: each step's batch of anchors (one batch of all of them when
    # the batch is larger than the anchors) times the mode's views of an anchor
    views = (min(t.steps_per_epoch * cfg.batch_size, t.anchors_per_epoch)
             * t.layout.views_per_anchor)
    last: EpochReport | None = None
    for epoch in range(t.first_epoch, cfg.epochs + 1):
        loss, train_time = train_epoch(t, epoch)
        start = time.perf_counter()
        val_scores = judge(t)
        progress = Progress(epoch=float(epoch), loss=loss, images_seen=float(epoch * views),
                            epoch_time_s=train_time, eval_time_s=time.perf_counter() - start,
                            images_per_s=views / train_time)
        metrics = {**asdict(progress), **{f"{VAL}{k}": v for k, v in asdict(val_scores).items()}}
        last = EpochReport(metrics, t.state(epoch))
        if report is not None:
            report(last)
    return last


def build(cfg: TrialConfig, data: Dataset, device: torch.device,
          resume: dict[str, Any] | None = None) -> Training:
    """Seed, move the data to the device, build the model, loss, optimiser and schedule,
    fix the evaluation sample; restore a saved state when resuming."""
    if data.val_x is None:
        raise ValueError(f"dataset {data.name} has no validation split; load it with "
                         "trainables.data.load_dataset (or with_validation)")
    torch.manual_seed(cfg.seed)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
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
    anchors = min(cfg.train_subset or n_train, n_train)
    steps = max(1, anchors // cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=steps * cfg.epochs, pct_start=0.15)
    layout = LAYOUTS[cfg.mode]
    miner = MINERS.get(cfg.mining)  # None for "random": the sampled triplets as they are
    loss_inputs = layout.loss_inputs if miner is None else mining_inputs(miner, cfg.margin,
                                                                         cfg.p_norm)
    samples = [stratified_indices(labels, size, EVALUATION_SEED).to(device) for labels, size in (
        (data.train_y, cfg.eval_train), (data.val_y, cfg.eval_val))]
    t = Training(cfg, data, device, generator, views, index, model, loss_fn, optimizer,
                 scheduler, layout, loss_inputs, anchors, steps, *samples)
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        generator.set_state(resume["generator"].to(generator.get_state().device))
        t.first_epoch = int(resume["epoch"]) + 1
    return t


def train_epoch(t: Training, epoch: int) -> tuple[float, float]:
    """One epoch of training steps; (mean loss, wall seconds)."""
    start = time.perf_counter()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=t.device.type == "cuda")
    order = torch.randperm(len(t.data.train_y), generator=t.generator,
                           device=t.device)[:t.anchors_per_epoch]
    loss_sum = torch.zeros((), device=t.device)
    for step, batch, x in _chunked_views(order, t.steps_per_epoch, t.cfg, t.layout, t.data,
                                         t.index, t.views, t.generator):
        with autocast:
            z = F.normalize(t.model(x).float(), dim=1)
        loss = t.loss_fn(*t.loss_inputs(z, batch))
        t.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t.optimizer.step()
        t.scheduler.step()
        loss_sum += loss.detach()
        if step % 25 == 0 or step == t.steps_per_epoch - 1:
            _check_finite(loss_sum, epoch, step)
    if t.device.type == "cuda":
        torch.cuda.synchronize(t.device)
    return float(loss_sum) / t.steps_per_epoch, time.perf_counter() - start


def judge(t: Training) -> Scores:
    """The epoch's judgement: the validation sample's scores, the probe and the kNN from
    the training sample, retrieval within the validation sample."""
    train_emb, val_emb = embed(t.model, t.views, t.data.train_x[t.eval_train],
                               t.data.val_x[t.eval_val])
    return scores(train_emb, t.data.train_y[t.eval_train], val_emb, t.data.val_y[t.eval_val],
                  t.data.num_classes, t.cfg.knn_k)


@torch.no_grad()
def embed(model: nn.Module, views: _Views, *image_sets: Tensor, batch: int = 512) -> list[Tensor]:
    """L2-normalised embeddings (N, D) of each set of un-augmented images (N, C, H, W) uint8,
    by the model in eval mode made fast once for all the sets (``inference_copy``)."""
    model.eval()
    try:
        frozen = inference_copy(model)
        return [torch.cat([F.normalize(frozen(views(images[i : i + batch], None)).float(), dim=1)
                           for i in range(0, len(images), batch)])
                for images in image_sets]
    finally:
        model.train()


def inference_copy(model: nn.Module) -> nn.Module:
    """A copy of an eval-mode ``model`` computing the same function faster:

    - every Conv2d -> BatchNorm2d pair fused into one convolution (``torch.fx``'s conv-BN
      fusion), equal to the unfused model up to float32 round-off;
    - every 2x2, stride-2 max-pool computed without the argmax indices that
      ``nn.MaxPool2d`` builds for a backward pass (``MaxPool2x2``), exactly equal.

    Embedding the CPU budget's 4,000 evaluation images by the trained small CNN (width 16,
    one CPU thread): 1.03x-1.06x the eval model's speed with the fold alone, 1.14x-1.22x
    with the pools too (``benchmarks.bench_trial``'s third table, three runs).  Making the
    copy (tracing it) costs 20-40 ms, so ``embed`` makes one for all its image sets.  A
    model ``torch.fx`` cannot trace (a registered encoder with data-dependent control flow)
    is returned as it is."""
    from torch.fx.experimental.optimization import fuse

    try:
        frozen = fuse(model)  # a deep copy: the trained model is left untouched
    except Exception:  # noqa: BLE001 - tracing failed: evaluate the model unfused
        return model
    for name, module in list(frozen.named_modules()):
        if MaxPool2x2.replaces(module):
            parent, _, attr = name.rpartition(".")
            setattr(frozen.get_submodule(parent), attr, MaxPool2x2())
    return frozen


class MaxPool2x2(nn.Module):
    """``nn.MaxPool2d(2)`` for inference: the maximum of each 2x2 block (a trailing odd row or
    column dropped, as the pool does), as two element-wise maxima of strided views.  On a
    CPU about 2.5x faster than the pool, which also computes the argmax indices a backward
    pass would need; the same numbers exactly (a maximum has no round-off), and the memory
    format of the input (channels-last stays channels-last)."""

    @staticmethod
    def replaces(module: nn.Module) -> bool:
        """Whether ``module`` is a max-pool this computes: 2x2 windows, stride 2, no padding,
        dilation or ceil mode."""
        def pair(v: Any) -> tuple[int, int]:
            return tuple(v) if isinstance(v, (tuple, list)) else (v, v)  # type: ignore[return-value]

        return (isinstance(module, nn.MaxPool2d) and pair(module.kernel_size) == (2, 2)
                and pair(module.stride) == (2, 2) and pair(module.padding) == (0, 0)
                and pair(module.dilation) == (1, 1) and not module.ceil_mode
                and not module.return_indices)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        x = x[..., : h - h % 2, : w - w % 2]
        rows = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])
        return torch.maximum(rows[..., 0::2], rows[..., 1::2])


def _chunked_views(order: Tensor, steps: int, cfg: TrialConfig, layout: Layout, data: Dataset,
                   index: ClassIndex, views: _Views,
                   generator: torch.Generator) -> Iterator[tuple[int, Any, Tensor]]:
    """(step, sampled batch, its augmented views) for each step of an epoch.

    Samples the batches of ``chunk`` steps, then converts and augments all their views in
    one call and hands them out step by step."""
    chunk = max(1, VIEWS_PER_CALL // (cfg.batch_size * layout.views_per_anchor))
    augmenting = generator if cfg.augmentation != "none" else None
    for first in range(0, steps, chunk):
        batches = [layout.sample(order[s * cfg.batch_size : (s + 1) * cfg.batch_size],
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
