"""Building blocks shared by the FOMM and TPSMM baselines.

Parameter names (``conv``, ``norm``, ``down_blocks``, ``up_blocks``, ``encoder``, ``decoder``,
``weight`` of the anti-alias filter) follow the official checkpoints so that their state dicts
load strictly. FOMM normalises with BatchNorm, TPSMM with affine InstanceNorm; both are chosen
by the ``norm`` argument.

Coordinates are normalised to [-1, 1] with the first and last pixel *centres* at -1 and 1
(:func:`coordinate_grid`), as both official code bases do, while warping goes through
``grid_sample`` whose ``align_corners`` flag each method sets as its official code does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def coordinate_grid(height: int, width: int, like: torch.Tensor | None = None) -> torch.Tensor:
    """(H, W, 2) grid of (x, y) in [-1, 1]; x varies along the width."""
    kwargs = {"dtype": like.dtype, "device": like.device} if like is not None else {}
    xs = torch.arange(width, **kwargs).float() / max(width - 1, 1) * 2 - 1
    ys = torch.arange(height, **kwargs).float() / max(height - 1, 1) * 2 - 1
    if like is not None:
        xs, ys = xs.to(like.dtype), ys.to(like.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1)


def keypoint_gaussians(points: torch.Tensor, size: tuple[int, int],
                       variance: float) -> torch.Tensor:
    """Gaussian blobs: points (..., 2) in [-1, 1] -> (..., H, W), peak 1, isotropic variance."""
    grid = coordinate_grid(*size, like=points)
    diff = grid.view(*(1,) * (points.dim() - 1), *grid.shape) - points[..., None, None, :]
    return torch.exp(-0.5 * diff.pow(2).sum(-1) / variance)


def warp(image: torch.Tensor, grid: torch.Tensor, align_corners: bool, **kwargs) -> torch.Tensor:
    """``grid_sample`` that resizes the (B, h, w, 2) grid bilinearly to the image size first."""
    height, width = image.shape[-2:]
    if grid.shape[1:3] != (height, width):
        grid = F.interpolate(grid.permute(0, 3, 1, 2), size=(height, width), mode="bilinear",
                             align_corners=align_corners).permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, align_corners=align_corners, **kwargs)


def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W); anti-aliased when shrinking (like the demos' skimage)."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    shrink = size[0] < images.shape[-2] or size[1] < images.shape[-1]
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    raise ValueError(f"unknown norm {kind!r}")


class SameBlock2d(nn.Module):
    """conv -> norm -> relu at constant resolution."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, norm: str = "batch") -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
        self.norm = _norm(norm, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class DownBlock2d(SameBlock2d):
    """SameBlock2d followed by 2x2 average pooling."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(super().forward(x), 2)


class UpBlock2d(SameBlock2d):
    """Nearest 2x upsampling followed by a SameBlock2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ResBlock2d(nn.Module):
    """Pre-activation residual block: x + conv2(relu(norm2(conv1(relu(norm1(x))))))."""

    def __init__(self, channels: int, kernel: int = 3, norm: str = "batch") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)
        self.norm1 = _norm(norm, channels)
        self.norm2 = _norm(norm, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        return x + self.conv2(F.relu(self.norm2(out)))


def _width(expansion: int, level: int, cap: int) -> int:
    return min(cap, expansion * 2**level)


class Encoder(nn.Module):
    def __init__(self, expansion: int, cin: int, blocks: int, cap: int, norm: str) -> None:
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock2d(cin if i == 0 else _width(expansion, i, cap), _width(expansion, i + 1, cap),
                        norm=norm)
            for i in range(blocks)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [x]
        for block in self.down_blocks:
            features.append(block(features[-1]))
        return features


class Decoder(nn.Module):
    def __init__(self, expansion: int, cin: int, blocks: int, cap: int, norm: str) -> None:
        super().__init__()
        levels = list(reversed(range(blocks)))
        self.up_blocks = nn.ModuleList(
            UpBlock2d((1 if i == blocks - 1 else 2) * _width(expansion, i + 1, cap),
                      _width(expansion, i, cap), norm=norm)
            for i in levels
        )
        #: channels of every decoder output, coarsest first (each is up-block output + skip).
        self.out_channels = [2 * _width(expansion, i, cap) for i in levels[:-1]]
        self.out_channels.append(expansion + cin)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        features = list(features)
        out = features.pop()
        outputs = []
        for block in self.up_blocks:
            out = torch.cat([block(out), features.pop()], dim=1)
            outputs.append(out)
        return outputs


class Hourglass(nn.Module):
    """U-Net: the input needs a side divisible by ``2 ** blocks``. Returns every decoder level."""

    def __init__(self, expansion: int, cin: int, blocks: int, cap: int, norm: str) -> None:
        super().__init__()
        self.encoder = Encoder(expansion, cin, blocks, cap, norm)
        self.decoder = Decoder(expansion, cin, blocks, cap, norm)
        self.out_channels = self.decoder.out_channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.decoder(self.encoder(x))


class AntiAliasDownsample(nn.Module):
    """Gaussian blur then subsampling by ``1/scale`` (an integer).

    sigma = (1/scale - 1) / 2 and kernel size 2*round(4 sigma) + 1, as the official code; the
    normalised kernel is stored as the buffer ``weight`` (it is part of the checkpoints).
    """

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.step = round(1 / scale)
        sigma = (1 / scale - 1) / 2
        size = 2 * round(sigma * 4) + 1
        self.pad = (size // 2, size // 2 - (1 if size % 2 == 0 else 0))
        axis = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
        profile = torch.exp(-(axis**2) / (2 * sigma**2)) if sigma > 0 else (axis == 0).float()
        kernel = profile[:, None] * profile[None, :]
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.expand(channels, 1, size, size).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1:
            return x
        a, b = self.pad
        out = F.conv2d(F.pad(x, (a, b, a, b)), self.weight, groups=x.shape[1])
        return out[:, :, :: self.step, :: self.step]


class ImagePyramid(nn.Module):
    """Anti-aliased copies of an image at several scales (for multi-scale losses)."""

    def __init__(self, scales: list[float], channels: int = 3) -> None:
        super().__init__()
        self.scales = list(scales)
        self.downs = nn.ModuleList(AntiAliasDownsample(channels, s) for s in self.scales)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [down(x) for down in self.downs]
