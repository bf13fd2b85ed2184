"""The thin Ray adapter around ``trainables.trial.run_trial``: the function Tune runs.

Each epoch it reports the flat metrics dict to Tune together with a checkpoint holding the
training state (``state.pt``): a resumed study continues the trial from it, and the driver
makes the end-of-trial judgement (test scores, t-SNE map) with its model, also for trials
the scheduler stops early.
"""

from __future__ import annotations

import os
import platform
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from study.schema import STATE_FILE, Placement
from study.space import trial_config
from trainables.data import Dataset
from trainables.trial import EpochReport, run_trial


def train_trial(config: dict[str, Any], data: Dataset) -> None:
    """Tune function trainable: ``tune.with_parameters(train_trial, data=dataset)``."""
    import ray
    from ray import tune

    cfg = trial_config(config)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    if threads > 0:
        torch.set_num_threads(threads)
    assigned = ray.get_runtime_context().get_assigned_resources()
    placement = asdict(Placement(
        node=platform.node(),
        node_ip=ray.util.get_node_ip_address(),
        node_id=ray.get_runtime_context().get_node_id(),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        gpu_fraction=float(assigned.get("GPU", 0.0)),
        cpus=float(assigned.get("CPU", 0.0)),
        torch_threads=torch.get_num_threads(),
    ))

    def report(epoch: EpochReport) -> None:
        with tempfile.TemporaryDirectory() as folder:
            torch.save(epoch.state, Path(folder) / STATE_FILE)
            tune.report({**epoch.metrics, **placement},
                        checkpoint=tune.Checkpoint.from_directory(folder))

    # A trial restored by a resumed study continues after its last checkpointed epoch.
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            resume = torch.load(Path(folder) / STATE_FILE, map_location=device,
                                weights_only=True)
    run_trial(cfg, data, device=device, report=report, resume=resume)
