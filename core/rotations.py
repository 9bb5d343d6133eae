"""Rotations about the coordinate axes, from angles in radians (pure tensor functions).

Callers compose them in their own order and convert their own angles: face-vid2vid with
``degrees / 180 * 3.14`` and R_x(pitch) R_y(yaw) R_z(roll), HiDe-NeRF with ``deg2rad`` and eos's
R_y(yaw) R_x(pitch) R_z(roll); each conversion is part of reproducing that method's numbers.

Every entry calls its own ``cos`` / ``sin``, as face-vid2vid's code does: reusing one result
would give the same matrices but sum the angle's gradient in another order, so trained weights
would differ in the last bits.
"""

from __future__ import annotations

import torch


def _matrix(*entries: torch.Tensor) -> torch.Tensor:
    """Nine (...,) tensors, row-major -> (..., 3, 3)."""
    return torch.stack(entries, -1).unflatten(-1, (3, 3))


def rotation_x(angle: torch.Tensor) -> torch.Tensor:
    """(...,) radians -> (..., 3, 3) ``[[1,0,0],[0,c,-s],[0,s,c]]``."""
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    return _matrix(one, zero, zero,
                   zero, angle.cos(), -angle.sin(),
                   zero, angle.sin(), angle.cos())


def rotation_y(angle: torch.Tensor) -> torch.Tensor:
    """(...,) radians -> (..., 3, 3) ``[[c,0,s],[0,1,0],[-s,0,c]]``."""
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    return _matrix(angle.cos(), zero, angle.sin(),
                   zero, one, zero,
                   -angle.sin(), zero, angle.cos())


def rotation_z(angle: torch.Tensor) -> torch.Tensor:
    """(...,) radians -> (..., 3, 3) ``[[c,-s,0],[s,c,0],[0,0,1]]``."""
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    return _matrix(angle.cos(), -angle.sin(), zero,
                   angle.sin(), angle.cos(), zero,
                   zero, zero, one)
