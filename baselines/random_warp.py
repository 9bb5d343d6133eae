"""The random warp of the equivariance losses of FOMM, TPSMM and face-vid2vid.

An affine map theta = [I | 0] + N(0, sigma_affine) plus thin-plate-spline-like radial terms
with weights N(0, sigma_tps) on a points x points grid of control points (the official
``Transform`` classes). ``kernel`` picks the radial function: FOMM's (and face-vid2vid's)
d^2 log d with d the L1 distance, one scalar offset added to both coordinates, or TPSMM's
r^2 log r^2 with r the Euclidean distance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from thbench.core.grids import coordinate_grid

KERNELS = ("fomm", "tpsmm")


class RandomTPSWarp:
    """One random warp per batch item; draws the affine noise, then the radial weights.

    ``generator``: a CPU generator to draw from, the draws then moved to ``device`` (the same
    warps on every device, as the harness's trainer wants); None: torch's global RNG, drawing
    directly on ``device`` in ``dtype`` (as face-vid2vid's loss function does).
    """

    def __init__(self, batch: int, sigma_affine: float, sigma_tps: float, points: int,
                 kernel: str, device: torch.device | str,
                 generator: torch.Generator | None = None,
                 dtype: torch.dtype | None = None) -> None:
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}")
        if generator is not None and generator.device.type != "cpu":
            raise ValueError(f"the random warps draw on the CPU (the same numbers on every "
                             f"device); got a generator on {generator.device}")
        self.kernel = kernel
        draw = ({"generator": generator, "device": "cpu"} if generator is not None
                else {"device": device, "dtype": dtype})
        noise = torch.randn(batch, 2, 3, **draw) * sigma_affine
        eye = torch.eye(2, 3, dtype=noise.dtype, device=noise.device)
        self.theta = (noise + eye).to(device)
        self.control = coordinate_grid(points, points, like=noise).view(-1, 2).to(device)
        self.params = (torch.randn(batch, 1, points * points, **draw) * sigma_tps).to(device)

    def warp_points(self, points: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) -> (B, N, 2)."""
        out = points @ self.theta[:, :, :2].transpose(1, 2) + self.theta[:, None, :, 2]
        diff = points[:, :, None] - self.control[None, None]
        if self.kernel == "fomm":
            dist = diff.abs().sum(-1)
            radial = dist**2 * torch.log(dist + 1e-6)
        else:
            dist = diff.pow(2).sum(-1)
            radial = dist * torch.log(dist + 1e-9)
        return out + (radial * self.params).sum(-1, keepdim=True)

    def warp_frame(self, frame: torch.Tensor, align_corners: bool) -> torch.Tensor:
        """(B, C, H, W) sampled at the warped pixel grid (reflection padding)."""
        batch, _, height, width = frame.shape
        grid = coordinate_grid(height, width, like=frame).view(1, -1, 2).expand(batch, -1, -1)
        grid = self.warp_points(grid).view(batch, height, width, 2)
        return F.grid_sample(frame, grid, padding_mode="reflection", align_corners=align_corners)

    def jacobian(self, points: torch.Tensor) -> torch.Tensor:
        """d warp / d point at (B, N, 2) -> (B, N, 2, 2), differentiable."""
        with torch.enable_grad():
            points = points.detach().requires_grad_(True) if not points.requires_grad else points
            moved = self.warp_points(points)
            rows = [torch.autograd.grad(moved[..., i].sum(), points, create_graph=True)[0]
                    for i in range(2)]
        return torch.stack(rows, dim=-2)
