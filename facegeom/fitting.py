"""3DMM fitting from 68 iBUG landmarks with eos-py (Surrey Face Model + 6 expression blendshapes).

eos fits a scaled-orthographic camera, 63 identity coefficients and 6 blendshape coefficients,
alternating pose, contour correspondences and shape (``num_iterations`` rounds). Landmark-only
fitting leaves identity close to the mean unless ``lambda_identity`` is small: the lambdas are
part of :attr:`Fitter.backend`, because AVD and AED-3dmm values depend on them.

Canonical meshes are in model units, millimetres for the SFM (about 150 mm ear to ear), with
zero rotation and translation: :meth:`Fit.neutral_mesh` (identity only, neutral expression) and
:meth:`Fit.expressive_mesh` (identity + expression).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import version
from pathlib import Path

import numpy as np

from thbench.core import assets
from thbench.facegeom.morphable import MorphableModel, load_sfm

JAW_CONTOUR = tuple(i for i in range(17) if i != 8)
"""0-based iBUG jaw points without a fixed SFM vertex (eos picks their vertices per fit)."""

STABLE_IDENTITY_LANDMARKS = tuple(range(17, 60))
"""0-based iBUG points a speech-robust identity is fitted from: brows, nose, eyes and the outer
lip contour, without the jaw line (0-16) and the inner mouth (60-67). On the sample set's real
clips this lowers ``avd_s``'s floor (a clip vs one of its frames) from 0.61 to 0.24 mm while the
signal (a clip vs another person's frame) goes from 1.45 to 0.89 mm: ratio 2.4 -> 3.7
(docs/metrics.md). The jaw line moves with speech and its correspondences are re-chosen per fit;
even three of its points (0, 8, 16) bring the ratio back to 2.3."""


@dataclass(frozen=True)
class Fit:
    """One frame's fit. Angles in degrees (eos convention: yaw positive when the subject turns
    to their left, i.e. toward image right; pitch positive tilting the nose down (the rotation
    is Ry(yaw) Rx(pitch) Rz(roll), see hidenerf/cameras.py and its test); roll positive
    counter-clockwise in the image)."""

    yaw: float
    pitch: float
    roll: float
    rotation: np.ndarray
    """(3, 3) model-to-camera rotation."""
    translation: np.ndarray
    """(3,) eos's translation in model units, orthographic frame (origin bottom-left, y up)."""
    scale: float
    """Pixels per model unit (mm) of the scaled-orthographic camera."""
    camera: np.ndarray
    """(3, 4) affine matrix from model space to pixel coordinates (x right, y down)."""
    identity: np.ndarray
    """(63,) identity coefficients (standard deviations of the SFM PCA model)."""
    expression: np.ndarray
    """(6,) blendshape coefficients."""
    reprojection_px: float
    """Mean distance (pixels) between the 68 landmarks and their projected model points."""
    reprojection_iod: float
    """``reprojection_px`` divided by the inter-ocular distance (outer eye corners 36-45)."""

    def project(self, vertices: np.ndarray) -> np.ndarray:
        """(N, 3) model-space points -> (N, 2) pixel coordinates."""
        return vertices @ self.camera[:2, :3].T + self.camera[:2, 3]

    def neutral_mesh(self, model: MorphableModel) -> np.ndarray:
        """(V, 3) identity-only mesh, neutral expression, zero pose, model units (mm)."""
        return model.shape(self.identity, None)

    def expressive_mesh(self, model: MorphableModel) -> np.ndarray:
        """(V, 3) identity + expression mesh, zero pose, model units (mm)."""
        return model.shape(self.identity, self.expression)


class Fitter:
    """Landmarks (68, 2) in pixels -> :class:`Fit`, using eos with contour fitting."""

    def __init__(self, num_iterations: int = 5, lambda_identity: float = 30.0,
                 lambda_expressions: float = 30.0, offline: str | None = None,
                 identity_landmarks: Sequence[int] | None = None) -> None:
        self.num_iterations = num_iterations
        self.lambda_identity = lambda_identity
        self.lambda_expressions = lambda_expressions
        self.offline = offline
        self.identity_landmarks = (None if identity_landmarks is None
                                   else tuple(sorted(int(i) for i in identity_landmarks)))
        """When set, :meth:`fit`'s identity comes from a second fit to these 0-based iBUG points
        only (e.g. :data:`STABLE_IDENTITY_LANDMARKS`); pose and expression from all 68."""

    @property
    def backend(self) -> str:
        label = (f"eos-{version('eos-py')}:sfm3448+6bs,contour,it={self.num_iterations},"
                 f"lambda_id={self.lambda_identity:g},lambda_exp={self.lambda_expressions:g}")
        if self.identity_landmarks is not None:
            label += f",identity_from={_ranges(self.identity_landmarks)}"
        return label

    def available(self) -> str:
        """"" when the SFM files resolve, else the reason with the fix."""
        try:
            for name in ("sfm_shape", "sfm_expression", "sfm_ibug_mapping",
                         "sfm_edge_topology", "sfm_contours"):
                self._path(name)
        except assets.AssetError as error:
            return str(error)
        return ""

    def _path(self, name: str) -> Path:
        return assets.resolve(name, Path(self.offline) if self.offline else None)

    @cached_property
    def model(self) -> MorphableModel:
        return load_sfm(self.offline)

    @cached_property
    def _eos(self):
        import eos

        shape = eos.morphablemodel.load_model(str(self._path("sfm_shape"))).get_shape_model()
        blendshapes = eos.morphablemodel.load_blendshapes(str(self._path("sfm_expression")))
        mapping = str(self._path("sfm_ibug_mapping"))
        contours = str(self._path("sfm_contours"))
        with open(contours) as handle:
            table = json.load(handle)["model_contour"]
        contour_ids = np.array(table["right_contour"] + table["left_contour"], np.int64)
        return {
            "eos": eos,
            "shape": shape,
            "blendshapes": blendshapes,
            "model": eos.morphablemodel.MorphableModel(
                shape, blendshapes, color_model=eos.morphablemodel.PcaModel()),
            "mapper": eos.core.LandmarkMapper(mapping),
            "edges": eos.morphablemodel.load_edge_topology(str(self._path("sfm_edge_topology"))),
            "contour_landmarks": eos.fitting.ContourLandmarks.load(mapping),
            "model_contour": eos.fitting.ModelContour.load(contours),
            "contour_ids": contour_ids,
        }

    def _model_with_identity(self, identity: np.ndarray):
        """An eos model whose mean is the given identity: fitting it with a huge identity lambda
        keeps that identity fixed while pose and expression are refitted."""
        e = self._eos
        eos, shape = e["eos"], e["shape"]
        mean = np.asarray(shape.get_mean(), np.float64)
        mean = mean + np.asarray(shape.get_rescaled_pca_basis(), np.float64) @ identity
        recentred = eos.morphablemodel.PcaModel(
            mean.astype(np.float32), shape.get_orthonormal_pca_basis(),
            shape.get_eigenvalues(), shape.get_triangle_list())
        return eos.morphablemodel.MorphableModel(
            recentred, e["blendshapes"], color_model=eos.morphablemodel.PcaModel())

    def fit(self, landmarks: np.ndarray, width: int, height: int) -> Fit:
        """Fit one frame; ``landmarks`` (68, 2) float pixel coordinates (x, y)."""
        fit = self._fit(self._eos["model"], landmarks, width, height, self.lambda_identity,
                        fixed_identity=None)
        if self.identity_landmarks is None:
            return fit
        return dataclasses.replace(fit, identity=self.identity_only(landmarks, width, height))

    def identity_only(self, landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
        """(63,) float32 identity coefficients fitted to :attr:`identity_landmarks` alone."""
        e = self._eos
        eos = e["eos"]
        points = [eos.core.Landmark(str(i + 1), [float(x), float(y)])
                  for i, (x, y) in enumerate(np.asarray(landmarks, np.float64))
                  if i in self.identity_landmarks]
        _, _, shape_coeffs, _ = eos.fitting.fit_shape_and_pose(
            e["model"], points, e["mapper"], int(width), int(height), e["edges"],
            e["contour_landmarks"], e["model_contour"], self.num_iterations, None,
            float(self.lambda_identity), None, float(self.lambda_expressions))
        return np.asarray(shape_coeffs, np.float32)

    def _fit(self, model, landmarks, width, height, lambda_identity, fixed_identity) -> Fit:
        e = self._eos
        eos = e["eos"]
        points = [eos.core.Landmark(str(i + 1), [float(x), float(y)])
                  for i, (x, y) in enumerate(np.asarray(landmarks, np.float64))]
        mesh, params, shape_coeffs, blend_coeffs = eos.fitting.fit_shape_and_pose(
            model, points, e["mapper"], int(width), int(height), e["edges"],
            e["contour_landmarks"], e["model_contour"], self.num_iterations, None,
            float(lambda_identity), None, float(self.lambda_expressions))
        camera = np.asarray(eos.fitting.get_3x4_affine_camera_matrix(params, int(width),
                                                                     int(height)), np.float64)
        vertices = np.asarray(mesh.vertices, np.float64)
        identity = (np.asarray(shape_coeffs, np.float32) if fixed_identity is None
                    else np.asarray(fixed_identity, np.float32))
        yaw, pitch, roll = (float(a) for a in params.get_yaw_pitch_roll())
        error = reprojection_error(landmarks, vertices, camera, self.model.landmark_vertices,
                                   e["contour_ids"])
        iod = float(np.linalg.norm(np.asarray(landmarks[36]) - np.asarray(landmarks[45])))
        return Fit(
            yaw=yaw, pitch=pitch, roll=roll,
            rotation=np.asarray(params.get_modelview(), np.float64)[:3, :3],
            translation=np.asarray(params.get_translation(), np.float64),
            scale=float(np.linalg.norm(camera[0, :3])), camera=camera,
            identity=identity, expression=np.asarray(blend_coeffs, np.float32),
            reprojection_px=error, reprojection_iod=error / iod if iod > 0 else math.nan,
        )

    def fit_clip(self, landmarks: Sequence[np.ndarray], width: int, height: int) -> list[Fit]:
        """Fit frames of one clip with one shared identity.

        Each frame is fitted independently, the identity coefficients are averaged over the
        frames (:func:`shared_identity`), and every frame is refitted (pose + expression) with
        the identity held at that average (the model is re-centred on it and its identity
        lambda set to 1e9).
        """
        first = [self.fit(points, width, height) for points in landmarks]
        shared = shared_identity([f.identity for f in first])
        model = self._model_with_identity(shared)
        return [self._fit(model, points, width, height, 1e9, fixed_identity=shared)
                for points in landmarks]


def _ranges(indices: Sequence[int]) -> str:
    """``(17, 18, ..., 59)`` -> ``"17-59"``; runs joined by ``+``."""
    runs: list[list[int]] = []
    for index in indices:
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return "+".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def shared_identity(identities: Sequence[np.ndarray]) -> np.ndarray:
    """One clip's identity: the mean of its frames' identity coefficients (63,), float64.

    The canonical mesh of a clip (AVD, SECC) uses this instead of any single frame's fit: a
    per-frame landmark fit mixes expression and pose into identity, and the mean over frames
    averages that out (the noise floor it leaves is measured in docs/metrics.md). A joint
    least-squares fit of one identity to all frames' landmarks (per-frame cameras and
    expressions held) gave the same floor-to-signal ratio on the sample set, so the simpler
    mean is used.
    """
    stacked = np.asarray([np.asarray(i, np.float64) for i in identities])
    if stacked.ndim != 2 or len(stacked) == 0:
        raise ValueError(f"expected one or more identity vectors, got shape {stacked.shape}")
    return stacked.mean(axis=0)


def reprojection_error(landmarks: np.ndarray, vertices: np.ndarray, camera: np.ndarray,
                       landmark_vertices: np.ndarray, contour_ids: np.ndarray) -> float:
    """Mean pixel distance between 68 landmarks and the fitted model's projection.

    Points with a fixed vertex use it; jaw-contour points use the nearest projected model contour
    vertex (as eos chooses their correspondences). ``vertices`` (V, 3) are the fitted mesh in
    model space, ``camera`` (3, 4) the affine model-to-pixel matrix.
    """
    landmarks = np.asarray(landmarks, np.float64)
    projected = vertices @ camera[:2, :3].T + camera[:2, 3]
    distances = []
    for index in range(68):
        vertex = landmark_vertices[index]
        if vertex >= 0:
            distances.append(np.linalg.norm(projected[vertex] - landmarks[index]))
        elif index in JAW_CONTOUR:
            gaps = np.linalg.norm(projected[contour_ids] - landmarks[index], axis=1)
            distances.append(gaps.min())
    return float(np.mean(distances))
