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

from dataclasses import dataclass

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


@dataclass(frozen=True)
class PlaneTable:
    """Every scale's tri-planes as one table of texel rows, for inference
    (:func:`plane_table`): a bilinear lookup is then one ``embedding_bag`` over 12 rows (3
    planes x 4 corners) per point and scale, each row a texel's C features side by side, where
    ``grid_sample`` gathers every channel of every corner on its own (the paper config's
    lookups: about half the time). Rows are ordered scale, batch item, plane, row, column."""

    rows: Tensor
    """(T, C): the texels, each plane zero-padded by one texel before and two after on both
    axes, so that a corner outside the plane reads zeros as ``padding_mode="zeros"`` does."""
    sizes: tuple[int, ...]
    """Plane resolution per scale, coarse first."""
    batch: int
    """Batch items in the table: 1 (one source read by every grid) or the grids' batch."""


def plane_table(planes: list[Tensor]) -> PlaneTable:
    """Tri-planes (list over scales of (B, 3, C, R_s, R_s), one C) -> their :class:`PlaneTable`
    (at least float32, as every lookup here)."""
    rows = [F.pad(p.permute(0, 1, 3, 4, 2), (0, 0, 1, 2, 1, 2)).reshape(-1, p.shape[2])
            for p in planes]
    return PlaneTable(torch.cat(rows).to(sampling_dtype(planes[0])),
                      tuple(p.shape[-1] for p in planes), planes[0].shape[0])


def _sample_table(table: PlaneTable, grid: Tensor) -> Tensor:
    """:func:`sample_multiscale` from a :class:`PlaneTable`: (B, N, sum_s C) contiguous, the
    same values as ``grid_sample`` (bilinear, zeros, align_corners=False) to float rounding."""
    batch, n = grid.shape[:2]
    device = grid.device
    sizes = torch.tensor(table.sizes, device=device, dtype=table.rows.dtype)[:, None]  # (S, 1)
    side = torch.tensor(table.sizes, device=device) + 3  # padded plane side (S,)
    plane_rows = side * side
    starts = torch.cumsum(table.batch * 3 * plane_rows, 0) - table.batch * 3 * plane_rows
    first = torch.stack([starts, starts + plane_rows, starts + 2 * plane_rows], -1)  # (S, 3)
    if table.batch > 1:  # batch item b's planes follow b earlier items' in every scale
        first = first + (torch.arange(batch, device=device) * 3)[:, None, None, None] * \
            plane_rows[:, None]  # (B, 1, S, 3)
    corners = torch.stack([torch.zeros_like(side), torch.ones_like(side), side, side + 1], -1)
    # the planes' axes u, v and -w in texels (grid_sample's align_corners=False), clamped to
    # [-1, R] where every corner is padding; padded texel = texel + 1
    axes = grid.to(table.rows.dtype) * torch.tensor([1.0, 1.0, -1.0], device=device)
    pixel = torch.minimum((((axes[..., None, :] + 1) * sizes - 1) / 2).clamp_min(-1), sizes)
    low = pixel.floor()
    frac = pixel - low
    iu, iv, iw = (low.long() + 1).unbind(-1)  # (B, N, S)
    base = torch.stack([iv * side + iu, iw * side + iu, iv * side + iw], -1) + first  # xy xz zy
    index = (base[..., None] + corners[:, None, :]).reshape(-1, 12)
    fu, fv, fw = frac.unbind(-1)
    fx, fy = torch.stack([fu, fu, fw], -1), torch.stack([fv, fw, fv], -1)
    gx, gy = 1 - fx, 1 - fy
    weight = torch.stack([gx * gy, fx * gy, gx * fy, fx * fy], -1).reshape(-1, 12)
    features = F.embedding_bag(index, table.rows, per_sample_weights=weight, mode="sum")
    return features.reshape(batch, n, -1)


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


def sample_multiscale(planes: list[Tensor] | PlaneTable, grid: Tensor) -> Tensor:
    """Concatenate the features of every scale: list of (B, 3, C_s, R_s, R_s) (or their
    :class:`PlaneTable`), source grid coordinates (B, N, 3) -> (B, N, sum_s C_s), coarse scale
    first. From planes: a transposed view of a contiguous (B, sum_s C_s, N): the scales are
    joined in :func:`sample_triplane`'s (C, N) layout, where each is one block (concatenating
    transposed (N, C) views costs 20x more), and a linear layer reads the view as it is."""
    if isinstance(planes, PlaneTable):
        return _sample_table(planes, grid)
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
