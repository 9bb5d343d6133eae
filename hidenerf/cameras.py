"""Cameras from 3DMM head pose: the head pose *is* the camera.

Conventions (all right-handed, OpenGL-like, the same as eos / glm):

* Canonical head space: the volume lives in [-1, 1]^3, x to the image right of a frontal face
  (the subject's left), y up, z out of the face towards a frontal camera.
* Camera space: x right, y up, the camera **looks along -z**. A canonical point X maps to
  camera coordinates ``x_c = scale * R @ X + T`` with ``T = (tx, ty, tz - cam_distance)``.
* ``R = Ry(yaw) @ Rx(pitch) @ Rz(roll)`` (column vectors, angles in degrees): roll is applied
  first, yaw last. This is the composition whose angles eos's ``get_yaw_pitch_roll`` returns:
  on real eos fits it reproduces ``RenderingParameters.get_modelview()``'s rotation to float
  precision, while ``Rz Ry Rx`` is off by up to 0.1 at 23 degrees of roll (tested in
  tests/test_hidenerf.py). With the closed forms of :mod:`thbench.core.rotations`: positive
  yaw turns the nose towards the image right (+x), positive pitch tilts the nose down (-y),
  positive roll turns the top of the head towards the image left (counter-clockwise as seen
  in the image).
* Pixels: row i, column j of an H x W image; pixel centres at (j + 0.5, i + 0.5). Image rows go
  down, camera y goes up. Pinhole focal length ``f_px = focal * W`` (``focal`` in units of the
  image width), principal point at the image centre.
* Rays are ``X(t) = origin + t * direction`` in canonical space with unit directions: t is a
  canonical distance. Each ray is marched where it crosses the sphere of radius sqrt(3) about
  the origin, which holds the whole [-1, 1]^3 box (:meth:`Camera.near_far`).
* Precision: every product here runs in fp32 with autocast off, whatever the caller's autocast
  (:func:`_fp32`). Under bf16 the source-grid (u, v) would be off by up to 1.3 texels of a 256
  plane and ray directions by a third of the spacing between neighbouring rays at 64^2; a cast
  of the results to fp32 afterwards comes too late.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

from thbench.core.rotations import rotation_x, rotation_y, rotation_z

_F = TypeVar("_F", bound=Callable)


def _fp32(function: _F) -> _F:
    """Run ``function`` with autocast off on CPU and CUDA, its half-precision tensor arguments
    (and a Camera's own tensors) raised to fp32 (fp64 stays fp64)."""

    def up(tensor: Tensor) -> Tensor:
        return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor

    def cast(value):
        if isinstance(value, Tensor):
            return up(value)
        if isinstance(value, Camera):
            return Camera(up(value.rotation), up(value.translation), up(value.scale),
                          value.focal, value.distance)
        return value

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        devices = {"cpu"} | {a.device.type for a in (*args, *kwargs.values())
                             if isinstance(a, Tensor)}
        devices |= {a.rotation.device.type for a in args if isinstance(a, Camera)}
        with contextlib.ExitStack() as stack:
            for device in sorted(devices & {"cpu", "cuda"}):
                stack.enter_context(torch.autocast(device, enabled=False))
            return function(*[cast(a) for a in args], **{k: cast(v) for k, v in kwargs.items()})

    return wrapper  # type: ignore[return-value]


def _as_tensor(value: float | Tensor, reference: Tensor | None = None) -> Tensor:
    if isinstance(value, Tensor):
        return value.to(torch.get_default_dtype()) if not value.is_floating_point() else value
    device = reference.device if reference is not None else None
    return torch.tensor(float(value), device=device)


@_fp32
def rotation_from_ypr(yaw: Tensor, pitch: Tensor, roll: Tensor) -> Tensor:
    """Head rotation from Euler angles in degrees, each (B,): ``Ry(yaw) Rx(pitch) Rz(roll)``
    (eos's convention). Returns (B, 3, 3), mapping canonical head coordinates to camera
    orientation.
    """
    return (rotation_y(torch.deg2rad(yaw)) @ rotation_x(torch.deg2rad(pitch))
            @ rotation_z(torch.deg2rad(roll)))


@dataclass
class Camera:
    """A batch of B head-pose cameras.

    rotation (B, 3, 3), translation (B, 3) and scale (B,) define ``x_c = s R X + T`` with
    ``T = translation + (0, 0, -distance)``; ``focal`` is in units of the image width.
    """

    rotation: Tensor
    translation: Tensor
    scale: Tensor
    focal: float = 2.0
    distance: float = 4.0

    @property
    def batch_size(self) -> int:
        return self.rotation.shape[0]

    @staticmethod
    def cat(cameras: list[Camera]) -> Camera:
        """One batch from several (same lens)."""
        first = cameras[0]
        return Camera(torch.cat([c.rotation for c in cameras]),
                      torch.cat([c.translation for c in cameras]),
                      torch.cat([c.scale for c in cameras]), first.focal, first.distance)

    def to(self, device: torch.device | str) -> Camera:
        return Camera(self.rotation.to(device), self.translation.to(device),
                      self.scale.to(device), self.focal, self.distance)

    def full_translation(self) -> Tensor:
        """(B, 3): T = translation + (0, 0, -distance)."""
        offset = torch.zeros_like(self.translation)
        offset[:, 2] = -self.distance
        return self.translation + offset

    @_fp32
    def center(self) -> Tensor:
        """(B, 3) camera centre in canonical space: ``-R^T T / s``."""
        T = self.full_translation()
        return -(self.rotation.transpose(1, 2) @ T[:, :, None])[:, :, 0] / self.scale[:, None]

    @_fp32
    def project(self, points: Tensor, height: int, width: int) -> Tensor:
        """Canonical points (B, N, 3) -> pixel coordinates (B, N, 2) as (column, row), centres at
        +0.5 (the inverse of :meth:`rays`)."""
        xc = self.scale[:, None, None] * points @ self.rotation.transpose(1, 2)
        xc = xc + self.full_translation()[:, None, :]
        f_px = self.focal * width
        depth = -xc[..., 2]
        col = xc[..., 0] / depth * f_px + width / 2
        row = -xc[..., 1] / depth * f_px + height / 2
        return torch.stack([col, row], -1)

    @_fp32
    def rays(self, height: int, width: int) -> tuple[Tensor, Tensor]:
        """Rays through pixel centres, row-major: origins (B, H*W, 3), directions (B, H*W, 3),
        both in canonical space; directions have unit length, so a ray parameter t is a
        canonical distance and densities integrate over length, not depth."""
        device, dtype = self.rotation.device, self.rotation.dtype
        f_px = self.focal * width
        rows = (torch.arange(height, device=device, dtype=dtype) + 0.5 - height / 2) / f_px
        cols = (torch.arange(width, device=device, dtype=dtype) + 0.5 - width / 2) / f_px
        v, u = torch.meshgrid(-rows, cols, indexing="ij")
        dirs_cam = torch.stack([u, v, -torch.ones_like(u)], -1).reshape(-1, 3)  # (H*W, 3)
        # canonical direction = R^T d_c (row vectors: d_c @ R); the scale drops out once unit
        dirs = F.normalize(dirs_cam[None] @ self.rotation, dim=-1)
        origins = self.center()[:, None, :].expand_as(dirs)
        return origins, dirs

    @staticmethod
    @_fp32
    def near_far(origins: Tensor, directions: Tensor, radius: float) -> tuple[Tensor, Tensor]:
        """Where each ray (B, R, 3), unit directions, enters and leaves the canonical sphere of
        ``radius`` about the origin: near, far (B, R, 1). A ray that misses the sphere gets
        near = far (an empty segment); near is clamped at 0 (the camera is outside the box)."""
        t_mid = -(origins * directions).sum(-1, keepdim=True)
        gap = (origins + t_mid * directions).pow(2).sum(-1, keepdim=True)
        half = (radius**2 - gap).clamp_min(0).sqrt()
        return (t_mid - half).clamp_min(0), (t_mid + half).clamp_min(0)

    @_fp32
    def source_grid(self, points: Tensor) -> Tensor:
        """Canonical points (B, N, 3) -> (u, v, w): (u, v) the ``grid_sample`` coordinates of
        their projection in this camera's image (align_corners=False, v down), w their depth
        coordinate in the head's rotated frame (R X)_z, toward the camera. The tri-planes are
        built in this frame from the source image (:mod:`thbench.hidenerf.triplane`)."""
        pixels = self.project(points, 2, 2)  # pixels of a 2 x 2 image = grid coordinates + 1
        depth = (points @ self.rotation.transpose(1, 2))[..., 2:]
        return torch.cat([pixels - 1, depth], -1)

    def vector(self) -> Tensor:
        """(B, 13): rotation (flattened, 9), translation (3), scale (1), the form a camera
        travels in through data loaders (:func:`camera_from_vector`)."""
        return torch.cat([self.rotation.flatten(1), self.translation, self.scale[:, None]], 1)


def camera_from_vector(vector: Tensor, focal: float, distance: float) -> Camera:
    """Inverse of :meth:`Camera.vector`: (B, 13) -> Camera."""
    return Camera(vector[:, :9].unflatten(1, (3, 3)), vector[:, 9:12], vector[:, 12],
                  focal=focal, distance=distance)


def camera_from_pose(
    yaw: float | Tensor,
    pitch: float | Tensor,
    roll: float | Tensor,
    translation: Tensor | None = None,
    scale: float | Tensor = 1.0,
    focal: float = 2.0,
    distance: float = 4.0,
) -> Camera:
    """Camera for a head pose; angles in degrees, scalars or (B,). translation (B, 3) or (3,)
    is in canonical units (1 = half the head box), added in camera space."""
    yaw_t = torch.atleast_1d(_as_tensor(yaw))
    pitch_t = torch.atleast_1d(_as_tensor(pitch, yaw_t))
    roll_t = torch.atleast_1d(_as_tensor(roll, yaw_t))
    yaw_t, pitch_t, roll_t = torch.broadcast_tensors(yaw_t, pitch_t, roll_t)
    batch = yaw_t.shape[0]
    rotation = rotation_from_ypr(yaw_t, pitch_t, roll_t)
    if translation is None:
        translation = torch.zeros(batch, 3, device=rotation.device, dtype=rotation.dtype)
    translation = torch.as_tensor(translation, dtype=rotation.dtype).reshape(-1, 3)
    translation = translation.expand(batch, 3).clone()
    scale_t = torch.atleast_1d(_as_tensor(scale, yaw_t)).to(rotation.dtype).expand(batch).clone()
    return Camera(rotation, translation, scale_t, focal=focal, distance=distance)
