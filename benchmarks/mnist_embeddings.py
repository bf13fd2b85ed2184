"""Real, MNIST-derived embeddings for the judge and t-SNE benchmarks, L2-normalised like a
trial's.

Two kinds, both deterministic for a seed:

- ``pca``: the first D principal components of the pixels (fitted on the first 10,000
  training images), then L2-normalised: unsupervised, classes overlap like an early epoch.
- ``mlp``: the D-dim output of a small MLP (784-256-D) trained for 3 epochs with a cosine
  softmax head on training images 50,000-59,999 (disjoint from the embedded ones), then
  L2-normalised: tight class clusters like a trained encoder's, the harder case for a
  probe's convergence.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch
from torch.nn import functional as F

KINDS = ("pca", "mlp")


@cache
def _mnist(data_dir: str) -> tuple[torch.Tensor, ...]:
    """MNIST train and test pixels (N, 784) float in [0, 1] and labels (N,), read once."""
    from torchvision.datasets import MNIST

    train = MNIST(root=data_dir, train=True, download=False)
    test = MNIST(root=data_dir, train=False, download=False)
    flat = [d.data.reshape(len(d.data), -1).float().div_(255) for d in (train, test)]
    return flat[0], train.targets, flat[1], test.targets



def _pca_projection(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (784,) and the top-``dim`` principal axes (784, dim) of x, by eigh (deterministic)."""
    x64 = x.double()
    mean = x64.mean(dim=0)
    cov = (x64 - mean).T @ (x64 - mean) / (len(x64) - 1)
    _, vectors = torch.linalg.eigh(cov)  # ascending
    return mean.float(), vectors[:, -dim:].flip(1).float().contiguous()


def _trained_mlp(x: torch.Tensor, y: torch.Tensor, dim: int, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, dim))
    head = torch.nn.Linear(dim, 10, bias=False)
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=1e-3)
    for _ in range(3):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 128):
            idx = order[i : i + 128]
            z = F.normalize(net(x[idx]), dim=1)
            logits = 10.0 * z @ F.normalize(head.weight, dim=1).T
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def mnist_embeddings(
    data_dir: str | Path, n_train: int, n_test: int, dim: int, kind: str = "pca", seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(n_train, dim) and (n_test, dim) float32 L2-normalised embeddings of the first MNIST
    training and test images, with their (N,) int64 labels."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: choose one of {', '.join(KINDS)}")
    xtr, ytr, xte, yte = _mnist(str(data_dir))
    if kind == "pca":
        mean, axes = _pca_projection(xtr[:10_000], dim)

        def encode(x: torch.Tensor) -> torch.Tensor:
            return (x - mean) @ axes
    else:
        encode = _trained_mlp(xtr[50_000:], ytr[50_000:], dim, seed)
    with torch.no_grad():
        etr = F.normalize(encode(xtr[:n_train]), dim=1)
        ete = F.normalize(encode(xte[:n_test]), dim=1)
    return etr.contiguous(), ytr[:n_train].clone(), ete.contiguous(), yte[:n_test].clone()
