"""Landmark metrics against the ground truth (same-identity only): AKD and MKR.

- ``akd``: average keypoint distance: per frame, the mean over the 68 iBUG landmarks of the
  Euclidean distance (pixels, at the evaluation frame size) between the generated frame's and
  the ground-truth frame's landmarks; averaged over frames where both have a face. Lower better.
- ``mkr``: missing keypoint rate: the share of frames, among those where the ground truth has a
  face, in which no face is found in the generated frame. Lower better. Frames whose ground
  truth has no face are excluded.

Landmarks come from the shared frame analyses (dlib HOG detector + 68-point shape predictor).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eval.metrics.base import SAME_IDENTITY, FrameBatch, MetricValue
from eval.metrics.face import AnalysisMetric, FaceFrameMetric, missing_assets, missing_module

DETECTOR_BACKEND = "det=dlib-hog(upsample=1)|lmk=dlib-shape_predictor_68_face_landmarks"
KEYS = ("det", "lmk")


def _dlib_available() -> str:
    return missing_module("dlib", "dlib-bin") or missing_assets("dlib_landmarks68")


def _dlib_backend() -> str:
    return DETECTOR_BACKEND


def keypoint_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Euclidean distance between corresponding (N, 2) points."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"landmark shapes differ: {a.shape} vs {b.shape}")
    return float(np.linalg.norm(a - b, axis=-1).mean())


class AKD(FaceFrameMetric):
    """Average keypoint distance (pixels) to the ground truth's 68 landmarks."""

    name = "akd"
    higher_is_better = False
    protocols = (SAME_IDENTITY,)
    reference = "ground_truth"
    parts = ()
    backend_keys = KEYS

    def default_backend(self) -> str:
        return _dlib_backend()

    def available(self) -> str:
        return _dlib_available()

    def value(self, generated: Any, reference: Any) -> float:
        return keypoint_distance(generated.landmarks, reference.landmarks)


class MKR(AnalysisMetric):
    """Share of frames with a ground-truth face where the generated frame has none."""

    name = "mkr"
    higher_is_better = False
    protocols = (SAME_IDENTITY,)
    reference = "ground_truth"
    parts = ("landmarks",)

    def __init__(self) -> None:
        self.reset()

    @property
    def backend(self) -> str:
        return _dlib_backend()

    def available(self) -> str:
        return _dlib_available()

    def update(self, batch: FrameBatch) -> None:
        for generated, truth in self._pairs(batch):
            if not truth.has_face:
                self._excluded += 1
                continue
            self._count += 1
            self._missing += 0 if generated.has_face else 1

    def compute(self) -> MetricValue:
        if self._count == 0:
            result = MetricValue.skipped(
                f"no ground-truth frame with a face ({self._excluded} excluded)"
            )
            result.excluded = self._excluded
            return result
        return MetricValue(self._missing / self._count, self._count, excluded=self._excluded)

    def reset(self) -> None:
        self._count, self._missing, self._excluded = 0, 0, 0
