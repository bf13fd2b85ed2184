"""Study overhead: what Ray, Optuna and MLflow add on top of the trials themselves.

    python -m benchmarks.bench_study --dataset mnist --data-dir ../shared/datasets

Runs one real study of several short trials (local Ray, Optuna, SQLite MLflow in a temporary
folder; by default 8 one-epoch trials at the CPU budget) and compares its wall time with the
trials' own summed time divided by the concurrency.  A trial's own time is Ray's
``time_total_s`` (its training steps and per-epoch validation, in its process) plus its
end-of-trial judgement (``end_time_s`` in MLflow: the test split embedded and scored, the
t-SNE map and plots, in a judge process of the driver).  Everything else is overhead: Ray's
start, actors starting, scheduling, MLflow's writes, the raw-pixel floor, waits.  Target:
overhead at most 15 %.
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
    p.add_argument("--train-subset", type=int, default=None,
                   help="anchors per epoch (default: the CPU budget's)")
    args = p.parse_args(argv)

    from study.run import main as study_main
    from study.spec import CPU_BUDGET

    if args.train_subset is None:
        args.train_subset = CPU_BUDGET["train_subset"]

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        argv_study = [
            "--dataset", args.dataset, "--data-dir", args.data_dir, "--no-download",
            "--num-samples", str(args.num_samples), "--max-epochs", str(args.max_epochs),
            "--tracking-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--storage-path", str(root / "ray"), "--experiment-name", "bench-study",
            "--set", f"train_subset={args.train_subset}",
        ]
        start = time.perf_counter()
        code = study_main(argv_study)
        wall = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"study failed with exit code {code}")
        trial_times = []
        for result in (root / "ray").glob("bench-study-*/*/result.json"):
            rows = [json.loads(x) for x in result.read_text().splitlines() if x.strip()]
            trial_times.append(rows[-1]["time_total_s"])
        judge_times = _judge_times(f"sqlite:///{root / 'mlflow.db'}")
    # one CPU per trial (the study's default): as many at once as there are cores
    concurrency = min(args.num_samples, len(os.sched_getaffinity(0)))
    print("\n| trials | concurrency | trial time counted | summed trial s | ideal wall s | "
          "study wall s | overhead |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for counted, seconds in (("training + validation (Ray's time_total_s)", sum(trial_times)),
                             ("+ end-of-trial judgement (end_time_s)",
                              sum(trial_times) + sum(judge_times))):
        ideal = seconds / concurrency
        print(f"| {args.num_samples} | {concurrency} | {counted} | {seconds:.1f} | {ideal:.1f} | "
              f"{wall:.1f} | {wall / ideal - 1:.0%} |")


def _judge_times(uri: str) -> list[float]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("bench-study")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return [r.data.metrics["end_time_s"] for r in runs if "end_time_s" in r.data.metrics]


if __name__ == "__main__":
    main()
