"""Exact t-SNE in torch, for a judge that has a GPU: the same map scikit-learn's
``TSNE(method="exact")`` computes, on the embeddings' device.

Van der Maaten & Hinton (2008), with scikit-learn's (1.5+) choices, step for step:

- affinities: Gaussian conditionals on squared Euclidean distances, each row's precision
  found by bisection (at most 100 steps, entropy within 1e-5 nats of log(perplexity)),
  symmetrised ``P = (P + P^T) / sum``, floored at float64's epsilon;
- start: PCA to 2-D, scaled so the first coordinate's standard deviation is 1e-4;
- objective: KL(P || Q) with Q a Student t (one degree of freedom) kernel on the map;
- optimiser: gradient descent with momentum and per-coordinate gains (+0.2 when the step
  and the gradient disagree in sign, x0.8 otherwise, at least 0.01), learning rate
  ``max(N / 12 / 4, 50)``; 250 iterations with P exaggerated 12x and momentum 0.5, then
  momentum 0.8 to 1,000 iterations in all.

scikit-learn also stops a phase early when the KL has not improved for 300 iterations (checked
every 50); this runs every iteration (a GPU does 1,000 exact iterations of 2,000 points in
about a second).  The whole (N, N) kernel is held: memory is about ``6 * N^2 * 4`` bytes, 100
MB at N = 2,000.  On a CPU thread it is the faster up to 1,500 points and scikit-learn's
Barnes-Hut above (``trainables.final.EXACT_ON_CPU_UP_TO``); ``benchmarks.bench_tsne``
measures both against each other.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

EARLY_EXAGGERATION = 12.0
EXPLORATION_ITER = 250
MAX_ITER = 1000
MACHINE_EPSILON = torch.finfo(torch.float64).eps


def joint_probabilities(x: Tensor, perplexity: float, steps: int = 100,
                        tol: float = 1e-5) -> Tensor:
    """(N, N) symmetric affinities P of (N, D) points (float64, zero diagonal, summing to 1
    off it, each entry at least float64's epsilon off the diagonal)."""
    x = x.double()
    sq = (x * x).sum(dim=1)
    d = (sq[:, None] + sq[None, :] - 2 * x @ x.T).clamp_min_(0)
    d = d.float().double()  # scikit-learn bisects on float32 distances
    n = len(x)
    eye = torch.eye(n, dtype=torch.bool, device=x.device)
    target = math.log(perplexity)
    beta = torch.ones(n, dtype=torch.float64, device=x.device)
    lo = torch.full_like(beta, -math.inf)
    hi = torch.full_like(beta, math.inf)
    done = torch.zeros(n, dtype=torch.bool, device=x.device)
    for _ in range(steps):
        # a row's precision stops changing once it is done, so its row of p stays the same
        p = torch.exp(-d * beta[:, None]).masked_fill_(eye, 0.0)
        total = p.sum(dim=1)
        total = torch.where(total == 0, 1e-8, total)  # scikit-learn's EPSILON_DBL
        p /= total[:, None]
        entropy = torch.log(total) + beta * (d * p).sum(dim=1)
        gap = entropy - target
        done |= gap.abs() <= tol
        if bool(done.all()):
            break
        active = ~done
        up = active & (gap > 0)  # too flat: raise the precision
        down = active & (gap <= 0)
        lo = torch.where(up, beta, lo)
        hi = torch.where(down, beta, hi)
        beta = torch.where(up, torch.where(torch.isinf(hi), beta * 2, (beta + hi) / 2), beta)
        beta = torch.where(down, torch.where(torch.isinf(lo), beta / 2, (beta + lo) / 2), beta)
    joint = p + p.T
    joint = (joint / joint.sum().clamp_min(MACHINE_EPSILON)).clamp_min_(MACHINE_EPSILON)
    return joint.masked_fill_(eye, 0.0)


def pca_start(x: Tensor) -> Tensor:
    """(N, 2) PCA projection of (N, D) points, the first coordinate's std scaled to 1e-4
    (each axis' sign fixed so its largest loading is positive)."""
    x = x.double()
    centred = x - x.mean(dim=0)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    axes = vh[:2]
    signs = torch.sign(axes.gather(1, axes.abs().argmax(dim=1, keepdim=True)))
    y = centred @ (axes * signs).T
    return y / y[:, 0].std(correction=0) * 1e-4


def kl_divergence(p: Tensor, y: Tensor) -> float:
    """KL(P || Q) of a map ``y`` (N, 2) under affinities ``p`` (N, N) from
    ``joint_probabilities``, with Q the Student t kernel (one degree of freedom)."""
    w = _kernel(y.double())
    q = (w / w.sum()).clamp_min(MACHINE_EPSILON)
    off = ~torch.eye(len(y), dtype=torch.bool, device=y.device)
    pp = p.to(q)[off]
    return float((pp * torch.log(pp.clamp_min(MACHINE_EPSILON) / q[off])).sum())


def _kernel(y: Tensor, out: Tensor | None = None) -> Tensor:
    """The Student t kernel of a map, w_ij = 1 / (1 + |y_i - y_j|^2), zero on the diagonal;
    written into ``out`` (N, N) when given (else into one new (N, N) tensor), in place."""
    sq = (y * y).sum(dim=1)
    w = torch.add(sq[:, None] + 1, sq[None, :], out=out).addmm_(y, y.T, alpha=-2)
    return w.clamp_min_(1).reciprocal_().fill_diagonal_(0.0)  # 1 + |y_i - y_j|^2 >= 1


def tsne(x: Tensor, perplexity: float = 30.0, max_iter: int = MAX_ITER) -> Tensor:
    """(N, 2) float32 t-SNE map of (N, D) points ``x`` on ``x``'s device (deterministic: the
    PCA start involves no random numbers)."""
    n = len(x)
    if n < 2 or perplexity >= n:
        raise ValueError(f"t-SNE needs more points ({n}) than the perplexity ({perplexity})")
    p = joint_probabilities(x, perplexity).float()
    y = pca_start(x).float()
    update = torch.zeros_like(y)
    gains = torch.ones_like(y)
    lr = max(n / EARLY_EXAGGERATION / 4, 50.0)
    w, m, exaggerated = torch.empty_like(p), torch.empty_like(p), EARLY_EXAGGERATION * p
    for it in range(max_iter):
        if it == EXPLORATION_ITER:
            exaggerated = p
        momentum = 0.5 if it < EXPLORATION_ITER else 0.8
        _kernel(y, out=w)
        # dKL/dy_i = 4 sum_j (p_ij - q_ij) w_ij (y_i - y_j), q = w / sum(w): the (N, N)
        # steps in place, into buffers made once, the sum kept on the device (no wait for
        # the GPU each step).  m is symmetric, so sum_j m_ij y_j is (y^T m)^T: on a CPU
        # thread that wide product takes a sixth of the time of the thin m @ y (0.06 ms
        # against 0.39 ms at 500 points, where a whole step took about 1 ms).
        torch.addcmul(exaggerated, w, -1 / w.sum(), out=m).mul_(w)
        grad = 4.0 * (m.sum(dim=1, keepdim=True) * y - (y.T @ m).T)
        inc = update * grad < 0
        gains = torch.where(inc, gains + 0.2, gains * 0.8).clamp_min_(0.01)
        update = momentum * update - lr * (gains * grad)
        y = y + update
    return y
