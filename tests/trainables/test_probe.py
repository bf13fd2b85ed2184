"""The torch probe against scikit-learn's StandardScaler + LogisticRegression(C=1, lbfgs) on
real features: accuracy within half a point, the same objective at the solution, and an
honest convergence flag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from trainables.probe import fit_probe, probe_accuracy_torch

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One thread for torch and scikit-learn's OpenMP: these fits are small, and on a busy
    machine threads waiting for each other cost seconds."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


def _objective(model: LogisticRegression, x: np.ndarray, y: np.ndarray, c: float = 1.0) -> float:
    """C * sum of log-losses + 0.5 * ||W||^2 of a fitted scikit-learn model, float64."""
    if len(model.classes_) == 2:
        z = x @ model.coef_[0] + model.intercept_[0]
        logloss = np.logaddexp(0.0, np.where(y == model.classes_[1], -z, z))
        return float(c * logloss.sum() + 0.5 * (model.coef_ ** 2).sum())
    z = x @ model.coef_.T + model.intercept_
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    target = np.searchsorted(model.classes_, y)
    return float(-c * log_p[np.arange(len(y)), target].sum() + 0.5 * (model.coef_ ** 2).sum())


def _sklearn(split: Split, tol: float = 1e-4, max_iter: int = 1000) -> tuple[float, float]:
    """Test accuracy and objective of scikit-learn's probe."""
    xtr, ytr, xte, yte = split
    scaler = StandardScaler().fit(xtr)
    model = LogisticRegression(C=1.0, tol=tol, max_iter=max_iter).fit(scaler.transform(xtr), ytr)
    return model.score(scaler.transform(xte), yte), _objective(model, scaler.transform(xtr), ytr)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.fixture(scope="module")
def digits_pixels() -> Split:
    """scikit-learn's 8x8 digits as 64 raw pixel features (some constant), 1,200 / 597."""
    bunch = load_digits()
    x, y = bunch.data.astype(np.float32), bunch.target
    return x[:1200], y[:1200], x[1200:], y[1200:]


@pytest.fixture(scope="module")
def mnist_pca(mnist_dir: Path) -> Split:
    """PCA-64 of MNIST pixels, L2-normalised like a trial's embeddings: 5,000 / 2,000."""
    from sklearn.decomposition import PCA
    from torchvision.datasets import MNIST

    train = MNIST(root=str(mnist_dir), train=True, download=False)
    test = MNIST(root=str(mnist_dir), train=False, download=False)
    xtr = train.data[:5000].reshape(5000, -1).numpy() / 255.0
    xte = test.data[:2000].reshape(2000, -1).numpy() / 255.0
    pca = PCA(64, random_state=0).fit(xtr)

    def embed(x: np.ndarray) -> np.ndarray:
        z = pca.transform(x)
        return (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)

    return embed(xtr), train.targets[:5000].numpy(), embed(xte), test.targets[:2000].numpy()


@pytest.fixture(params=["digits_pixels", "mnist_pca"])
def split(request: pytest.FixtureRequest) -> Split:
    return request.getfixturevalue(request.param)


def test_accuracy_and_objective_match_sklearn(split: Split) -> None:
    xtr, ytr, xte, yte = split
    expected_acc, expected_obj = _sklearn(split)
    probe = fit_probe(_t(xtr), _t(ytr), 10)
    assert probe.converged and probe.grad_max <= 1e-4
    assert probe.accuracy(_t(xte), _t(yte)) == pytest.approx(expected_acc, abs=0.005)
    # Both stop once the largest gradient entry is below tol: a few 1e-3 of the objective apart.
    assert probe.objective == pytest.approx(expected_obj, rel=5e-3)


def test_tight_solution_is_sklearns_optimum(split: Split) -> None:
    """Solved tightly in float64, both reach the same minimum of the same objective."""
    xtr, ytr, xte, yte = split
    _, optimum = _sklearn(split, tol=1e-8, max_iter=10_000)
    probe = fit_probe(_t(xtr), _t(ytr), 10, tol=1e-7, max_iter=2000, dtype=torch.float64)
    assert probe.converged
    assert probe.objective == pytest.approx(optimum, rel=1e-6)
    # float32, sklearn's tolerance: no better than the optimum, and close to it
    fast = fit_probe(_t(xtr), _t(ytr), 10)
    assert optimum * (1 - 1e-6) <= fast.objective <= optimum * (1 + 5e-3)


def test_binary_problem_is_sklearns_logistic_loss(digits_pixels: Split) -> None:
    """Two classes: one weight row, as scikit-learn (a 2-class softmax would differ)."""
    xtr, ytr, xte, yte = digits_pixels
    keep_tr, keep_te = np.isin(ytr, (3, 8)), np.isin(yte, (3, 8))
    binary = (xtr[keep_tr], ytr[keep_tr], xte[keep_te], yte[keep_te])
    _, optimum = _sklearn(binary, tol=1e-8, max_iter=10_000)
    probe = fit_probe(_t(binary[0]), _t(binary[1]), 10, tol=1e-7, max_iter=2000,
                      dtype=torch.float64)
    assert probe.weight.shape == (1, 64) and probe.classes.tolist() == [3, 8]
    assert probe.objective == pytest.approx(optimum, rel=1e-6)
    assert set(probe.predict(_t(binary[2])).tolist()) <= {3, 8}


def test_convergence_is_reported(digits_pixels: Split) -> None:
    xtr, ytr, _, _ = digits_pixels
    easy = fit_probe(_t(xtr), _t(ytr), 10)
    assert easy.converged and 1 < easy.iterations < 500
    cut = fit_probe(_t(xtr), _t(ytr), 10, max_iter=1)
    assert not cut.converged and cut.iterations == 1 and cut.grad_max > 1e-4


def test_deterministic_and_label_mapping(digits_pixels: Split) -> None:
    xtr, ytr, xte, yte = digits_pixels
    a = fit_probe(_t(xtr), _t(ytr), 10)
    b = fit_probe(_t(xtr), _t(ytr), 10)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    # classes absent from training are not modelled; predictions are original labels
    keep = ytr >= 5
    sub = fit_probe(_t(xtr[keep]), _t(ytr[keep]), 10)
    assert sub.classes.tolist() == [5, 6, 7, 8, 9]
    assert set(sub.predict(_t(xte)).tolist()) <= {5, 6, 7, 8, 9}


def test_convenience_matches_probe(digits_pixels: Split) -> None:
    xtr, ytr, xte, yte = digits_pixels
    acc, probe = probe_accuracy_torch(_t(xtr), _t(ytr), _t(xte), _t(yte))
    assert acc == probe.accuracy(_t(xte), _t(yte)) and probe.converged


@pytest.mark.parametrize("bad", [
    dict(train_y=torch.zeros(5, dtype=torch.long)),  # one class
    dict(train_y=torch.tensor([0, 1, 2, 3, 10])),  # label out of range
    dict(c=0.0),
])
def test_bad_input_fails_loudly(bad: dict) -> None:
    args = dict(train_emb=torch.randn(5, 3), train_y=torch.tensor([0, 1, 0, 1, 2]),
                num_classes=10) | bad
    with pytest.raises(ValueError):
        fit_probe(**args)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(digits_pixels: Split) -> None:
    xtr, ytr, xte, yte = digits_pixels
    cpu = fit_probe(_t(xtr), _t(ytr), 10)
    gpu = fit_probe(_t(xtr).cuda(), _t(ytr).cuda(), 10)
    assert gpu.weight.device.type == "cuda" and gpu.converged
    assert gpu.accuracy(_t(xte).cuda(), _t(yte).cuda()) == pytest.approx(
        cpu.accuracy(_t(xte), _t(yte)), abs=0.005)
    assert gpu.objective == pytest.approx(cpu.objective, rel=1e-3)
