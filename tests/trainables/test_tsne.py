"""The torch exact t-SNE (what a GPU judge draws, and a CPU judge for small maps) against
scikit-learn's exact t-SNE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import squareform
from sklearn.datasets import load_digits
from sklearn.manifold import TSNE, trustworthiness
from sklearn.manifold._t_sne import _joint_probabilities, _kl_divergence
from sklearn.metrics import pairwise_distances

from trainables.tsne import joint_probabilities, kl_divergence, tsne


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    x, _ = load_digits(return_X_y=True)
    x = x[:300].astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("perplexity", [5.0, 30.0])
def test_affinities_are_scikit_learns(points, perplexity) -> None:
    expected = _joint_probabilities(pairwise_distances(points, squared=True), perplexity, 0)
    got = joint_probabilities(torch.from_numpy(points), perplexity).numpy()
    np.testing.assert_allclose(squareform(got, checks=False), expected, rtol=1e-4, atol=1e-12)


def test_kl_divergence_is_scikit_learns(points) -> None:
    p = joint_probabilities(torch.from_numpy(points), 30.0)
    y = np.random.default_rng(0).normal(size=(len(points), 2))
    expected, _ = _kl_divergence(y.ravel(), squareform(p.numpy(), checks=False), 1, len(y), 2)
    assert kl_divergence(p, torch.from_numpy(y)) == pytest.approx(expected, rel=1e-6)


def test_map_is_as_good_as_scikit_learns_exact_tsne(points) -> None:
    reference = TSNE(perplexity=30.0, method="exact", init="pca", random_state=0)
    ref_map = reference.fit_transform(points)
    torch.set_num_threads(1)
    ours = tsne(torch.from_numpy(points), 30.0)
    assert ours.shape == (len(points), 2) and ours.dtype == torch.float32
    p = joint_probabilities(torch.from_numpy(points), 30.0)
    ours_kl = kl_divergence(p, ours)
    ref_kl = kl_divergence(p, torch.from_numpy(ref_map))
    assert ours_kl <= ref_kl * 1.05 + 0.01, (ours_kl, ref_kl)
    assert trustworthiness(points, ours.numpy(), n_neighbors=10) >= (
        trustworthiness(points, ref_map, n_neighbors=10) - 0.01)


def test_too_few_points_is_an_error() -> None:
    with pytest.raises(ValueError, match="more points"):
        tsne(torch.zeros(5, 3), 30.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_judge_on_a_gpu_draws_the_torch_map(points) -> None:
    from trainables.final import tsne_map

    on_gpu = tsne_map(points, 0, torch.device("cuda"))
    p = joint_probabilities(torch.from_numpy(points), 30.0)
    reference = TSNE(perplexity=30.0, method="exact", init="pca", random_state=0)
    ref_kl = kl_divergence(p, torch.from_numpy(reference.fit_transform(points)))
    assert kl_divergence(p, torch.from_numpy(on_gpu)) <= ref_kl * 1.05 + 0.01


def test_a_cpu_judge_draws_small_maps_exactly_and_large_ones_by_barnes_hut(points,
                                                                          monkeypatch) -> None:
    from trainables import final

    assert len(points) <= final.EXACT_ON_CPU_UP_TO
    exact = tsne(torch.from_numpy(points), 30.0).numpy()
    np.testing.assert_array_equal(final.tsne_map(points, 7), exact)
    monkeypatch.setattr(final, "EXACT_ON_CPU_UP_TO", len(points) - 1)  # now a large map
    barnes_hut = final.tsne_map(points, 7)
    np.testing.assert_array_equal(barnes_hut, final.barnes_hut_map(points, 7))
    assert not np.allclose(barnes_hut, exact)
