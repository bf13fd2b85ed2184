"""Batched image operations with explicit per-sample parameters, on any device.

The geometric and photometric steps of the augmentation recipes (``trainables.augment``):
:func:`affine_warp`, :func:`resized_crop`, :func:`color_jitter`, :func:`gaussian_blur`,
:func:`rgb_to_grayscale`, and :func:`sample_crop_boxes`, RandomResizedCrop's box sampler.
They follow ``torchvision.transforms.v2.functional`` conventions, and the tests check them
against it.  Images are floating ``(B, C, H, W)`` tensors in ``[0, 1]``, C = 1 or 3.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# ITU-R 601 luma weights, as in torchvision's rgb_to_grayscale.
_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)

# RGB -> YIQ and its inverse, the matrices of Python's ``colorsys`` module.
_RGB_TO_YIQ = (
    (0.30, 0.59, 0.11),
    (0.74 - 0.47 * 0.30, -0.47 * 0.59, -0.27 - 0.47 * 0.11),
    (0.48 - 0.89 * 0.30, -0.89 * 0.59, 0.41 - 0.89 * 0.11),
)
_YIQ_TO_RGB = (
    (1.0, 0.9468822170900693, 0.6235565819861433),
    (1.0, -0.27478764629897834, -0.6356910791873801),
    (1.0, -1.1085450346420322, 1.7090069284064666),
)

# Jitter operation indices (position in the per-sample random order).
_CONTRAST = 1  # the jitter ops' indices: 0 brightness, 1 contrast, 2 saturation, 3 hue


def check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor):
        raise ValueError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (B, C, H, W) with C in (1, 3), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(
            f"images must be a floating tensor with values in [0, 1], got dtype {images.dtype}; "
            "convert uint8 with images.float().div(255)"
        )


def uniform(
    shape: tuple[int, ...], low: float, high: float, generator: torch.Generator, like: Tensor
) -> Tensor:
    """Uniform samples in ``[low, high)`` of ``shape``, on ``like``'s device and dtype."""
    u = torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)
    return u * (high - low) + low


def bernoulli(n: int, p: float, generator: torch.Generator, like: Tensor) -> Tensor:
    """``(n,)`` bool tensor, each True with probability ``p``."""
    return torch.rand((n,), generator=generator, device=like.device) < p

# --------------------------------------------------------------------------- geometric helpers


def _affine_grid(theta: Tensor, height: int, width: int) -> Tensor:
    """``F.affine_grid(theta, [B, 1, H, W], align_corners=False)``, built by broadcasting.

    Same values (checked in the tests); on CPU ``F.affine_grid``'s batched matmul over a
    ``(B, H*W, 3)`` base grid costs more than the ``grid_sample`` that follows, this is
    ~20x cheaper.

    Args:
        theta: ``(B, 2, 3)`` map from output to input normalised coordinates.
        height, width: output size.

    Returns:
        ``(B, H, W, 2)`` sampling grid (a non-contiguous view; ``grid_sample`` accepts it).
    """
    xs = (torch.arange(width, dtype=theta.dtype, device=theta.device) * 2 + 1) / width - 1
    ys = (torch.arange(height, dtype=theta.dtype, device=theta.device) * 2 + 1) / height - 1
    t = theta.unsqueeze(-1).unsqueeze(-1)  # (B, 2, 3, 1, 1)
    grid = t[:, :, 0] * xs.view(1, 1, 1, width) + (t[:, :, 1] * ys.view(1, 1, height, 1) + t[:, :, 2])
    return grid.permute(0, 2, 3, 1)


def affine_warp(
    images: Tensor,
    angle: Tensor,
    scale: Tensor,
    translate: Tensor,
    padding_mode: str = "zeros",
) -> Tensor:
    """Rotate, scale and translate each image about its centre, bilinearly.

    One affine grid (as ``F.affine_grid``) + ``F.grid_sample`` (``align_corners=False``) for
    the batch.

    Args:
        images: ``(B, C, H, W)`` floating tensor.
        angle: ``(B,)`` rotation in degrees, counter-clockwise on screen (as
            ``torchvision.transforms.v2.functional.rotate``; ``v2.functional.affine`` uses the
            opposite sign).
        scale: ``(B,)`` zoom factor (> 1 enlarges the content).
        translate: ``(B, 2)`` shift ``(dx, dy)`` in pixels, x to the right, y down.
        padding_mode: ``grid_sample`` padding for pixels that come from outside the image:
            ``"zeros"`` (black, like torchvision's ``fill=0``), ``"border"`` or ``"reflection"``.

    Returns:
        ``(B, C, H, W)`` warped images, same dtype and device.
    """
    check_images(images)
    b, _, h, w = images.shape
    rad = torch.deg2rad(angle.to(images.dtype))
    cos, sin = torch.cos(rad), torch.sin(rad)
    inv_s = 1.0 / scale.to(images.dtype)
    # Inverse map in centred pixel coordinates (output -> input), counter-clockwise rotation
    # on a y-down screen: in = S^-1 R(angle)^-1 (out - t) with R = [[cos, sin], [-sin, cos]].
    a00, a01 = cos * inv_s, -sin * inv_s
    a10, a11 = sin * inv_s, cos * inv_s
    tx, ty = translate[:, 0].to(images.dtype), translate[:, 1].to(images.dtype)
    # Normalised coordinates x_n = x_p / (W/2), y_n = y_p / (H/2).
    theta = torch.stack(
        [
            torch.stack([a00, a01 * (h / w), -(a00 * tx + a01 * ty) * (2.0 / w)], dim=1),
            torch.stack([a10 * (w / h), a11, -(a10 * tx + a11 * ty) * (2.0 / h)], dim=1),
        ],
        dim=1,
    )
    grid = _affine_grid(theta, h, w)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def resized_crop(
    images: Tensor,
    boxes: Tensor,
    flip: Tensor | None = None,
    padding_mode: str = "border",
) -> Tensor:
    """Crop a per-sample box out of each image and resize it to the full image size.

    Bilinear, via one affine grid + ``F.grid_sample`` (``align_corners=False``); boxes
    may have fractional coordinates. When enlarging, this equals
    ``torchvision.transforms.v2.functional.resized_crop`` (bilinear) except within half an
    output pixel of the box edge, where this samples the real neighbouring pixels instead of
    repeating the box's edge.

    Args:
        images: ``(B, C, H, W)`` floating tensor.
        boxes: ``(B, 4)`` as ``(top, left, height, width)`` in pixels.
        flip: optional ``(B,)`` bool; True mirrors that sample left-right.
        padding_mode: ``grid_sample`` padding for samples outside the image.

    Returns:
        ``(B, C, H, W)`` crops, same dtype and device.
    """
    check_images(images)
    b, _, h, w = images.shape
    boxes = boxes.to(images.dtype)
    top, left, bh, bw = boxes.unbind(dim=1)
    sx, sy = bw / w, bh / h
    cx = (2.0 * left + bw) / w - 1.0
    cy = (2.0 * top + bh) / h - 1.0
    if flip is not None:
        sx = torch.where(flip, -sx, sx)
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, cx], dim=1), torch.stack([zero, sy, cy], dim=1)], dim=1)
    grid = _affine_grid(theta, h, w)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


# --------------------------------------------------------------------------- photometric helpers


def _gray(images: Tensor) -> Tensor:
    """``(B, 3, H, W)`` -> ``(B, 1, H, W)`` luma (torchvision's weights)."""
    r, g, b = images.unbind(dim=1)
    wr, wg, wb = _GRAY_WEIGHTS
    return (r * wr + g * wg + b * wb).unsqueeze(1)


def rgb_to_grayscale(images: Tensor) -> Tensor:
    """Replace each RGB image by its luma, repeated on 3 channels: ``(B, 3, H, W)``."""
    return _gray(images).expand_as(images)


def _hue_matrices(hue: Tensor) -> Tensor:
    """``(B,)`` hue shifts in turns -> ``(B, 3, 3)`` RGB matrices rotating the YIQ chroma."""
    dtype, device = hue.dtype, hue.device
    to_yiq = torch.tensor(_RGB_TO_YIQ, dtype=dtype, device=device)
    to_rgb = torch.tensor(_YIQ_TO_RGB, dtype=dtype, device=device)
    # Negative chroma angle: a positive shift moves red towards yellow, as in HSV.
    phi = -2.0 * math.pi * hue
    cos, sin = torch.cos(phi), torch.sin(phi)
    one, zero = torch.ones_like(hue), torch.zeros_like(hue)
    rot = torch.stack(
        [
            torch.stack([one, zero, zero], dim=1),
            torch.stack([zero, cos, -sin], dim=1),
            torch.stack([zero, sin, cos], dim=1),
        ],
        dim=1,
    )
    return to_rgb @ rot @ to_yiq


def color_jitter(
    images: Tensor,
    brightness: Tensor,
    contrast: Tensor,
    saturation: Tensor | None = None,
    hue: Tensor | None = None,
    order: Tensor | None = None,
) -> Tensor:
    """Per-sample brightness, contrast, saturation and hue changes, in per-sample order.

    Brightness, contrast and saturation are exactly torchvision's ``adjust_brightness``,
    ``adjust_contrast`` and ``adjust_saturation`` (blend with black, with the mean luma, with
    the luma image; clamped to ``[0, 1]`` after each step). Hue is a rotation of the chroma
    plane in YIQ space by ``hue`` turns, clamped -- a linear stand-in for torchvision's HSV
    ``adjust_hue`` (same direction, close for small shifts), chosen because it is a 3x3 matrix
    per sample and ~20x cheaper on a batch; it keeps luma.  Every step is a per-sample C x C
    matrix (plus contrast's bias), so grey and RGB images take the same path.

    Args:
        images: ``(B, C, H, W)``, values in ``[0, 1]``.
        brightness, contrast, saturation: ``(B,)`` factors; 1 leaves the image unchanged.
        hue: ``(B,)`` shift in turns, in ``[-0.5, 0.5]``; 0 leaves the image unchanged.
        order: ``(B, K)`` long, each row a permutation of the op indices
            (0 brightness, 1 contrast, 2 saturation, 3 hue; K = 4 for RGB, 2 for grey).
            Default: that fixed order.
        For ``C = 1`` only brightness and contrast apply; ``saturation`` and ``hue`` must be
        None.

    Returns:
        ``(B, C, H, W)`` in ``[0, 1]``.
    """
    check_images(images)
    b, c, h, w = images.shape
    n_ops = 2 if c == 1 else 4
    if order is not None and tuple(order.shape) != (b, n_ops):
        raise ValueError(
            f"order must have shape (B, {n_ops}) = ({b}, {n_ops}) for C={c}, got {tuple(order.shape)}"
        )
    if c == 1 and (saturation is not None or hue is not None):
        raise ValueError("saturation and hue need RGB images (C=3); got C=1")
    if order is None:
        order = torch.arange(n_ops, device=images.device).expand(b, n_ops)
    dtype = images.dtype
    eye = torch.eye(c, dtype=dtype, device=images.device)
    weights = torch.tensor(_GRAY_WEIGHTS if c == 3 else (1.0,), dtype=dtype, device=images.device)
    fb, fc = (f.to(dtype).view(b, 1, 1) for f in (brightness, contrast))
    mats = [fb * eye, fc * eye]  # (B, C, C) each: the linear map of every op for every sample
    if c == 3:
        fs = (torch.ones_like(brightness) if saturation is None else saturation).to(dtype).view(b, 1, 1)
        hue = torch.zeros_like(brightness) if hue is None else hue
        mats += [fs * eye + (1.0 - fs) * weights.expand(3, 3), _hue_matrices(hue.to(dtype))]
    mats = torch.stack(mats, dim=1)  # (B, n_ops, C, C); contrast's bias comes later
    rows = torch.arange(b, device=images.device)
    x = images.reshape(b, c, h * w)
    for slot in range(n_ops):
        op = order[:, slot]
        mean_luma = x.mean(dim=2) @ weights
        bias = torch.where(op == _CONTRAST, (1.0 - fc.view(b)) * mean_luma, torch.zeros_like(mean_luma))
        x = torch.bmm(mats[rows, op], x).add_(bias.view(b, 1, 1)).clamp_(0.0, 1.0)
    return x.view(b, c, h, w)


def gaussian_kernel_size(height: int, width: int) -> int:
    """Blur kernel size for an image: ~10% of its smaller side, odd, at least 3 (SimCLR)."""
    return max(3, 2 * (int(0.1 * min(height, width)) // 2) + 1)


def gaussian_blur(images: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Separable Gaussian blur with a per-sample ``sigma``; reflect padding.

    Same kernel and padding as ``torchvision.transforms.v2.functional.gaussian_blur`` with
    ``kernel_size=[k, k]``, ``sigma=[s, s]``. A sample with ``sigma <= 0`` is left unchanged.
    The taps are applied as shifted multiply-adds, rows then columns (measured faster on CPU
    than a grouped ``conv2d`` with per-sample kernels).

    Args:
        images: ``(B, C, H, W)``.
        sigma: ``(B,)`` standard deviation in pixels.
        kernel_size: odd kernel width and height, smaller than 2x the image side.

    Returns:
        ``(B, C, H, W)`` blurred images.
    """
    check_images(images)
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
    b, _, h, w = images.shape
    radius = kernel_size // 2
    if radius >= min(h, w):
        raise ValueError(
            f"kernel_size {kernel_size} too large for {h}x{w} images; use at most {2 * min(h, w) - 1}"
        )
    if radius == 0:
        return images
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    sig = sigma.to(images.dtype).view(b, 1)
    blur = sig > 0
    kernel = torch.softmax(-0.5 * (offsets / sig.clamp_min(1e-6)) ** 2, dim=1)
    delta = (offsets == 0).to(images.dtype).expand(b, kernel_size)
    kernel = torch.where(blur, kernel, delta).view(b, kernel_size, 1, 1, 1)

    # The kernel is symmetric: centre tap plus (left + right) * tap, in place.
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    rows = padded[..., radius : radius + w] * kernel[:, radius]
    for d in range(1, radius + 1):
        pair = padded[..., radius - d : radius - d + w] + padded[..., radius + d : radius + d + w]
        rows.addcmul_(pair, kernel[:, radius + d])
    out = rows[:, :, radius : radius + h] * kernel[:, radius]
    for d in range(1, radius + 1):
        pair = rows[:, :, radius - d : radius - d + h] + rows[:, :, radius + d : radius + d + h]
        out.addcmul_(pair, kernel[:, radius + d])
    return out


# --------------------------------------------------------------------------- parameter sampling


def sample_crop_boxes(
    batch: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
    like: Tensor,
    attempts: int = 10,
) -> Tensor:
    """Draw ``(B, 4)`` crop boxes ``(top, left, height, width)`` as RandomResizedCrop does.

    For each sample, ``attempts`` candidates are drawn at once (area fraction uniform in
    ``scale``, log aspect ratio uniform in ``log(ratio)``); the first that fits is kept, else
    the central crop of the largest in-range aspect ratio (torchvision's fallback). Unlike
    torchvision, sizes and positions are continuous (sub-pixel), not rounded.
    """
    area = height * width
    target = area * uniform((batch, attempts), scale[0], scale[1], generator, like)
    log_r = uniform((batch, attempts), math.log(ratio[0]), math.log(ratio[1]), generator, like)
    aspect = torch.exp(log_r)
    cw = torch.sqrt(target * aspect)
    ch = torch.sqrt(target / aspect)
    fits = (cw <= width) & (ch <= height)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)
    cw = cw.gather(1, first).squeeze(1)
    ch = ch.gather(1, first).squeeze(1)
    # torchvision's fallback: whole image, cut to the nearest allowed aspect ratio.
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = float(width), width / ratio[0]
    elif in_ratio > ratio[1]:
        fw, fh = height * ratio[1], float(height)
    else:
        fw, fh = float(width), float(height)
    any_fits = fits.any(dim=1)
    cw = torch.where(any_fits, cw, torch.full_like(cw, fw))
    ch = torch.where(any_fits, ch, torch.full_like(ch, fh))
    pos = torch.rand((batch, 2), generator=generator, device=like.device, dtype=like.dtype)
    top = pos[:, 0] * (height - ch)
    left = pos[:, 1] * (width - cw)
    return torch.stack([top, left, ch, cw], dim=1)
