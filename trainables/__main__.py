"""``python -m trainables``: run one trial without Ray, print its metrics each epoch and its
test scores at the end, save its plots."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trainables.config import ConfigError, TrialConfig, parse_assignments
from trainables.data import DataError, load_dataset
from trainables.final import conclude, embed_splits
from trainables.trial import EpochReport, NonFiniteLossError, pick_device, run_trial


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainables", description=__doc__)
    p.add_argument("--dataset", default="digits", help="built-in name or arrays folder")
    p.add_argument("--data-dir", default="data", help="torchvision's root folder")
    p.add_argument("--no-download", action="store_true", help="never download")
    p.add_argument("--set", dest="values", action="append", default=[], metavar="KEY=VALUE",
                   help="a TrialConfig field, e.g. --set mode=pair (repeatable)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if any)")
    p.add_argument("--out", default=None, help="folder for tsne.png and metrics.json")
    p.add_argument("--val-size", type=int, default=None,
                   help="validation images held out of train (default: 10 %%, at most 10,000)")
    p.add_argument("--seed", type=int, default=0, help="the validation split's seed")
    args = p.parse_args(argv)
    try:
        cfg = TrialConfig.from_dict(parse_assignments(args.values))
        data = load_dataset(args.dataset, args.data_dir, download=not args.no_download,
                            val_size=args.val_size, seed=args.seed)
    except (ConfigError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    history: list[dict[str, float]] = []

    def report(epoch: EpochReport) -> None:
        history.append(epoch.metrics)
        print(json.dumps({k: round(v, 5) for k, v in epoch.metrics.items()}), flush=True)

    try:
        last = run_trial(cfg, data, device=args.device, report=report)
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    emb = embed_splits(last.state["model"], cfg, data, pick_device(args.device))
    end = conclude(emb, data.classes,
                   f"{cfg.mode}/{cfg.loss}, aug={cfg.augmentation}, D={cfg.embedding_dim}",
                   knn_k=cfg.knn_k, tsne_samples=cfg.tsne_samples if args.out else 0,
                   seed=cfg.seed)
    print(json.dumps({k: round(v, 5) for k, v in end.metrics.items()}), flush=True)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name, png in (("tsne.png", end.tsne), ("embedding.png", end.raw)):
            if png is not None:
                (out / name).write_bytes(png)
        (out / "metrics.json").write_text(json.dumps(
            {"config": cfg.to_dict(), "history": history, "end": end.metrics,
             "notes": end.notes}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
