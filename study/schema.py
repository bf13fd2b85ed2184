"""What a study records in MLflow, defined once.

The writers (``study.parent``, ``study.recorder``, ``study.ray_trial``) and the reader
(``analysis.load``) import these names.  Standard library only (the metric names come from
``trainables.metrics``, itself standard library only), so reading a study never imports
Ray or torch.

Layout: one experiment per study name; one parent run per study (``ROLE_TAG`` =
``ROLE_PARENT``, ``PARENT_PARAMS``, ``PARENT_METRICS``), one child run per trial
(``PARENT_TAG`` = the parent's id, ``ROLE_TAG`` = ``ROLE_TRIAL``, ``TRIAL_ID_TAG``,
``OUTCOME_TAG``, the ``TrialConfig`` fields as params, ``EPOCH_METRICS`` at step = epoch,
``END_METRICS`` and the ``TSNE_PLOT`` artifact at the end).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from trainables.metrics import (
    END_METRICS,
    END_TIME,
    EPOCH_METRICS,
    STRUCTURE_METRICS,
    TEST,
    TEST_METRICS,
    VAL,
)

__all__ = ["END_METRICS", "END_TIME", "EPOCH_METRICS", "STRUCTURE_METRICS", "TEST",
           "TEST_METRICS", "VAL"]

# ------------------------------------------------------------------ the objective
# What the searcher optimises, the scheduler reads and the best trial is chosen by (at each
# trial's last epoch): the validation probe.  The test split never steers the search.
OBJECTIVE = "val_probe_accuracy"
OBJECTIVE_MODE = "max"
TIME_ATTR = "training_iteration"  # Tune's per-report counter: one report per epoch

# ------------------------------------------------------------------ tags
PARENT_TAG = "mlflow.parentRunId"
DESCRIPTION_TAG = "mlflow.note.content"  # a run's description in the MLflow UI
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"  # the UI opens the runs table for this kind:
EXPERIMENT_KIND = "custom_model_development"  # model training, not GenAI traces
SOURCE_TAG = "mlflow.source.name"
ROLE_TAG = "study.role"
ROLE_PARENT, ROLE_TRIAL = "parent", "trial"
TRIAL_ID_TAG = "trial_id"
OUTCOME_TAG = "outcome"
ERROR_TAG = "error"  # a failed trial's last error line (the whole text: ERROR_FILE)
LOST_REASON_TAG = "lost_reason"
RAY_PATH_TAG = "ray_experiment_path"
CODE_VERSION_TAG = "code_version"
COMMAND_TAG = "command"
DATASET_TAG = "dataset"
PRESET_TAG = "preset"
RESUMED_TAG_PREFIX = "resumed_"  # + unix time: the command of each resume
# The driver (``study.lock.new_driver_id``: host:pid:random) that created a trial's run; on
# the parent run, the driver running the study now.  A driver retires (as lost) only runs
# of its own lineage: its own, those of the drivers in FORMER_DRIVERS_TAG, or untagged ones.
DRIVER_TAG = "study.driver"
FORMER_DRIVERS_TAG = "study.former_drivers"  # parent: earlier drivers, space separated


@dataclass(frozen=True)
class Placement:
    """Where a trial ran: reported with every epoch, set as tags of its run."""

    node: str  # host name
    node_ip: str
    node_id: str  # Ray's node id
    device_name: str  # the GPU's name, or "cpu"
    gpu_fraction: float
    cpus: float
    torch_threads: int


PLACEMENT_TAGS = tuple(f.name for f in fields(Placement))

# ------------------------------------------------------------------ outcomes
RUNNING = "running"
FINISHED = "finished"
STOPPED_EARLY = "stopped_early"
FAILED = "failed"
INTERRUPTED = "interrupted"
LOST = "lost"  # a trial Ray never saved before its driver died: retired and soft-deleted
OUTCOMES = (FINISHED, STOPPED_EARLY, FAILED, INTERRUPTED)  # counted per study
FLOOR = "floor_"  # + a val_ or test_ score: the raw-pixel floor (trainables.floor)
OPEN_OUTCOMES = (RUNNING, INTERRUPTED)  # a run that a resume may continue
RUN_STATUS = {FAILED: "FAILED", INTERRUPTED: "KILLED", LOST: "KILLED"}  # else FINISHED

# ------------------------------------------------------------------ the parent run
PARENT_PARAMS: dict[str, str] = {
    "study_seed": "the study seed: Optuna's sampler and every trial's torch seed",
    "num_samples": "trials the study runs",
    "max_epochs": "epochs of a trial the scheduler never stops",
    "dataset": "dataset name or arrays folder",
    "data_dir": "torchvision's root folder",
    "val_size": "validation images (held out of train, or the arrays folder's val.npz)",
    "val_source": "where the validation split came from",
    "metric": "the objective",
    "preset": "search, or a fixed grid (seed-grid)",
    "searched": "the dimensions the study varies",
    "pins": "dimensions fixed with --set (JSON)",
    "fixed": "the budget every trial shares (JSON)",
    "encoders": "the encoder choices",
    "scheduler": "ASHA or FIFO",
    "optuna_storage": "where the search keeps its Optuna study (search only)",
    "optuna_study": "the Optuna study's name in that storage (search only)",
    "grace_period": "ASHA: epochs before a trial can be stopped (search only)",
    "reduction_factor": "ASHA: keep the top 1/factor at each rung (search only)",
    "grid_seeds": "seeds per grid cell (seed-grid only)",
    "gpus_per_trial": "GPU fraction per trial",
    "cpus_per_trial": "CPU cores per trial",
    "cluster_cpus": "CPUs of the Ray cluster",
    "cluster_gpus": "GPUs of the Ray cluster",
    "judge_workers": "driver processes making the end-of-trial judgements",
}
PARENT_METRICS: dict[str, str] = {
    **{f"trials_{o}": f"trials that ended {o.replace('_', ' ')}" for o in OUTCOMES},
    **{f"{FLOOR}{k}": f"raw pixels: {v}" for k, v in {**EPOCH_METRICS, **TEST_METRICS}.items()
       if k.startswith((VAL, TEST))},
}

# ------------------------------------------------------------------ files
TSNE_PLOT = "tsne.png"  # every trial: t-SNE map of its last test embeddings (a sample)
EMBEDDING_PLOT = "embedding.png"  # trials with a 2-D embedding: the raw axes
ERROR_FILE = "error.txt"  # a failed trial's error and traceback
NOTE_TAG = "note"  # what the end-of-trial judgement could not make (a t-SNE map), and why
REPORT_DIR = "report"  # analysis.summarize's files, in the parent run
# A trial's checkpoint (Ray's storage): its training state after its last epoch.
STATE_FILE = "state.pt"
