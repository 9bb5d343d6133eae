"""Refine network: low-resolution feature image + the warped source -> RGB at the output size.

inputs: feature (B, C_f, h, w) and opacity (B, 1, h, w) from the volume, and ``warped``
(B, 3, H, W) with H = h * 2^k, k = len(channels): the source image sampled where the volume says
each output pixel comes from (its rendered correspondence; the source itself where the volume is
empty, i.e. the source background composited by 1 - opacity).

Stem on [feature, opacity], plus the expression residual: a bias-free branch (3x3 conv,
LeakyReLU, 3x3 conv initialised small, std 1e-2) on the rendered expression change (e_d - e_s of
LED's SECC features, :mod:`thbench.hidenerf.model`). Zero input gives exactly zero, so a driving
SECC equal to the source's adds nothing; a changed mouth tells the network where to paint what
the source does not show. Each stage: bilinear x2 upsampling, concatenation of the warped source
at that size, two 3x3 convs (LeakyReLU 0.2) with a 1x1 skip (residual). The output is
``sigmoid(logit(warped) + conv(x))``: the network starts as the warped source (so an untrained
model with an empty volume returns the source image) and learns corrections as a residual in
logit space, with the volume's features telling it where the warp is wrong (occlusions, mouth
interior, lighting).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thbench.core.resampling import resize


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (the same parameters and state-dict keys) that runs channels-last in
    inference: input and weight in the channels-last layout (oneDNN's NHWC kernels; on one CPU
    thread the paper refine network falls from about 490 to 405 ms a frame), and a 1x1 kernel
    as one matrix product over the pixels, where PyTorch would take its unvectorised
    ``slow_conv2d`` for a small batch on one thread. Training keeps the default layout: there
    the paper network's backward is slower channels-last on the CPU. The output keeps the
    input's values to float rounding either way."""

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return super().forward(x)
        x = x.contiguous(memory_format=torch.channels_last)
        if self.kernel_size == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0):
            weight = self.weight.reshape(self.out_channels, self.in_channels)
            return F.linear(x.permute(0, 2, 3, 1), weight, self.bias).permute(0, 3, 1, 2)
        return self._conv_forward(x, self.weight.contiguous(memory_format=torch.channels_last),
                                  self.bias)


class _UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = Conv2d(cin + 3, cout, 3, 1, 1)
        self.conv2 = Conv2d(cout, cout, 3, 1, 1)
        self.skip = Conv2d(cin + 3, cout, 1)

    def forward(self, x: Tensor, warped: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = torch.cat([x, resize(warped, x.shape[-1]) * 2 - 1], 1)
        y = F.leaky_relu(self.conv1(x), 0.2)
        y = F.leaky_relu(self.conv2(y), 0.2)
        return y + self.skip(x)


class RefineNet(nn.Module):
    """(feature (B, C_f, h, w), opacity (B, 1, h, w), warped (B, 3, H, W), expression
    (B, C_e, h, w)) -> RGB (B, 3, H, W) in [0, 1]."""

    def __init__(self, feature_channels: int, channels: tuple[int, ...],
                 expression_channels: int) -> None:
        super().__init__()
        self.stem = Conv2d(feature_channels + 1, channels[0], 3, 1, 1)
        self.expression = nn.Sequential(
            Conv2d(expression_channels, channels[0], 3, 1, 1, bias=False),
            nn.LeakyReLU(0.2),
            Conv2d(channels[0], channels[0], 3, 1, 1, bias=False),
        )
        nn.init.normal_(self.expression[-1].weight, std=1e-2)
        widths = (channels[0], *channels)
        self.blocks = nn.ModuleList(_UpBlock(a, b) for a, b in zip(widths[:-1], widths[1:],
                                                                    strict=True))
        self.to_rgb = Conv2d(channels[-1], 3, 3, 1, 1)
        nn.init.normal_(self.to_rgb.weight, std=1e-2)
        nn.init.zeros_(self.to_rgb.bias)

    def forward(self, feature: Tensor, opacity: Tensor, warped: Tensor,
                expression: Tensor) -> Tensor:
        if not self.training:  # see Conv2d; the concatenations then stay channels-last too
            feature, opacity, warped, expression = (
                t.contiguous(memory_format=torch.channels_last)
                for t in (feature, opacity, warped, expression))
        x = F.leaky_relu(self.stem(torch.cat([feature, opacity], 1)), 0.2)
        x = x + self.expression(expression)
        for block in self.blocks:
            x = block(x, warped)
        base = torch.logit(warped.clamp(1e-4, 1 - 1e-4))
        return torch.sigmoid(base + self.to_rgb(x)).contiguous()
