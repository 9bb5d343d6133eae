"""3D morphable face models behind one interface: Surrey Face Model (eos) and Deep3DFaceRecon BFM.

A shape is ``mean + id_basis @ alpha + exp_basis @ beta`` reshaped to (V, 3). Units are the
model's own: the Surrey Face Model is in millimetres (about 150 mm ear to ear), the Deep3DFaceRecon
BFM in its file's units (decimetre-scale: about 1.5 across).

Files come through the asset manager (``sfm_shape``, ``sfm_expression``, ``sfm_ibug_mapping``);
the BFM ``.mat`` is loaded from a path the user gives (it is not redistributable).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from thbench.core import assets

EYE_LANDMARKS = (tuple(range(36, 42)), tuple(range(42, 48)))
"""0-based iBUG indices of the right (subject's) and left eye contours."""


@dataclass(frozen=True, eq=False)
class MorphableModel:
    """A linear 3DMM.

    Shapes: ``mean`` (V, 3); ``identity_basis`` (V, 3, K_id); ``expression_basis`` (V, 3, K_exp);
    ``triangles`` (F, 3) int64, 0-based; ``landmark_vertices`` (68,) int64 with -1 where the
    iBUG point has no fixed vertex (the jaw contour of the SFM); ``eye_mask`` (V,) bool, True for
    vertices of the eye regions that SECC removes.
    """

    name: str
    mean: np.ndarray
    identity_basis: np.ndarray
    expression_basis: np.ndarray
    triangles: np.ndarray
    landmark_vertices: np.ndarray
    eye_mask: np.ndarray
    units: str = "mm"
    expression_names: tuple[str, ...] = field(default=())

    @property
    def num_vertices(self) -> int:
        return int(self.mean.shape[0])

    @property
    def num_identity(self) -> int:
        return int(self.identity_basis.shape[2])

    @property
    def num_expression(self) -> int:
        return int(self.expression_basis.shape[2])

    def shape(self, identity: np.ndarray | None = None,
              expression: np.ndarray | None = None) -> np.ndarray:
        """(V, 3) float32 vertices for identity (K_id,) and expression (K_exp,), zero pose.

        ``None`` means all zeros (the mean identity / neutral expression).
        """
        vertices = self.mean.astype(np.float64)
        if identity is not None:
            vertices = vertices + self.identity_basis @ np.asarray(identity, np.float64)
        if expression is not None:
            vertices = vertices + self.expression_basis @ np.asarray(expression, np.float64)
        return vertices.astype(np.float32)

    def shapes(self, identity: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """Batched :meth:`shape`: identity (B, K_id), expression (B, K_exp) -> (B, V, 3)."""
        identity = np.asarray(identity, np.float64)
        expression = np.asarray(expression, np.float64)
        out = (self.mean[None].astype(np.float64)
               + np.einsum("vck,bk->bvc", self.identity_basis, identity)
               + np.einsum("vck,bk->bvc", self.expression_basis, expression))
        return out.astype(np.float32)


def eye_region_mask(mean: np.ndarray, landmark_vertices: np.ndarray,
                    dilate: float = 0.35) -> np.ndarray:
    """(V,) bool: vertices inside each eye's landmark polygon, grown by ``dilate`` eye widths.

    The polygon is taken in the frontal (x, y) plane of the mean shape; only vertices in front of
    the eyeball plane minus one eye width in depth count, so the back of the head is never cut.
    """
    mask = np.zeros(mean.shape[0], dtype=bool)
    for eye in EYE_LANDMARKS:
        ids = landmark_vertices[list(eye)]
        ids = ids[ids >= 0]
        if len(ids) < 3:
            continue
        ring = mean[ids]
        centre = ring.mean(axis=0)
        width = float(np.ptp(ring[:, 0]))
        grown = centre[:2] + (ring[:, :2] - centre[:2]) * (1.0 + 2.0 * dilate)
        inside = _inside_polygon(mean[:, :2], grown)
        near = np.abs(mean[:, 2] - centre[2]) < width
        mask |= inside & near
    return mask


def _inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule: points (N, 2), polygon (M, 2) in order -> (N,) bool."""
    x, y = points[:, 0:1], points[:, 1:2]
    x0, y0 = polygon[:, 0][None], polygon[:, 1][None]
    x1, y1 = np.roll(polygon[:, 0], -1)[None], np.roll(polygon[:, 1], -1)[None]
    crosses = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return (crosses & (x < x_at)).sum(axis=1) % 2 == 1


def read_ibug_mapping(path: Path) -> np.ndarray:
    """(68,) int64 SFM vertex ids from eos's ``ibug_to_sfm.txt``; -1 where not mapped."""
    with Path(path).open("rb") as handle:
        table = tomllib.load(handle)
    ids = np.full(68, -1, dtype=np.int64)
    for key, vertex in table["landmark_mappings"].items():
        ids[int(key) - 1] = int(vertex)
    return ids


@lru_cache(maxsize=2)
def load_sfm(offline: str | None = None) -> MorphableModel:
    """Surrey Face Model 3448 (63 identity components) with its 6 expression blendshapes.

    The identity basis is eos's rescaled PCA basis (coefficients are in standard deviations);
    the expression basis holds the blendshape deformations (anger, disgust, fear, happiness,
    sadness, surprise), coefficients roughly in [0, 1].
    """
    import eos

    where = Path(offline) if offline else None
    model = eos.morphablemodel.load_model(str(assets.resolve("sfm_shape", where)))
    blendshapes = eos.morphablemodel.load_blendshapes(str(assets.resolve("sfm_expression", where)))
    shape = model.get_shape_model()
    mean = np.asarray(shape.get_mean(), np.float32).reshape(-1, 3)
    v = mean.shape[0]
    id_basis = np.asarray(shape.get_rescaled_pca_basis(), np.float32).reshape(v, 3, -1)
    exp_basis = np.stack([np.asarray(b.deformation, np.float32).reshape(v, 3)
                          for b in blendshapes], axis=-1)
    triangles = np.asarray(shape.get_triangle_list(), np.int64)
    landmarks = read_ibug_mapping(assets.resolve("sfm_ibug_mapping", where))
    return MorphableModel(
        name="sfm3448+6bs", mean=mean, identity_basis=id_basis, expression_basis=exp_basis,
        triangles=triangles, landmark_vertices=landmarks,
        eye_mask=eye_region_mask(mean, landmarks), units="mm",
        expression_names=tuple(b.name for b in blendshapes),
    )


def load_bfm(path: str | Path) -> MorphableModel:
    """Deep3DFaceRecon's ``BFM_model_front.mat`` (scipy.io.loadmat).

    Keys used: ``meanshape`` (1, 3V), ``idBase`` (3V, 80), ``exBase`` (3V, 64), ``tri`` (F, 3)
    1-based, ``keypoints`` (1, 68) 1-based vertex ids. Deep3DFaceRecon recentres the mean shape
    (subtracts its centroid); so does this loader, so canonical meshes match theirs.
    """
    from scipy.io import loadmat

    mat = loadmat(str(path))
    mean = np.asarray(mat["meanshape"], np.float64).reshape(-1, 3)
    centroid = mean.mean(axis=0)
    mean = (mean - centroid).astype(np.float32)
    v = mean.shape[0]
    id_basis = np.asarray(mat["idBase"], np.float32).reshape(v, 3, -1)
    exp_basis = np.asarray(mat["exBase"], np.float32).reshape(v, 3, -1)
    triangles = np.asarray(mat["tri"], np.int64) - 1
    keypoints = np.asarray(mat["keypoints"], np.int64).reshape(-1) - 1
    return MorphableModel(
        name=f"bfm-deep3d:{Path(path).name}", mean=mean, identity_basis=id_basis,
        expression_basis=exp_basis, triangles=triangles, landmark_vertices=keypoints,
        eye_mask=eye_region_mask(mean, keypoints), units="bfm",
    )
