"""Where the 3DMM sits in HiDe-NeRF's canonical box; head cameras from 3DMM fits; the source
SECC posed like the source image.

Canonical frame: a model-space point v (SFM units, mm) is at ``X = k (v - o)``. ``o`` is the
centre of the SFM mean shape's bounding box and ``k`` makes the SECC frame (the mean shape's
larger (x, y) side plus the SECC margin, :mod:`thbench.facegeom.secc`) span ``[-secc_span,
secc_span]``, so LED reading the SECC at (x, -y) / secc_span is exact by construction.

Camera from a fit: eos fits a scaled-orthographic camera (``pixel = scale R v + t`` with the
image y flipped). :func:`fit_camera` keeps its rotation, puts the middle of the face on the
pixel where the fit projects it (the translation) and sets the camera scale so a canonical unit
there spans as many pixels as in the fit (the scale). The pinhole then differs from the fit
only by its mild perspective (tested on real fits: landmarks to a few pixels).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from thbench.hidenerf.cameras import Camera


@lru_cache(maxsize=4)
def canonical_frame(secc_span: float) -> tuple[float, np.ndarray, np.ndarray]:
    """(k, o, a): canonical units per model unit, the model-space origin of the box, and the
    anchor: the mean of the mean shape's landmark vertices (the middle of the face surface)."""
    from thbench.facegeom.morphable import load_sfm
    from thbench.facegeom.secc import MARGIN, secc_setup

    model = load_sfm()
    setup = secc_setup(model)
    mean = model.mean.astype(np.float64)
    low, high = mean.min(0), mean.max(0)
    k = 2 * secc_span / (setup.extent * (1 + 2 * MARGIN))
    origin = np.array([setup.center[0], setup.center[1], (low[2] + high[2]) / 2])
    landmarks = model.landmark_vertices[model.landmark_vertices >= 0]
    return k, origin, mean[landmarks].mean(0)


def secc_z_range(secc_span: float) -> tuple[float, float]:
    """The canonical z of the SECC's z code 0 and 1 (the mean shape's lowest and highest z)."""
    from thbench.facegeom.morphable import load_sfm

    k, origin, _ = canonical_frame(secc_span)
    z = load_sfm().mean[:, 2].astype(np.float64)
    return float(k * (z.min() - origin[2])), float(k * (z.max() - origin[2]))


def to_canonical(vertices: Tensor, secc_span: float) -> Tensor:
    """Model-space points (..., 3) -> canonical points."""
    k, origin, _ = canonical_frame(secc_span)
    return (vertices - torch.as_tensor(origin, dtype=vertices.dtype, device=vertices.device)) * k


def fit_camera(rotation: np.ndarray, translation: np.ndarray, scale: float, width: int,
               height: int, secc_span: float, focal: float, distance: float,
               view: np.ndarray | None = None) -> Camera:
    """The head camera of one eos fit (rotation (3, 3), eos translation (3,), scale in pixels
    per model unit) of a ``width`` x ``height`` frame. ``view`` (3, 3) renders another head
    rotation (free view) with the head kept where the fit put it.

    The pinhole matches the scaled-orthographic fit at the anchor (the middle of the face
    surface): the anchor projects to the same pixel, and there one canonical unit spans the
    same number of pixels, so the face itself, not the centre of the head 0.2 units behind it,
    gets the fitted size."""
    k, origin, anchor_model = canonical_frame(secc_span)
    rotation = np.asarray(rotation, np.float64)
    eos_anchor = rotation @ anchor_model + np.asarray(translation, np.float64)
    col, row = scale * eos_anchor[0], height - scale * eos_anchor[1]
    anchor = rotation @ ((anchor_model - origin) * k)  # rotated canonical anchor
    f_px, per_unit = focal * width, scale / k
    s = distance * per_unit / (f_px + per_unit * anchor[2])
    depth = distance - s * anchor[2]
    shift = [(col - width / 2) * depth / f_px - s * anchor[0],
             -(row - height / 2) * depth / f_px - s * anchor[1], 0.0]
    view = rotation if view is None else np.asarray(view, np.float64)
    return Camera(torch.tensor(view, dtype=torch.float32)[None],
                  torch.tensor(shift, dtype=torch.float32)[None],
                  torch.tensor([s], dtype=torch.float32), focal=focal, distance=distance)


def relative_placement(source, first, current, secc_span: float) -> tuple[np.ndarray, float]:
    """(translation, scale) for :func:`fit_camera` that put the head where ``source`` has it,
    moved and scaled as the driver moved from its ``first`` frame to ``current`` (each a fit
    with ``rotation``, ``translation``, ``scale``); the rotation stays ``current``'s.

    The face's anchor (:func:`canonical_frame`) lands at the source's anchor pixel plus the
    driver's anchor motion since its first frame (scaled by the two faces' size ratio), and the
    scale is the source's times the driver's change. A driver whose face fills its crop less
    than the source's (or sits lower) then no longer shrinks or moves the rendered head away
    from the source's hair and background, which stay in the source image: rendered where the
    driver's face was, the head showed the source's hair a second time above it. When the
    driver's first frame is the source frame (same-identity pairs), this is the current fit."""
    _, _, anchor = canonical_frame(secc_span)

    def pixel(fit) -> np.ndarray:
        point = np.asarray(fit.rotation, np.float64) @ anchor + np.asarray(fit.translation,
                                                                            np.float64)
        return float(fit.scale) * point[:2]

    ratio = float(source.scale) / float(first.scale)
    scale = float(current.scale) * ratio
    target = pixel(source) + (pixel(current) - pixel(first)) * ratio
    translation = np.asarray(current.translation, np.float64).copy()
    translation[:2] = target / scale - (np.asarray(current.rotation, np.float64) @ anchor)[:2]
    return translation, scale


def posed_secc(identity: np.ndarray, expression: np.ndarray, camera: Camera, size: int,
               secc_span: float) -> Tensor:
    """The SECC code rendered by ``camera`` (B cameras) at size x size: identity (B, 63),
    expression (B, 6) -> (B, 3, size, size) in [0, 1], registered with the posed image the
    camera describes (the encoder's second input)."""
    from thbench.facegeom import raster
    from thbench.facegeom.morphable import load_sfm
    from thbench.facegeom.secc import mesh_vertices, secc_setup

    model = load_sfm()
    setup = secc_setup(model)
    points = to_canonical(mesh_vertices(identity, expression, model), secc_span)
    pixels = camera.project(points, size, size)
    camera_space = camera.scale[:, None, None] * points @ camera.rotation.transpose(1, 2)
    depth = camera.distance - (camera_space[..., 2] + camera.translation[:, None, 2])
    fragments = raster.rasterize(torch.cat([pixels, depth[..., None]], -1), setup.triangles,
                                 size, size, perspective=True)
    image = raster.interpolate(setup.colours, fragments, setup.triangles)
    return image.clamp(0, 1).permute(0, 3, 1, 2).contiguous()
