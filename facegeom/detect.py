"""Face detection and 68 iBUG landmarks with dlib (HOG detector + shape predictor).

The model files come through the asset manager (shipped by ``face_recognition_models``);
that package's ``__init__`` imports ``pkg_resources``, so its files are located without
importing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from benchcore import assets


@dataclass(frozen=True)
class Face:
    """One detected face in pixel coordinates of the analysed image."""

    bbox: tuple[float, float, float, float]
    """(x0, y0, x1, y1)."""
    landmarks: np.ndarray
    """(68, 2) float32 iBUG 68-point landmarks (x, y)."""
    score: float

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.bbox
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    def inter_ocular(self) -> float:
        """Distance between the outer eye corners (landmarks 36 and 45)."""
        return float(np.linalg.norm(self.landmarks[36] - self.landmarks[45]))


class FaceDetector:
    """dlib HOG face detector and 68-point shape predictor.

    ``upsample`` is dlib's number of image pyramid upsamplings: 1 finds faces down to about
    40 px, at about four times the cost of 0.
    """

    backend = "dlib-hog+shape_predictor_68"

    def __init__(self, upsample: int = 1) -> None:
        self.upsample = upsample

    @cached_property
    def _detector(self):
        import dlib

        return dlib.get_frontal_face_detector()

    @cached_property
    def _predictor(self):
        import dlib

        return dlib.shape_predictor(str(assets.resolve("dlib_landmarks68")))

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in an RGB uint8 (H, W, 3) image, largest first."""
        rects, scores, _ = self._detector.run(image, self.upsample, 0.0)
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            faces.append(self._face(image, rect, float(score)))
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def landmarks_in_box(self, image: np.ndarray, bbox: tuple[float, float, float, float]) -> Face:
        """68 landmarks for a known face box (e.g. tracked from the previous frame)."""
        import dlib

        rect = dlib.rectangle(*(int(round(v)) for v in bbox))
        return self._face(image, rect, float("nan"))

    def _face(self, image: np.ndarray, rect, score: float) -> Face:
        shape = self._predictor(image, rect)
        points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
        bbox = (float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))
        return Face(bbox=bbox, landmarks=points, score=score)

    def largest(self, image: np.ndarray) -> Face | None:
        faces = self.detect(image)
        return faces[0] if faces else None
