"""Building blocks of the face-vid2vid baseline (unofficial implementation, SPADE generator).

Attribute names (``conv``, ``norm``, ``pool``-less down blocks, ``mlp_shared.0``, ...) are the
ones of the official checkpoints' state dicts, so that those load strictly. BatchNorm stands in
for the synchronized BatchNorm of the original training code: both keep the same state
(``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``).

Coordinates are normalised to [-1, 1] with the first and last sample *centres* at -1 and 1, the
convention of the original code, while every ``grid_sample`` keeps PyTorch's default
``align_corners=False`` as today's official code runs it. The two conventions differ by half a
voxel; reproducing that mismatch is part of behaving like the released model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def coordinate_grid_2d(height: int, width: int, like: torch.Tensor | None = None) -> torch.Tensor:
    """(H, W, 2) grid of (x, y) in [-1, 1]; x varies along the width."""
    xs = _axis(width, like)
    ys = _axis(height, like)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1)


def coordinate_grid_3d(depth: int, height: int, width: int,
                       like: torch.Tensor | None = None) -> torch.Tensor:
    """(D, H, W, 3) grid of (x, y, z) in [-1, 1]; x along the width, z along the depth."""
    grid_z, grid_y, grid_x = torch.meshgrid(
        _axis(depth, like), _axis(height, like), _axis(width, like), indexing="ij"
    )
    return torch.stack([grid_x, grid_y, grid_z], dim=-1)


def _axis(size: int, like: torch.Tensor | None) -> torch.Tensor:
    kwargs = {"device": like.device} if like is not None else {}
    values = torch.arange(size, dtype=torch.float32, **kwargs) / max(size - 1, 1) * 2 - 1
    return values.to(like.dtype) if like is not None and like.is_floating_point() else values


def keypoint_gaussians_3d(points: torch.Tensor, size: tuple[int, int, int],
                          variance: float) -> torch.Tensor:
    """Gaussian blobs: points (B, K, 3) in [-1, 1] -> (B, K, D, H, W), peak 1."""
    grid = coordinate_grid_3d(*size, like=points)
    diff = grid[None, None] - points[:, :, None, None, None, :]
    return torch.exp(-0.5 * diff.pow(2).sum(-1) / variance)


class AntiAliasDownsample(nn.Module):
    """Gaussian blur then strided subsampling by an integer factor ``1 / scale``.

    sigma = (1/scale - 1) / 2 and a kernel of 2 * round(4 sigma) + 1 taps, kept as the buffer
    ``weight`` (channels, 1, k, k) because the official checkpoints store it.
    """

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.step = int(round(1 / scale))
        sigma = (1 / scale - 1) / 2
        size = 2 * round(sigma * 4) + 1
        self.pad_before = size // 2
        self.pad_after = self.pad_before - 1 if size % 2 == 0 else self.pad_before
        taps = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
        if sigma > 0:
            profile = torch.exp(-(taps**2) / (2 * sigma**2))
        else:
            profile = torch.ones(1)
        kernel = profile[:, None] * profile[None, :]
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.expand(channels, 1, size, size).clone())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.scale == 1:
            return image
        pad = (self.pad_before, self.pad_after, self.pad_before, self.pad_after)
        out = F.conv2d(F.pad(image, pad), self.weight, groups=image.shape[1])
        return out[:, :, :: self.step, :: self.step]


class SameBlock2d(nn.Module):
    """conv -> BatchNorm -> ReLU (or LeakyReLU with PyTorch's default slope 0.01)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, lrelu: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2)
        self.norm = nn.BatchNorm2d(out_ch)
        self.lrelu = lrelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm(self.conv(x))
        return F.leaky_relu(out) if self.lrelu else F.relu(out)


class DownBlock2d(nn.Module):
    """conv -> BatchNorm -> ReLU -> 2x2 average pooling."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.relu(self.norm(self.conv(x))), 2)


class DownBlock3d(nn.Module):
    """3D conv -> BatchNorm -> ReLU -> average pooling over height and width only."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_ch, out_ch, 3, padding=1)
        self.norm = nn.BatchNorm3d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool3d(F.relu(self.norm(self.conv(x))), (1, 2, 2))


class UpBlock3d(nn.Module):
    """Nearest upsampling of height and width (not depth) -> 3D conv -> BatchNorm -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_ch, out_ch, 3, padding=1)
        self.norm = nn.BatchNorm3d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(x, scale_factor=(1, 2, 2), mode="nearest")
        return F.relu(self.norm(self.conv(out)))


class ResBlock3d(nn.Module):
    """Pre-activation residual block: x + conv2(relu(norm2(conv1(relu(norm1(x))))))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)
        self.norm1 = nn.BatchNorm3d(channels)
        self.norm2 = nn.BatchNorm3d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        return x + self.conv2(F.relu(self.norm2(out)))


class ResBottleneck(nn.Module):
    """ResNet bottleneck (1x1, 3x3 with stride, 1x1, width/4 inside); a strided block projects
    the shortcut with ``skip`` + ``norm4``."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        inner = channels // 4
        self.conv1 = nn.Conv2d(channels, inner, 1)
        self.conv2 = nn.Conv2d(inner, inner, 3, padding=1, stride=stride)
        self.conv3 = nn.Conv2d(inner, channels, 1)
        self.norm1 = nn.BatchNorm2d(inner)
        self.norm2 = nn.BatchNorm2d(inner)
        self.norm3 = nn.BatchNorm2d(channels)
        self.stride = stride
        if stride != 1:
            self.skip = nn.Conv2d(channels, channels, 1, stride=stride)
            self.norm4 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = F.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        shortcut = self.norm4(self.skip(x)) if self.stride != 1 else x
        return F.relu(out + shortcut)


class Encoder3d(nn.Module):
    def __init__(self, expansion: int, in_ch: int, num_blocks: int, max_ch: int) -> None:
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock3d(in_ch if i == 0 else min(max_ch, expansion * 2**i),
                        min(max_ch, expansion * 2 ** (i + 1)))
            for i in range(num_blocks)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder3d(nn.Module):
    """U-Net decoder; the output concatenates the hourglass input, then conv + norm + ReLU."""

    def __init__(self, expansion: int, in_ch: int, num_blocks: int, max_ch: int) -> None:
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            width = min(max_ch, expansion * 2 ** (i + 1))
            blocks.append(UpBlock3d(width if i == num_blocks - 1 else 2 * width,
                                    min(max_ch, expansion * 2**i)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_channels = expansion + in_ch
        self.conv = nn.Conv3d(self.out_channels, self.out_channels, 3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_channels)

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        skips = list(skips)
        out = skips.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return F.relu(self.norm(self.conv(out)))


class Hourglass3d(nn.Module):
    def __init__(self, expansion: int, in_ch: int, num_blocks: int, max_ch: int) -> None:
        super().__init__()
        self.encoder = Encoder3d(expansion, in_ch, num_blocks, max_ch)
        self.decoder = Decoder3d(expansion, in_ch, num_blocks, max_ch)
        self.out_channels = self.decoder.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: InstanceNorm (no affine) modulated by (1 + gamma, beta)
    predicted from the (nearest-resized) conditioning map."""

    def __init__(self, channels: int, label_ch: int, hidden: int) -> None:
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_ch, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = F.instance_norm(x)
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        hidden = self.mlp_shared(segmap)
        return normalized * (1 + self.mlp_gamma(hidden)) + self.mlp_beta(hidden)


class SPADEResBlock(nn.Module):
    """SPADE residual block with spectrally normalised convolutions (``weight_orig``, ``weight_u``,
    ``weight_v`` in the state dict) and a learned shortcut when the width changes."""

    def __init__(self, in_ch: int, out_ch: int, label_ch: int, hidden: int) -> None:
        super().__init__()
        sn = nn.utils.spectral_norm
        middle = min(in_ch, out_ch)
        self.learned_shortcut = in_ch != out_ch
        self.conv_0 = sn(nn.Conv2d(in_ch, middle, 3, padding=1))
        self.conv_1 = sn(nn.Conv2d(middle, out_ch, 3, padding=1))
        if self.learned_shortcut:
            self.conv_s = sn(nn.Conv2d(in_ch, out_ch, 1, bias=False))
        self.norm_0 = SPADE(in_ch, label_ch, hidden)
        self.norm_1 = SPADE(middle, label_ch, hidden)
        if self.learned_shortcut:
            self.norm_s = SPADE(in_ch, label_ch, hidden)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, segmap)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, segmap), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, segmap), 0.2))
        return shortcut + dx
