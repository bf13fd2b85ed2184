"""The per-epoch judge's share of the trials' time in a study that ran, from its MLflow records.

    python -m benchmarks.eval_share --tracking-uri sqlite:///mlflow.db --experiment-name siamese-mnist

Every epoch a trial logs ``epoch_time_s`` (the epoch's training steps) and ``eval_time_s``
(its judge: the training and validation samples embedded, probe, kNN, retrieval).  This
sums both over every epoch of every trial, by mode and for the whole study, and prints the
judge's share of the two together: the same measure as ``bench_trial``'s, over the mix of
configurations a real search trained.  (A trial's actor start, data loading and its
end-of-trial judgement, made by the driver's judge processes, are in neither sum.)
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

from analysis.load import ExperimentNotFoundError, load_study
from study.store import missing_sqlite_store, open_client


def shares(client, study: str) -> dict[str, tuple[int, int, float, float]]:
    """mode -> (trials, epochs, training s, judge s), with ``all`` for the whole study."""
    trials = load_study(client, study).trials
    sums: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0.0])
    for run_id, mode in zip(trials["run_id"], trials["mode"], strict=True):
        train = {m.step: m.value for m in client.get_metric_history(run_id, "epoch_time_s")}
        judge = {m.step: m.value for m in client.get_metric_history(run_id, "eval_time_s")}
        epochs = sorted(train.keys() & judge.keys())
        for key in (str(mode), "all"):
            row = sums[key]
            row[0] += 1
            row[1] += len(epochs)
            row[2] += sum(train[e] for e in epochs)
            row[3] += sum(judge[e] for e in epochs)
    return {k: (int(v[0]), int(v[1]), v[2], v[3]) for k, v in sums.items()}


def _usage_error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    p.add_argument("--experiment-name", default="siamese-mnist",
                   help="the study's MLflow experiment (study.run's --experiment-name)")
    args = p.parse_args(argv)
    if (missing := missing_sqlite_store(args.tracking_uri)) is not None:
        sys.exit(_usage_error(f"no MLflow store at {missing}; give the study's --tracking-uri"))
    try:
        rows = shares(open_client(args.tracking_uri), args.experiment_name)
    except ExperimentNotFoundError as e:
        sys.exit(_usage_error(f"{e}; give one with --experiment-name"))
    print("| mode | trials | epochs | training s | judge s | judge's share |")
    print("| --- | --- | --- | --- | --- | --- |")
    for mode in sorted(rows, key=lambda k: (k == "all", k)):
        n, epochs, train, judge = rows[mode]
        share = judge / (train + judge) if train + judge else float("nan")
        print(f"| {mode} | {n} | {epochs} | {train:.0f} | {judge:.1f} | {share:.1%} |")


if __name__ == "__main__":
    main()
