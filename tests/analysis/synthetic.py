"""Synthetic MLflow experiments in the layout of ``study.schema`` (written with
``MlflowClient``, no Ray, no training): for failed, running and too-small studies, and
trials whose metric a known dimension drives."""

from __future__ import annotations

import json

import numpy as np

from study.presets import GRID_AUGMENTATIONS
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
                         triplet_gain: float = 0.05, seed: int = 0) -> str:
    """A ``--preset seed-grid`` experiment in ``study.schema``'s layout, without artifacts:
    augmentation x mode (original losses) x ``seeds``, every trial finished after 2 epochs,
    with probe accuracy, precision@1 and the structure measures; triplet trials score
    ``triplet_gain`` higher and have a higher silhouette, pair trials a higher line-likeness.
    Returns the experiment id."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from study.presets import ORIGINAL_LOSS, SEED_GRID_FIXED
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
    rng = np.random.default_rng(seed)
    for aug in GRID_AUGMENTATIONS:
        for mode, (loss, margin) in ORIGINAL_LOSS.items():
            for i in range(seeds):
                cfg = TrialConfig(**{**SEED_GRID_FIXED, "augmentation": aug, "mode": mode,
                                     "loss": loss, "margin": margin, "epochs": 2,
                                     "seed": trial_seed(seed, i)})
                run = client.create_run(experiment_id, run_name=f"trial-{aug}-{mode}-{i}", tags={
                    PARENT_TAG: parent_id, ROLE_TAG: "trial", OUTCOME_TAG: "finished",
                    TRIAL_ID_TAG: f"{name[:4]}-{aug[:3]}-{mode[:3]}-{i}"})
                triplet = mode == "triplet"
                final = {OBJECTIVE: 0.85 + triplet_gain * triplet + rng.normal(0, 0.005),
                         "val_precision_at_1": 0.8 + triplet_gain * triplet + rng.normal(0, 0.005),
                         "silhouette": 0.1 + 0.2 * triplet + rng.normal(0, 0.01),
                         "tsne_silhouette": 0.2 + 0.2 * triplet + rng.normal(0, 0.01),
                         "line_likeness": 0.6 - 0.2 * triplet + rng.normal(0, 0.01),
                         "tsne_line_likeness": 0.8 - 0.1 * triplet + rng.normal(0, 0.01)}
                metrics = [Metric("epoch", e, 0, e) for e in (1, 2)]
                metrics += [Metric(k, v, 0, 2) for k, v in final.items()]
                client.log_batch(run.info.run_id, metrics=metrics, params=[
                    Param(k, str(v)) for k, v in cfg.to_dict().items()])
                client.set_terminated(run.info.run_id, "FINISHED")
    client.set_terminated(parent_id, "FINISHED")
    return experiment_id
