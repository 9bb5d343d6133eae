"""SECC: the 3DMM mesh rendered in a canonical frontal pose with a fixed coordinate colour code.

As the HiDe-NeRF first author's later public code renders it: zero rotation and translation,
each vertex coloured with the model's *mean shape* xyz scaled per axis to [0, 1] (so a vertex
keeps its colour whatever the identity and expression), eye regions removed (triangles touching
an eye-region vertex are dropped), background 0.

Camera: orthographic, looking down -z; the image centre is the centre of the mean shape's (x, y)
bounding box and the larger side of that box spans ``size / (1 + 2 * margin)`` pixels, the same
for every identity and expression, so shape changes show as changes in the map.

Source SECC = source identity + source expression; driving SECC = source identity + driving
expression (:func:`render_secc_pair`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from thbench.facegeom import raster
from thbench.facegeom.morphable import MorphableModel, load_sfm

MARGIN = 0.05


@dataclass(frozen=True)
class SeccSetup:
    triangles: torch.Tensor
    """(F', 3) int64 triangles without the eye regions."""
    colours: torch.Tensor
    """(V, 3) float32 normalised mean-shape coordinates in [0, 1]."""
    center: tuple[float, float]
    extent: float
    """Model units spanned by the image side before the margin."""


@lru_cache(maxsize=4)
def secc_setup(model: MorphableModel) -> SeccSetup:
    mean = model.mean.astype(np.float64)
    low, high = mean.min(axis=0), mean.max(axis=0)
    colours = (mean - low) / (high - low)
    keep = ~model.eye_mask[model.triangles].any(axis=1)
    center = (float((low[0] + high[0]) / 2), float((low[1] + high[1]) / 2))
    return SeccSetup(
        triangles=torch.from_numpy(model.triangles[keep].astype(np.int64)),
        colours=torch.from_numpy(colours.astype(np.float32)),
        center=center, extent=float(max(high[0] - low[0], high[1] - low[1])),
    )


def render_vertices(vertices: torch.Tensor, size: int, model: MorphableModel) -> torch.Tensor:
    """SECC of canonical-pose meshes: vertices (B, V, 3) in model units -> (B, 3, size, size)."""
    setup = secc_setup(model)
    vertices = torch.as_tensor(vertices, dtype=torch.float32)
    device = vertices.device
    scale = size / (setup.extent * (1.0 + 2.0 * MARGIN))
    screen = raster.orthographic(vertices, scale, size, size, center=setup.center)
    triangles = setup.triangles.to(device)
    fragments = raster.rasterize(screen, triangles, size, size)
    image = raster.interpolate(setup.colours.to(device), fragments, triangles)
    return image.clamp(0.0, 1.0).permute(0, 3, 1, 2).contiguous()


def render_secc_batch(identity: np.ndarray | torch.Tensor, expression: np.ndarray | torch.Tensor,
                      size: int = 256, model: MorphableModel | None = None,
                      device: str | torch.device = "cpu") -> torch.Tensor:
    """identity (B, K_id), expression (B, K_exp) -> SECC maps (B, 3, size, size) in [0, 1]."""
    model = model or load_sfm()
    return render_vertices(mesh_vertices(identity, expression, model, device), size, model)


def mesh_vertices(identity: np.ndarray | torch.Tensor, expression: np.ndarray | torch.Tensor,
                  model: MorphableModel, device: str | torch.device = "cpu") -> torch.Tensor:
    """identity (B, K_id), expression (B, K_exp) -> canonical-pose vertices (B, V, 3), model
    units."""
    identity = torch.as_tensor(np.asarray(identity, np.float32), device=device)
    expression = torch.as_tensor(np.asarray(expression, np.float32), device=device)
    mean = torch.from_numpy(model.mean).to(device)
    id_basis = torch.from_numpy(model.identity_basis).to(device)
    exp_basis = torch.from_numpy(model.expression_basis).to(device)
    return (mean[None] + torch.einsum("vck,bk->bvc", id_basis, identity)
            + torch.einsum("vck,bk->bvc", exp_basis, expression))


def render_secc(identity: np.ndarray | torch.Tensor, expression: np.ndarray | torch.Tensor,
                size: int = 256, model: MorphableModel | None = None,
                device: str | torch.device = "cpu") -> torch.Tensor:
    """identity (K_id,), expression (K_exp,) -> SECC map (3, size, size) float in [0, 1]."""
    identity = np.asarray(torch.as_tensor(identity).cpu(), np.float32)[None]
    expression = np.asarray(torch.as_tensor(expression).cpu(), np.float32)[None]
    return render_secc_batch(identity, expression, size, model, device)[0]


def render_secc_pair(source_identity: np.ndarray, source_expression: np.ndarray,
                     driving_expression: np.ndarray, size: int = 256,
                     model: MorphableModel | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(source SECC, driving SECC), each (3, size, size): the driving map keeps the source's
    identity and takes the driving frame's expression."""
    identity = np.stack([source_identity, source_identity])
    expression = np.stack([source_expression, driving_expression])
    maps = render_secc_batch(identity, expression, size, model)
    return maps[0], maps[1]
