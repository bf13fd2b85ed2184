"""A linear probe fitted in torch on the embeddings' own device: multinomial logistic
regression on standardised features, solved by L-BFGS.

The "classifier on top of the frozen embedding" of the study, without a round trip to the
CPU and scikit-learn.  The model and its objective are scikit-learn's
``make_pipeline(StandardScaler(), LogisticRegression(C=c, solver="lbfgs"))`` (scikit-learn
>= 1.5, multinomial for three or more classes, binary logistic for two):

- features are standardised with the mean and the population standard deviation (ddof 0)
  of the training embeddings; a constant feature keeps scale 1;
- with K classes present in the training labels, weights W (K, D) and an unpenalised bias
  b (K,) minimise ``C * sum_i -log softmax(W x_i + b)[y_i] + 0.5 * ||W||_F^2`` (two classes:
  one weight row and the logistic loss, as scikit-learn does);
- the solver minimises that objective divided by ``C * N`` (scikit-learn's scaling, a mean
  log-loss plus ``||W||^2 / (2 C N)``), from zeros, and stops once the largest absolute
  gradient entry is at most ``tol`` (scikit-learn's ``tol``, scipy's ``gtol``) or after
  ``max_iter`` iterations.

References: scikit-learn's ``LogisticRegression`` and ``_logistic_regression_path``;
Liu & Nocedal (1989), "On the limited memory BFGS method for large scale optimization";
``torch.optim.LBFGS`` with the strong Wolfe line search (Nocedal & Wright 2006, Alg. 3.5).

Deterministic: the start is zeros and every operation (matmul, softmax, sums) is a plain
deterministic reduction, so the same inputs on the same device and thread count give the
same probe.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# Iteration cap.  MNIST-derived embeddings (benchmarks.bench_judge) converge in 30-85
# iterations at C = 1; an iteration costs about two (K, D) x (D, N) matmuls (~2-3 ms for
# N = 10,000 on one CPU thread), so 500 leaves room for harder embeddings at a bounded cost.
DEFAULT_MAX_ITER = 500
DEFAULT_TOL = 1e-4  # scikit-learn's default tol: the largest |gradient| entry at the end
HISTORY = 10  # L-BFGS memory: scipy's (and so scikit-learn's) default maxcor
# Stop when a step changes neither the loss nor the weights by more than this: only a stalled
# line search (float32 round-off near the optimum) is that flat; converged is then judged by
# the gradient, as always.
STALL = 1e-12


@dataclass(frozen=True)
class Probe:
    """A fitted probe.

    mean, scale: (D,) the standardisation of the training embeddings.
    weight: (K', D) and bias (K',): the logits' parameters on standardised features (K' = K
        classes present in training, or 1 row for two classes, the logit of the second).
    classes: (K,) the sorted labels present in the training labels; predictions are these.
    converged: whether the largest absolute gradient entry of the scaled objective at the
        solution is at most ``tol`` (False: the solver stopped at ``max_iter``, or stalled).
    iterations: L-BFGS iterations taken.
    objective: ``C * sum of log-losses + 0.5 * ||W||^2`` at the solution.
    grad_max: the largest absolute gradient entry of the scaled objective at the solution.
    """

    mean: Tensor
    scale: Tensor
    weight: Tensor
    bias: Tensor
    classes: Tensor
    converged: bool
    iterations: int
    objective: float
    grad_max: float

    def logits(self, emb: Tensor) -> Tensor:
        """(M, K) class scores of (M, D) embeddings (on the probe's device and dtype)."""
        x = (emb.to(self.mean) - self.mean) / self.scale
        z = x @ self.weight.T + self.bias
        if len(self.classes) == 2:
            z = torch.cat([torch.zeros_like(z), z], dim=1)
        return z

    def predict(self, emb: Tensor) -> Tensor:
        """(M,) predicted labels of (M, D) embeddings, from ``classes``."""
        return self.classes[self.logits(emb).argmax(dim=1)]

    def accuracy(self, emb: Tensor, y: Tensor) -> float:
        """Share of (M, D) embeddings whose predicted label equals ``y`` (M,)."""
        if len(emb) != len(y):
            raise ValueError(f"embeddings ({len(emb)}) and labels ({len(y)}) differ in length")
        if len(y) == 0:
            raise ValueError("no test embeddings to score")
        return float((self.predict(emb) == y.to(self.classes.device)).float().mean())


def _loss_and_grad(params: Tensor, x1: Tensor, x1t: Tensor, onehot_t: Tensor, penalty: float,
                   binary: bool) -> tuple[Tensor, Tensor]:
    """Scaled objective and its gradient at ``params`` (K', D + 1), bias in the last column.

    x1: (N, D + 1) standardised features with a ones column, and x1t the same transposed
    (D + 1, N), contiguous: logits are computed class-major, (K', D + 1) @ (D + 1, N), which
    is about 3x faster on a CPU than the thin (N, D + 1) @ (D + 1, K') product.
    onehot_t: (K, N) targets.
    """
    n = x1.shape[0]
    z = params @ x1t  # (K', N)
    if binary:
        z = torch.cat([torch.zeros_like(z), z], dim=0)
    log_p = torch.log_softmax(z, dim=0)
    weights = params[:, :-1]
    loss = -(onehot_t * log_p).sum() / n + 0.5 * penalty * (weights * weights).sum()
    residual = log_p.exp_().sub_(onehot_t).div_(n)  # (K, N): d loss / d z
    if binary:
        residual = residual[1:]
    grad = residual @ x1  # (K', D + 1)
    grad[:, :-1] += penalty * weights
    return loss, grad


def fit_probe(
    train_emb: Tensor, train_y: Tensor, num_classes: int, *, c: float = 1.0,
    max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL, dtype: torch.dtype | None = None,
) -> Probe:
    """Fit a multinomial logistic-regression probe on (N, D) embeddings with (N,) labels.

    Runs on ``train_emb``'s device in ``dtype`` (default float32; float64 gives the last
    digits of scikit-learn's objective on the CPU).  ``num_classes``: labels must lie in
    ``[0, num_classes)``; only the classes present are modelled (as scikit-learn does).
    ``c``: inverse regularisation strength (scikit-learn's ``C``).  ``max_iter``, ``tol``:
    see the module docstring; ``Probe.converged`` says whether ``tol`` was reached.
    """
    if train_emb.ndim != 2 or train_y.ndim != 1 or len(train_emb) != len(train_y):
        raise ValueError(f"expected embeddings (N, D) and labels (N,), got "
                         f"{tuple(train_emb.shape)} and {tuple(train_y.shape)}")
    if c <= 0 or max_iter < 1 or tol <= 0:
        raise ValueError(f"c ({c}) and tol ({tol}) must be > 0 and max_iter ({max_iter}) >= 1")
    device = train_emb.device
    dtype = dtype or torch.float32
    y = train_y.to(device=device, dtype=torch.long)
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}); got "
                         f"[{int(y.min())}, {int(y.max())}]")
    classes, target = torch.unique(y, sorted=True, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"a probe needs at least two classes in the training labels; got "
                         f"{classes.tolist()}")

    x = train_emb.to(dtype)
    mean = x.mean(dim=0)
    scale = x.std(dim=0, correction=0)
    scale = torch.where(scale > 10 * torch.finfo(dtype).eps * mean.abs().clamp_min(1), scale,
                        torch.ones_like(scale))
    x1 = torch.cat([(x - mean) / scale, torch.ones(len(x), 1, device=device, dtype=dtype)], dim=1)
    n, k = len(x1), len(classes)
    binary = k == 2
    x1t = x1.T.contiguous()
    onehot_t = torch.nn.functional.one_hot(target, k).to(dtype).T.contiguous()
    penalty = 1.0 / (c * n)

    params = torch.zeros(1 if binary else k, x1.shape[1], device=device, dtype=dtype,
                         requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [params], lr=1.0, max_iter=max_iter, max_eval=4 * max_iter, tolerance_grad=tol,
        tolerance_change=STALL, history_size=HISTORY, line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        loss, grad = _loss_and_grad(params.detach(), x1, x1t, onehot_t, penalty, binary)
        params.grad = grad
        return loss

    optimizer.step(closure)
    iterations = int(optimizer.state[params].get("n_iter", 0))
    final = params.detach()
    loss, grad = _loss_and_grad(final, x1, x1t, onehot_t, penalty, binary)
    grad_max = float(grad.abs().max())
    return Probe(
        mean=mean, scale=scale, weight=final[:, :-1].clone(), bias=final[:, -1].clone(),
        classes=classes, converged=grad_max <= tol, iterations=iterations,
        objective=float(loss) * c * n, grad_max=grad_max,
    )


def probe_accuracy_torch(
    train_emb: Tensor, train_y: Tensor, test_emb: Tensor, test_y: Tensor, *,
    num_classes: int | None = None, c: float = 1.0, max_iter: int = DEFAULT_MAX_ITER,
    tol: float = DEFAULT_TOL,
) -> tuple[float, Probe]:
    """Test accuracy of a probe fitted on (N, D) training embeddings, and the probe itself
    (for ``converged`` and ``iterations``): the counterpart of ``evaluate.probe_accuracy``
    that takes tensors and stays on their device.  ``num_classes`` defaults to the largest
    label + 1."""
    if num_classes is None:
        num_classes = int(max(train_y.max(), test_y.max())) + 1
    probe = fit_probe(train_emb, train_y, num_classes, c=c, max_iter=max_iter, tol=tol)
    return probe.accuracy(test_emb, test_y), probe
