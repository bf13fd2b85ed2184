"""``python -m trainables``: run one trial without Ray, print its metrics, save its plots."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trainables.config import ConfigError, TrialConfig, parse_assignments
from trainables.data import DataError, load_dataset
from trainables.pictures import judge_embedding
from trainables.trial import EpochReport, NonFiniteLossError, run_trial


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainables", description=__doc__)
    p.add_argument("--dataset", default="digits", help="built-in name or arrays folder")
    p.add_argument("--data-dir", default="data", help="torchvision's root folder")
    p.add_argument("--no-download", action="store_true", help="never download")
    p.add_argument("--set", dest="values", action="append", default=[], metavar="KEY=VALUE",
                   help="a TrialConfig field, e.g. --set mode=pair (repeatable)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if any)")
    p.add_argument("--out", default=None, help="folder for tsne.png and metrics.json")
    args = p.parse_args(argv)
    try:
        cfg = TrialConfig.from_dict(parse_assignments(args.values))
        data = load_dataset(args.dataset, args.data_dir, download=not args.no_download)
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
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        title = f"{cfg.mode}/{cfg.loss}, aug={cfg.augmentation}, D={cfg.embedding_dim}"
        pictures = judge_embedding(last.embedding, last.labels, data.classes, title,
                                   seed=cfg.seed)
        (out / "tsne.png").write_bytes(pictures.tsne)
        if pictures.raw is not None:
            (out / "embedding.png").write_bytes(pictures.raw)
        (out / "metrics.json").write_text(json.dumps(
            {"config": cfg.to_dict(), "history": history, "structure": pictures.measures},
            indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
