"""Face detection and 68 iBUG landmarks with dlib (HOG detector + shape predictor).

The model files come through the asset manager (shipped by ``face_recognition_models``);
that package's ``__init__`` imports ``pkg_resources``, so its files are located without
importing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image

from thbench.core import assets

MAX_DETECTION_SIDE = 1280
"""Longer image side (pixels) above which detection runs on a downscaled copy."""


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
        """All faces in an RGB uint8 (H, W, 3) image, largest first.

        Images whose longer side exceeds :data:`MAX_DETECTION_SIDE` are searched at that size
        (a 4K frame costs seconds otherwise, and faces that large need no upsampling); the
        boxes are scaled back and the landmarks are found in the full-resolution image.
        """
        import dlib

        scale = min(1.0, MAX_DETECTION_SIDE / max(image.shape[:2]))
        searched = image
        if scale < 1.0:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            searched = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        rects, scores, _ = self._detector.run(searched, self.upsample, 0.0)
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            if scale < 1.0:
                rect = dlib.rectangle(*(round(v / scale) for v in (
                    rect.left(), rect.top(), rect.right(), rect.bottom())))
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
