"""The study's command line, parsed and validated into one typed ``StudySpec``."""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from study.names import name_problem
from study.presets import GRID_CELLS, PRESETS
from study.secrets import redact
from study.store import default_optuna_storage, resolve_tracking_uri
from trainables.config import DIMENSIONS, ConfigError, parse_assignments

# Budget of each trial on a CPU-only machine versus one with a GPU; ``--set`` overrides.
# On a CPU: 10,000 anchors an epoch and a t-SNE map of 500 test embeddings, so that the
# 50-trial main job fits 15 minutes on 2 cores.  Its time swings with the search's path: at
# 12,000 anchors and 1,000-point maps one run took 12.6 minutes and another (TPE exploiting
# 3-view triplet trials at batch 64) 16.9, of which 1,777 core-seconds trained and 377
# judged, a 1,000-point t-SNE being 3.9 s of a judgement's 7.5 (500 points: 1.6 s).  The
# judge's samples: 3,000 training images for the probe (with 2,000 the best trial's probe
# fell 0.004 short of its kNN), 1,000 validation images (an epoch's validation then costs
# under 5 % of its training, benchmarks.bench_trial), 5,000 test images.
CPU_BUDGET: dict[str, Any] = {"train_subset": 10_000, "width": 16, "eval_train": 3_000,
                              "eval_val": 1_000, "eval_test": 5_000, "tsne_samples": 500}
GPU_BUDGET: dict[str, Any] = {"train_subset": 0, "eval_train": 10_000, "eval_val": 0,
                              "eval_test": 0, "tsne_samples": 2_000}

# Limits of a study: trials in all (a larger study is several studies), seeds per grid cell,
# and the seed range Optuna's samplers and NumPy accept.
MAX_TRIALS = 100_000
MAX_GRID_SEEDS = 100
SEED_LIMIT = 2**32
# --storage-path URI schemes (pyarrow filesystems Ray writes to); file:// is a local path.
STORAGE_SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss", "az", "hdfs", "viewfs")
# Config keys the study sets itself: a --set of them would be silently replaced.
STUDY_KEYS = {"seed": "each trial's seed derives from the study seed; use --seed N",
              "epochs": "it is not a pin; use --max-epochs N"}


class UsageError(ValueError):
    """Bad command-line input: printed as one line, exit code 2."""


class DefaultsOnce(argparse.HelpFormatter):
    """``(default: X)`` after an option's help when it has a default worth saying and its
    help does not already say it (argparse's own formatter repeats or prints ``None``)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or action.default in (None, False, argparse.SUPPRESS, [])
                or action.option_strings == []):
            return text
        return f"{text} (default: %(default)s)"


@dataclass(frozen=True)
class StudySpec:
    """Everything the driver needs, validated once."""

    num_samples: int
    dataset: str
    data_dir: Path
    seed: int
    max_epochs: int
    pins: dict[str, Any] = field(default_factory=dict)
    experiment_name: str = ""
    tracking_uri: str = ""  # resolved: --tracking-uri, $MLFLOW_TRACKING_URI or ./mlflow.db
    storage_path: str = "ray_results"
    gpus_per_trial: float | None = None
    cpus_per_trial: float = 1.0
    max_concurrent: int | None = None
    address: str | None = None
    shared_storage: bool = False
    grace_period: int = 1
    reduction_factor: int = 3
    download: bool = True
    resume: bool = False
    val_size: int | None = None  # None: trainables.data.default_val_size
    judge_workers: int | None = None  # None: the driver's spare cores (study.tuner)
    optuna_storage: str = ""  # resolved: --optuna-storage, or study.store.default_optuna_storage
    log_encoders: str = "best"
    verbose: bool = False
    preset: str = "search"
    grid_seeds: int = 3
    command: str = ""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m study.run",
        description="Search contrastive (siamese) training settings with Ray Tune + Optuna; "
        "record every trial in MLflow.",
        formatter_class=DefaultsOnce,
    )
    p.add_argument("--num-samples", type=int, default=50, help="trials to run")
    p.add_argument("--dataset", default="mnist",
                   help="mnist, fashion-mnist, cifar10, cifar100, digits, or a folder with "
                        "train.npz and test.npz")
    p.add_argument("--data-dir", default="data",
                   help="torchvision's root folder for built-in datasets")
    p.add_argument("--no-download", action="store_true",
                   help="never download a missing built-in dataset")
    p.add_argument("--seed", type=int, default=0,
                   help="study seed: fixes Optuna's sampler, every trial's torch seed and the "
                        "validation split")
    p.add_argument("--val-size", type=int, default=None,
                   help="validation images held out of the training split, stratified by class "
                        "(default: 10 %% of it, at most 10,000; an arrays folder's val.npz is "
                        "used as it is)")
    p.add_argument("--max-epochs", type=int, default=3,
                   help="epochs of a trial that the scheduler never stops")
    p.add_argument("--set", dest="pins", action="append", default=[], metavar="KEY=VALUE",
                   help="pin a configuration dimension instead of searching it "
                        f"(keys: {', '.join(DIMENSIONS)})")
    p.add_argument("--experiment-name", default=None,
                   help="MLflow experiment and Ray experiment name (default: siamese-<dataset>)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                        "sqlite:///<cwd>/mlflow.db)")
    p.add_argument("--storage-path", default="ray_results", help="where Ray keeps trial results")
    p.add_argument("--gpus-per-trial", type=float, default=None,
                   help="GPU fraction per trial (default: by encoder size when GPUs exist, else 0)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPU cores per trial")
    p.add_argument("--judge-workers", type=int, default=None,
                   help="processes on the driver that make each trial's end-of-trial judgement "
                        "(test scores, t-SNE map) off the trials' path (default: the cores the "
                        "trials leave on this machine, at least 1)")
    p.add_argument("--optuna-storage", default=None, metavar="URL",
                   help="Optuna storage the search keeps its study in, for `optuna-dashboard URL`"
                        " (default: optuna.db beside an SQLite MLflow store, else in the "
                        "working directory)")
    p.add_argument("--log-encoders", choices=("best", "finished", "none"), default="best",
                   help="log the best trial's encoder as an MLflow model and register it "
                        "(best), also every finished trial's (finished), or none")
    p.add_argument("--verbose", action="store_true",
                   help="print Ray's own progress tables and messages too")
    p.add_argument("--max-concurrent", type=int, default=None,
                   help="at most this many trials at once (default: as many as resources allow)")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--shared-storage", action="store_true",
                   help="declare --storage-path a folder every node of the cluster sees at the "
                        "same path (a shared mount the network-filesystem check does not know)")
    p.add_argument("--preset", choices=tuple(PRESETS), default="search",
                   help="search (Optuna + ASHA), or a fixed grid: seed-grid = augmentation x "
                        "mode (original losses) x --grid-seeds seeds; --num-samples is ignored")
    p.add_argument("--grid-seeds", type=int, default=3, help="seeds per cell of --preset")
    p.add_argument("--resume", action="store_true",
                   help="continue the latest study of --experiment-name where it stopped")
    p.add_argument("--grace-period", type=int, default=1,
                   help="ASHA: epochs every trial gets before it can be stopped")
    p.add_argument("--reduction-factor", type=int, default=3,
                   help="ASHA: keep the top 1/factor of trials at each rung")
    return p


def parse_pins(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings -> typed pins; unknown keys or values raise ``UsageError``."""
    try:
        return parse_assignments(items)
    except ConfigError as err:
        raise UsageError(str(err)) from None


def _storage(path: str) -> str:
    """A cloud URI as given; a local path (or ``file://`` URI) made absolute; another
    scheme is refused (``UsageError``)."""
    if "://" in path:
        scheme = path.split("://", 1)[0].lower()
        if scheme == "file":
            path = path[len("file://"):]
        elif scheme in STORAGE_SCHEMES:
            return path
        else:
            raise UsageError(f"--storage-path {redact(path)}: unknown scheme {scheme!r}; use a "
                             f"local folder or one of {', '.join(s + '://' for s in STORAGE_SCHEMES)}")
    return str(Path(path).expanduser().absolute())


def check_pins(pins: dict[str, Any], seed: int = 0) -> None:
    """Pins that cannot go together, and configurations drawn from the pinned space that
    break a rule, fail before any trial."""
    import optuna

    from study.space import SearchSpace, pin_problem, trial_config

    problem = pin_problem(pins)
    if problem is not None:
        raise UsageError(f"--set: {problem}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SearchSpace(pins=pins, study_seed=seed)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for _ in range(20):
        trial = study.ask()
        try:
            constants = space(trial)  # suggests first: trial.params is filled by this call
            trial_config({**trial.params, **constants})
        except ConfigError as err:
            raise UsageError(f"--set: {err}") from None


def parse_args(argv: list[str] | None = None) -> StudySpec:
    """Parse and validate; raises ``UsageError`` with a one-line message on bad input."""
    args = build_parser().parse_args(argv)
    if args.num_samples < 1:
        raise UsageError(f"--num-samples {args.num_samples} must be at least 1")
    if args.num_samples > MAX_TRIALS:
        raise UsageError(f"--num-samples {args.num_samples} is above the limit of "
                         f"{MAX_TRIALS:,} trials; run a larger search as several studies")
    if args.grid_seeds < 1:
        raise UsageError(f"--grid-seeds {args.grid_seeds} must be at least 1")
    if args.grid_seeds > MAX_GRID_SEEDS:
        raise UsageError(f"--grid-seeds {args.grid_seeds} is above the limit of "
                         f"{MAX_GRID_SEEDS} ({GRID_CELLS} cells x {MAX_GRID_SEEDS} = "
                         f"{GRID_CELLS * MAX_GRID_SEEDS} trials)")
    if not 0 <= args.seed < SEED_LIMIT:
        raise UsageError(f"--seed {args.seed} must be 0 to 2**32 - 1 ({SEED_LIMIT - 1})")
    if args.max_epochs < 1:
        raise UsageError(f"--max-epochs {args.max_epochs} must be at least 1")
    if not (math.isfinite(args.cpus_per_trial) and args.cpus_per_trial > 0):
        raise UsageError(f"--cpus-per-trial {args.cpus_per_trial} must be a number above 0")
    if args.gpus_per_trial is not None and not (math.isfinite(args.gpus_per_trial)
                                                and args.gpus_per_trial >= 0):
        raise UsageError(f"--gpus-per-trial {args.gpus_per_trial} must be a number, 0 or more")
    if args.judge_workers is not None and args.judge_workers < 1:
        raise UsageError(f"--judge-workers {args.judge_workers} must be at least 1")
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise UsageError(f"--max-concurrent {args.max_concurrent} must be at least 1")
    if args.grace_period < 1 or args.reduction_factor < 2:
        raise UsageError("--grace-period must be >= 1 and --reduction-factor >= 2")
    if args.grace_period > args.max_epochs:
        raise UsageError(f"--grace-period {args.grace_period} is above --max-epochs "
                         f"{args.max_epochs}: ASHA could never stop a trial; lower it")
    pins = parse_pins(args.pins)
    for key, why in STUDY_KEYS.items():
        if key in pins:
            raise UsageError(f"--set {key}=...: the study sets {key}: {why}")
    check_pins(pins, args.seed)
    dataset = args.dataset
    name = (dataset if "/" not in dataset and not Path(dataset).is_dir()
            else Path(dataset).resolve().name)
    experiment = args.experiment_name or \
        f"{'siamese' if args.preset == 'search' else args.preset}-{name}"
    problem = name_problem(experiment)
    if problem is not None:
        given = "--experiment-name" if args.experiment_name else "the study name (from --dataset)"
        raise UsageError(f"{given} {experiment[:120]!r} {problem}" + (
            "" if args.experiment_name else "; pass --experiment-name NAME"))
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    return StudySpec(
        num_samples=args.num_samples,
        dataset=dataset,
        data_dir=Path(args.data_dir).expanduser().absolute(),
        seed=args.seed,
        max_epochs=args.max_epochs,
        pins=pins,
        experiment_name=experiment,
        tracking_uri=tracking_uri,
        storage_path=_storage(args.storage_path),
        gpus_per_trial=args.gpus_per_trial,
        cpus_per_trial=args.cpus_per_trial,
        max_concurrent=args.max_concurrent,
        address=args.address or os.environ.get("RAY_ADDRESS") or None,
        shared_storage=args.shared_storage,
        grace_period=args.grace_period,
        reduction_factor=args.reduction_factor,
        download=not args.no_download,
        resume=args.resume,
        val_size=args.val_size,
        judge_workers=args.judge_workers,
        optuna_storage=args.optuna_storage or default_optuna_storage(tracking_uri),
        log_encoders=args.log_encoders,
        verbose=args.verbose,
        preset=args.preset,
        grid_seeds=args.grid_seeds,
        command=redact(shlex.join(["python", "-m", "study.run",
                                   *(sys.argv[1:] if argv is None else argv)])),
    )
