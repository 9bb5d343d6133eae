"""Building blocks of the FOMM, TPSMM and face-vid2vid baselines, in 2D and (``dims=3``) 3D.

Parameter names (``conv``, ``norm``, ``down_blocks``, ``up_blocks``, ``encoder``, ``decoder``,
``weight`` of the anti-alias filter) follow the official checkpoints so that their state dicts
load strictly. FOMM and face-vid2vid normalise with BatchNorm (face-vid2vid's synchronized
BatchNorm keeps the same state), TPSMM with affine InstanceNorm; ``norm`` chooses.

The 3D blocks of face-vid2vid pool and upsample height and width only, never depth.
Coordinates follow :mod:`thbench.core.grids`, while warping goes through ``grid_sample`` whose
``align_corners`` flag each method sets as its official code does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from thbench.core.resampling import antialias_downsample, antialias_kernel


def warp(image: torch.Tensor, grid: torch.Tensor, align_corners: bool, **kwargs) -> torch.Tensor:
    """``grid_sample`` that resizes the (B, h, w, 2) grid bilinearly to the image size first."""
    height, width = image.shape[-2:]
    if grid.shape[1:3] != (height, width):
        grid = F.interpolate(grid.permute(0, 3, 1, 2), size=(height, width), mode="bilinear",
                             align_corners=align_corners).permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, align_corners=align_corners, **kwargs)


def _conv(dims: int, cin: int, cout: int, kernel: int) -> nn.Module:
    return (nn.Conv2d if dims == 2 else nn.Conv3d)(cin, cout, kernel, padding=kernel // 2)


def _norm(kind: str, channels: int, dims: int = 2) -> nn.Module:
    if kind == "batch":
        return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d)(channels, affine=True)
    if kind == "instance" and dims == 2:
        return nn.InstanceNorm2d(channels, affine=True)
    raise ValueError(f"unknown norm {kind!r} for {dims}D blocks")


class SameBlock(nn.Module):
    """conv -> norm -> ReLU (or LeakyReLU with PyTorch's default slope 0.01) at constant
    resolution."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, norm: str = "batch",
                 dims: int = 2, lrelu: bool = False) -> None:
        super().__init__()
        self.conv = _conv(dims, cin, cout, kernel)
        self.norm = _norm(norm, cout, dims)
        self.dims, self.lrelu = dims, lrelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm(self.conv(x))
        return F.leaky_relu(out) if self.lrelu else F.relu(out)


class DownBlock(SameBlock):
    """SameBlock followed by 2x2 average pooling (of height and width)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dims == 2:
            return F.avg_pool2d(super().forward(x), 2)
        return F.avg_pool3d(super().forward(x), (1, 2, 2))


class UpBlock(SameBlock):
    """Nearest 2x upsampling (of height and width) followed by a SameBlock."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = 2.0 if self.dims == 2 else (1, 2, 2)
        return super().forward(F.interpolate(x, scale_factor=scale, mode="nearest"))


class ResBlock(nn.Module):
    """Pre-activation residual block: x + conv2(relu(norm2(conv1(relu(norm1(x))))))."""

    def __init__(self, channels: int, kernel: int = 3, norm: str = "batch",
                 dims: int = 2) -> None:
        super().__init__()
        self.conv1 = _conv(dims, channels, channels, kernel)
        self.conv2 = _conv(dims, channels, channels, kernel)
        self.norm1 = _norm(norm, channels, dims)
        self.norm2 = _norm(norm, channels, dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        return x + self.conv2(F.relu(self.norm2(out)))


def _width(expansion: int, level: int, cap: int) -> int:
    return min(cap, expansion * 2**level)


class Encoder(nn.Module):
    def __init__(self, expansion: int, cin: int, blocks: int, cap: int, norm: str,
                 dims: int = 2) -> None:
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock(cin if i == 0 else _width(expansion, i, cap), _width(expansion, i + 1, cap),
                      norm=norm, dims=dims)
            for i in range(blocks)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [x]
        for block in self.down_blocks:
            features.append(block(features[-1]))
        return features


class Decoder(nn.Module):
    """U-Net decoder. ``out_block``: one more conv -> norm -> ReLU (``conv``, ``norm``) on the
    finest output, as face-vid2vid's 3D hourglass has."""

    def __init__(self, expansion: int, cin: int, blocks: int, cap: int, norm: str,
                 dims: int = 2, out_block: bool = False) -> None:
        super().__init__()
        levels = list(reversed(range(blocks)))
        self.up_blocks = nn.ModuleList(
            UpBlock((1 if i == blocks - 1 else 2) * _width(expansion, i + 1, cap),
                    _width(expansion, i, cap), norm=norm, dims=dims)
            for i in levels
        )
        #: channels of every decoder output, coarsest first (each is up-block output + skip).
        self.out_channels = [2 * _width(expansion, i, cap) for i in levels[:-1]]
        self.out_channels.append(expansion + cin)
        self.out_block = out_block
        if out_block:
            width = self.out_channels[-1]
            self.conv = _conv(dims, width, width, 3)
            self.norm = _norm(norm, width, dims)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        features = list(features)
        out = features.pop()
        outputs = []
        for block in self.up_blocks:
            out = torch.cat([block(out), features.pop()], dim=1)
            outputs.append(out)
        if self.out_block:
            outputs[-1] = F.relu(self.norm(self.conv(outputs[-1])))
        return outputs


class Hourglass(nn.Module):
    """U-Net: the input needs a side divisible by ``2 ** blocks``. Returns every decoder level."""

    def __init__(self, expansion: int, cin: int, blocks: int, cap: int, norm: str,
                 dims: int = 2, out_block: bool = False) -> None:
        super().__init__()
        self.encoder = Encoder(expansion, cin, blocks, cap, norm, dims)
        self.decoder = Decoder(expansion, cin, blocks, cap, norm, dims, out_block)
        self.out_channels = self.decoder.out_channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.decoder(self.encoder(x))


class AntiAliasDownsample(nn.Module):
    """Gaussian blur then subsampling by ``1/scale`` (an integer), see
    :func:`thbench.core.resampling.antialias_kernel`; the kernel is the buffer ``weight``
    (channels, 1, k, k), as the official checkpoints store it."""

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.step = round(1 / scale)
        kernel = antialias_kernel(scale)
        self.register_buffer("weight", kernel.expand(channels, 1, *kernel.shape).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1:
            return x
        return antialias_downsample(x, self.weight, self.step)


class ImagePyramid(nn.Module):
    """Anti-aliased copies of an image at several scales (for multi-scale losses)."""

    def __init__(self, scales: list[float], channels: int = 3) -> None:
        super().__init__()
        self.scales = list(scales)
        self.downs = nn.ModuleList(AntiAliasDownsample(channels, s) for s in self.scales)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [down(x) for down in self.downs]
