"""Trial speed: augmentation's cost in an epoch, throughput, and evaluation's share.

    python -m benchmarks.bench_trial --data-dir ../shared/datasets

Trials at the study's budget for the device (``study.spec.CPU_BUDGET`` or ``GPU_BUDGET``;
``--train-subset`` overrides its anchors per epoch).  Prints two tables, measured in one run
on one device:
1. epoch time of a trial with each augmentation against the same trial on pre-augmented
   tensors (``augmentation=none`` does exactly the same training work on images that need no
   augmenting), and the ratio; the target is at most 1.25.
2. a 2-epoch trial's throughput (training views encoded per second), its per-epoch
   validation judgement (embedding the training and validation samples, probe, kNN,
   retrieval) as a share of the trial's time (target: at most 5 %), and the end-of-trial
   judgement a judge process of the driver makes once (test split embedded and scored,
   t-SNE map, plots, structure), off the trial's path.
"""

from __future__ import annotations

import argparse
import time

import torch

from study.spec import CPU_BUDGET, GPU_BUDGET
from trainables.config import TrialConfig
from trainables.data import load_dataset
from trainables.final import conclude, embed_splits
from trainables.trial import run_trial


def _epoch(cfg: TrialConfig, data, device: str) -> dict[str, float]:
    return run_trial(cfg, data, device=device).metrics


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--train-subset", type=int, default=None,
                   help="anchors per epoch (0 = the whole training set; default: the budget's)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--mode", default="triplet", choices=("pair", "triplet"))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    data = load_dataset(args.dataset, args.data_dir, download=False)
    loss = "triplet_margin" if args.mode == "triplet" else "contrastive"
    budget = dict(GPU_BUDGET if device == "cuda" else CPU_BUDGET)
    if args.train_subset is not None:
        budget["train_subset"] = args.train_subset
    base = {"mode": args.mode, "loss": loss, "margin": 0.2 if args.mode == "triplet" else 1.0,
            "epochs": 1, **budget}
    print(f"device={device} threads={torch.get_num_threads()} dataset={args.dataset} "
          f"mode={args.mode} budget: {budget}")

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
    last = run_trial(cfg, data, device=device, report=lambda r: history.append(r.metrics))
    start = time.perf_counter()
    emb = embed_splits(last.state["model"], cfg, data, torch.device(device))
    conclude(emb, data.classes, "benchmark", knn_k=cfg.knn_k, tsne_samples=cfg.tsne_samples)
    judgement_s = time.perf_counter() - start
    train_s = sum(h["epoch_time_s"] for h in history)
    eval_s = sum(h["eval_time_s"] for h in history)
    print("\n| trial (2 epochs) | views/s | train s | validation s (share of the trial) | "
          "end-of-trial judgement s (driver) |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| {args.mode}, no augmentation | {history[-1]['images_per_s']:.0f} | {train_s:.1f} | "
          f"{eval_s:.2f} ({eval_s / (train_s + eval_s):.1%}) | {judgement_s:.1f} |")


if __name__ == "__main__":
    main()
