"""Study overhead: what Ray, Optuna and MLflow add on top of the trials themselves.

    python -m benchmarks.bench_study --dataset mnist --data-dir ../shared/datasets

Runs one real study of several short trials (local Ray, Optuna, SQLite MLflow in a temporary
folder) and compares its wall time with the trials' own summed time (Ray's ``time_total_s``
of each trial) divided by the concurrency.  Target: overhead under 25 %.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--num-samples", type=int, default=8)
    p.add_argument("--max-epochs", type=int, default=1)
    p.add_argument("--train-subset", type=int, default=6_000)
    args = p.parse_args(argv)

    from study.run import main as study_main

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        argv_study = [
            "--dataset", args.dataset, "--data-dir", args.data_dir, "--no-download",
            "--num-samples", str(args.num_samples), "--max-epochs", str(args.max_epochs),
            "--tracking-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--storage-path", str(root / "ray"), "--experiment-name", "bench-study",
            "--set", f"train_subset={args.train_subset}", "--set", "eval_train=2000",
            "--set", "eval_test=2000",
        ]
        start = time.perf_counter()
        code = study_main(argv_study)
        wall = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"study failed with exit code {code}")
        trial_times = []
        for result in (root / "ray" / "bench-study").glob("*/result.json"):
            rows = [json.loads(x) for x in result.read_text().splitlines() if x.strip()]
            trial_times.append(rows[-1]["time_total_s"])
    # one CPU per trial (the study's default): as many at once as there are cores
    concurrency = min(args.num_samples, len(os.sched_getaffinity(0)))
    ideal = sum(trial_times) / concurrency
    print("\n| trials | concurrency | summed trial s | ideal wall s | study wall s | overhead |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| {len(trial_times)} | {concurrency} | {sum(trial_times):.1f} | {ideal:.1f} | "
          f"{wall:.1f} | {wall / ideal - 1:.0%} |")


if __name__ == "__main__":
    main()
