"""Throughput of the batched augmentations versus torchvision v2 applied per sample.

Run from the repository root::

    python -m benchmarks.bench_augment [--n 4096] [--device cpu] [--batch 512]

For each augmentation (rotation, simclr) and image shape (MNIST-like 1x28x28, CIFAR-like
3x32x32, synthetic uint8 images) it measures, in one run:

* ours: ``trainables.augment.augment`` on batches of ``--batch`` images on ``--device``,
  including the uint8 -> float conversion;
* baseline: the usual ``Dataset.__getitem__`` way -- a ``torchvision.transforms.v2.Compose``
  of the equivalent ops applied to one uint8 image at a time on the CPU, then
  ``ToDtype(float32, scale=True)`` and stacking into batches;

and prints images/s of each and their ratio. Both are warmed up first, then timed in chunks
(one batch for ours, 64 images for the baseline), ``--repeats`` passes each, interleaved so
both see the same machine load. The table gives the best chunk's images/s of each side
(robust to other processes sharing the CPU) and the ratio of the medians as a check.
``torch``'s default thread count is kept unless ``--threads`` is given.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torchvision.transforms import v2

from trainables.augment import augment

SHAPES: dict[str, tuple[int, int, int]] = {
    "mnist-like": (1, 28, 28),
    "cifar-like": (3, 32, 32),
}
KINDS = ("rotation", "simclr")


def synthetic_images(n: int, shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    """``(n, C, H, W)`` uint8 images: smooth random blobs (upsampled noise), not pure noise."""
    c, h, w = shape
    g = torch.Generator().manual_seed(seed)
    low = torch.rand((n, c, h // 4, w // 4), generator=g)
    images = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear")
    return (images * 255).round().to(torch.uint8)


def torchvision_pipeline(kind: str, shape: tuple[int, int, int]) -> v2.Compose:
    """The per-sample torchvision v2 equivalent of ``augment(..., kind, 1.0, ...)``."""
    c, h, w = shape
    rgb = c == 3
    if kind == "rotation":
        ops: list[v2.Transform] = [
            v2.RandomAffine(
                degrees=15,
                translate=(0.1, 0.1),
                scale=(0.9, 1.1),
                interpolation=v2.InterpolationMode.BILINEAR,
            )
        ]
    elif kind == "simclr":
        jitter = v2.ColorJitter(0.4, 0.4, 0.4, 0.1) if rgb else v2.ColorJitter(0.4, 0.4)
        ops = [v2.RandomResizedCrop((h, w), scale=(0.2, 1.0), antialias=True)]
        if rgb:
            ops.append(v2.RandomHorizontalFlip(p=0.5))
        ops.append(v2.RandomApply([jitter], p=0.8))
        if rgb:
            ops.append(v2.RandomGrayscale(p=0.2))
        ops.append(v2.RandomApply([v2.GaussianBlur(3, sigma=(0.1, 2.0))], p=0.5))
    else:
        raise ValueError(f"no torchvision baseline for kind {kind!r}; choose from {KINDS}")
    ops.append(v2.ToDtype(torch.float32, scale=True))
    return v2.Compose(ops)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(run: Callable[[], None], device: torch.device) -> float:
    """Seconds one call of ``run`` takes (device synchronised before and after)."""
    _sync(device)
    start = time.perf_counter()
    run()
    _sync(device)
    return time.perf_counter() - start


class Bench:
    """Times one side (ours or the baseline) in chunks; keeps every chunk's images/s."""

    def __init__(self, chunks: list[Callable[[], None]], chunk_size: int, device: torch.device):
        self.chunks = chunks
        self.chunk_size = chunk_size
        self.device = device
        self.rates: list[float] = []

    def warm_up(self) -> None:
        for chunk in self.chunks[:2]:
            chunk()

    def one_pass(self) -> None:
        for chunk in self.chunks:
            self.rates.append(self.chunk_size / _timed(chunk, self.device))

    def best(self) -> float:
        return max(self.rates)

    def median(self) -> float:
        return statistics.median(self.rates)


def bench_ours(data: torch.Tensor, kind: str, batch: int, device: torch.device) -> Bench:
    """Batched augmentation of uint8 ``data`` (already on ``device``), one chunk per batch,
    including the uint8 -> float conversion."""
    generator = torch.Generator(device=device).manual_seed(0)

    def chunk(start: int) -> Callable[[], None]:
        return lambda: augment(data[start : start + batch].float().div_(255.0), kind, 1.0, generator)

    starts = range(0, len(data) - batch + 1, batch)
    return Bench([chunk(s) for s in starts], batch, device)


def bench_torchvision(
    data: torch.Tensor, kind: str, shape: tuple[int, int, int], chunk_size: int = 64
) -> Bench:
    """Per-sample torchvision v2 pipeline on CPU uint8 ``data``, then stacked; one chunk per
    ``chunk_size`` images."""
    pipeline = torchvision_pipeline(kind, shape)

    def chunk(start: int) -> Callable[[], None]:
        return lambda: torch.stack([pipeline(img) for img in data[start : start + chunk_size]])

    starts = range(0, len(data) - chunk_size + 1, chunk_size)
    return Bench([chunk(s) for s in starts], chunk_size, torch.device("cpu"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="images per timed run (ours)")
    parser.add_argument(
        "--baseline-n",
        type=int,
        default=512,
        help="images per timed run of the slow per-sample baseline (default 512)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="device for ours (baseline: cpu)")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.n < args.batch:
        parser.error(f"--n must be >= --batch ({args.batch}), got {args.n}")
    if args.baseline_n < 64:
        parser.error(f"--baseline-n must be >= 64, got {args.baseline_n}")
    for name in ("batch", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}, "
        f"batch {args.batch}, n {args.n} (baseline {args.baseline_n}), {args.repeats} passes"
    )
    header = (
        f"{'augmentation':<12} {'shape':<8} {'ours img/s':>11} {'tv/sample img/s':>16} "
        f"{'ratio':>7}   {'median ratio':>12}"
    )
    print(header)
    print("-" * len(header))
    for kind in KINDS:
        for shape in SHAPES.values():
            data = synthetic_images(max(args.n, args.baseline_n), shape)
            ours = bench_ours(data[: args.n].to(device), kind, args.batch, device)
            base = bench_torchvision(data[: args.baseline_n], kind, shape)
            ours.warm_up()
            base.warm_up()
            for _ in range(args.repeats):  # interleaved, so both see the same machine load
                ours.one_pass()
                base.one_pass()
            ratio, median_ratio = ours.best() / base.best(), ours.median() / base.median()
            print(
                f"{kind:<12} {'x'.join(map(str, shape)):<8} {ours.best():>11,.0f} "
                f"{base.best():>16,.0f} {ratio:>6.1f}x   {median_ratio:>11.1f}x"
            )


if __name__ == "__main__":
    main()
