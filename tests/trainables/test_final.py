"""The end-of-trial judgement: test scores as a split's scores, a t-SNE map of a stratified
sample, best-effort pictures."""

from __future__ import annotations

import io
from dataclasses import asdict

import numpy as np
import pytest
import torch
from PIL import Image

from trainables.evaluate import scores
from trainables.final import Embeddings, conclude
from trainables.metrics import END_TIME, STRUCTURE_METRICS, TEST_METRICS


def _embeddings(dim: int, n_test: int = 200, seed: int = 0) -> Embeddings:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, dim)) * 3
    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.sort(rng.integers(0, 4, n))  # sorted by class, as some test splits arrive
        x = centres[y] + rng.normal(size=(n, dim))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y
    train, train_y = draw(300)
    test, test_y = draw(n_test)
    return Embeddings(train, train_y, test, test_y)


@pytest.mark.parametrize("dim", [2, 8])
def test_test_scores_map_and_plots(dim: int, tmp_path) -> None:
    emb = _embeddings(dim)
    end = conclude(emb, ["a", "b", "c", "d"], "a title", knn_k=5, tsne_samples=120)
    expected = scores(*(torch.from_numpy(a) for a in asdict(emb).values()), num_classes=4, knn_k=5)
    assert {k: end.metrics[k] for k in TEST_METRICS} == {f"test_{k}": v
                                                           for k, v in asdict(expected).items()}
    assert set(STRUCTURE_METRICS) <= set(end.metrics) and end.metrics[END_TIME] > 0
    assert end.notes == [] and (end.raw is not None) == (dim == 2)
    for png in filter(None, (end.tsne, end.raw)):
        image = Image.open(io.BytesIO(png))
        image.load()
        assert image.format == "PNG" and image.size[0] > 300
    emb.save(tmp_path / "e.npz")  # what a checkpoint carries, read back whole
    back = Embeddings.load(tmp_path / "e.npz")
    assert all(np.array_equal(a, b) for a, b in zip(asdict(back).values(), asdict(emb).values(), strict=True))


@pytest.mark.parametrize("tsne_samples,n_test", [(0, 200), (120, 6)])
def test_a_map_that_cannot_be_drawn_is_a_note_not_an_error(tsne_samples, n_test) -> None:
    end = conclude(_embeddings(8, n_test), ["a", "b", "c", "d"], "t", knn_k=3,
                   tsne_samples=tsne_samples)
    assert end.tsne is None and end.raw is None
    assert len(end.notes) == 1 and end.notes[0].startswith("no t-SNE map")
    assert set(TEST_METRICS) <= set(end.metrics)  # the test scores are there regardless


_FIRST_JUDGEMENT = """
import sys
from trainables.config import TrialConfig
from trainables.data import load_dataset
from trainables.encoders import build_encoder
from trainables.final import judge_trial, start_judge

data = load_dataset("digits", download=False, seed=3)
start_judge(data)
before = set(sys.modules)
cfg = TrialConfig(eval_train=400, tsne_samples=100, embedding_dim=16, width=8, seed=3)
model = build_encoder(cfg.encoder, data.image_shape[0], cfg.embedding_dim, cfg.width)
end = judge_trial(model.state_dict(), cfg.to_dict(), data.classes, "a trial")
assert end.tsne is not None and not end.notes, end.notes
print(sorted(set(sys.modules) - before))
"""


def test_a_started_judge_imports_nothing_more_for_its_first_judgement() -> None:
    # a judge process is made ready when the pool starts (study.judges starts it beside the
    # trials): its first judgement must not still have imports (torch._dynamo, the PNG
    # writer) or first-use set-ups to make, which the study's end would wait for
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _FIRST_JUDGEMENT], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]"
