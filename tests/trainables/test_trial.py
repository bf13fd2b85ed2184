"""Short real-data trials: far above chance, reproducible, reporting the documented dict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainables.config import TrialConfig
from trainables.final import embed_splits
from trainables.metrics import EPOCH_METRICS
from trainables.trial import EpochReport, run_trial

SMALL = {"eval_train": 1400, "tsne_samples": 200, "batch_size": 64, "lr": 3e-3}
TIMES = ("epoch_time_s", "eval_time_s", "images_per_s")


@pytest.mark.parametrize(
    "values",
    [
        {"mode": "triplet", "loss": "triplet_margin", "epochs": 2},
        {"mode": "pair", "loss": "contrastive", "margin": 1.0, "epochs": 2},
        {"mode": "pair", "loss": "cosine_embedding", "margin": 0.0, "augmentation": "rotation",
         "epochs": 2},
        {"mode": "triplet", "positives": "instance", "augmentation": "simclr", "epochs": 2},
        {"mode": "triplet", "mining": "semihard", "epochs": 2},
        {"mode": "triplet", "mining": "hard", "positives": "instance", "augmentation": "rotation",
         "epochs": 2},
        {"mode": "batch", "loss": "supcon", "temperature": 0.1, "epochs": 2},
        {"mode": "batch", "loss": "ntxent", "positives": "instance", "augmentation": "simclr",
         "temperature": 0.2, "epochs": 2},
    ],
    ids=["triplet", "contrastive", "cosine-rotation", "instance-simclr", "semihard",
         "hard-instance", "supcon", "ntxent-simclr"],
)
def test_trial_learns_digits(digits, values: dict) -> None:
    torch.set_num_threads(1)
    reports: list[EpochReport] = []
    cfg = TrialConfig.from_dict({**SMALL, **values})
    last = run_trial(cfg, digits, device="cpu", report=reports.append)
    assert [r.metrics["epoch"] for r in reports] == [1.0, 2.0]
    assert set(last.metrics) == set(EPOCH_METRICS)
    assert all(isinstance(v, float) and np.isfinite(v) for v in last.metrics.values())
    # chance is 0.1; instance positives learn without labels, so expect less of them
    floor = 0.5 if values.get("positives") == "instance" else 0.8
    assert last.metrics["val_probe_accuracy"] > floor
    assert last.metrics["val_knn_accuracy"] > floor
    assert last.metrics["val_precision_at_1"] > floor
    assert last.metrics["val_map_at_r"] > 0.3  # chance is about 1/C = 0.1
    views = {"pair": 2, "triplet": 3, "batch": 2}[cfg.mode]
    assert last.metrics["images_seen"] == 2 * (len(digits.train_y) // 64) * 64 * views
    emb = embed_splits(last.state["model"], cfg, digits, torch.device("cpu"))
    assert emb.test.shape == (len(digits.test_y), cfg.embedding_dim)  # eval_test=0: all
    assert emb.train.shape == (len(digits.train_y), cfg.embedding_dim)  # eval_train above N
    assert np.allclose(np.linalg.norm(emb.test, axis=1), 1, atol=1e-4)
    assert np.array_equal(emb.test_y, digits.test_y.numpy())


@pytest.mark.parametrize("mode,loss,views", [("pair", "contrastive", 2),
                                            ("triplet", "triplet_margin", 3)])
def test_images_counted_are_the_views_encoded_when_the_batch_exceeds_the_anchors(
        digits, mode: str, loss: str, views: int) -> None:
    torch.set_num_threads(1)
    cfg = TrialConfig.from_dict({**SMALL, "mode": mode, "loss": loss, "train_subset": 100,
                                 "batch_size": 256, "epochs": 1, "eval_train": 200})
    last = run_trial(cfg, digits, device="cpu")
    assert last.metrics["images_seen"] == 100 * views  # one step of all 100 anchors
    rate = last.metrics["images_per_s"]
    assert rate == pytest.approx(100 * views / last.metrics["epoch_time_s"])


def test_same_seed_same_numbers_on_cpu(digits) -> None:
    torch.set_num_threads(1)
    cfg = TrialConfig.from_dict({**SMALL, "augmentation": "rotation", "train_subset": 640})
    first = run_trial(cfg, digits, device="cpu")
    second = run_trial(cfg, digits, device="cpu")
    other = run_trial(TrialConfig.from_dict({**cfg.to_dict(), "seed": 1}), digits, device="cpu")
    assert first.metrics == {**second.metrics, **{k: first.metrics[k] for k in TIMES}}
    for name, tensor in first.state["model"].items():
        assert torch.equal(tensor, second.state["model"][name]), name
    assert other.metrics["loss"] != first.metrics["loss"]


def test_resume_continues_with_the_same_numbers(digits) -> None:
    """A trial resumed from a saved epoch state ends exactly as an uninterrupted one."""
    import io

    torch.set_num_threads(1)
    cfg = TrialConfig.from_dict({**SMALL, "augmentation": "rotation", "train_subset": 320,
                                 "epochs": 3})
    saved: list[bytes] = []

    def keep(report: EpochReport) -> None:
        buffer = io.BytesIO()
        torch.save(report.state, buffer)
        saved.append(buffer.getvalue())

    straight = run_trial(cfg, digits, device="cpu", report=keep)
    state = torch.load(io.BytesIO(saved[0]), weights_only=True)  # after epoch 1
    epochs: list[float] = []
    resumed = run_trial(cfg, digits, device="cpu", resume=state,
                        report=lambda r: epochs.append(r.metrics["epoch"]))
    assert epochs == [2.0, 3.0]
    assert resumed.metrics["loss"] == straight.metrics["loss"]
    assert resumed.metrics["val_probe_accuracy"] == straight.metrics["val_probe_accuracy"]
    for name, tensor in straight.state["model"].items():
        assert torch.equal(tensor, resumed.state["model"][name]), name


@pytest.mark.parametrize("augmentation", ["none", "simclr"])
def test_chunked_views_give_each_step_its_own_batch(digits, augmentation, monkeypatch) -> None:
    """Views are built for several steps per call; each step must still get exactly the views
    of its own sampled batch, every step once, across an uneven last chunk."""
    from trainables import trial
    from trainables.modes import LAYOUTS
    from trainables.sampling import ClassIndex

    monkeypatch.setattr(trial, "VIEWS_PER_CALL", 3 * 16 * 4)  # 4 steps of 16 triplets a call
    cfg = TrialConfig.from_dict({"batch_size": 16, "augmentation": augmentation})
    mode, index = LAYOUTS["triplet"], ClassIndex.build(digits.train_y, digits.num_classes)
    views = trial._Views(cfg, torch.tensor(digits.mean), torch.tensor(digits.std))
    order = torch.randperm(len(digits.train_y), generator=torch.Generator().manual_seed(1))
    steps = 10  # chunks of 4, 4, 2

    def run(generator_seed: int) -> list:
        g = torch.Generator().manual_seed(generator_seed)
        return list(trial._chunked_views(order, steps, cfg, mode, digits, index, views, g))

    got = run(7)
    assert [step for step, _, _ in got] == list(range(steps))
    # reference: the same generator draws the 4 steps' batches, then one views call per chunk
    g = torch.Generator().manual_seed(7)
    for first in range(0, steps, 4):
        chunk = got[first : first + 4]
        batches = [mode.sample(order[s * 16 : (s + 1) * 16], digits.train_y, index, "class", g)
                   for s in range(first, first + len(chunk))]
        for (_, batch, _), expected in zip(chunk, batches, strict=True):
            assert torch.equal(batch.indices, expected.indices)
        x = views(digits.train_x[torch.cat([b.indices for b in batches])],
                  g if augmentation != "none" else None)
        assert torch.equal(torch.cat([v for _, _, v in chunk]), x)
    for _, batch, x in got:
        assert x.shape == (len(batch.indices), *digits.image_shape)
        if augmentation == "none":  # un-augmented views are the images themselves, normalised
            assert torch.equal(x, views(digits.train_x[batch.indices], None))


class _Untraceable(torch.nn.Module):
    """Control flow on a tensor's value: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        return y.flatten(1) if float(y.sum()) > 0 else -y.flatten(1)


@pytest.mark.parametrize("encoder,shape", [("small_cnn", (1, 28, 28)), ("resnet18", (3, 32, 32))])
def test_inference_copy_is_the_eval_model_with_batch_norms_folded(encoder: str, shape) -> None:
    from trainables.encoders import build_encoder
    from trainables.trial import inference_copy

    torch.manual_seed(0)
    model = build_encoder(encoder, shape[0], 16, width=8)
    with torch.no_grad():  # running statistics far from BN's initial (0, 1)
        model(torch.randn(32, *shape) * 3 + 1)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frozen = inference_copy(model)
    x = torch.randn(20, *shape)
    with torch.no_grad():
        expected, got = model(x), frozen(x)
    batch_norms = [m for m in frozen.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batch_norms == [] and frozen is not model
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    for k, v in model.state_dict().items():  # the trained model is left as it was
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("shape", [(3, 16, 28, 28), (2, 5, 7, 9), (1, 1, 2, 2), (2, 3, 3, 4)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_index_free_pool_is_torchs_2x2_max_pool_exactly(shape, channels_last: bool) -> None:
    from trainables.trial import MaxPool2x2

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1)).contiguous(
        memory_format=fmt)
    x[0, 0, 0, :2] = 7.0  # ties within a window
    expected = torch.nn.MaxPool2d(2)(x)
    got = MaxPool2x2()(x)
    assert got.shape == expected.shape and torch.equal(got, expected)
    assert got.is_contiguous(memory_format=fmt)


def test_inference_copy_replaces_only_the_pools_it_computes() -> None:
    from trainables.encoders import build_encoder
    from trainables.trial import MaxPool2x2, inference_copy

    small = inference_copy(build_encoder("small_cnn", 1, 8, width=4).eval())
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in small.modules())
    assert sum(isinstance(m, MaxPool2x2) for m in small.modules()) == 2
    others = torch.nn.Sequential(torch.nn.MaxPool2d(3), torch.nn.MaxPool2d(2, stride=1),
                                 torch.nn.MaxPool2d(2, ceil_mode=True), torch.nn.MaxPool2d(2))
    kept = inference_copy(others.eval())
    assert [type(m) for m in kept.children()] == [torch.nn.MaxPool2d] * 3 + [MaxPool2x2]
    x = torch.randn(2, 3, 23, 23)
    assert torch.equal(kept(x), others(x))


def test_inference_copy_leaves_an_untraceable_model_unfused_and_embed_uses_it_in_eval_mode(
        ) -> None:
    from trainables.trial import _Views, embed, inference_copy

    torch.manual_seed(0)
    model = _Untraceable().eval()
    assert inference_copy(model) is model
    model.train()
    with torch.no_grad():  # running statistics far from BN's initial (0, 1)
        model(torch.randn(16, 1, 6, 6) * 3 + 1)
    stats = model.bn.running_mean.clone()
    images = torch.randint(0, 256, (10, 1, 6, 6), dtype=torch.uint8)
    views = _Views(TrialConfig(), torch.zeros(1), torch.ones(1))
    got, = embed(model, views, images)
    model.eval()
    with torch.no_grad():
        expected = torch.nn.functional.normalize(model(images.float() / 255), dim=1)
    torch.testing.assert_close(got, expected)
    assert torch.equal(model.bn.running_mean, stats)  # evaluated, not trained
