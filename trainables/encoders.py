"""Encoders: one network with shared weights maps every view to an embedding (B, D)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """A small CNN for 16-32 px images: three conv-BN-ReLU blocks (width w, 2w, 4w), two
    2x2 max-pools, global average pooling, a linear head.  (B, C, H, W) -> (B, D).

    With w=32 it costs about 15 MFLOP per 28x28 image forward.
    """

    def __init__(self, in_channels: int, embedding_dim: int, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn(in_channels, width),
            nn.MaxPool2d(2),
            _conv_bn(width, 2 * width),
            nn.MaxPool2d(2),
            _conv_bn(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, embedding_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016): two 3x3 convs and an identity/projection skip."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18: 3x3 stem, no max-pool, stages of 64-128-256-512 channels with
    two basic blocks each, global average pooling, a linear head.  (B, C, H, W) -> (B, D)."""

    def __init__(self, in_channels: int, embedding_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn(in_channels, 64)]
        c_in = 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(512, embedding_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


# The registry, one builder per name in ``dimensions.ENCODERS``.
ENCODER_BUILDERS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "small_cnn": SmallCNN,
    "resnet18": lambda in_channels, embedding_dim, width: ResNet18(in_channels, embedding_dim),
}


def build_encoder(name: str, in_channels: int, embedding_dim: int, width: int = 32) -> nn.Module:
    """The registered encoder ``name`` for images of ``in_channels`` channels
    (``width`` is the small CNN's base channel count)."""
    if name not in ENCODER_BUILDERS:
        raise ValueError(f"encoder={name!r} is not valid; choose one of "
                         f"{', '.join(ENCODER_BUILDERS)}")
    return ENCODER_BUILDERS[name](in_channels, embedding_dim, width)


class ImageEmbedder(nn.Module):
    """A trained encoder as a model of its own: images as the dataset stores them, uint8
    (N, C, H, W), to L2-normalised embeddings (N, D) float32, exactly as the trial embedded
    them (scaled to [0, 1], normalised per channel with the training split's statistics).
    This is what the study logs to MLflow's Model Registry."""

    def __init__(self, encoder: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: Tensor) -> Tensor:
        x = (images.float() / 255 - self.mean) / self.std
        return nn.functional.normalize(self.encoder(x).float(), dim=1)
