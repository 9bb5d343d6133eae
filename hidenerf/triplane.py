"""MGA: multi-scale generalized appearance as canonical tri-planes.

A tri-plane at one scale is a tensor (B, 3, C, R, R) holding the planes in this order:

* plane 0 = xy: width axis x, height axis y (grid_sample coordinates (x, y))
* plane 1 = xz: width axis x, height axis z (coordinates (x, z))
* plane 2 = yz: width axis y, height axis z (coordinates (y, z))

Sampling uses ``grid_sample(mode="bilinear", padding_mode="zeros", align_corners=False)``:
-1 and +1 are the *outer edges* of the border texels (texel centres at -1 + (2k + 1) / R), so a
plane of any resolution covers exactly [-1, 1]^2 and flipping a plane along an axis maps to
negating that coordinate. Points outside the box read zeros (the renderer masks them anyway).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PLANE_AXES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2))
"""For each plane, which point coordinates are its (width, height) grid_sample coordinates."""


def sample_triplane(planes: Tensor, points: Tensor) -> Tensor:
    """Bilinearly sample one scale's tri-plane and sum the three planes.

    planes (B, 3, C, R, R), points (B, N, 3) in [-1, 1]^3 -> features (B, N, C).
    Sum rather than mean or concat: the planes are symmetric roles (as in EG3D, which averages).
    """
    b, n_planes, c, h, w = planes.shape
    coords = torch.stack([points[..., list(axes)] for axes in PLANE_AXES], 1)  # (B, 3, N, 2)
    coords = coords.reshape(b * n_planes, 1, -1, 2)
    sampled = F.grid_sample(planes.reshape(b * n_planes, c, h, w), coords.to(planes.dtype),
                            mode="bilinear", padding_mode="zeros", align_corners=False)
    # (B*3, C, 1, N) -> (B, 3, C, N) -> sum planes -> (B, N, C)
    return sampled.reshape(b, n_planes, c, -1).sum(1).transpose(1, 2)


def sample_multiscale(planes: list[Tensor], points: Tensor) -> Tensor:
    """Concatenate the features of every scale: list of (B, 3, C_s, R_s, R_s), points (B, N, 3)
    -> (B, N, sum_s C_s). Coarse scale first."""
    return torch.cat([sample_triplane(p, points) for p in planes], -1)


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1),
        nn.GroupNorm(min(8, cout), cout),
        nn.LeakyReLU(0.2),
        nn.Conv2d(cout, cout, 3, 1, 1),
        nn.LeakyReLU(0.2),
    )


class TriplaneEncoder(nn.Module):
    """U-Net image encoder -> canonical tri-planes at several scales.

    image (B, in_channels, S, S) -> list over scales of (B, 3, C, R_s, R_s), coarse first.
    The down path halves S until the bottleneck min(plane_sizes) / 2; the up path doubles it
    with skip connections and emits, at every plane size R_s, a 3x3 conv head of 3 * C channels
    reshaped to three planes.
    """

    def __init__(self, in_channels: int, image_size: int, plane_sizes: tuple[int, ...],
                 plane_channels: int, base: int, max_channels: int) -> None:
        super().__init__()
        self.plane_sizes = tuple(plane_sizes)
        self.plane_channels = plane_channels
        bottleneck = plane_sizes[0] // 2
        width = {}
        size, k = image_size, 0
        while size >= bottleneck:
            width[size] = min(base * 2**k, max_channels)
            size //= 2
            k += 1
        self.stem = _block(in_channels, width[image_size])
        self.down = nn.ModuleList()
        size = image_size
        while size > bottleneck:
            self.down.append(_block(width[size], width[size // 2], stride=2))
            size //= 2
        self.up = nn.ModuleList()
        self.heads = nn.ModuleDict()
        size = bottleneck
        while size < plane_sizes[-1]:
            self.up.append(_block(width[size] + width[size * 2], width[size * 2]))
            size *= 2
            if size in self.plane_sizes:
                self.heads[str(size)] = nn.Conv2d(width[size], 3 * plane_channels, 3, 1, 1)

    def forward(self, image: Tensor) -> list[Tensor]:
        x = self.stem(image)
        skips = [x]
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()
        planes = []
        for layer in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = layer(torch.cat([x, skip], 1))
            head = self.heads[str(x.shape[-1])] if str(x.shape[-1]) in self.heads else None
            if head is not None:
                out = head(x)
                planes.append(out.unflatten(1, (3, self.plane_channels)))
        return planes
