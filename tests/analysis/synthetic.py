"""Synthetic MLflow experiments in the layout of ``study.schema`` (written with
``MlflowClient``, no Ray, no training): for failed, running and too-small studies, trials
whose metric a known dimension drives, and seed grids; and seed-grid frames built directly
(``grid``) for the grid's computations."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd

from study.presets import GRID_AUGMENTATIONS, GRID_MODES
from study.schema import OBJECTIVE, OUTCOME_TAG, PARENT_TAG, ROLE_TAG, TRIAL_ID_TAG
from trainables.config import DIMENSIONS, SEARCHED, ConfigError, TrialConfig
from trainables.dimensions import losses_of

AUG_STRENGTH_RANGE = DIMENSIONS["aug_strength"].search
MARGIN_RANGE = DIMENSIONS["margin"].search_per
EMBEDDING_DIMS = DIMENSIONS["embedding_dim"].choices
BATCH_SIZES = DIMENSIONS["batch_size"].choices


def random_config(rng: np.random.Generator) -> TrialConfig:
    """A valid trial config with every searched dimension drawn at random (drawn again
    until ``TrialConfig`` accepts the combination)."""
    while True:
        augmentation = str(rng.choice(DIMENSIONS["augmentation"].choices))
        mode = str(rng.choice(DIMENSIONS["mode"].choices))
        loss = str(rng.choice(losses_of(mode)))
        try:
            return TrialConfig(
                augmentation=augmentation,
                aug_strength=float(rng.uniform(*AUG_STRENGTH_RANGE)) if augmentation != "none"
                else 1.0,
                positives=str(rng.choice(DIMENSIONS["positives"].choices)) if augmentation != "none"
                else "class",
                mode=mode, loss=loss, margin=float(rng.uniform(*MARGIN_RANGE.get(loss, (0.0, 1.0)))),
                mining=str(rng.choice(DIMENSIONS["mining"].choices)) if mode == "triplet" else "random",
                temperature=float(np.exp(rng.uniform(np.log(0.05), np.log(0.5)))),
                embedding_dim=int(rng.choice(EMBEDDING_DIMS)),
                lr=float(np.exp(rng.uniform(-8, -4.6))), batch_size=int(rng.choice(BATCH_SIZES)),
                epochs=2, seed=int(rng.integers(1 << 30)),
            )
        except ConfigError:
            continue


def synthetic_metric(cfg: TrialConfig, rng: np.random.Generator) -> float:
    """A probe accuracy driven mostly by the mode (triplet best), a little by the embedding
    size."""
    return float(0.75 + 0.12 * (cfg.mode == "triplet") + 0.02 * np.log2(cfg.embedding_dim / 16)
                 + rng.normal(0, 0.01))


# The raw-pixel floor a synthetic study logs (val_ and test_ scores of the pixels).
FLOOR = {f"{split}{k}": v for split in ("val_", "test_") for k, v in (
    ("probe_accuracy", 0.80), ("knn_accuracy", 0.82), ("precision_at_1", 0.84), ("map_at_r", 0.3))}


def write_synthetic_study(uri: str, name: str, *, scored: int, failed: int = 0,
                          running: int = 0, seed: int = 0) -> str:
    """An experiment in ``study.schema``'s layout, without artifacts: one parent run and
    ``scored`` trials with two epochs of metrics (every third stopped early after one),
    ``failed`` trials with an error and no metric, ``running`` trials still open with one
    epoch. Returns the experiment id."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment_id = client.create_experiment(name)
    parent = client.create_run(experiment_id, run_name="study-seed0",
                               tags={ROLE_TAG: "parent", "dataset": "synthetic"})
    parent_id = parent.info.run_id
    client.log_batch(parent_id, params=[
        Param("study_seed", str(seed)), Param("num_samples", str(scored + failed + running)),
        Param("max_epochs", "2"), Param("dataset", "synthetic"), Param("metric", OBJECTIVE),
        Param("searched", ",".join(d for d in SEARCHED if d != "encoder")),
        Param("pins", json.dumps({"encoder": "small_cnn"})), Param("fixed", "{}"),
        Param("val_size", "500"),
    ])
    client.log_batch(parent_id, metrics=[Metric(f"floor_{k}", v, 0, 0) for k, v in FLOOR.items()])
    rng = np.random.default_rng(seed)
    kinds = ["scored"] * scored + ["failed"] * failed + ["running"] * running
    for i, kind in enumerate(kinds):
        cfg = random_config(rng)
        run = client.create_run(experiment_id, run_name=f"trial-{i:05d}", tags={
            PARENT_TAG: parent_id, ROLE_TAG: "trial", TRIAL_ID_TAG: f"{name[:4]}{i:04d}",
            OUTCOME_TAG: "running"})
        run_id = run.info.run_id
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in cfg.to_dict().items()])
        if kind == "failed":
            client.set_tag(run_id, "error", "RuntimeError: synthetic failure")
            client.set_tag(run_id, OUTCOME_TAG, "failed")
            client.set_terminated(run_id, "FAILED")
            continue
        final = synthetic_metric(cfg, rng)
        epochs = 1 if kind == "running" or i % 3 == 2 else 2
        metrics = []
        views = {"pair": 2, "triplet": 3, "batch": 2}[cfg.mode] * 1000
        for epoch in range(1, epochs + 1):
            value = final - 0.03 * (epochs - epoch)
            metrics += [Metric("epoch", epoch, 0, epoch), Metric(OBJECTIVE, value, 0, epoch),
                        Metric("val_knn_accuracy", value - 0.05, 0, epoch),
                        Metric("images_seen", views * epoch, 0, epoch),
                        Metric("loss", 0.5 / epoch, 0, epoch)]
        if kind == "scored":  # the test split, once at the end
            metrics += [Metric(f"test_{k}", final - 0.01 + d, 0, epochs) for k, d in (
                ("probe_accuracy", 0.0), ("knn_accuracy", -0.02), ("precision_at_1", -0.03),
                ("map_at_r", -0.4))]
        client.log_batch(run_id, metrics=metrics)
        if kind == "scored":
            client.set_tag(run_id, OUTCOME_TAG, "finished" if epochs == 2 else "stopped_early")
            client.set_terminated(run_id, "FINISHED")
    client.set_terminated(parent_id, "FINISHED")
    return experiment_id


def write_synthetic_grid(uri: str, name: str, *, seeds: int = 3, dataset: str = "digits",
                         triplet_gain: float = 0.05, silhouette: float = 0.1, floor: float = 0.8,
                         seed: int = 0) -> str:
    """A ``--preset seed-grid`` experiment in ``study.schema``'s layout, without artifacts:
    augmentation x mode (original losses) x ``seeds``, every trial finished after 2 epochs.

    Each trial logs per epoch its ``Progress`` (``images_seen``: 1000 anchors per epoch, 2
    views each for pair, 3 for triplet) and validation ``Scores``, and at the end its test
    ``Scores`` and every structure measure; the parent run logs the raw-pixel floor
    (``floor_val_*``, ``floor_test_*``; test probe accuracy ``floor``). Triplet trials score
    ``triplet_gain`` higher and have a higher silhouette (pair's is ``silhouette``), pair
    trials a higher line-likeness. Returns the experiment id."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from study.presets import ORIGINAL_LOSS, SEED_GRID_FIXED
    from study.schema import FLOOR, STRUCTURE_METRICS, TEST, VAL
    from study.space import trial_seed

    client = MlflowClient(uri)
    experiment_id = client.create_experiment(name)
    parent = client.create_run(experiment_id, run_name=f"study-seed{seed}", tags={
        ROLE_TAG: "parent", "dataset": dataset, "preset": "seed-grid"})
    parent_id = parent.info.run_id
    client.log_batch(parent_id, params=[
        Param("study_seed", str(seed)), Param("num_samples", "1"), Param("max_epochs", "2"),
        Param("dataset", dataset), Param("metric", OBJECTIVE), Param("searched", "augmentation,mode"),
        Param("pins", "{}"), Param("fixed", "{}"), Param("preset", "seed-grid"),
        Param("grid_seeds", str(seeds)), Param("scheduler", "FIFO"),
    ])
    pixels = {"probe_accuracy": floor, "knn_accuracy": floor - 0.02,
              "precision_at_1": floor - 0.03, "map_at_r": floor - 0.3}
    client.log_batch(parent_id, metrics=[Metric(f"{FLOOR}{split}{k}", v, 0, 0)
                                         for split in (VAL, TEST) for k, v in pixels.items()])
    rng = np.random.default_rng(seed)
    for aug in GRID_AUGMENTATIONS:
        for mode, (loss, margin) in ORIGINAL_LOSS.items():
            for i in range(seeds):
                cfg = TrialConfig(**{**SEED_GRID_FIXED, "augmentation": aug, "mode": mode,
                                     "loss": loss, "margin": margin, "epochs": 2,
                                     "train_subset": 1000, "seed": trial_seed(seed, i)})
                run = client.create_run(experiment_id, run_name=f"trial-{aug}-{mode}-{i}", tags={
                    PARENT_TAG: parent_id, ROLE_TAG: "trial", OUTCOME_TAG: "finished",
                    TRIAL_ID_TAG: f"{name[:4]}-{aug[:3]}-{mode[:3]}-{i}"})
                triplet = mode == "triplet"
                level = 0.85 + triplet_gain * triplet
                scores = {"probe_accuracy": level, "knn_accuracy": level - 0.01,
                          "precision_at_1": level - 0.05, "map_at_r": level - 0.3}
                structure = {"silhouette": silhouette + 0.2 * triplet,
                             "line_likeness": 0.6 - 0.2 * triplet,
                             "fragmentation": 1.0 + triplet, "effective_rank": 20.0 - 5 * triplet}
                structure.update({f"tsne_{k}": v + 0.1 for k, v in structure.items()})
                metrics = []
                for epoch in (1, 2):
                    metrics += [Metric("epoch", epoch, 0, epoch),
                                Metric("images_seen", epoch * 1000 * (3 if triplet else 2), 0, epoch),
                                Metric("loss", 0.5 / epoch, 0, epoch),
                                Metric(f"{VAL}probe_converged", 1.0, 0, epoch)]
                    metrics += [Metric(f"{VAL}{k}", v - 0.02 * (2 - epoch) + rng.normal(0, 0.005),
                                       0, epoch) for k, v in scores.items()]
                metrics += [Metric(f"{TEST}{k}", v + rng.normal(0, 0.005), 0, 2)
                            for k, v in scores.items()]
                metrics += [Metric(k, v + rng.normal(0, 0.01), 0, 2)
                            for k, v in structure.items() if k in STRUCTURE_METRICS]
                client.log_batch(run.info.run_id, metrics=metrics, params=[
                    Param(k, str(v)) for k, v in cfg.to_dict().items()])
                client.set_terminated(run.info.run_id, "FINISHED")
    client.set_terminated(parent_id, "FINISHED")
    return experiment_id


Values = Callable[[str, str, int], dict[str, float]]


def grid(values: Values, *, experiment: str = "exp", dataset: str = "d", seeds: int = 5,
         noise: float = 0.005, seed: int = 0, floor: dict[str, float] | None = None
         ) -> pd.DataFrame:
    """A grid frame as ``analysis.grid.grid_frame`` returns it, without MLflow: one row per
    (augmentation, mode, seed index), each metric ``values(aug, mode, i)[metric]`` plus
    gaussian ``noise``, ``floor_<metric>`` columns from ``floor``; rows shuffled (pairing
    must go by seed, not by row order)."""
    rng = np.random.default_rng(seed)
    floors = {f"floor_{k}": v for k, v in (floor or {}).items()}
    rows = []
    for aug in GRID_AUGMENTATIONS:
        for mode in GRID_MODES:
            for i in range(seeds):
                metrics = {k: v + rng.normal(0, noise) for k, v in values(aug, mode, i).items()}
                rows.append({"experiment": experiment, "dataset": dataset, "augmentation": aug,
                             "mode": mode, "seed": 1000 + i, "seed_index": i,
                             "pair_key": f"parent:{1000 + i}", "run_id": f"{aug}-{mode}-{i}",
                             "trial_id": f"t{aug[:2]}{mode[:2]}{i}", "epochs": 3,
                             "train_subset": 20_000, "embedding_dim": 64, **metrics, **floors})
    frame = pd.DataFrame(rows)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
