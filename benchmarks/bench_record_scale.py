"""How many results a second the driver records, as a 64-GPU cluster would send them.

    python -m benchmarks.bench_record_scale --trials 1000 --epochs 10 --store sqlite server

A cluster of 64 GPUs running 8 trials each has 512 trials in flight; at the H200's pace (an
MNIST epoch in about 2 s) that is 256 epoch results a second reaching the driver.  Two paths:

- ``--path direct`` (default): the cluster's stream itself, 512 trials in flight, each
  reporting an epoch every 2 s (``--rate`` results a second in all), handed to the real
  recorder's Tune hooks as Tune's driver loop would hand them, the recorder writing to a
  real MLflow store.
- ``--path tune``: the same through a real Tune run (local Ray) of a light stand-in trainable
  that reports ``EPOCH_METRICS`` every epoch without training: ``--concurrent`` actors,
  each reporting every ``concurrent / rate`` seconds.  On a small machine this measures what
  Tune's own loop passes on, not the cluster's rate.

Stores: an SQLite file, and a local ``mlflow server`` (127.0.0.1) over HTTP.  No
checkpoints: the end-of-trial judgement's cost is ``benchmarks.bench_driver``'s subject.
Prints, per store: results offered and recorded a second, the delay from a trial's report
(its result's timestamp) to its MLflow record (median, 95th percentile, max), the wall time,
and the driver's peak memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def stand_in(config: dict[str, Any]) -> None:
    """A trial that reports ``epochs`` results ``period`` seconds apart, trains nothing."""
    from ray import tune

    from trainables.metrics import EPOCH_METRICS

    period, epochs = config["_period"], config["_epochs"]
    for epoch in range(1, epochs + 1):
        time.sleep(period)
        tune.report({key: 0.5 for key in EPOCH_METRICS} | {"epoch": float(epoch)})


METRICS = {"loss": 0.5, "val_probe_accuracy": 0.9, "val_knn_accuracy": 0.9,
           "val_precision_at_1": 0.9, "val_map_at_r": 0.7, "val_probe_converged": 1.0,
           "images_seen": 6e4, "epoch_time_s": 2.0, "eval_time_s": 0.1, "images_per_s": 3e4}


def recorder_class() -> type:
    from study.recorder import MLflowRecorder

    class Timed(MLflowRecorder):
        """The recorder, noting when each result lands in MLflow."""

        lags: list[float] = []

        def log_results(self, trial_id, config, results):
            super().log_results(trial_id, self._config(config), results)
            now = time.time()
            self.lags += [now - r["timestamp"] for r in results]

        @staticmethod
        def _config(config: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in config.items() if not k.startswith("_")}

        def ensure_run(self, trial_id, config):
            return super().ensure_run(trial_id, self._config(config))

    return Timed


def run(store: str, args: argparse.Namespace, root: Path) -> dict[str, float]:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{root / 'bench.db'}" if store == "sqlite" else store
    client = MlflowClient(uri)
    experiment = client.create_experiment(f"scale-{int(time.time())}",
                                          artifact_location=(root / "mlruns").as_uri())
    parent = client.create_run(experiment).info.run_id
    recorder = recorder_class()(uri, experiment, parent, [str(i) for i in range(10)],
                                args.epochs)
    recorder.lags = []
    start, fed = (direct if args.path == "direct" else through_tune)(recorder, args, root)
    recorder.close()
    ended = time.time()
    lags = sorted(recorder.lags)
    return {"results": len(lags), "fed_s": fed - start, "wall_s": ended - start,
            "offered_per_s": len(lags) / (fed - start), "recorded_per_s": len(lags) / (ended - start),
            "lag_median": statistics.median(lags), "lag_p95": lags[int(0.95 * (len(lags) - 1))],
            "lag_max": lags[-1], "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def direct(recorder: Any, args: argparse.Namespace, root: Path) -> tuple[float, float]:
    """Hand the recorder the cluster's stream: ``--in-flight`` trials, a result every
    ``in_flight / rate`` seconds each, a new trial as soon as one ends."""
    from types import SimpleNamespace

    from trainables.config import TrialConfig

    config = TrialConfig(epochs=args.epochs).to_dict()
    gap = 1.0 / args.rate
    flying: list[SimpleNamespace] = []
    started = done = 0
    start = time.time()
    tick = start
    while done < args.trials:
        while len(flying) < args.in_flight and started < args.trials:
            trial = SimpleNamespace(trial_id=f"t{started:05d}", config=config, epochs=0,
                                    checkpoint=None, last_result={})
            recorder.on_trial_start(0, [], trial)
            flying.append(trial)
            started += 1
        trial = flying.pop(0)
        trial.epochs += 1
        trial.last_result = {**METRICS, "epoch": float(trial.epochs), "timestamp": time.time()}
        recorder.on_trial_result(0, [], trial, trial.last_result)
        if trial.epochs == args.epochs:
            recorder.on_trial_complete(0, [], trial)
            done += 1
        else:
            flying.append(trial)
        tick += gap
        time.sleep(max(0.0, tick - time.time()))
    return start, time.time()


def through_tune(recorder: Any, args: argparse.Namespace, root: Path) -> tuple[float, float]:
    """A real Tune run of ``stand_in`` trials reporting to the recorder."""
    import ray
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    from trainables.config import TrialConfig

    period = args.concurrent / args.rate
    space = {**TrialConfig(epochs=args.epochs).to_dict(), "_period": period,
             "_epochs": args.epochs, "seed": tune.randint(0, 2**31)}
    ray.init(num_cpus=args.concurrent, include_dashboard=False, log_to_driver=False,
             configure_logging=False, _node_ip_address="127.0.0.1")
    try:
        tuner = tune.Tuner(
            tune.with_resources(stand_in, {"cpu": 1}), param_space=space,
            tune_config=tune.TuneConfig(num_samples=args.trials, reuse_actors=True,
                                        search_alg=BasicVariantGenerator(max_concurrent=0)),
            run_config=tune.RunConfig(storage_path=str(root / "ray"), callbacks=[recorder],
                                      verbose=0))
        start = time.time()
        tuner.fit()
        return start, time.time()
    finally:
        ray.shutdown()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--rate", type=float, default=256.0,
                   help="results a second the cluster sends (64 GPUs x 8 trials / 2 s)")
    p.add_argument("--path", choices=["direct", "tune"], default="direct")
    p.add_argument("--in-flight", type=int, default=512, help="trials at once (direct path)")
    p.add_argument("--concurrent", type=int, default=16, help="actors (tune path)")
    p.add_argument("--store", nargs="+", default=["sqlite", "server"], choices=["sqlite", "server"])
    args = p.parse_args(argv)
    rows = {}
    for store in args.store:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            if store == "sqlite":
                rows["SQLite file"] = run("sqlite", args, root)
            else:
                server = _server(root)
                try:
                    rows["mlflow server (HTTP, 127.0.0.1)"] = run(server[0], args, root)
                finally:
                    server[1].terminate()
                    server[1].wait(timeout=30)
    how = (f"{args.in_flight} trials in flight, handed to the recorder directly"
           if args.path == "direct" else f"{args.concurrent} Tune actors")
    print(f"\n{args.trials} trials x {args.epochs} epochs, offered at {args.rate:.0f} results/s "
          f"({how})\n")
    print("| store | results | offered /s | recorded /s | delay median / p95 / max s | wall s | "
          "driver peak MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in rows.items():
        print(f"| {name} | {r['results']} | {r['offered_per_s']:.0f} | {r['recorded_per_s']:.0f} | "
              f"{r['lag_median']:.2f} / {r['lag_p95']:.2f} / {r['lag_max']:.2f} | "
              f"{r['wall_s']:.0f} | {r['rss_mib']:.0f} |")


def _server(root: Path) -> tuple[str, subprocess.Popen]:
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "4", "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
         "--artifacts-destination", str(root / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"http://127.0.0.1:{port}"
    for _ in range(180):
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return uri, proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("mlflow server did not start")


if __name__ == "__main__":
    main()
