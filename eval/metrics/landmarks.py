"""Landmark metrics against the ground truth (same-identity only): AKD and MKR.

- ``akd``: average keypoint distance: per frame, the mean over the 68 iBUG landmarks of the
  Euclidean distance (pixels, at the evaluation frame size) between the generated frame's and
  the ground-truth frame's landmarks; averaged over the frames where the ground truth has a
  face. A generated frame without a detected face reads the landmarks dlib predicts inside the
  ground truth's face box, never better than chance (:func:`chance_distance`: each ground-truth
  landmark against a uniformly random point of the box its 68 landmarks span). Lower better.
- ``akd_fomm``: AKD as FOMM's public evaluation code computes it (AliaksandrSiarohin/
  pose-evaluation, ``cmp_kp.py`` at commit 5a5c45e "Add all the metrics", unchanged at HEAD
  1bc4cae): per frame ``mean(|kp_gt - kp_gen|)`` over the 68x2 coordinates (a mean absolute
  *coordinate* difference, not a per-point Euclidean distance: for isotropic errors it reads
  about 1.4 to 2 times lower than ``akd``); frames whose generated landmarks are missing are
  left out (and counted), as there; frames whose ground truth has none are left out too (there
  ``cmp_kp.py`` stops with a TypeError). A paper-compatible variant: ``ranking = False``.
- ``mkr``: missing keypoint rate: the share of frames, among those where the ground truth has a
  face, in which no face is found in the generated frame. Lower better. Frames whose ground
  truth has no face are excluded.
- ``no_face``: the output's no-face rate, in both protocols: the share of frames, among those
  whose driving frame has a face, in which no face is found in the generated frame (in
  same-identity pairs the driving frame is the ground truth, so it equals ``mkr``). Those frames
  are still scored by the ranking face metrics (in the reference box, at worst chance); this
  column says how many there were.

Landmarks come from the shared frame analyses, from the backend named by ``landmarks``:
``"dlib"`` (default, offline: dlib HOG detector + 68-point shape predictor) or ``"fan"``
(face-alignment's S3FD detector + 2D-FAN-4, what FOMM's and TPSMM's evaluations used; weights
through the asset manager). With ``"fan"`` a frame "has a face" when S3FD finds one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thbench.datasets.protocols import ALL_PROTOCOLS, RECONSTRUCTION
from thbench.eval.metrics.base import FrameBatch, MetricValue
from thbench.eval.metrics.face import (
    AnalysisMetric,
    FaceFrameMetric,
    FommFormula,
    frame_mean,
    missing_assets,
    missing_module,
)

DETECTOR_BACKEND = "det=dlib-hog(upsample=1)|lmk=dlib-shape_predictor_68_face_landmarks"
KEYS = ("det", "lmk")
FOMM_CMP_KP = "pose-evaluation cmp_kp.py@5a5c45e (mean |d| over 68x2 coordinates)"


LANDMARK_BACKENDS = ("dlib", "fan")


class _LandmarkSource:
    """The ``landmarks`` option shared by the landmark metrics: which analysis fields to read."""

    def __init__(self, landmarks: str = "dlib") -> None:
        self._choose(landmarks)
        self.reset()

    def _choose(self, landmarks: str) -> None:
        if landmarks not in LANDMARK_BACKENDS:
            raise ValueError(f"{self.name}: landmarks must be one of {LANDMARK_BACKENDS}, "
                             f"got {landmarks!r}")
        self.landmarks = landmarks
        self.parts = ("fan",) if landmarks == "fan" else ()
        self.backend_keys = ("fan",) if landmarks == "fan" else KEYS

    def default_backend(self) -> str:
        if self.landmarks == "fan":
            from thbench.facegeom.fan import FANLandmarks

            return f"fan={FANLandmarks().backend}"
        return DETECTOR_BACKEND

    def available(self) -> str:
        if self.landmarks == "fan":
            from thbench.facegeom.fan import missing

            return missing()
        return missing_module("dlib", "dlib-bin") or missing_assets("dlib_landmarks68")

    def present(self, analysis: Any) -> bool:
        if self.landmarks == "fan":
            return getattr(analysis, "fan_landmarks", None) is not None
        return analysis.has_face

    def usable(self, generated: Any) -> bool:
        """In-box analyses hold dlib landmarks only: a FAN metric scores such a frame at chance."""
        return self.landmarks == "dlib" and bool(getattr(generated, "in_reference_box", False))

    def points(self, analysis: Any) -> np.ndarray:
        return analysis.fan_landmarks if self.landmarks == "fan" else analysis.landmarks


def keypoint_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Euclidean distance between corresponding (N, 2) points."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"landmark shapes differ: {a.shape} vs {b.shape}")
    return float(np.linalg.norm(a - b, axis=-1).mean())


CHANCE_GRID = 32
"""Cells per side of the midpoint grid that averages over the uniform points of a box."""


def chance_distance(points: np.ndarray) -> float:
    """Mean over ``points`` (N, 2) of the expected distance to a uniformly random point of the
    box they span (midpoint rule on a 32 x 32 grid): the keypoint distance of a guess that knows
    only where the face is."""
    points = np.asarray(points, np.float64)
    low, high = points.min(axis=0), points.max(axis=0)
    steps = (np.arange(CHANCE_GRID) + 0.5) / CHANCE_GRID
    xs, ys = np.meshgrid(low[0] + steps * (high[0] - low[0]), low[1] + steps * (high[1] - low[1]))
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
    return float(np.linalg.norm(points[:, None] - grid[None], axis=-1).mean())


class AKD(_LandmarkSource, FaceFrameMetric):
    """Average keypoint distance (pixels) to the ground truth's 68 landmarks."""

    name = "akd"
    higher_is_better = False
    protocols = RECONSTRUCTION
    reference = "ground_truth"
    chance_floor = True

    def value(self, generated: Any, reference: Any) -> float:
        return keypoint_distance(self.points(generated), self.points(reference))

    def chance(self, reference: Any) -> float:
        return chance_distance(self.points(reference))


def mean_abs_coordinate_difference(a: np.ndarray, b: np.ndarray) -> float:
    """``mean(|a - b|)`` over every coordinate of corresponding (N, 2) points (``cmp_kp.py``)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"landmark shapes differ: {a.shape} vs {b.shape}")
    return float(np.abs(a - b).mean())


class AKDFomm(FommFormula, AKD):
    """AKD as FOMM's ``pose-evaluation/cmp_kp.py`` (commit 5a5c45e): mean |Δ| over 68x2 coords."""

    name = "akd_fomm"
    fomm_script = FOMM_CMP_KP

    def value(self, generated: Any, reference: Any) -> float:
        return mean_abs_coordinate_difference(self.points(generated), self.points(reference))

    def update(self, batch: FrameBatch) -> None:
        """``cmp_kp.py``'s rule: a frame whose generated landmarks are missing is left out."""
        for generated, reference in self._pairs(batch):
            if not (self.present(generated) and self.present(reference)):
                self._excluded += 1
                continue
            self._sum += self.value(generated, reference)
            self._count += 1

    def compute(self) -> MetricValue:
        return frame_mean(self._sum, self._count, self._excluded,
                          "no frame with landmarks in both the generated and the ground-truth "
                          "frame")


class MKR(_LandmarkSource, AnalysisMetric):
    """Share of frames with a ground-truth face where the generated frame has none."""

    name = "mkr"
    higher_is_better = False
    protocols = RECONSTRUCTION
    reference = "ground_truth"

    def update(self, batch: FrameBatch) -> None:
        for generated, truth in self._pairs(batch):
            if not self.present(truth):
                self._excluded += 1
                continue
            self._count += 1
            self._missing += 0 if self.present(generated) else 1

    def compute(self) -> MetricValue:
        return frame_mean(self._missing, self._count, self._excluded,
                          f"no {self.reference.replace('_', '-')} frame with a face")

    def reset(self) -> None:
        self._count, self._missing, self._excluded = 0, 0, 0


class NoFace(MKR):
    """The output's no-face rate: frames with a driving face where the output has none."""

    name = "no_face"
    protocols = ALL_PROTOCOLS
    reference = "driving"
