"""Trial speed: augmentation's cost in an epoch, throughput, and evaluation's share.

    python -m benchmarks.bench_trial --data-dir ../shared/datasets [--train-subset 20000]

Prints two tables, measured in one run on one device:
1. epoch time of a trial with each augmentation against the same trial on pre-augmented
   tensors (``augmentation=none`` does exactly the same training work on images that need no
   augmenting), and the ratio; the target is at most 1.25.
2. a full trial's throughput (training images encoded per second) and the time spent in
   evaluation (embedding + probe + kNN, every epoch) and in the t-SNE plot, as shares of the
   trial.
"""

from __future__ import annotations

import argparse
import time

import torch

from trainables.config import TrialConfig
from trainables.data import load_dataset
from trainables.pictures import judge_embedding
from trainables.trial import run_trial


def _epoch(cfg: TrialConfig, data, device: str) -> dict[str, float]:
    return run_trial(cfg, data, device=device).metrics


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--train-subset", type=int, default=20_000,
                   help="anchors per epoch (0 = the whole training set)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--mode", default="triplet", choices=("pair", "triplet"))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    data = load_dataset(args.dataset, args.data_dir, download=False)
    loss = "triplet_margin" if args.mode == "triplet" else "contrastive"
    base = {"mode": args.mode, "loss": loss, "margin": 0.2 if args.mode == "triplet" else 1.0,
            "train_subset": args.train_subset, "epochs": 1, "eval_train": 5_000}
    print(f"device={device} threads={torch.get_num_threads()} dataset={args.dataset} "
          f"anchors/epoch={args.train_subset or len(data.train_y)} mode={args.mode}")

    # warm-up: first calls pay for allocator and kernel selection
    run_trial(TrialConfig.from_dict({**base, "train_subset": 2048, "eval_train": 100,
                                     "eval_test": 100}), data, device=device)

    print("\n| augmentation | epoch s (on the fly) | epoch s (pre-augmented) | ratio |")
    print("| --- | --- | --- | --- |")
    plain = _epoch(TrialConfig.from_dict({**base, "augmentation": "none"}), data, device)
    for kind in ("rotation", "simclr"):
        aug = _epoch(TrialConfig.from_dict({**base, "augmentation": kind}), data, device)
        ratio = aug["epoch_time_s"] / plain["epoch_time_s"]
        print(f"| {kind} | {aug['epoch_time_s']:.2f} | {plain['epoch_time_s']:.2f} | {ratio:.2f} |")

    cfg = TrialConfig.from_dict({**base, "augmentation": "none", "epochs": 2})
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    last = run_trial(cfg, data, device=device, report=lambda r: history.append(r.metrics))
    trial_s = time.perf_counter() - start
    start = time.perf_counter()
    judge_embedding(last.embedding, last.labels, data.classes, "benchmark", seed=0)
    tsne_s = time.perf_counter() - start
    train_s = sum(h["epoch_time_s"] for h in history)
    eval_s = sum(h["eval_time_s"] for h in history)
    total = trial_s + tsne_s
    print("\n| trial (2 epochs) | images/s | train s | eval s (share) | t-SNE s (share) | total s |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| {args.mode}, no augmentation | {history[-1]['images_per_s']:.0f} | {train_s:.1f} | "
          f"{eval_s:.1f} ({eval_s / total:.0%}) | {tsne_s:.1f} ({tsne_s / total:.0%}) | {total:.1f} |")


if __name__ == "__main__":
    main()
