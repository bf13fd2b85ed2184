"""The winner as a model: logged with mlflow.pytorch into its run, registered, loaded back by
version and by alias, and embedding test images as the trial itself did."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from mlflow.tracking import MlflowClient

from study.registry import ALIAS, description, log_encoder, registered_name
from trainables.config import TrialConfig
from trainables.final import embed_splits
from trainables.trial import run_trial


def test_logged_encoder_loads_by_version_and_alias_and_embeds_as_the_trial(
        digits, tmp_path: Path) -> None:
    import mlflow.pytorch

    torch.set_num_threads(1)
    cfg = TrialConfig(epochs=1, train_subset=256, eval_train=300, embedding_dim=16)
    last = run_trial(cfg, digits, device="cpu")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("reg")).info.run_id
    name = registered_name("siamese digits/study")
    assert name == "siamese-digits-study-encoder"
    text = description("t1", last.metrics, cfg, "reg")
    done = log_encoder(uri, run, last.state["model"], cfg, digits, register_as=name,
                       description=text)
    assert str(done["version"]) == "1" and done["seconds"] > 0 and done["bytes"] > 1000
    version = client.get_model_version(name, "1")
    assert version.description == text and "val_probe_accuracy" in text
    assert str(client.get_model_version_by_alias(name, ALIAS).version) == "1"

    expected = embed_splits(last.state["model"], cfg, digits, torch.device("cpu")).test
    images = digits.test_x  # uint8 (N, 1, 16, 16), as the dataset stores them
    mlflow.set_tracking_uri(uri)
    for model_uri in (f"models:/{name}/1", f"models:/{name}@{ALIAS}"):
        model = mlflow.pytorch.load_model(model_uri)
        with torch.no_grad():
            got = model(images).numpy()
        assert got.shape == expected.shape and np.allclose(got, expected, atol=1e-5)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@{ALIAS}")  # the signature holds
    assert np.allclose(pyfunc.predict(images[:4].numpy()), expected[:4], atol=1e-5)
    # its environment is named, not inferred: the installed torch, pinned
    from importlib.metadata import version

    wanted = Path(mlflow.pyfunc.get_model_dependencies(f"models:/{name}@{ALIAS}")).read_text()
    assert f"torch=={version('torch')}" in wanted.split(), wanted
