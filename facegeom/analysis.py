"""Per-frame face analysis (detection, 68 landmarks, 3DMM fit, identity embeddings), cached.

``FaceAnalyzer(parts=...).analyze(rgb)`` returns a :class:`FrameAnalysis` for the largest face.
Parts: ``"fit"`` (eos SFM pose/identity/expression), ``"dlib"`` (128-d descriptor),
``"arcface"`` (512-d), ``"fan"`` (face-alignment's S3FD + FAN 68 landmarks, found independently
of the dlib detection, as FOMM's pose-evaluation finds them: ``fan_landmarks`` is None where
S3FD finds no face), ``"dlib_frame"`` / ``"arcface_frame"`` (the embedding of the *whole frame*,
no detection, as pose-evaluation's ``extract_face_id`` embeds frames: never missing). Detection
and landmarks always run. :meth:`FaceAnalyzer.analyze_in_box` analyses a frame inside a given
face box (a reference frame's) instead of detecting: the record has ``has_face`` False and
``in_reference_box`` True. A requested part whose asset is
missing is left out (its fields stay None/NaN) and named with its reason and fix in
``analyzer.skipped``; it never switches to another backend.

:class:`AnalysisCache` stores one ``.npz`` per (frame bytes, shape, backend string), so each
frame is analysed once per backend across runs and methods.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path

import numpy as np

from thbench.core import atomic
from thbench.facegeom.detect import Face, FaceDetector

PARTS = ("fit", "dlib", "arcface", "fan", "dlib_frame", "arcface_frame")
NUM_IDENTITY, NUM_EXPRESSION = 63, 6

_ARRAYS = {
    "bbox": (4,), "landmarks": (68, 2), "rotation": (3, 3), "translation": (3,),
    "identity": (NUM_IDENTITY,), "expression": (NUM_EXPRESSION,),
}
_OPTIONAL = ("dlib_descriptor", "arcface", "fan_landmarks", "dlib_frame", "arcface_frame")
_OPTIONAL_SHAPES = {"fan_landmarks": (68, 2)}
_FLOATS = ("yaw", "pitch", "roll", "scale", "reprojection_error")


def _nan(shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, np.nan, dtype=np.float32)


@dataclass
class FrameAnalysis:
    """Analysis of one frame's largest face; NaN / None fields where there is no face or a part
    did not run. Angles in degrees (eos convention, see :class:`thbench.facegeom.fitting.Fit`)."""

    has_face: bool
    bbox: np.ndarray = field(default_factory=lambda: _nan((4,)))
    """(4,) float32 (x0, y0, x1, y1) pixels."""
    landmarks: np.ndarray = field(default_factory=lambda: _nan((68, 2)))
    """(68, 2) float32 iBUG landmarks (x, y) pixels."""
    yaw: float = math.nan
    pitch: float = math.nan
    roll: float = math.nan
    rotation: np.ndarray = field(default_factory=lambda: _nan((3, 3)))
    translation: np.ndarray = field(default_factory=lambda: _nan((3,)))
    """(3,) eos translation (model units, orthographic frame)."""
    scale: float = math.nan
    """Pixels per model unit (mm)."""
    identity: np.ndarray = field(default_factory=lambda: _nan((NUM_IDENTITY,)))
    expression: np.ndarray = field(default_factory=lambda: _nan((NUM_EXPRESSION,)))
    reprojection_error: float = math.nan
    """Mean landmark reprojection error as a fraction of the inter-ocular distance."""
    dlib_descriptor: np.ndarray | None = None
    """(128,) float32."""
    arcface: np.ndarray | None = None
    """(512,) float32."""
    fan_landmarks: np.ndarray | None = None
    """(68, 2) float32 FAN landmarks (x, y) pixels; None where S3FD found no face or the part
    did not run."""
    dlib_frame: np.ndarray | None = None
    """(128,) float32 dlib descriptor of the whole frame resized to dlib's 150x150 chip."""
    arcface_frame: np.ndarray | None = None
    """(512,) float32 ArcFace embedding of the whole frame resized to 112x112."""
    in_reference_box: bool = False
    """True when no face was detected and the fields come from :meth:`FaceAnalyzer.analyze_in_box`
    (landmarks predicted inside another frame's face box)."""
    num_faces: int = 0
    backend: str = ""

    @property
    def pose(self) -> np.ndarray:
        """(3,) yaw, pitch, roll in degrees."""
        return np.array([self.yaw, self.pitch, self.roll], dtype=np.float32)

    def to_dict(self) -> dict:
        """JSON-ready dict of plain lists, floats, bools, strings and None."""
        out: dict = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, np.ndarray):
                value = [None if np.isnan(v) else float(v) for v in value.reshape(-1)]
                out[item.name] = value
            elif isinstance(value, float):
                out[item.name] = None if math.isnan(value) else value
            else:
                out[item.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> FrameAnalysis:
        kwargs: dict = {"has_face": bool(data["has_face"])}
        for name, shape in _ARRAYS.items():
            kwargs[name] = _array(data.get(name), shape)
        for name in _OPTIONAL:
            value = data.get(name)
            kwargs[name] = None if value is None else _array(
                value, _OPTIONAL_SHAPES.get(name, (len(value),)))
        for name in _FLOATS:
            value = data.get(name)
            kwargs[name] = math.nan if value is None else float(value)
        kwargs["num_faces"] = int(data.get("num_faces", 0))
        kwargs["in_reference_box"] = bool(data.get("in_reference_box", False))
        kwargs["backend"] = str(data.get("backend", ""))
        return cls(**kwargs)

    def to_npz_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps({
            "has_face": self.has_face, "num_faces": self.num_faces, "backend": self.backend,
            "in_reference_box": self.in_reference_box,
            **{name: getattr(self, name) for name in _FLOATS},
        }))}
        for name in (*_ARRAYS, *_OPTIONAL):
            value = getattr(self, name)
            if value is not None:
                arrays[name] = np.asarray(value, np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_npz_bytes(cls, data: bytes) -> FrameAnalysis:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            kwargs = {name: npz[name] for name in (*_ARRAYS, *_OPTIONAL) if name in npz.files}
        floats = {name: math.nan if meta[name] is None else float(meta[name]) for name in _FLOATS}
        return cls(has_face=bool(meta["has_face"]), num_faces=int(meta["num_faces"]),
                   backend=meta["backend"],
                   in_reference_box=bool(meta.get("in_reference_box", False)),
                   **floats, **kwargs)


def _array(value, shape: tuple[int, ...]) -> np.ndarray:
    if value is None:
        return _nan(shape)
    flat = np.array([np.nan if v is None else v for v in value], dtype=np.float32)
    return flat.reshape(shape)


class AnalysisCache:
    """On-disk cache of :class:`FrameAnalysis`: ``root/<key[:2]>/<key>.npz``.

    The key is sha1 of the frame's bytes, its shape and the analyzer's backend string; writes
    are atomic (:mod:`thbench.core.atomic`: ranks sharing the cache never clash).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(frame: np.ndarray, backend: str) -> str:
        frame = np.ascontiguousarray(frame)
        digest = hashlib.sha1()
        digest.update(str(frame.shape).encode())
        digest.update(str(frame.dtype).encode())
        digest.update(backend.encode())
        digest.update(frame.tobytes())
        return digest.hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def get(self, key: str) -> FrameAnalysis | None:
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.misses += 1
            return None
        try:
            record = FrameAnalysis.from_npz_bytes(data)
        except (ValueError, KeyError, OSError, json.JSONDecodeError):
            self.misses += 1  # a damaged entry is recomputed and overwritten
            return None
        self.hits += 1
        return record

    def put(self, key: str, record: FrameAnalysis) -> None:
        atomic.write_bytes(self.path(key), record.to_npz_bytes())


class FaceAnalyzer:
    """Detect the largest face, its 68 landmarks, and run the requested parts.

    ``parts``: any of :data:`PARTS`. ``cache``: an :class:`AnalysisCache` or a folder for one
    (None: no cache). ``strict``: raise when a requested part is unavailable instead of recording
    it in ``skipped``.
    """

    def __init__(self, parts: Sequence[str] = ("fit", "dlib"),
                 cache: AnalysisCache | str | os.PathLike | None = None, *,
                 detector: FaceDetector | None = None, fitter=None, dlib=None, arcface=None,
                 fan=None, strict: bool = False) -> None:
        unknown = set(parts) - set(PARTS)
        if unknown:
            raise ValueError(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
        from thbench.facegeom.fitting import Fitter
        from thbench.facegeom.identity import ArcFace, DlibDescriptor

        self.detector = detector or FaceDetector()
        self.fitter = (fitter or Fitter()) if "fit" in parts else None
        wants_dlib = {"dlib", "dlib_frame"} & set(parts)
        wants_arcface = {"arcface", "arcface_frame"} & set(parts)
        dlib = (dlib or DlibDescriptor()) if wants_dlib else None
        arcface = (arcface or ArcFace()) if wants_arcface else None
        self.dlib = dlib if "dlib" in parts else None
        self.dlib_frame = dlib if "dlib_frame" in parts else None
        self.arcface = arcface if "arcface" in parts else None
        self.arcface_frame = arcface if "arcface_frame" in parts else None
        if "fan" in parts:
            from thbench.facegeom.fan import FANLandmarks

            self.fan = fan or FANLandmarks()
        else:
            self.fan = None
        self.skipped: dict[str, str] = {}
        for name in PARTS:
            component = getattr(self, _ATTRIBUTE.get(name, name))
            if component is None:
                continue
            reason = component.available()
            if reason:
                if strict:
                    raise RuntimeError(f"part {name!r} unavailable: {reason}")
                warnings.warn(f"face analysis part {name!r} skipped: {reason}", stacklevel=2)
                self.skipped[name] = reason
                setattr(self, _ATTRIBUTE.get(name, name), None)
        self.parts = tuple(p for p in PARTS if p in parts and p not in self.skipped)
        self.cache = AnalysisCache(cache) if isinstance(cache, (str, os.PathLike)) else cache

    @cached_property
    def backend(self) -> str:
        """Detector, landmark model, 3DMM + fitting lambdas, embedders: every number's origin."""
        pieces = [f"det=dlib-hog(upsample={self.detector.upsample})",
                  "lmk=dlib-shape_predictor_68_face_landmarks"]
        if self.fitter is not None:
            pieces.append(f"fit={self.fitter.backend}")
        for name in ("dlib", "arcface", "fan", "dlib_frame", "arcface_frame"):
            component = getattr(self, name)
            if component is not None:
                pieces.append(f"{name}={component.backend}")
        return "|".join(pieces)

    def analyze(self, rgb: np.ndarray) -> FrameAnalysis:
        """RGB uint8 (H, W, 3) -> :class:`FrameAnalysis` (through the cache when one is set)."""
        rgb = _check_frame(rgb)
        return self._cached(rgb, self.backend, lambda: self._analyze(rgb))

    def analyze_batch(self, frames: np.ndarray | Iterable[np.ndarray]) -> list[FrameAnalysis]:
        """uint8 (B, H, W, 3) (or an iterable of frames) -> one record per frame, cached."""
        return [self.analyze(frame) for frame in frames]

    def analyze_in_box(self, rgb: np.ndarray, bbox: Sequence[float]) -> FrameAnalysis:
        """The parts run on the face dlib's shape predictor finds inside ``bbox`` (x0, y0, x1,
        y1: another frame's face box), without detecting: ``has_face`` False,
        ``in_reference_box`` True, every requested field filled (cached, keyed by the box too).

        This is how a generated frame in which no face is detected is still analysed where its
        reference frame has its face (the metrics then decide what such a frame scores)."""
        rgb = _check_frame(rgb)
        box = tuple(float(v) for v in bbox)
        if not all(math.isfinite(v) for v in box):
            raise ValueError(f"analyze_in_box needs a finite face box, got {box}")
        key = f"{self.backend}|in_box={','.join(f'{v:g}' for v in box)}"

        def analyse() -> FrameAnalysis:
            face = self.detector.landmarks_in_box(rgb, box)
            record = self.analyze_face(rgb, face, num_faces=0)
            record.has_face, record.in_reference_box = False, True
            self._whole_frame(rgb, record)
            return record

        return self._cached(rgb, key, analyse)

    def _cached(self, rgb: np.ndarray, backend: str, analyse) -> FrameAnalysis:
        if self.cache is None:
            return analyse()
        key = self.cache.key(rgb, backend)
        record = self.cache.get(key)
        if record is None:
            record = analyse()
            self.cache.put(key, record)
        return record

    def _analyze(self, rgb: np.ndarray) -> FrameAnalysis:
        faces = self.detector.detect(rgb)
        if faces:
            record = self.analyze_face(rgb, faces[0], num_faces=len(faces))
        else:
            record = FrameAnalysis(has_face=False, backend=self.backend)
        if self.fan is not None:
            record.fan_landmarks = self.fan.landmarks(rgb)
        self._whole_frame(rgb, record)
        return record

    def _whole_frame(self, rgb: np.ndarray, record: FrameAnalysis) -> None:
        if self.dlib_frame is not None:
            record.dlib_frame = self.dlib_frame.embed_frame(rgb)
        if self.arcface_frame is not None:
            record.arcface_frame = self.arcface_frame.embed_frame(rgb)

    def analyze_face(self, rgb: np.ndarray, face: Face, num_faces: int = 1) -> FrameAnalysis:
        """Run the parts on a known face (e.g. from :meth:`FaceDetector.landmarks_in_box`)."""
        record = FrameAnalysis(
            has_face=True, bbox=np.asarray(face.bbox, np.float32),
            landmarks=np.asarray(face.landmarks, np.float32), num_faces=num_faces,
            backend=self.backend)
        if self.fitter is not None:
            fit = self.fitter.fit(face.landmarks, rgb.shape[1], rgb.shape[0])
            record.yaw, record.pitch, record.roll = fit.yaw, fit.pitch, fit.roll
            record.rotation = fit.rotation.astype(np.float32)
            record.translation = fit.translation.astype(np.float32)
            record.scale = fit.scale
            record.identity = fit.identity.astype(np.float32)
            record.expression = fit.expression.astype(np.float32)
            record.reprojection_error = fit.reprojection_iod
        if self.dlib is not None:
            record.dlib_descriptor = self.dlib.embed(rgb, face)
        if self.arcface is not None:
            record.arcface = self.arcface.embed(rgb, face)
        return record


_ATTRIBUTE = {"fit": "fitter"}
"""Part name -> FaceAnalyzer attribute holding its component, where they differ."""


def _check_frame(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) frame, got {rgb.dtype} {rgb.shape}")
    return np.ascontiguousarray(rgb)
