"""A study's fingerprint: every trial's configuration and per-epoch metrics, canonical JSON.

    python -m benchmarks.fingerprint --tracking-uri sqlite:///$PWD/mlflow.db --experiment-name NAME

Two runs of the same seeded study (``--max-concurrent 1`` on CPU) must print the same
fingerprint; a refactor that changes no behaviour must too.  Wall-clock metrics
(``*_time_s``, ``images_per_s``) are left out: they differ from run to run.  Trials are
keyed by their seed (the study seed and the trial's number fix it), not by Ray's random
trial ids.
"""

from __future__ import annotations

import argparse
import json
import sys

TIMING = ("_time_s", "images_per_s")


def fingerprint(tracking_uri: str, experiment: str, digits: int = 6) -> list[dict]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise SystemExit(f"error: no experiment {experiment!r} in {tracking_uri}")
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    trials = []
    for run in runs:
        if run.data.tags.get("study.role") != "trial":
            continue
        history = {}
        for key in sorted(run.data.metrics):
            if key.endswith(TIMING):
                continue
            history[key] = [[m.step, round(m.value, digits)]
                            for m in sorted(client.get_metric_history(run.info.run_id, key),
                                            key=lambda m: m.step)]
        trials.append({"params": dict(sorted(run.data.params.items())),
                       "outcome": run.data.tags.get("outcome"), "metrics": history})
    return sorted(trials, key=lambda t: json.dumps(t["params"], sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tracking-uri", required=True)
    p.add_argument("--experiment-name", required=True)
    p.add_argument("--digits", type=int, default=6, help="decimals kept of each metric")
    args = p.parse_args(argv)
    json.dump(fingerprint(args.tracking_uri, args.experiment_name, args.digits), sys.stdout,
              indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
