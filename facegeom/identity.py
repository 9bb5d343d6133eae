"""Identity embeddings of a detected face: dlib's 128-d descriptor and ArcFace (insightface).

Both take the RGB uint8 frame and a :class:`thbench.facegeom.detect.Face` (its 68 landmarks), or,
with ``embed_frame``, the whole frame resized to the network's input without any detection or
alignment (how FOMM's pose-evaluation embeds frames for its AED: the whole face crop). Each
has
``backend`` (network + weights, with the weights' sha256 prefix) and ``available()``: "" when it
can run, else one line with the reason and the fix. Nothing falls back to another backend.
"""

from __future__ import annotations

import warnings
from functools import cached_property
from pathlib import Path

import numpy as np

from thbench.core import assets
from thbench.facegeom.detect import Face

ARCFACE_SIZE = 112
DLIB_CHIP_SIZE = 150
"""Side of the aligned face chip dlib's ResNet descriptor reads."""


def resized(image: np.ndarray, size: int) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> (size, size, 3) uint8, bilinear (the whole frame, no crop)."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image))
    return np.asarray(picture.resize((size, size), Image.Resampling.BILINEAR))


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """(68, 2) iBUG landmarks -> (5, 2) float32: left eye, right eye (image left/right: means of
    36-41 and 42-47), nose tip 30, mouth corners 48 and 54 (insightface's ``kps`` order)."""
    landmarks = np.asarray(landmarks, np.float32)
    return np.stack([
        landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0),
        landmarks[30], landmarks[48], landmarks[54],
    ]).astype(np.float32)


def _short_sha(path: Path) -> str:
    return assets.sha256_of(path)[:8]


class DlibDescriptor:
    """dlib ``face_recognition_model_v1`` (ResNet, 128-d) on the 68-landmark shape."""

    asset = "dlib_face_descriptor"
    dim = 128

    def __init__(self, num_jitters: int = 0) -> None:
        self.num_jitters = num_jitters

    @property
    def backend(self) -> str:
        return f"dlib-resnet-v1:dlib_face_recognition_resnet_model_v1,jitter={self.num_jitters}"

    def available(self) -> str:
        try:
            assets.resolve(self.asset)
        except assets.AssetError as error:
            return str(error)
        return ""

    @cached_property
    def _model(self):
        import dlib

        return dlib.face_recognition_model_v1(str(assets.resolve(self.asset)))

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        """(128,) float32 descriptor of ``face`` in the RGB uint8 (H, W, 3) ``image``."""
        import dlib

        x0, y0, x1, y1 = (int(round(v)) for v in face.bbox)
        points = dlib.points([dlib.point(int(round(x)), int(round(y)))
                              for x, y in np.asarray(face.landmarks)])
        shape = dlib.full_object_detection(dlib.rectangle(x0, y0, x1, y1), points)
        vector = self._model.compute_face_descriptor(np.ascontiguousarray(image), shape,
                                                     self.num_jitters)
        return np.asarray(vector, np.float32)

    def embed_frame(self, image: np.ndarray) -> np.ndarray:
        """(128,) float32 descriptor of the whole RGB frame taken as the 150x150 face chip."""
        chip = np.ascontiguousarray(resized(image, DLIB_CHIP_SIZE))
        return np.asarray(self._model.compute_face_descriptor(chip, self.num_jitters),
                          np.float32)


class ArcFace:
    """ArcFace recognition ONNX model (insightface ``buffalo_l`` ``w600k_r50``, 512-d) on CPU.

    The face is aligned with ``face_align.norm_crop`` from the five points of the dlib 68
    landmarks and fed as BGR uint8 112 x 112. ``model_path`` overrides the asset (for tests or
    another recognition model of the same interface); the backend string then names that file.
    """

    asset = "arcface_r50"

    def __init__(self, model_path: str | Path | None = None) -> None:
        self.model_path = Path(model_path) if model_path else None

    def _path(self) -> Path:
        return self.model_path if self.model_path else assets.resolve(self.asset)

    @property
    def backend(self) -> str:
        try:
            path = self._path()
        except assets.AssetError:
            return "arcface-r50:w600k_r50.onnx(missing)"
        if self.model_path is None:
            return "arcface-r50:insightface-buffalo_l/w600k_r50.onnx"
        return f"arcface:{path.name}@{_short_sha(path)}"

    def available(self) -> str:
        try:
            path = self._path()
        except assets.AssetError as error:
            return str(error)
        if not path.is_file():
            return f"ArcFace model {path} not found; fix: pass an existing .onnx file"
        try:
            import insightface  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError as error:
            return f"ArcFace needs insightface and onnxruntime ({error}); fix: pip install them"
        return ""

    @cached_property
    def _model(self):
        from insightface.model_zoo import get_model

        model = get_model(str(self._path()), providers=["CPUExecutionProvider"])
        if model is None or not hasattr(model, "get_feat"):
            raise ValueError(f"{self._path()} is not a recognition model insightface can route")
        return model

    @property
    def dim(self) -> int:
        return int(self._model.output_shape[-1])

    def aligned(self, image: np.ndarray, face: Face) -> np.ndarray:
        """BGR uint8 (112, 112, 3) crop aligned by the five landmark points."""
        from insightface.utils import face_align

        bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
        with warnings.catch_warnings():  # scikit-image's deprecation of estimate()
            warnings.simplefilter("ignore", FutureWarning)
            return face_align.norm_crop(bgr, landmark=five_points(face.landmarks),
                                         image_size=ARCFACE_SIZE)

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        """(512,) float32 raw embedding (not normalised; CSIM normalises)."""
        return np.asarray(self._model.get_feat(self.aligned(image, face)), np.float32).reshape(-1)

    def embed_frame(self, image: np.ndarray) -> np.ndarray:
        """(512,) float32 raw embedding of the whole RGB frame resized to 112x112 (BGR)."""
        bgr = np.ascontiguousarray(resized(image, ARCFACE_SIZE)[:, :, ::-1])
        return np.asarray(self._model.get_feat(bgr), np.float32).reshape(-1)
