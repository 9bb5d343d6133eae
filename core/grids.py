"""Normalised coordinate grids and Gaussian blobs around keypoints (pure tensor functions).

Coordinates are in [-1, 1] with the first and last sample *centres* at -1 and 1, the convention
of the FOMM / TPSMM / face-vid2vid code bases (``grid_sample``'s ``align_corners=True`` view).
The axes are computed in float32 and only then cast to the dtype of ``like``, so that a grid is
the same whatever the caller's dtype (a bfloat16 ``arange`` would round indices above 256).
"""

from __future__ import annotations

import torch


def _axis(size: int, like: torch.Tensor | None) -> torch.Tensor:
    """(size,) evenly spaced values from -1 to 1 (a single 0 -> -1)."""
    kwargs = {"device": like.device} if like is not None else {}
    values = torch.arange(size, dtype=torch.float32, **kwargs) / max(size - 1, 1) * 2 - 1
    return values.to(like.dtype) if like is not None and like.is_floating_point() else values


def coordinate_grid(height: int, width: int, like: torch.Tensor | None = None) -> torch.Tensor:
    """(H, W, 2) grid of (x, y) in [-1, 1]; x varies along the width. ``like``: the device and
    floating dtype to return (default: float32 on the CPU)."""
    grid_y, grid_x = torch.meshgrid(_axis(height, like), _axis(width, like), indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1)


def coordinate_grid_3d(depth: int, height: int, width: int,
                       like: torch.Tensor | None = None) -> torch.Tensor:
    """(D, H, W, 3) grid of (x, y, z) in [-1, 1]; x along the width, z along the depth."""
    grid_z, grid_y, grid_x = torch.meshgrid(
        _axis(depth, like), _axis(height, like), _axis(width, like), indexing="ij")
    return torch.stack([grid_x, grid_y, grid_z], dim=-1)


def keypoint_gaussians(points: torch.Tensor, size: tuple[int, ...],
                       variance: float) -> torch.Tensor:
    """Gaussian blobs, peak 1, isotropic ``variance``: points (..., N) in [-1, 1] -> (..., *size)
    with N = len(size): 2 for (H, W) maps, 3 for (D, H, W) volumes."""
    grid = coordinate_grid(*size, like=points) if len(size) == 2 else \
        coordinate_grid_3d(*size, like=points)
    centres = points[(..., *(None,) * len(size), slice(None))]
    diff = grid.view(*(1,) * (points.dim() - 1), *grid.shape) - centres
    return torch.exp(-0.5 * diff.pow(2).sum(-1) / variance)
