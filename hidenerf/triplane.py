"""MGA: multi-scale generalized appearance as tri-planes registered with the source image.

The planes live in the *source camera's* frame: a point is sampled at its source grid
coordinates (u, v, w) (:meth:`thbench.hidenerf.cameras.Camera.source_grid`): (u, v) where it
projects in the source image as ``grid_sample`` coordinates (u right, v down), w its depth toward
the source camera. A tri-plane at one scale is a tensor (B, 3, C, R, R) holding, in ``grid_sample``
(width, height) coordinates:

* plane 0 = xy at (u, v): row i and column j of the plane lie over the same place of the source
  image as row i and column j of the encoder's input;
* plane 1 = xz at (u, -w): columns registered with the image columns, rows from front (top)
  to back;
* plane 2 = zy at (-w, v): rows registered with the image rows.

This is Real3D-Portrait's img2plane convention (its xy and xz planes flipped along their height
axis, zy along both, after the encoder) written as sampling coordinates: canonical y grows
upward, image rows downward, and the U-Net builds plane row i from image rows near i.

Sampling is ``grid_sample(mode="bilinear", padding_mode="zeros", align_corners=False)`` in
float32 (also under bf16 autocast: coordinates are never rounded to the feature dtype); -1 and
+1 are the outer edges of the border texels, so a plane of any resolution covers exactly the
source image, and points projecting outside it read zeros.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thbench.hidenerf.model_utils import sampling_dtype


def plane_grids(grid: Tensor) -> Tensor:
    """Source grid coordinates (B, N, 3) = (u, v, w) -> per-plane grid_sample coordinates
    (B, 3, N, 2): xy (u, v), xz (u, -w), zy (-w, v)."""
    u, v, w = grid.unbind(-1)
    return torch.stack([torch.stack([u, v], -1), torch.stack([u, -w], -1),
                        torch.stack([-w, v], -1)], 1)


def texel_major(planes: Tensor) -> Tensor:
    """The same planes (B, 3, C, R, R), stored with each texel's C features adjacent (the
    channels-last layout of every plane). A bilinear lookup reads all C features of 4 texels:
    in this layout they are 4 short runs instead of 4 C strides of R * R apart; at R = 256 that
    makes ``grid_sample`` about 3x faster on the CPU, with identical values."""
    return planes.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)


def _sample_planes_channels_first(planes: Tensor, grid: Tensor) -> Tensor:
    """planes (B, 3, C, R, R) or one source's (1, 3, C, R, R) for every grid, grid (B, N, 3)
    -> (B, 3, C, N), grid_sample's own layout. Planes of batch 1 are sampled once at all
    B * N points (no copy of the planes per grid)."""
    batch, n = grid.shape[:2]
    b, n_planes, c, h, w = planes.shape
    if b == 1:
        grid = grid.reshape(1, batch * n, 3)
    dtype = sampling_dtype(planes, grid)
    coords = plane_grids(grid.to(dtype)).reshape(b * n_planes, 1, -1, 2)
    sampled = F.grid_sample(planes.to(dtype).reshape(b * n_planes, c, h, w), coords,
                            mode="bilinear", padding_mode="zeros", align_corners=False)
    if b == 1:
        return sampled.reshape(n_planes, c, batch, n).permute(2, 0, 1, 3)
    return sampled.reshape(b, n_planes, c, n)


def sample_planes(planes: Tensor, grid: Tensor) -> Tensor:
    """Each plane of one scale, bilinearly: planes (B, 3, C, R, R), grid (B, N, 3)
    -> (B, 3, N, C), at least float32."""
    return _sample_planes_channels_first(planes, grid).transpose(2, 3)


def sample_triplane(planes: Tensor, grid: Tensor) -> Tensor:
    """One scale's tri-plane summed over its planes: (B, 3, C, R, R), grid (B, N, 3) ->
    (B, C, N), grid_sample's (C, N) layout. Sum rather than mean or concat: the planes are
    symmetric roles (as in EG3D, which averages). Summed in that layout: several times faster
    than reducing the transposed view (the paper config's largest reduction)."""
    return _sample_planes_channels_first(planes, grid).sum(1)


def sample_multiscale(planes: list[Tensor], grid: Tensor) -> Tensor:
    """Concatenate the features of every scale: list of (B, 3, C_s, R_s, R_s), source grid
    coordinates (B, N, 3) -> (B, N, sum_s C_s), coarse scale first; a transposed view of a
    contiguous (B, sum_s C_s, N): the scales are joined in :func:`sample_triplane`'s (C, N)
    layout, where each is one block (concatenating transposed (N, C) views costs 20x more),
    and a linear layer reads the view as it is."""
    return torch.cat([sample_triplane(p, grid) for p in planes], 1).transpose(1, 2)


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
