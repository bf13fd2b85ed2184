"""Does the driver keep up with trials that finish at GPU speed?

    python -m benchmarks.bench_driver --interval 0.5 --trials 24 --epochs 3 --concurrent 4 --judge-workers 2

Feeds the real recorder (``study.recorder.MLflowRecorder``: a real SQLite store, its writer
thread and its process pool of judges) with what Tune would hand it: ``--concurrent``
trials report an epoch result in turn, one every ``--interval`` seconds (the H200 runs an
MNIST epoch in about 2 s, four trials to a GPU: one result every 0.5 s), each trial ends
after ``--epochs`` results, and its checkpoint holds a small CNN's weights (untrained: what
matters here is its cost); its end-of-trial judgement (embed the test split and the
training sample, test scores, a t-SNE map of ``--tsne-samples`` points, plots) is the real
one, on the real dataset.  No training runs: this measures the driver only.

Prints the backlog over time (queued writes, results waiting, judgements in flight), the
delay from a result to its MLflow record and from a trial's end to its closed run, and how
long the study's end waits after the last result.  The driver keeps up when the backlog
stays bounded and the end waits a few seconds at most.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace


class TimedRecorder:
    """The real recorder, with the times its writes land recorded."""

    def __new__(cls, *args, **kwargs):
        from study.recorder import MLflowRecorder

        class Timed(MLflowRecorder):
            result_lags: list[float] = []
            close_lags: list[float] = []
            judge_times: list[float] = []
            ended: dict[str, float] = {}

            def _record_end(self, run_id, end):
                super()._record_end(run_id, end)
                self.judge_times.append(end.metrics["end_time_s"])

            def log_results(self, trial_id, config, results):
                super().log_results(trial_id, config, results)
                now = time.time()
                self.result_lags += [now - r["timestamp"] for r in results]

            def _close(self, run_id, outcome, error, judged):
                super()._close(run_id, outcome, error, judged)
                trial = next(t for t, r in self._runs.items() if r == run_id)
                self.close_lags.append(time.time() - self.ended[trial])

        return Timed(*args, **kwargs)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--interval", type=float, default=0.5, help="seconds between results")
    p.add_argument("--trials", type=int, default=24)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--concurrent", type=int, default=4)
    p.add_argument("--judge-workers", type=int, default=2)
    p.add_argument("--tsne-samples", type=int, default=2_000)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default="data")
    args = p.parse_args(argv)

    import torch
    from mlflow.tracking import MlflowClient
    from ray.tune import Checkpoint

    from study.schema import STATE_FILE
    from study.spec import CPU_BUDGET
    from trainables.config import TrialConfig
    from trainables.data import load_dataset
    from trainables.encoders import build_encoder

    data = load_dataset(args.dataset, args.data_dir, download=False)
    cfg = TrialConfig.from_dict({**CPU_BUDGET, "tsne_samples": args.tsne_samples,
                                 "epochs": args.epochs})
    config = cfg.to_dict()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        client = MlflowClient(uri)
        experiment = client.create_experiment("bench-driver", artifact_location=(root / "mlruns").as_uri())
        parent = client.create_run(experiment).info.run_id
        recorder = TimedRecorder(uri, experiment, parent, data.classes, args.epochs,
                                 args.judge_workers, data)
        folder = root / "checkpoint"
        folder.mkdir()
        model = build_encoder(cfg.encoder, data.image_shape[0], cfg.embedding_dim, cfg.width)
        torch.save({"model": model.state_dict()}, folder / STATE_FILE)
        checkpoint = Checkpoint.from_directory(str(folder))

        backlog: list[tuple[float, int, int, int]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                backlog.append((time.time(), *recorder.writes.backlog(),
                                recorder.judges._unclosed))
                time.sleep(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.time()
        running: list[SimpleNamespace] = []
        started = done = 0
        while done < args.trials:
            while len(running) < args.concurrent and started < args.trials:
                trial = SimpleNamespace(trial_id=f"t{started:05d}", config=config, epochs=0,
                                        checkpoint=checkpoint, last_result={})
                recorder.on_trial_start(0, [], trial)
                running.append(trial)
                started += 1
            trial = running.pop(0)
            trial.epochs += 1
            result = {"epoch": float(trial.epochs), "loss": 0.1, "val_probe_accuracy": 0.98,
                      "timestamp": time.time()}
            trial.last_result = result
            recorder.on_trial_result(0, [], trial, result)
            if trial.epochs == args.epochs:
                recorder.ended[trial.trial_id] = time.time()
                recorder.on_trial_complete(0, [], trial)
                done += 1
            else:
                running.append(trial)
            time.sleep(args.interval)
        fed = time.time()
        recorder.close()
        ended = time.time()
        stop.set()
        sampler.join()

    queue = [w + r + j for _, w, r, j in backlog]
    judging = [j for _, _, _, j in backlog]
    print(f"{args.trials} trials x {args.epochs} epochs, one result every {args.interval} s from "
          f"{args.concurrent} trials at once, {args.judge_workers} judge worker(s); each judged "
          f"on {cfg.eval_test or 'all'} test and {cfg.eval_train} training images of "
          f"{args.dataset}, t-SNE of {args.tsne_samples} points")
    print("\n| measure | value |\n| --- | --- |")
    rows = [
        ("results fed", f"{args.trials * args.epochs} in {fed - start:.1f} s"),
        ("result -> MLflow delay, median / max", f"{statistics.median(recorder.result_lags):.2f} "
                                                  f"/ {max(recorder.result_lags):.2f} s"),
        ("trial end -> run closed (judged), median / max",
         f"{statistics.median(recorder.close_lags):.1f} / {max(recorder.close_lags):.1f} s"),
        ("backlog (writes + results + judgements), max / last quarter max",
         f"{max(queue)} / {max(queue[3 * len(queue) // 4:])}"),
        ("judgements in flight, max", str(max(judging))),
        ("study end waited after the last result", f"{ended - fed:.1f} s"),
        ("one judgement (test scores, t-SNE, plots), median",
         f"{statistics.median(recorder.judge_times):.1f} s"),
        ("trial ends the judges sustain (workers / judgement)",
         f"one every {statistics.median(recorder.judge_times) / args.judge_workers:.1f} s"),
        ("trial ends fed", f"one every {args.interval * args.epochs:.1f} s"),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
