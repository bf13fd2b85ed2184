"""Augmentation recipes: batched, per-sample-random, one call per chunk of steps.

Every recipe is a pure function ``fn(images, strength, generator) -> images``:

* ``images``: floating tensor ``(B, C, H, W)``, values in ``[0, 1]``, ``C`` = 1 (grey) or 3
  (RGB), on any device. Normalisation is the caller's job and is not done here.
* ``strength``: a float in ``(0, 2]`` scaling the magnitudes; ``1.0`` is the usual setting.
* ``generator``: a ``torch.Generator`` on the same device as ``images``; every random
  parameter is drawn from it, so the same generator state gives the same output.

The output has the input's shape, dtype and device, with values in ``[0, 1]``. Parameters
are drawn per sample in batched tensor ops (no Python loop over samples), so calling the
same function twice on one batch gives two different views -- that is how the caller makes
the two views of a pair.  The steps themselves are ``trainables.image_ops``.  Each recipe
is a row of ``trainables.dimensions.AUGMENTATIONS`` (its name, and its strength rank)
plus its function in ``RECIPES``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from trainables.image_ops import (
    affine_warp,
    bernoulli,
    check_images,
    color_jitter,
    gaussian_blur,
    gaussian_kernel_size,
    resized_crop,
    rgb_to_grayscale,
    sample_crop_boxes,
    uniform,
)

AugmentFn = Callable[[Tensor, float, torch.Generator], Tensor]

MAX_STRENGTH = 2.0


def _check_strength(strength: float) -> None:
    if (
        isinstance(strength, bool)
        or not isinstance(strength, (int, float))
        or not math.isfinite(strength)
        or not 0.0 < strength <= MAX_STRENGTH
    ):
        raise ValueError(
            f"strength must be a number in (0, {MAX_STRENGTH}], got {strength!r}; 1.0 is the usual setting"
        )


def _check_generator(generator: torch.Generator, images: Tensor) -> None:
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != images.device.type:
        raise ValueError(
            f"generator is on {generator.device} but images are on {images.device}; "
            f"create it with torch.Generator(device={str(images.device)!r})"
        )


def _check_inputs(images: Tensor, strength: float, generator: torch.Generator) -> None:
    check_images(images)
    _check_strength(strength)
    _check_generator(generator, images)


def identity(images: Tensor, strength: float, generator: torch.Generator) -> Tensor:
    """No augmentation: a copy of ``images``; draws nothing from ``generator``.

    A copy, not the input itself, so that two "views" never alias each other or the
    caller's batch (in-place normalisation of one would otherwise change the other).

    Args:
        images: ``(B, C, H, W)`` in ``[0, 1]``.
        strength: ignored, but must be in ``(0, 2]`` like for every augmentation.
        generator: unused (its device must still match ``images``).

    Returns:
        ``(B, C, H, W)``, equal to ``images``.
    """
    _check_inputs(images, strength, generator)
    return images.clone()


def rotation(images: Tensor, strength: float, generator: torch.Generator) -> Tensor:
    """Small random rotation, zoom and shift per sample (one affine warp for the batch).

    Per sample: angle uniform in ``±15°·strength``, scale uniform in
    ``[1 - 0.1·strength, 1 + 0.1·strength]``, shift uniform in ``±0.1·strength`` of the width
    (x) and height (y). Bilinear, and pixels from outside the image are black (zeros padding)
    for grey and RGB alike -- torchvision's ``RandomAffine`` default ``fill=0``, right for
    MNIST's black background; on RGB it gives black corners, as the torchvision recipe does.

    Args:
        images: ``(B, C, H, W)`` in ``[0, 1]``.
        strength: magnitude in ``(0, 2]``.
        generator: on ``images``' device.

    Returns:
        ``(B, C, H, W)`` in ``[0, 1]``.
    """
    _check_inputs(images, strength, generator)
    b, _, h, w = images.shape
    angle = uniform((b,), -15.0 * strength, 15.0 * strength, generator, images)
    scale = uniform((b,), 1.0 - 0.1 * strength, 1.0 + 0.1 * strength, generator, images)
    shift = uniform((b, 2), -0.1 * strength, 0.1 * strength, generator, images)
    translate = shift * torch.tensor([w, h], dtype=images.dtype, device=images.device)
    out = affine_warp(images, angle, scale, translate, padding_mode="zeros")
    return out.clamp_(0.0, 1.0)


def simclr(images: Tensor, strength: float, generator: torch.Generator) -> Tensor:
    """SimCLR's stochastic augmentation (Chen et al. 2020, "A Simple Framework for
    Contrastive Learning of Visual Representations", appendix A), batched.

    In order, each with per-sample random parameters:

    1. Random resized crop, resized back to ``(H, W)`` (bilinear): area fraction uniform in
       ``[max(0.08, 0.2**strength), 1]`` (0.2 at strength 1, the usual value for 28-32 px
       images; ImageNet's 0.08 is the floor), aspect ratio log-uniform in
       ``(3/4, 4/3)**min(strength, 1)``.
    2. Horizontal flip with p = 0.5, RGB only: a mirrored digit is a different symbol, so
       grey images (MNIST-like) are never flipped.
    3. Colour jitter with p = 0.8: brightness, contrast, saturation factors uniform in
       ``1 ± 0.4·strength``, hue shift uniform in ``±0.1·strength`` turns, applied in a
       per-sample random order (see :func:`color_jitter`; hue is a YIQ rotation). Grey
       images get brightness and contrast only.
    4. Random grayscale with p = 0.2, RGB only.
    5. Gaussian blur with p = 0.5, sigma uniform in ``[0.1, 2.0]`` px, kernel ~10% of the
       image side, odd, at least 3 (3 for 28-32 px; see :func:`gaussian_kernel_size`).

    Flip, grayscale and blur probabilities and the blur sigma do not depend on ``strength``.

    Args:
        images: ``(B, C, H, W)`` in ``[0, 1]``.
        strength: magnitude in ``(0, 2]``.
        generator: on ``images``' device.

    Returns:
        ``(B, C, H, W)`` in ``[0, 1]``.
    """
    _check_inputs(images, strength, generator)
    b, c, h, w = images.shape
    rgb = c == 3

    # 1-2. crop (+ flip), one warp.
    min_area = max(0.08, 0.2**strength)
    max_log_ratio = math.log(4.0 / 3.0) * min(strength, 1.0)
    boxes = sample_crop_boxes(
        b,
        h,
        w,
        (min_area, 1.0),
        (math.exp(-max_log_ratio), math.exp(max_log_ratio)),
        generator,
        images,
    )
    flip = bernoulli(b, 0.5, generator, images) if rgb else None
    x = resized_crop(images, boxes, flip, padding_mode="border")

    # 3. colour jitter (identity factors for the samples that skip it).
    jitter = bernoulli(b, 0.8, generator, images)
    mag = 0.4 * strength
    brightness = uniform((b,), max(0.0, 1.0 - mag), 1.0 + mag, generator, images)
    contrast = uniform((b,), max(0.0, 1.0 - mag), 1.0 + mag, generator, images)
    one = torch.ones_like(brightness)
    brightness = torch.where(jitter, brightness, one)
    contrast = torch.where(jitter, contrast, one)
    if rgb:
        saturation = uniform((b,), max(0.0, 1.0 - mag), 1.0 + mag, generator, images)
        hue_mag = min(0.5, 0.1 * strength)
        hue = uniform((b,), -hue_mag, hue_mag, generator, images)
        saturation = torch.where(jitter, saturation, one)
        hue = torch.where(jitter, hue, torch.zeros_like(hue))
        n_ops = 4
    else:
        saturation = hue = None
        n_ops = 2
    order = torch.rand((b, n_ops), generator=generator, device=images.device).argsort(dim=1)
    x = color_jitter(x, brightness, contrast, saturation, hue, order)

    # 4. random grayscale.
    if rgb:
        to_gray = bernoulli(b, 0.2, generator, images).view(b, 1, 1, 1)
        x = torch.where(to_gray, rgb_to_grayscale(x), x)

    # 5. gaussian blur (sigma 0 = unchanged for the samples that skip it).
    blur = bernoulli(b, 0.5, generator, images)
    sigma = uniform((b,), 0.1, 2.0, generator, images)
    sigma = torch.where(blur, sigma, torch.zeros_like(sigma))
    x = gaussian_blur(x, sigma, gaussian_kernel_size(h, w))
    return x.clamp_(0.0, 1.0)


# The registry: one function per row of ``dimensions.AUGMENTATIONS``.
RECIPES: dict[str, AugmentFn] = {
    "none": identity,
    "rotation": rotation,
    "simclr": simclr,
}


def augment(images: Tensor, kind: str, strength: float, generator: torch.Generator) -> Tensor:
    """Apply the augmentation registered as ``kind`` to a batch.

    Args:
        images: ``(B, C, H, W)`` floating tensor in ``[0, 1]``, C = 1 or 3, any device.
        kind: a key of :data:`RECIPES` (``"none"``, ``"rotation"``, ``"simclr"``).
        strength: magnitude in ``(0, 2]``; 1.0 is the usual setting.
        generator: ``torch.Generator`` on ``images``' device; the same state gives the same
            output, and two calls give two different views.

    Returns:
        ``(B, C, H, W)`` in ``[0, 1]``, same dtype and device.

    Raises:
        ValueError: unknown ``kind``, ``strength`` out of range, bad ``images`` or
            ``generator``.
    """
    fn = RECIPES.get(kind) if isinstance(kind, str) else None
    if fn is None:
        raise ValueError(f"unknown augmentation kind {kind!r}; valid kinds: {sorted(RECIPES)}")
    return fn(images, strength, generator)
