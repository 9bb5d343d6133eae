"""The fitted 3DMM as a density prior: the head volume read from the driving SECC.

A one-shot NeRF trained for minutes has not yet learnt where the head is, and a volume that is
thin fog everywhere warps the static background with the head (or, emptied, shows the unmoved
source). The 3DMM fit already says where the face is: the frontal SECC covers the face's
silhouette, and its z code is the mean shape's z at every covered pixel. The prior is the
face's silhouette extruded backwards from that surface,

    occupancy(x) = mask(u, v) * sigmoid((z_surface(u, v) - x_z) / softness),
    (u, v) = (x, -y) / secc_span                      (LED's projection onto the SECC)

and the model's density is the decoder's plus ``prior_density * occupancy``. Rays that hit the
face stop at its fitted surface, so from the first step the rendered correspondence carries the
source's face along the fitted head motion while the background stays where it is; the decoder
learns the rest (hair, neck, shoulders) and LED the expression.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from thbench.hidenerf.deformation import sample_image, secc_coords


def surface_map(secc: Tensor, z_low: float, z_high: float, fill: int) -> Tensor:
    """Frontal SECC (B, 3, S, S) in [0, 1] -> (B, 2, S, S): the face mask and its surface z.

    ``z_low``, ``z_high``: the canonical z of the z code's 0 and 1. The eye holes of the SECC
    (and other holes up to ``fill`` pixels across) are closed, their z filled from the
    surrounding surface, so the head is not pierced where the SECC leaves the eyes out.
    """
    mask = (secc.amax(1, keepdim=True) > 0).to(secc.dtype)
    pad = fill // 2
    # closing (dilate, then erode) with the world beyond the frame empty
    outer = F.pad(mask, (2 * pad,) * 4)
    dilated = (_box_count(outer, fill) > 0).to(mask.dtype)
    closed = (_box_count(dilated, fill) == fill * fill).to(mask.dtype)
    closed = closed[..., 2 * pad:-2 * pad, 2 * pad:-2 * pad]
    z = _fill_holes(z_low + (z_high - z_low) * secc[:, 2:3], mask, closed, fill)
    return torch.cat([closed, z * closed], 1)


def _fill_holes(z: Tensor, mask: Tensor, closed: Tensor, fill: int,
                whole_map: bool | None = None) -> Tensor:
    """z (B, 1, S, S) with every hole (a pixel the closing added to the mask) set to the mean
    z of the mask's pixels in the ``fill`` x ``fill`` window around it.

    On the CPU the window means are computed over the holes' bounding box grown by the window's
    reach, which holds every hole's whole window: the same values as over the whole map, without
    averaging the paper config's 33 x 33 window over all of a 256 px map every frame. On an
    accelerator (``whole_map``, default: not CPU) finding the box would cost host syncs, so the
    whole map is averaged; the two agree wherever ``closed`` is set (the only pixels used).
    """
    if whole_map if whole_map is not None else z.device.type != "cpu":
        weight = _avg_pool_separable(mask, fill, fill // 2)
        filled = _avg_pool_separable(z * mask, fill, fill // 2)
        return torch.where(mask > 0, z, filled / weight.clamp_min(1e-6))
    holes = (closed > mask).flatten(0, 1).any(0)  # (S, S), over the batch
    if not bool(holes.any()):
        return z
    pad = fill // 2
    rows, cols = holes.any(1).nonzero()[:, 0], holes.any(0).nonzero()[:, 0]
    box = (..., slice(max(int(rows[0]) - pad, 0), int(rows[-1]) + pad + 1),
           slice(max(int(cols[0]) - pad, 0), int(cols[-1]) + pad + 1))
    weight = _avg_pool_separable(mask[box], fill, pad)
    filled = _avg_pool_separable((z * mask)[box], fill, pad)
    out = z.clone()
    out[box] = torch.where(mask[box] > 0, z[box], filled / weight.clamp_min(1e-6))
    return out


def _box_count(mask: Tensor, size: int) -> Tensor:
    """How many pixels of the binary ``mask`` (B, 1, H, W) are set in the size x size window
    (odd size) centred on each pixel, the world beyond the map empty: a dilation is
    ``count > 0``, an erosion ``count == size**2`` where the window lies inside the map. From
    running sums along each axis, a few operations per pixel whatever the window (the paper
    config's 33 x 33 closing by max pooling took 15 ms a frame); counts of 0/1 values are exact
    in float32."""
    pad = size // 2
    for dim in (-2, -1):
        ends = F.pad(mask.cumsum(dim), (0, 0, pad + 1, 0) if dim == -2 else (pad + 1, 0))
        last = ends.narrow(dim, ends.shape[dim] - 1, 1)
        ends = torch.cat([ends, last.expand_as(ends.narrow(dim, 0, pad))], dim)
        length = mask.shape[dim]
        mask = ends.narrow(dim, size, length) - ends.narrow(dim, 0, length)
    return mask


def _avg_pool_separable(x: Tensor, size: int, pad: int) -> Tensor:
    """``F.avg_pool2d(x, size, 1, pad, count_include_pad=False)`` as a column pass and a row
    pass: a window clipped by the border holds (valid rows) x (valid columns) pixels, so the
    mean factorises; 2 * size additions per pixel instead of size**2 (33 x 33 in the paper
    config: 32 ms a frame each, on a 2-core CPU)."""
    x = F.avg_pool2d(x, (size, 1), 1, (pad, 0), count_include_pad=False)
    return F.avg_pool2d(x, (1, size), 1, (0, pad), count_include_pad=False)


def head_occupancy(points: Tensor, surface: Tensor, span: float, softness: float) -> Tensor:
    """Canonical points (B, N, 3), :func:`surface_map` (B, 2, S, S) -> occupancy (B, N) in
    [0, 1]: inside the face's silhouette and behind its surface."""
    # (B, N, 2): mask, mask * z; nothing beyond the SECC frame
    sampled = sample_image(surface, secc_coords(points, span), padding="zeros")
    mask, masked_z = sampled[..., 0], sampled[..., 1]
    z = masked_z / mask.clamp_min(1e-6)
    return mask * torch.sigmoid((z - points[..., 2].to(z.dtype)) / softness)
