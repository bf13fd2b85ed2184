"""The smallest budget at which the seed grid's encoders beat the raw-pixel floor.

    python -m benchmarks.grid_budget --data-dir ../shared/datasets --budgets 2x10000 3x20000

For each budget (``EPOCHSxANCHORS``), trains the six cells of ``--preset seed-grid``
(augmentation x mode at the grid's fixed settings, ``study.presets``) once, without Ray, and
prints their test scores beside the raw pixels' (``trainables.floor``), judged under the
same protocol; ``*`` marks a score that does not beat the floor.  One seed per cell: this
finds the budget, the grid itself measures the spread over seeds.
"""

from __future__ import annotations

import argparse
import time

import torch

from study.presets import GRID_AUGMENTATIONS, ORIGINAL_LOSS, SEED_GRID_FIXED
from study.space import trial_seed
from study.spec import CPU_BUDGET
from trainables.config import TrialConfig
from trainables.data import load_dataset
from trainables.final import conclude, embed_splits
from trainables.floor import raw_pixel_floor
from trainables.trial import run_trial

SHOWN = ("test_probe_accuracy", "test_precision_at_1", "test_map_at_r")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--budgets", nargs="+", default=["2x10000", "3x20000"],
                   help="EPOCHSxANCHORS per epoch, e.g. 3x20000")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--augmentations", nargs="+", default=list(GRID_AUGMENTATIONS),
                   choices=GRID_AUGMENTATIONS, help="the grid rows to train")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, args.data_dir, download=False)
    settings = {**SEED_GRID_FIXED, **CPU_BUDGET, "width": args.width}
    floor = raw_pixel_floor(data, TrialConfig.from_dict({**settings}))
    print(f"dataset {args.dataset}, width {args.width}; raw-pixel floor: "
          + ", ".join(f"{k} {floor[k]:.4f}" for k in SHOWN))
    print("\n| budget | augmentation | mode | " + " | ".join(SHOWN) + " | train s |")
    print("|" + "---|" * (len(SHOWN) + 4))
    for budget in args.budgets:
        epochs, anchors = (int(v) for v in budget.split("x"))
        for aug in args.augmentations:
            for mode, (loss, margin) in ORIGINAL_LOSS.items():
                cfg = TrialConfig.from_dict({**settings, "augmentation": aug, "mode": mode,
                                             "loss": loss, "margin": margin, "epochs": epochs,
                                             "train_subset": anchors,
                                             "seed": trial_seed(0, 0)})
                start = time.perf_counter()
                last = run_trial(cfg, data, device="cpu")
                seconds = time.perf_counter() - start
                emb = embed_splits(last.state["model"], cfg, data, torch.device("cpu"))
                end = conclude(emb, data.classes, "", knn_k=cfg.knn_k,
                               tsne_samples=0)
                cells = [f"{end.metrics[k]:.4f}{'' if end.metrics[k] > floor[k] else ' *'}"
                         for k in SHOWN]
                print(f"| {budget} | {aug} | {mode} | " + " | ".join(cells)
                      + f" | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
