"""The per-epoch judge's cost: the scikit-learn probe against the torch probe, kNN, retrieval.

    python -m benchmarks.bench_judge --data-dir ../shared/datasets [--threads 1] [--quick]

On real MNIST-derived embeddings (``benchmarks.mnist_embeddings``: PCA of pixels, or a
trained MLP's output, L2-normalised as a trial's are), a probe is fitted on 5,000 and 10,000
training embeddings of D = 16..128 and scored on 10,000 test embeddings (the trial's default
evaluation sample: ``eval_train=10_000``, the whole test split).  Prints one table, measured
in one run: the current probe (``trainables.evaluate.probe_accuracy``'s pipeline: scikit-learn
StandardScaler + LogisticRegression(C=1, max_iter=300), with the copy to NumPy) against
``trainables.probe`` on the CPU and, when there is one, on CUDA; each probe's test accuracy,
iterations and whether it converged (tol 1e-4); kNN (k=10) and retrieval (P@1, MAP@R)
times.  Times are medians of ``--repeats`` runs, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

from benchmarks.mnist_embeddings import mnist_embeddings
from trainables.evaluate import knn_accuracy, retrieval_metrics
from trainables.probe import fit_probe


def _timed(fn: Callable[..., Any], inputs: tuple, repeats: int,
           device: torch.device, **kw: Any) -> tuple[float, Any]:
    """Median wall time in ms of ``repeats`` calls ``fn(*inputs, **kw)``, and the last result."""
    times, out = [], None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = fn(*inputs, **kw)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), out


def _sklearn_probe(train_emb, train_y, test_emb, test_y) -> tuple[float, int]:
    """``evaluate.probe_accuracy`` as the trial calls it (copy to NumPy included), with the
    iteration count: accuracy and n_iter."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, ytr = train_emb.cpu().numpy(), train_y.cpu().numpy()
    xte, yte = test_emb.cpu().numpy(), test_y.cpu().numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=300, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(xtr, ytr)
    return float(model.score(xte, yte)), int(model[-1].n_iter_[0])


def _torch_probe(train_emb, train_y, test_emb, test_y) -> tuple[float, int, bool]:
    probe = fit_probe(train_emb, train_y, 10)
    return probe.accuracy(test_emb, test_y), probe.iterations, probe.converged


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data", help="torchvision's root holding MNIST/raw")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch and scikit-learn's OpenMP (0 = library defaults)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="only N=10,000 with D=64 (pca, mlp)")
    args = p.parse_args(argv)

    from threadpoolctl import threadpool_limits

    if args.threads:
        torch.set_num_threads(args.threads)
    limits = threadpool_limits(args.threads) if args.threads else None
    cases = [(10_000, 64, "pca"), (10_000, 64, "mlp")] if args.quick else [
        (n, d, "pca") for n in (5_000, 10_000) for d in (16, 64, 128)
    ] + [(5_000, 64, "mlp"), (10_000, 64, "mlp"), (10_000, 128, "mlp")]
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    cpu = devices[0]
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, sklearn OpenMP threads="
          f"{args.threads or 'default'}, devices={[d.type for d in devices]}, repeats={args.repeats}, "
          "test embeddings=10,000; times in ms (median)")

    # warm-up: first calls pay for imports, thread pools, kernel selection
    etr, ytr, ete, yte = mnist_embeddings(args.data_dir, 1000, 1000, 16, "pca")
    for device in devices:
        _torch_probe(etr.to(device), ytr.to(device), ete.to(device), yte.to(device))
    _sklearn_probe(etr, ytr, ete, yte)

    cols = ["N fit", "D", "embedding", "sklearn probe", "acc", "iters",
            "torch probe CPU", "acc", "iters (conv.)", "speed-up"]
    if len(devices) > 1:
        cols += ["torch probe CUDA", "acc", "kNN CUDA", "retrieval CUDA"]
    cols += ["kNN CPU", "retrieval CPU", "judge sklearn", "judge torch CPU"]
    print("\n| " + " | ".join(cols) + " |")
    print("|" + " --- |" * len(cols))
    for n, dim, kind in cases:
        etr, ytr, ete, yte = mnist_embeddings(args.data_dir, n, 10_000, dim, kind)
        c = (etr, ytr, ete, yte)
        sk_ms, (sk_acc, sk_it) = _timed(_sklearn_probe, c, args.repeats, cpu)
        t_ms, (t_acc, t_it, t_conv) = _timed(_torch_probe, c, args.repeats, cpu)
        knn_ms, _ = _timed(knn_accuracy, c, args.repeats, cpu, k=10)
        ret_ms, _ = _timed(retrieval_metrics, c, args.repeats, cpu)
        row = [f"{n:,}", str(dim), kind, f"{sk_ms:.0f}", f"{sk_acc:.4f}", str(sk_it),
               f"{t_ms:.0f}", f"{t_acc:.4f}", f"{t_it} ({'yes' if t_conv else 'NO'})",
               f"{sk_ms / t_ms:.1f}x"]
        if len(devices) > 1:
            g = tuple(t.to(devices[1]) for t in c)
            g_ms, (g_acc, _, _) = _timed(_torch_probe, g, args.repeats, devices[1])
            gk_ms, _ = _timed(knn_accuracy, g, args.repeats, devices[1], k=10)
            gr_ms, _ = _timed(retrieval_metrics, g, args.repeats, devices[1])
            row += [f"{g_ms:.1f}", f"{g_acc:.4f}", f"{gk_ms:.1f}", f"{gr_ms:.1f}"]
        row += [f"{knn_ms:.0f}", f"{ret_ms:.0f}", f"{sk_ms + knn_ms + ret_ms:.0f}",
                f"{t_ms + knn_ms + ret_ms:.0f}"]
        print("| " + " | ".join(row) + " |", flush=True)
    if limits is not None:
        limits.restore_original_limits()


if __name__ == "__main__":
    main()
