"""``python -m study.run``: one hyperparameter study, from the command line to MLflow.

The steps, in order: parse and validate the command into a ``StudySpec`` -> check that the
MLflow store and Ray's storage answer -> load the dataset once -> start or join Ray -> the
search space and the preset's plan -> the study's parent run (new, or found again by
``--resume``) -> Tune runs the trials (the plan's searcher proposes, its scheduler stops,
``MLflowRecorder`` records) -> reconcile MLflow with Ray -> close the parent run -> print
the best trial and the command that opens the MLflow UI.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
from typing import Any


def _ctrl_c_during_the_imports(signum: int, frame: object) -> None:
    """A Ctrl-C while the driver imports torch and its own modules (about 2-5 s): nothing
    has started or been recorded yet, so one line and exit 130, not an import traceback."""
    os.write(2, b"interrupted before the study started: nothing was recorded\n")
    os._exit(130)


if __name__ == "__main__" and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _ctrl_c_during_the_imports)

from study import lock as study_lock
from study import parent as parent_run
from study import tuner as tuning
from study.interrupts import DeferredCtrlC
from study.preflight import check_resources, check_storage_path, check_tracking_uri, local_cpus
from study.presets import PRESETS, Plan
from study.registry import log_study_encoders
from study.schema import INTERRUPTED, OBJECTIVE, TEST, VAL
from study.secrets import redact
from study.space import SearchSpace, trial_config
from study.spec import CPU_BUDGET, GPU_BUDGET, StudySpec, UsageError, parse_args
from trainables.config import SEARCHED, ConfigError
from trainables.data import DataError, Dataset, load_dataset

EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # no store-migration chatter
    with DeferredCtrlC() as ctrl_c:  # a Ctrl-C in the set-up stops between its steps
        lock = None
        try:
            spec = parse_args(argv)
            if not spec.verbose:
                quiet_ray()  # Ray's and MLflow's own chatter; --verbose keeps it
            check_tracking_uri(spec.tracking_uri)
            check_storage_path(spec.storage_path)
            if spec.address is None:
                check_resources(spec, local_cpus(), _local_gpus())  # before Ray starts
            ctrl_c.check()
            lock = study_lock.acquire(spec)  # one driver per study
            found = parent_run.find(spec) if spec.resume else None
            data = load_dataset(spec.dataset, spec.data_dir, download=spec.download,
                                val_size=spec.val_size, seed=spec.seed)
            ctrl_c.check()
            gpus, cluster = _connect(spec)  # refuses a cluster that cannot hold the study
            ctrl_c.check()
            space = build_space(spec, data, gpus)
            plan = PRESETS[spec.preset](spec, space)
            ctrl_c.check()
        except (UsageError, DataError, ConfigError, KeyboardInterrupt) as err:
            _shutdown_ray()
            if lock is not None:
                lock.release()
            if isinstance(err, KeyboardInterrupt):
                print("interrupted before any trial started", file=sys.stderr)
                return EXIT_INTERRUPTED
            print(f"error: {redact(str(err))}", file=sys.stderr)
            return 2
        with lock:
            return run_study(spec, data, space, plan, tuning.resources(spec, gpus, space),
                             cluster, found, lock.driver_id, ctrl_c)


def run_study(spec: StudySpec, data: Dataset, space: SearchSpace, plan: Plan,
              per_trial: dict[str, float], cluster: dict[str, float], found: Any,
              driver_id: str = "", ctrl_c: DeferredCtrlC | None = None) -> int:
    """Run (or resume) the study's trials under its parent run; the exit code.  A Ctrl-C
    that ``ctrl_c`` deferred during the set-up ends the study here, before Tune starts."""
    import ray

    from study.console import ConsoleReporter
    from study.recorder import MLflowRecorder
    from study.store import open_client

    client = open_client(spec.tracking_uri)
    judges = tuning.judge_workers(spec, per_trial, cluster)
    parent = (parent_run.reopen(client, found, spec, driver_id) if found is not None
              else parent_run.create(client, spec, plan, space, per_trial, cluster, data, judges,
                                     driver_id))
    recorder = MLflowRecorder(spec.tracking_uri, parent.experiment_id, parent.run_id,
                              data.classes, spec.max_epochs, judges, data,
                              resumed=found is not None, owner=driver_id,
                              owners=parent.owners)
    # Before the floor's thread reads the dataset: starting the judges hands it to them
    # through torch's multiprocessing pickler, which moves its tensors into shared memory
    # in place (a concurrent reader of the old storage crashed the driver, SIGSEGV).
    recorder.judges.start()
    floor = parent_run.FloorJob(data, space.fixed) if found is None else None
    trainable = tuning.trainable(data, per_trial)
    callbacks = [recorder, ConsoleReporter(plan.trials)]
    status, counts, best, best_test, registered = "FAILED", {}, None, {}, ""
    try:
        restore = found is not None and tuning.started(parent.ray_path)
        tuner = (tuning.restored(parent.ray_path, trainable, callbacks) if restore
                 else tuning.new(plan, trainable, callbacks, parent.ray_path, spec.verbose))
        if ctrl_c is not None:
            ctrl_c.check()
            ctrl_c.release()  # Tune's loop takes Ctrl-C its own way
        with tuning.trials_together(tuning.trial_slots(spec, per_trial, cluster)):
            results = tuner.fit()
        if ctrl_c is not None:
            ctrl_c.restore()
        recorder.flush()  # the last judgements: a Ctrl-C abandons them
        counts = recorder.reconcile(results.experiment_path)
        interrupted = counts[INTERRUPTED] > 0 or sum(counts.values()) < plan.trials
        status = "KILLED" if interrupted else "FINISHED"
        best = tuning.best(results)
        best_test = recorder.end_metrics(best.metrics["trial_id"]) if best is not None else {}
        registered = log_study_encoders(spec, results, best, best_test, recorder, data)
    except KeyboardInterrupt:  # a Ctrl-C of the set-up (deferred) or after Tune's loop
        recorder.abandon_judgements()
    finally:
        recorder.close()
        if recorder.abandoned:
            status, counts = "KILLED", recorder.outcome_counts()
        floor_values = floor.result() if floor is not None else parent_run.floor_of(client, parent)
        text = summary(spec, counts, best, best_test, floor_values, parent.run_id)
        parent_run.close(client, parent, counts, status, floor_values, text)
        ray.shutdown()
    print(text)
    if registered:
        print(registered)
    if status == "KILLED":
        print(f"interrupted; resume with:\n  {resume_command(spec)}")
        return EXIT_INTERRUPTED
    return 0


def quiet_ray() -> None:
    """Keep Ray's and MLflow's own messages (progress tables, hints, periodic warnings) out
    of the console: ``study.console`` prints the study's progress instead.  (Tune's newer
    output prints its tables whatever the verbosity; its older one is silent at 0.  MLflow
    sets its loggers' level from the environment when it is imported.)"""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for name in ("ray", "ray.tune", "ray.train", "ray.air", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    state = logging.getLogger("ray.tune.execution.experiment_state")
    if not any(isinstance(f, StateCopyRace) for f in state.filters):
        state.addFilter(StateCopyRace())


class StateCopyRace(logging.Filter):
    """Drops one harmless error of Ray Tune 2.60 from the console.  Tune copies its driver
    folder to the storage path in a background thread, and its next save rewrites files of
    that folder meanwhile: a copy that finds a file replaced fails with FileNotFoundError,
    is logged with a 20-line traceback when the next save waits for it, and that save's own
    copy (forced and waited for at the study's end) copies the folder again.  Any other
    failure to save the state is still shown."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, FileNotFoundError)
                    and str(record.msg).startswith("Saving experiment state to storage"))


def build_space(spec: StudySpec, data: Dataset, gpus: int) -> SearchSpace:
    """The search space for this dataset and device: the budget (``--set`` overrides it) and
    the encoders that fit (resnet18 only for RGB data on a GPU)."""
    has_gpu = gpus != 0
    fixed = {k: v for k, v in (GPU_BUDGET if has_gpu else CPU_BUDGET).items()
             if k not in spec.pins}
    fixed["epochs"] = spec.max_epochs
    rgb = data.image_shape[0] == 3
    encoders = ("small_cnn", "resnet18") if rgb and has_gpu else ("small_cnn",)
    return SearchSpace(pins=spec.pins, fixed=fixed, encoders=encoders, study_seed=spec.seed)


def summary(spec: StudySpec, counts: dict[str, int], best: Any, best_test: dict[str, float],
            floor: dict[str, float], parent_id: str) -> str:
    """The end-of-study lines: trial counts, the best trial (chosen on validation, at its
    last epoch) with its test figures, the raw-pixel floor, how to browse the runs."""
    lines = [f"study {spec.experiment_name}: {sum(counts.values())} trials ("
             + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()) + ")"]
    if best is not None:
        cfg = trial_config(best.config)
        m = best.metrics
        lines.append(f"best trial {m.get('trial_id')} (by {OBJECTIVE} at its last epoch, "
                     f"{int(m.get('epoch', 0))}): validation probe {m[OBJECTIVE]:.4f}, kNN "
                     f"{m.get(VAL + 'knn_accuracy', float('nan')):.4f}; test probe "
                     f"{best_test.get(TEST + 'probe_accuracy', float('nan')):.4f}, kNN "
                     f"{best_test.get(TEST + 'knn_accuracy', float('nan')):.4f}, P@1 "
                     f"{best_test.get(TEST + 'precision_at_1', float('nan')):.4f}, MAP@R "
                     f"{best_test.get(TEST + 'map_at_r', float('nan')):.4f}")
        searched = {k: v for k, v in cfg.applied().items() if k in SEARCHED}
        lines.append("  settings: " + ", ".join(f"{k}={v}" for k, v in searched.items()))
    else:
        lines.append("no trial reported a result")
    if floor:
        lines.append(f"raw-pixel floor: validation probe {floor.get(VAL + 'probe_accuracy', 0):.4f}"
                     f", test probe {floor.get(TEST + 'probe_accuracy', 0):.4f}, test P@1 "
                     f"{floor.get(TEST + 'precision_at_1', 0):.4f}, test MAP@R "
                     f"{floor.get(TEST + 'map_at_r', 0):.4f}")
    lines.append(f"MLflow parent run {parent_id}; browse with:")
    lines.append(f"  mlflow ui --backend-store-uri {redact(spec.tracking_uri)}")
    if spec.preset == "search":
        lines.append("the search itself (history, importances, parallel coordinates):")
        lines.append(f"  optuna-dashboard {redact(spec.optuna_storage)}")
    return "\n".join(lines)


def resume_command(spec: StudySpec) -> str:
    """The command that continues this study."""
    args = shlex.split(spec.command)
    if "--resume" not in args:
        args.append("--resume")
    if "--experiment-name" not in args:
        args += ["--experiment-name", spec.experiment_name]
    return shlex.join(args)


def _local_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def _connect(spec: StudySpec) -> tuple[int, dict[str, float]]:
    """Start a local Ray or join ``--address``; the GPUs to plan with and the cluster's
    total resources."""
    from study.cluster import connect

    info = connect(spec)
    check_resources(spec, info.cpus, info.gpus)
    return int(info.gpus), {"CPU": info.cpus, "GPU": info.gpus}


def _shutdown_ray() -> None:
    if "ray" in sys.modules:
        import ray

        ray.shutdown()


def exit_now(code: int) -> None:
    """End the driver with ``code`` once its study has ended: the exit handlers run (Ray's,
    MLflow's, the judges' pool's, logging's), then the process ends without Python's
    teardown of its modules, which took 2.5 s here after every study (freeing torch's, Ray's
    and MLflow's objects) and changes nothing anyone sees."""
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    if signal.getsignal(signal.SIGINT) is _ctrl_c_during_the_imports:  # imported: Python's again
        signal.signal(signal.SIGINT, signal.default_int_handler)
    exit_now(main())
