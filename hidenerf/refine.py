"""Refine network: low-resolution feature image -> RGB at the output resolution, in [0, 1].

feature (B, C_f, h, w) -> image (B, 3, h * 2^k, w * 2^k), k = len(channels).

Each stage: bilinear x2 upsampling, two 3x3 convs (LeakyReLU 0.2) with a 1x1 skip (residual).
The output is ``sigmoid(logit(up(rgb_low)) + conv(x))`` where rgb_low is the first three
feature channels (the volume-rendered low-res RGB, in (0, 1)): the network starts near a plain
upsampling of the rendered colour and learns the detail as a residual in logit space.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        y = F.leaky_relu(self.conv1(x), 0.2)
        y = F.leaky_relu(self.conv2(y), 0.2)
        return y + self.skip(x)


class RefineNet(nn.Module):
    """Feature image (B, C_f, h, w) -> RGB (B, 3, h 2^k, w 2^k) in [0, 1]."""

    def __init__(self, feature_channels: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.stem = nn.Conv2d(feature_channels, channels[0], 3, 1, 1)
        widths = (channels[0], *channels)
        self.blocks = nn.ModuleList(_UpBlock(a, b) for a, b in zip(widths[:-1], widths[1:],
                                                                    strict=True))
        self.to_rgb = nn.Conv2d(channels[-1], 3, 3, 1, 1)
        nn.init.normal_(self.to_rgb.weight, std=1e-2)
        nn.init.zeros_(self.to_rgb.bias)

    def forward(self, feature: Tensor) -> Tensor:
        x = F.leaky_relu(self.stem(feature), 0.2)
        for block in self.blocks:
            x = block(x)
        size = x.shape[-2:]
        rgb_low = feature[:, :3].clamp(1e-4, 1 - 1e-4)
        base = torch.logit(F.interpolate(rgb_low, size=size, mode="bilinear", align_corners=False))
        return torch.sigmoid(base + self.to_rgb(x))
