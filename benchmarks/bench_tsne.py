"""t-SNE plots off the critical path: time per map and faithfulness of each implementation,
and the throughput of a process pool on the driver.

    python -m benchmarks.bench_tsne --data-dir ../shared/datasets [--quick]

Embeddings: the 64-D output of a small MLP trained on MNIST (``benchmarks.mnist_embeddings``,
kind ``mlp``), L2-normalised like a trial's, for the first 2,000 / 5,000 / 10,000 test images.
Every option computes the same t-SNE (van der Maaten & Hinton 2008): perplexity
``min(30, max(2, (N - 1) // 3))`` (Gaussian affinities on squared Euclidean distances to the
~3 x perplexity exact nearest neighbours, entropy log(perplexity), symmetrised), PCA
initialisation, early exaggeration 12 for 250 iterations, 1,000 iterations in all; they differ
in how the repulsive gradient is approximated and in the step sizes:

- ``torch exact``: ``trainables.tsne`` (scikit-learn's exact method in torch, no
  approximation), on one CPU thread and, where there is one, on the GPU: what a judge on a
  GPU machine draws, and a judge on a CPU for maps of up to 1,500 points
  (``trainables.final.EXACT_ON_CPU_UP_TO``);

- ``sklearn``: ``trainables.final.barnes_hut_map`` (Barnes-Hut, angle 0.5), what a judge
  on a CPU draws for larger maps, with its
  OpenMP and BLAS pools limited to 1 thread, and with the library default (all cores);
- ``openTSNE bh`` / ``openTSNE fft``: openTSNE's Barnes-Hut (theta 0.5) or FFT-interpolated
  gradient (Linderman et al. 2019), exact neighbours, ``n_iter=750`` after the exaggeration
  phase, ``n_jobs`` 1 and 2 (BLAS and OpenMP pools limited to as many threads).  The PyPI
  wheel of openTSNE does its FFTs with NumPy, not FFTW.

Multi-threaded options run at the smallest size only unless ``--all``: on a busy machine a
thread pool that waits for a descheduled thread can cost ten times the single-threaded time.

Faithfulness, per map: trustworthiness (k = 10, Venna & Kaski 2001; on a fixed sample of 2,000
points), the share of each point's 10 nearest neighbours in the embedding that are also its 10
nearest on the map (kNN preservation), the leave-one-out 10-NN class accuracy on the map, and
the class silhouette and line-likeness of the map (``trainables.structure``).  Then the
throughput, in plots per minute, of a process pool of k single-threaded workers when many 2k
plots arrive at once, for the fastest option at 2k.  Prints one table (and the pool lines).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np

from benchmarks.mnist_embeddings import mnist_embeddings
from trainables.final import perplexity

TsneFn = Callable[[np.ndarray, int], np.ndarray]


def _sklearn(x: np.ndarray, seed: int) -> np.ndarray:
    from trainables.final import barnes_hut_map

    return barnes_hut_map(x, seed)


def _opentsne(method: str, n_jobs: int) -> TsneFn:
    def run(x: np.ndarray, seed: int) -> np.ndarray:
        from openTSNE import TSNE

        tsne = TSNE(n_components=2, perplexity=perplexity(len(x)), initialization="pca",
                    neighbors="exact", negative_gradient_method=method, n_iter=750,
                    n_jobs=n_jobs, random_state=seed)
        return np.asarray(tsne.fit(x.astype(np.float32)), dtype=np.float32)
    return run


def _torch(device: str) -> TsneFn:
    def run(x: np.ndarray, seed: int) -> np.ndarray:
        import torch

        from trainables.tsne import tsne

        threads = torch.get_num_threads()
        if device == "cpu":
            torch.set_num_threads(1)
        try:
            out = tsne(torch.from_numpy(x.astype(np.float32)).to(device), perplexity(len(x)))
        finally:
            torch.set_num_threads(threads)
        return out.cpu().numpy()
    return run


def _limited(fn: TsneFn, threads: int | None) -> TsneFn:
    """``fn`` with the BLAS and OpenMP pools limited to ``threads`` (None: library defaults)."""
    def run(x: np.ndarray, seed: int) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(threads):
            return fn(x, seed)
    return run


def options(cores: int) -> dict[str, tuple[TsneFn, int]]:
    """name -> (t-SNE function, threads it uses); openTSNE's only where it is installed."""
    from importlib.util import find_spec

    opts: dict[str, tuple[TsneFn, int]] = {
        "sklearn, 1 thread": (_limited(_sklearn, 1), 1),
        f"sklearn, {cores} threads (default)": (_limited(_sklearn, None), cores)}
    opts["torch exact, 1 thread"] = (_limited(_torch("cpu"), 1), 1)
    import torch

    if torch.cuda.is_available():
        opts["torch exact, cuda"] = (_torch("cuda"), 1)
    for method in ("bh", "fft") if find_spec("openTSNE") else ():
        for jobs in (1, 2):
            opts[f"openTSNE {method}, n_jobs={jobs}"] = (_limited(_opentsne(method, jobs), jobs), jobs)
    return opts


def _knn(points: np.ndarray, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k + 1).fit(points)
    return nn.kneighbors(points, return_distance=False)[:, 1:]


def faithfulness(x: np.ndarray, y: np.ndarray, tsne: np.ndarray, k: int = 10) -> dict[str, float]:
    """Trustworthiness, kNN preservation, map kNN accuracy, silhouette and line-likeness."""
    from sklearn.manifold import trustworthiness

    from trainables.structure import line_likeness, silhouette

    sample = np.random.default_rng(0).permutation(len(x))[:2000]
    high, low = _knn(x, k), _knn(tsne, k)
    kept = (high[:, :, None] == low[:, None, :]).any(axis=2).mean()
    votes = np.apply_along_axis(np.bincount, 1, y[low], minlength=int(y.max()) + 1)
    return {"trust": float(trustworthiness(x[sample], tsne[sample], n_neighbors=k)),
            "knn_kept": float(kept), "map_knn_acc": float(np.mean(votes.argmax(1) == y)),
            "silhouette": silhouette(tsne, y), "line": line_likeness(tsne, y)}


def _one_thread() -> None:
    """Pool worker start: one thread per worker, so k workers use k cores."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _pool_job(args: tuple[str, np.ndarray, int]) -> float:
    name, x, seed = args
    start = time.perf_counter()
    options(os.cpu_count() or 1)[name][0](x, seed)
    return time.perf_counter() - start


def pool_throughput(name: str, x: np.ndarray, workers: int, jobs: int) -> float:
    """Plots per minute of a warm spawn-context pool of ``workers`` given ``jobs`` maps at once."""
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                             initializer=_one_thread) as pool:
        list(pool.map(_pool_job, [(name, x[:200], s) for s in range(workers)]))  # warm-up
        start = time.perf_counter()
        list(pool.map(_pool_job, [(name, x, s) for s in range(jobs)]))
        return jobs / (time.perf_counter() - start) * 60


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data", help="torchvision's root holding MNIST/raw")
    p.add_argument("--sizes", default="2000,5000,10000")
    p.add_argument("--only", default="", help="comma-separated substrings of option names to run")
    p.add_argument("--pool-option", default="",
                   help="option whose pool throughput to measure (default: the fastest single-threaded)")
    p.add_argument("--pool-jobs", type=int, default=0, help="maps per pool run (0: 2 per worker)")
    p.add_argument("--all", action="store_true",
                   help="multi-threaded options at every size too (default: at the smallest only)")
    p.add_argument("--quick", action="store_true",
                   help="2k and 5k points, single-threaded options only, pool of 1..2 workers")
    args = p.parse_args(argv)
    from importlib.metadata import PackageNotFoundError, version

    try:
        opentsne = version("openTSNE")
    except PackageNotFoundError:
        opentsne = "not installed (pip install openTSNE to compare it)"

    cores = os.cpu_count() or 1
    sizes = [2000, 5000] if args.quick else [int(s) for s in args.sizes.split(",")]
    opts = options(cores)
    if args.quick:
        opts = {k: v for k, v in opts.items() if v[1] == 1}
    if args.only:
        opts = {k: v for k, v in opts.items() if any(s in k for s in args.only.split(","))}
    _, _, emb, lab = mnist_embeddings(args.data_dir, 0, max(sizes), 64, "mlp")
    emb, lab = emb.numpy(), lab.numpy()
    print(f"sklearn {version('scikit-learn')}, openTSNE {opentsne}, cores={cores}, "
          f"load average {os.getloadavg()[0]:.1f}; 64-D MLP embeddings of MNIST test images")
    for name, (fn, threads) in opts.items():  # warm-up: imports, thread pools
        if threads == 1 and "fft" not in name:  # (fft shares bh's imports)
            fn(emb[:200], 0)

    print("\n| option | N | s per map | trustworthiness | kNN kept | map 10-NN acc | "
          "silhouette | line-likeness |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    per_map: dict[str, float] = {}
    for n in sizes:
        x, y = emb[:n], lab[:n]
        for name, (fn, threads) in opts.items():
            if threads > 1 and n != sizes[0] and not args.all:
                continue
            start = time.perf_counter()
            tsne = fn(x, 0)
            seconds = time.perf_counter() - start
            if n == sizes[0]:
                per_map[name] = seconds
            f = faithfulness(x, y, tsne)
            print(f"| {name} | {n:,} | {seconds:.1f} | {f['trust']:.4f} | {f['knn_kept']:.3f} | "
                  f"{f['map_knn_acc']:.3f} | {f['silhouette']:.3f} | {f['line']:.3f} |", flush=True)

    best = args.pool_option or min((k for k in per_map if opts[k][1] == 1), key=per_map.get)
    n = sizes[0]
    print(f"\nProcess pool (spawn, 1 thread per worker) of {best!r}, {n:,}-point maps:")
    if best in per_map:
        print(f"  one at a time in the driver: {60 / per_map[best]:.1f} plots/min")
    for workers in range(1, min(cores, 2 if args.quick else cores) + 1):
        jobs = args.pool_jobs or 2 * workers
        rate = pool_throughput(best, emb[:n], workers, jobs)
        print(f"  {workers} worker(s), {jobs} maps queued: {rate:.1f} plots/min", flush=True)


if __name__ == "__main__":
    main()
