"""Tests for trainables.augment: contracts, randomness, and known answers vs torchvision."""

from __future__ import annotations

import colorsys
import math
import re

import pytest
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from trainables.augment import RECIPES, augment, rotation, simclr
from trainables.dimensions import AUGMENTATIONS
from trainables.image_ops import (
    _affine_grid,
    affine_warp,
    color_jitter,
    gaussian_blur,
    gaussian_kernel_size,
    resized_crop,
    sample_crop_boxes,
)

SHAPES = {1: (16, 1, 28, 28), 3: (16, 3, 32, 32)}
RANDOM_KINDS = ["rotation", "simclr"]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(channels: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [0, 1] (upsampled noise, so warps and blurs matter)."""
    b, c, h, w = SHAPES[channels]
    low = torch.rand((b, c, h // 4, w // 4), generator=_gen(seed))
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear")


def _blob(size: int = 28, sigma: float = 3.0) -> torch.Tensor:
    """(1, 1, size, size) centred Gaussian blob with peak 1."""
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    return torch.exp(-(r.view(-1, 1) ** 2 + r.view(1, -1) ** 2) / (2 * sigma**2)).view(1, 1, size, size)


# --------------------------------------------------------------------------- contracts


def test_registry_keys() -> None:
    assert set(RECIPES) == {row.name for row in AUGMENTATIONS} == {"none", "rotation", "simclr"}


@pytest.mark.parametrize("kind", sorted(RECIPES))
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("strength", [0.5, 1.0, 2.0])
def test_shape_dtype_range(kind: str, channels: int, strength: float) -> None:
    x = _images(channels)
    before = x.clone()
    y = augment(x, kind, strength, _gen())
    assert y.shape == x.shape
    assert y.dtype == torch.float32
    assert y.device == x.device
    assert y.min() >= 0.0 and y.max() <= 1.0
    assert torch.isfinite(y).all()
    assert torch.equal(x, before), "input must not be modified"


def test_none_returns_input_unchanged() -> None:
    x = _images(3)
    g = _gen()
    state = g.get_state()
    y = augment(x, "none", 1.0, g)
    assert torch.equal(y, x)
    assert y.data_ptr() != x.data_ptr(), "a copy, so two views never alias"
    assert torch.equal(g.get_state(), state), "'none' must not draw random numbers"


@pytest.mark.parametrize("kind", RANDOM_KINDS)
@pytest.mark.parametrize("channels", [1, 3])
def test_per_sample_randomness(kind: str, channels: int) -> None:
    one = _images(channels)[:1]
    batch = one.expand(SHAPES[channels]).contiguous()
    g = _gen()
    a = augment(batch, kind, 1.0, g)
    b = augment(batch, kind, 1.0, g)
    flat = a.flatten(1)
    pairwise = torch.cdist(flat, flat)
    off_diagonal = pairwise[~torch.eye(len(flat), dtype=torch.bool)]
    assert off_diagonal.min() > 1e-3, "samples of one batch must get different parameters"
    assert (a - b).flatten(1).abs().amax(dim=1).min() > 1e-3, "two calls must give two views"


@pytest.mark.parametrize("kind", RANDOM_KINDS)
@pytest.mark.parametrize("channels", [1, 3])
def test_same_seed_same_output(kind: str, channels: int) -> None:
    x = _images(channels)
    assert torch.equal(augment(x, kind, 1.0, _gen(7)), augment(x, kind, 1.0, _gen(7)))
    assert not torch.equal(augment(x, kind, 1.0, _gen(7)), augment(x, kind, 1.0, _gen(8)))


# --------------------------------------------------------------------------- validation


def test_bad_kind_names_value_and_choices() -> None:
    with pytest.raises(ValueError, match=r"'rotate'.*none.*rotation.*simclr"):
        augment(_images(1), "rotate", 1.0, _gen())


@pytest.mark.parametrize("strength", [0.0, -1.0, 2.5, float("nan"), float("inf")])
@pytest.mark.parametrize("kind", sorted(RECIPES))
def test_bad_strength_names_value(strength: float, kind: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(strength))):
        augment(_images(1), kind, strength, _gen())


@pytest.mark.parametrize(
    "images",
    [torch.rand(2, 2, 8, 8), torch.rand(1, 8, 8), torch.zeros(2, 1, 8, 8, dtype=torch.uint8)],
    ids=["two-channels", "3d", "uint8"],
)
def test_bad_images_raise(images: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="images"):
        augment(images, "rotation", 1.0, _gen())


# --------------------------------------------------------------------------- rotation


def test_rotation_tiny_strength_is_near_identity() -> None:
    x = _images(1)
    y = rotation(x, 1e-4, _gen())
    assert (y - x).abs().max() < 1e-2


def test_rotation_roughly_preserves_mass_of_centred_blob() -> None:
    blob = _blob().expand(32, 1, 28, 28).contiguous()
    mass = blob[0].sum()
    y = rotation(blob, 1.0, _gen())
    ratio = y.sum(dim=(1, 2, 3)) / mass
    # Zoom s in [0.9, 1.1] changes the mass by s**2; rotation and shift keep it.
    assert ratio.min() > 0.9**2 * 0.98 and ratio.max() < 1.1**2 * 1.02
    # Pure rotations keep it closely.
    angles = torch.linspace(-180, 180, 32)
    z = affine_warp(blob, angles, torch.ones(32), torch.zeros(32, 2))
    assert torch.allclose(z.sum(dim=(1, 2, 3)), mass.expand(32), rtol=1e-2)


def test_rotation_magnitude_scales_with_strength() -> None:
    x = _images(1)
    small = (rotation(x, 0.1, _gen()) - x).abs().mean()
    large = (rotation(x, 1.0, _gen()) - x).abs().mean()
    assert small < large


# --------------------------------------------------------------------------- affine_warp


@pytest.mark.parametrize("hw", [(28, 28), (24, 32)])
def test_affine_grid_equals_torch(hw: tuple[int, int]) -> None:
    theta = torch.randn(4, 2, 3, generator=_gen())
    ref = torch.nn.functional.affine_grid(theta, [4, 1, *hw], align_corners=False)
    assert torch.allclose(_affine_grid(theta, *hw), ref, atol=1e-6)


def test_affine_warp_90_degrees_is_rot90() -> None:
    x = torch.rand(3, 3, 6, 6, generator=_gen())
    y = affine_warp(x, torch.full((3,), 90.0), torch.ones(3), torch.zeros(3, 2))
    assert torch.allclose(y, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5)


@pytest.mark.parametrize("hw", [(28, 28), (24, 32)])
def test_affine_warp_matches_torchvision(hw: tuple[int, int]) -> None:
    h, w = hw
    x = torch.rand(5, 3, h, w, generator=_gen())
    angle = torch.tensor([0.0, 12.5, -30.0, 90.0, 177.0])
    scale = torch.tensor([1.0, 0.9, 1.15, 1.0, 0.8])
    translate = torch.tensor([[0.0, 0.0], [2.0, -3.0], [-1.0, 1.0], [0.0, 4.0], [3.0, 0.0]])
    ours = affine_warp(x, angle, scale, translate)
    for i in range(len(x)):
        # v2.functional.affine turns clockwise for a positive angle; ours counter-clockwise.
        ref = TF.affine(
            x[i],
            angle=-float(angle[i]),
            translate=translate[i].tolist(),
            scale=float(scale[i]),
            shear=[0.0, 0.0],
            interpolation=InterpolationMode.BILINEAR,
        )
        assert torch.allclose(ours[i], ref, atol=1e-5), f"sample {i}"


# --------------------------------------------------------------------------- resized_crop


def test_resized_crop_full_box_is_identity_and_flip_mirrors() -> None:
    x = torch.rand(4, 3, 32, 32, generator=_gen())
    full = torch.tensor([[0.0, 0.0, 32.0, 32.0]]).expand(4, 4)
    assert torch.allclose(resized_crop(x, full), x, atol=1e-6)
    flip = torch.tensor([True, False, True, False])
    y = resized_crop(x, full, flip)
    expected = torch.where(flip.view(4, 1, 1, 1), x.flip(-1), x)
    assert torch.allclose(y, expected, atol=1e-6)


def test_resized_crop_matches_torchvision_inside() -> None:
    x = torch.rand(3, 3, 32, 32, generator=_gen())
    boxes = [(4, 6, 16, 16), (0, 0, 20, 12), (10, 3, 11, 25)]  # (top, left, height, width)
    ours = resized_crop(x, torch.tensor(boxes, dtype=torch.float32))
    for i, (top, left, bh, bw) in enumerate(boxes):
        ref = TF.resized_crop(
            x[i], top, left, bh, bw, size=[32, 32], interpolation=InterpolationMode.BILINEAR
        )
        # torchvision repeats the box edge within half an output pixel of it; we sample the
        # neighbouring pixels. Compare away from the border (enlargement <= 3x -> 2 px).
        assert torch.allclose(ours[i, :, 2:-2, 2:-2], ref[:, 2:-2, 2:-2], atol=1e-5)


def test_sample_crop_boxes_respect_ranges() -> None:
    like = torch.empty(0)
    boxes = sample_crop_boxes(2000, 32, 32, (0.2, 1.0), (3 / 4, 4 / 3), _gen(), like)
    top, left, h, w = boxes.unbind(dim=1)
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= 32 + 1e-4).all() and (left + w <= 32 + 1e-4).all()
    area = h * w / 32**2
    assert area.min() >= 0.2 - 1e-4 and area.max() <= 1.0 + 1e-4
    aspect = w / h
    assert aspect.min() >= 3 / 4 - 1e-4 and aspect.max() <= 4 / 3 + 1e-4
    assert area.min() < 0.25 and area.max() > 0.9, "the whole range should be used"


def test_sample_crop_boxes_fallback_is_central_crop() -> None:
    # Full area with aspect <= 0.6 never fits a square image: torchvision's fallback is the
    # full height and width 0.6 * height (its max ratio); we place it anywhere along x.
    boxes = sample_crop_boxes(8, 20, 20, (1.0, 1.0), (0.5, 0.6), _gen(), torch.empty(0))
    assert torch.allclose(boxes[:, 2], torch.full((8,), 20.0))
    assert torch.allclose(boxes[:, 3], torch.full((8,), 12.0))
    assert ((boxes[:, 1] >= 0) & (boxes[:, 1] <= 8.0)).all()


# --------------------------------------------------------------------------- colour


@pytest.mark.parametrize("channels", [1, 3])
def test_brightness_and_contrast_match_torchvision(channels: int) -> None:
    x = _images(channels)[:4]
    factors = torch.tensor([0.6, 0.9, 1.2, 1.4])
    ones = torch.ones(4)
    bright = color_jitter(x, factors, ones)
    contrast = color_jitter(x, ones, factors)
    # Order (contrast, brightness) versus torchvision applied in that order.
    both_order = torch.tensor([[1, 0]] * 4) if channels == 1 else torch.tensor([[1, 0, 2, 3]] * 4)
    both = color_jitter(x, factors, factors.flip(0), order=both_order)
    for i in range(4):
        f = float(factors[i])
        assert torch.allclose(bright[i], TF.adjust_brightness(x[i], f), atol=1e-5)
        assert torch.allclose(contrast[i], TF.adjust_contrast(x[i], f), atol=1e-5)
        ref = TF.adjust_brightness(TF.adjust_contrast(x[i], float(factors.flip(0)[i])), f)
        assert torch.allclose(both[i], ref, atol=1e-5)


def test_saturation_matches_torchvision() -> None:
    x = _images(3)[:4]
    factors = torch.tensor([0.0, 0.6, 1.0, 1.4])
    ones = torch.ones(4)
    y = color_jitter(x, ones, ones, saturation=factors)
    for i in range(4):
        ref = TF.adjust_saturation(x[i], float(factors[i]))
        assert torch.allclose(y[i], ref, atol=1e-5)


def test_hue_matches_yiq_rotation_reference() -> None:
    """Hue = rotating (I, Q) of colorsys's YIQ by -2*pi*hue, then back to RGB, clamped."""
    x = torch.rand(3, 3, 4, 4, generator=_gen())
    hues = torch.tensor([0.05, -0.2, 0.5])
    ones = torch.ones(3)
    y = color_jitter(x, ones, ones, saturation=ones, hue=hues)
    for n in range(3):
        phi = -2 * math.pi * float(hues[n])
        for i in range(4):
            for j in range(4):
                yy, ii, qq = colorsys.rgb_to_yiq(*x[n, :, i, j].tolist())
                ii, qq = (
                    ii * math.cos(phi) - qq * math.sin(phi),
                    ii * math.sin(phi) + qq * math.cos(phi),
                )
                ref = torch.tensor(colorsys.yiq_to_rgb(yy, ii, qq))
                assert torch.allclose(y[n, :, i, j], ref, atol=1e-5), (n, i, j)


def test_hue_turns_the_same_way_as_torchvision() -> None:
    red = torch.tensor([0.8, 0.2, 0.2]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    ones = torch.ones(1)
    ours = color_jitter(red, ones, ones, ones, torch.tensor([0.08]))[0, :, 0, 0]
    ref = TF.adjust_hue(red[0], 0.08)[:, 0, 0]
    # Red towards yellow: green up, red down relative to green.
    assert ref[1] > 0.2 and ours[1] > 0.2
    assert ours[0] - ours[1] < 0.6 and ref[0] - ref[1] < 0.6


def test_color_jitter_rejects_wrong_order_shape() -> None:
    ones = torch.ones(4)
    with pytest.raises(ValueError, match="order"):
        color_jitter(_images(1)[:4], ones, ones, order=torch.zeros(4, 4, dtype=torch.long))


def test_identity_factors_leave_image_unchanged() -> None:
    x = _images(3)[:4]
    ones = torch.ones(4)
    order = torch.rand(4, 4, generator=_gen()).argsort(dim=1)
    y = color_jitter(x, ones, ones, ones, torch.zeros(4), order)
    assert torch.allclose(y, x, atol=1e-5)


# --------------------------------------------------------------------------- blur


@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize("channels", [1, 3])
def test_gaussian_blur_matches_torchvision(kernel_size: int, channels: int) -> None:
    x = torch.rand(4, channels, 16, 20, generator=_gen())
    sigma = torch.tensor([0.1, 0.7, 1.3, 2.0])
    y = gaussian_blur(x, sigma, kernel_size)
    for i in range(4):
        s = float(sigma[i])
        ref = TF.gaussian_blur(x[i], kernel_size=[kernel_size, kernel_size], sigma=[s, s])
        assert torch.allclose(y[i], ref, atol=1e-5), f"sample {i}"


def test_gaussian_blur_zero_sigma_is_identity() -> None:
    x = torch.rand(2, 3, 8, 8, generator=_gen())
    assert torch.equal(gaussian_blur(x, torch.zeros(2), 3), x)


def test_gaussian_kernel_size() -> None:
    assert gaussian_kernel_size(28, 28) == 3
    assert gaussian_kernel_size(32, 32) == 3
    assert gaussian_kernel_size(96, 96) == 9
    assert gaussian_kernel_size(224, 224) == 23


# --------------------------------------------------------------------------- simclr


@pytest.mark.parametrize("channels", [1, 3])
def test_simclr_flips_rgb_only(channels: int) -> None:
    x = torch.zeros(64, channels, 32, 32)
    x[..., :16] = 1.0  # bright left half
    y = simclr(x, 1e-3, _gen())  # near-full crops, near-identity jitter
    left_brighter = y[..., :16].mean(dim=(1, 2, 3)) > y[..., 16:].mean(dim=(1, 2, 3))
    flipped = (~left_brighter).float().mean()
    if channels == 1:
        assert flipped == 0, "grey images (digits) must never be flipped"
    else:
        assert 0.3 < flipped < 0.7


def test_simclr_grayscale_rate() -> None:
    x = torch.rand(200, 3, 32, 32, generator=_gen())
    y = simclr(x, 1.0, _gen())
    gray = ((y[:, 0] - y[:, 1]).abs().amax(dim=(1, 2)) < 1e-6) & (
        (y[:, 1] - y[:, 2]).abs().amax(dim=(1, 2)) < 1e-6
    )
    assert 0.1 < gray.float().mean() < 0.32


def test_simclr_changes_more_with_strength() -> None:
    x = _images(3)
    small = (simclr(x, 0.05, _gen()) - x).abs().mean()
    large = (simclr(x, 1.5, _gen()) - x).abs().mean()
    assert small < large


# --------------------------------------------------------------------------- device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", sorted(RECIPES))
def test_cuda_same_device_and_seeded(kind: str) -> None:
    x = _images(3).cuda()
    g1 = torch.Generator(device="cuda").manual_seed(3)
    g2 = torch.Generator(device="cuda").manual_seed(3)
    y1 = augment(x, kind, 1.0, g1)
    y2 = augment(x, kind, 1.0, g2)
    assert y1.device == x.device
    assert torch.equal(y1, y2)
    assert y1.min() >= 0 and y1.max() <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_generator_with_cuda_images_raises() -> None:
    with pytest.raises(ValueError, match="generator"):
        augment(_images(1).cuda(), "rotation", 1.0, _gen())
