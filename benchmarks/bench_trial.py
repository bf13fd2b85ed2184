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
3. the validation embedding (the training and validation samples, as every epoch embeds
   them) by the trained model in eval mode as it is, with its batch norms folded into the
   convolutions, and with the pools index-free too (``trainables.trial.inference_copy``):
   the fastest and the median of interleaved repeats, the same numbers checked.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from study.spec import CPU_BUDGET, GPU_BUDGET
from trainables.config import TrialConfig
from trainables.data import load_dataset
from trainables.final import conclude, embed_splits, trained_model
from trainables.trial import MaxPool2x2, inference_copy, run_trial


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
    _embedding(last.state["model"], cfg, data, torch.device(device))


def _embedding(state: dict, cfg: TrialConfig, data, device: torch.device, repeats: int = 10) -> None:
    """Table 3: the per-epoch validation embedding, three ways, interleaved."""
    from torch.fx.experimental.optimization import fuse

    model, views = trained_model(state, cfg, data, device)
    model.eval()
    data = data.to(device)
    images = torch.cat([data.train_x[: cfg.eval_train], data.val_x[: cfg.eval_val]])
    ways = {"eval model": lambda m: m, "batch norms folded": fuse,
            "folded + index-free pools": inference_copy}
    times: dict[str, list[float]] = {name: [] for name in ways}
    outputs: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for _ in range(repeats):
            for name, make in ways.items():
                start = time.perf_counter()
                frozen = make(model)
                out = torch.cat([frozen(views(images[i : i + 512], None))
                                 for i in range(0, len(images), 512)])
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times[name].append(time.perf_counter() - start)
                outputs[name] = out
    pools = sum(isinstance(m, MaxPool2x2) for m in inference_copy(model).modules())
    print(f"\n| embedding {len(images):,} evaluation images ({repeats} repeats, {pools} pools "
          f"index-free) | fastest s | median s | vs eval model (median) |")
    print("| --- | --- | --- | --- |")
    base = statistics.median(times["eval model"])
    for name, ts in times.items():
        torch.testing.assert_close(outputs[name], outputs["eval model"], rtol=1e-4, atol=1e-4)
        print(f"| {name} | {min(ts):.3f} | {statistics.median(ts):.3f} | "
              f"{base / statistics.median(ts):.2f}x |")


if __name__ == "__main__":
    main()
