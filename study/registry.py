"""The study's winner as a model: the best trial's encoder logged with ``mlflow.pytorch``
into that trial's run and registered in MLflow's Model Registry.

The model takes images as the dataset stores them (uint8 ``(N, C, H, W)``) and returns the
trial's L2-normalised embeddings (``trainables.encoders.ImageEmbedder``); it carries its
signature, an input example and the ``trainables`` code it needs, so
``mlflow.pytorch.load_model("models:/<name>/<version>")`` (or ``models:/<name>@best``) works
without this repository.  The registered name derives from the experiment's
(``registered_name``); each study adds a version, described by the trial's figures and
aliased ``best``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import torch

from study.schema import OBJECTIVE, STATE_FILE, TEST, VAL
from trainables.config import TrialConfig
from trainables.data import Dataset
from trainables.encoders import ImageEmbedder, build_encoder

ALIAS = "best"
MODEL_NAME = "encoder"  # the model's name inside its run
LOG_ENCODERS = ("best", "finished", "none")  # --log-encoders


def registered_name(experiment: str) -> str:
    """The Model Registry name of a study's encoders: ``<experiment>-encoder``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", experiment).strip("-") + "-encoder"


def embedder(model_state: dict[str, Any], cfg: TrialConfig, data: Dataset) -> ImageEmbedder:
    """The trial's encoder with its input normalisation, on the CPU, in eval mode."""
    encoder = build_encoder(cfg.encoder, data.image_shape[0], cfg.embedding_dim, cfg.width)
    encoder.load_state_dict(model_state)
    return ImageEmbedder(encoder, data.mean, data.std).eval()


def log_encoder(tracking_uri: str, run_id: str, model_state: dict[str, Any], cfg: TrialConfig,
                data: Dataset, *, register_as: str | None = None,
                description: str = "") -> dict[str, Any]:
    """Log the trial's encoder into its run (``MODEL_NAME``); with ``register_as``, register
    it as a new version of that name, with ``description`` and the alias ``best``.  Returns
    what it did: the model URI, the version, seconds and bytes."""
    import mlflow
    import mlflow.pytorch
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    start = time.perf_counter()
    model = embedder(model_state, cfg, data)
    example = data.test_x[:4].numpy()
    with torch.no_grad():
        output = model(torch.from_numpy(example)).numpy()
    code = str(Path(__file__).resolve().parents[1] / "trainables")
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pytorch.log_model(model, name=MODEL_NAME, code_paths=[code],
                                        signature=infer_signature(example, output),
                                        input_example=example,
                                        pip_requirements=requirements())
    done: dict[str, Any] = {"model_uri": info.model_uri, "version": None,
                            "seconds": time.perf_counter() - start,
                            "bytes": sum(p.numel() * p.element_size() for p in model.parameters())}
    if register_as:
        client = MlflowClient(tracking_uri)
        version = mlflow.register_model(info.model_uri, register_as)
        client.update_model_version(register_as, version.version, description=description)
        client.set_registered_model_alias(register_as, ALIAS, version.version)
        done["version"] = version.version
    done["seconds"] = time.perf_counter() - start
    return done


def requirements() -> list[str]:
    """What loading the model needs, pinned to the installed versions (MLflow adds
    itself).  Given, not inferred: MLflow's inference loads the model in a subprocess to
    see what it imports, 16 s of a study's end on 2 cores against under 1 s with the list
    (measured; what it infers is this list plus pandas and tqdm, which loading never uses)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("torch", "numpy", "cloudpickle")]


def description(trial_id: str, metrics: dict[str, float], cfg: TrialConfig, study: str) -> str:
    """A registered version's description: where it comes from and its figures."""
    figures = ", ".join(f"{k} {metrics[k]:.4f}" for k in (
        OBJECTIVE, f"{TEST}probe_accuracy", f"{TEST}knn_accuracy", f"{TEST}precision_at_1",
        f"{TEST}map_at_r") if k in metrics)
    settings = ", ".join(f"{k}={v}" for k, v in cfg.applied().items()
                         if k not in ("seed",) and not k.startswith("eval"))
    return (f"Best trial {trial_id} of study {study} (chosen by {OBJECTIVE} at its last epoch; "
            f"{VAL} figures steer, test figures report): {figures}. Settings: {settings}. "
            "Input: uint8 images (N, C, H, W) as the dataset stores them; output: L2-normalised "
            "embeddings (N, D).")


def log_study_encoders(spec: Any, results: Any, best: Any, best_test: dict[str, float],
                       recorder: Any, data: Dataset) -> str:
    """``--log-encoders``: the best trial's encoder logged and registered (``best``), and
    every finished trial's logged too (``finished``); returns the line to print.  A failure
    here is reported, never raised: the study itself is done."""
    from study.space import trial_config

    if spec.log_encoders == "none" or best is None or best.checkpoint is None:
        return ""
    name = registered_name(spec.experiment_name)
    chosen = [best] + ([r for r in results if r.metrics and r.checkpoint is not None
                        and r.metrics.get("trial_id") != best.metrics.get("trial_id")
                        and int(r.metrics.get("epoch", 0)) >= spec.max_epochs]
                       if spec.log_encoders == "finished" else [])
    line = ""
    try:
        for result in chosen:
            cfg = trial_config(result.config)
            trial_id = result.metrics["trial_id"]
            with result.checkpoint.as_directory() as folder:
                state = torch.load(Path(folder) / STATE_FILE, map_location="cpu",
                                   weights_only=True)
            is_best = result is best
            done = log_encoder(
                spec.tracking_uri, recorder.ensure_run(trial_id, dict(result.config)),
                state["model"], cfg, data, register_as=name if is_best else None,
                description=description(trial_id, {**result.metrics, **best_test}, cfg,
                                        spec.experiment_name) if is_best else "")
            if is_best:
                line = (f"best trial's encoder: models:/{name}/{done['version']} (alias "
                        f"@{ALIAS}); mlflow.pytorch.load_model(\"models:/{name}@{ALIAS}\") takes "
                        "uint8 images (N, C, H, W) and returns their embeddings")
    except Exception as err:  # noqa: BLE001 - the study's records are complete without it
        return f"warning: could not log the encoder ({type(err).__name__}: {err})"[:500]
    return line
