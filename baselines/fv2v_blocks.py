"""Building blocks only face-vid2vid has (unofficial implementation, SPADE generator): the
head-pose estimator's ResNet bottleneck and the SPADE decoder's blocks; the blocks it shares
with FOMM and TPSMM are in :mod:`thbench.baselines.modules`.

Attribute names (``conv``, ``norm``, ``mlp_shared.0``, ...) are the ones of the official
checkpoints' state dicts, so that those load strictly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
