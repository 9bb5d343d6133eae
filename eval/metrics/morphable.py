"""3DMM metrics from the shared per-frame fits (both protocols): AED-3dmm, APD, AVD-s, AVD-d.

Fits come from ``facegeom`` (eos-py, Surrey Face Model 3448 + 6 expression blendshapes, fitted
from the 68 landmarks; the lambdas are part of the backend string). A frame where either side has
no face is excluded and counted (``MetricValue.excluded``).

- ``aed_3dmm``: per frame, the mean absolute difference of the expression coefficients of the
  generated and the driving frame (``l1_loss``, i.e. mean over coefficients, as PIRenderer /
  OTAvatar / GAGAvatar compute it); mean over frames. Lower better. SFM blendshape weights are
  not Deep3DFaceRecon's 64 BFM coefficients: numbers are comparable within this benchmark only.
- ``apd``: per frame, the mean over yaw, pitch and roll of the absolute angle difference in
  degrees (wrapped to [0, 180]), generated vs driving; mean over frames. Lower better.
- ``avd_s`` and ``avd_d`` (cross-identity only: in same-identity pairs source and driver are one
  person, so one shape is the right answer and the pair says nothing): the mean per-vertex
  Euclidean distance between two *canonical meshes* (identity only: neutral expression, zero
  pose, model units: mm for the SFM). A clip's canonical mesh uses one identity for all its
  frames (:func:`thbench.facegeom.fitting.shared_identity`: the mean of its frames' identity
  coefficients); a source image is a clip of one frame. ``avd_s``: generated clip vs source
  image, lower better (the output keeps the source's face shape). ``avd_d``: generated clip vs
  driving clip, *higher* better (``higher_is_better=True``: the output took less of the
  driver's face shape). One value per pair, from the generated frames with a face (``frames``)
  and the reference frames with a face; generated frames without a face are counted as
  excluded. Their noise floor (two halves of one real clip, a clip vs its mirror image) is
  measured by :mod:`thbench.eval.noise_floor` and given in docs/metrics.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thbench.datasets.protocols import ALL_PROTOCOLS, CROSS_IDENTITY
from thbench.eval.metrics.base import FrameBatch, MetricValue
from thbench.eval.metrics.face import FaceFrameMetric, missing_module


def angle_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute difference of angles in degrees, wrapped to [0, 180]."""
    d = (np.asarray(a, np.float64) - np.asarray(b, np.float64) + 180.0) % 360.0 - 180.0
    return np.abs(d)


def neutral_mesh(identity: np.ndarray, model: Any) -> np.ndarray:
    """(V, 3) identity-only canonical mesh: neutral expression, zero pose, model units."""
    return model.shape(np.asarray(identity, np.float64), None)


def identity_mesh_distance(a: np.ndarray, b: np.ndarray, model: Any) -> float:
    """Mean per-vertex Euclidean distance between the identity-only meshes of coefficients a, b.

    The model is linear, so this is computed on the coefficient difference (equal to the
    difference of :func:`neutral_mesh` results, without building two meshes).
    """
    delta = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    offsets = np.asarray(model.identity_basis, np.float64) @ delta  # (V, 3)
    return float(np.linalg.norm(offsets, axis=-1).mean())


class FitMetric(FaceFrameMetric):
    protocols = ALL_PROTOCOLS
    parts = ("fit",)
    backend_keys = ("fit",)

    def __init__(self, backend: str | None = None) -> None:
        self._default = backend
        super().__init__()

    def default_backend(self) -> str:
        """``fit=`` + the default fitter's backend until analyses (which carry theirs) are seen."""
        if self._default is None:
            from thbench.facegeom.fitting import Fitter

            self._default = f"fit={Fitter().backend}"
        return self._default

    def update(self, batch: FrameBatch) -> None:
        self._check_fits(self._pairs(batch))
        super().update(batch)

    def _check_fits(self, pairs: list[tuple[Any, Any]]) -> None:
        for generated, reference in pairs:
            for analysis in (generated, reference):
                if analysis.has_face and not np.all(np.isfinite(self.fields(analysis))):
                    raise ValueError(
                        f"{self.name}: a frame with a face has no 3DMM fit (NaN); build the "
                        "FaceAnalyzer with parts including 'fit'"
                    )

    def fields(self, analysis: Any) -> np.ndarray:
        raise NotImplementedError

    def available(self) -> str:
        missing = missing_module("eos", "eos-py")
        if missing:
            return missing
        from thbench.facegeom.fitting import Fitter

        return Fitter().available()


class AED3DMM(FitMetric):
    """Mean absolute difference of 3DMM expression coefficients, generated vs driving."""

    name = "aed_3dmm"
    higher_is_better = False
    reference = "driving"

    def fields(self, analysis: Any) -> np.ndarray:
        return np.asarray(analysis.expression, np.float64)

    def value(self, generated: Any, reference: Any) -> float:
        a = np.asarray(generated.expression, np.float64)
        b = np.asarray(reference.expression, np.float64)
        if a.shape != b.shape:
            raise ValueError(f"expression shapes differ: {a.shape} vs {b.shape}")
        return float(np.abs(a - b).mean())


class APD(FitMetric):
    """Mean absolute head-pose difference (degrees, mean of yaw, pitch, roll) vs driving."""

    name = "apd"
    higher_is_better = False
    reference = "driving"

    def fields(self, analysis: Any) -> np.ndarray:
        return np.array([analysis.yaw, analysis.pitch, analysis.roll], np.float64)

    def value(self, generated: Any, reference: Any) -> float:
        a = [generated.yaw, generated.pitch, generated.roll]
        b = [reference.yaw, reference.pitch, reference.roll]
        return float(angle_difference(a, b).mean())


class _AVD(FitMetric):
    """Canonical-mesh distance between the generated clip and the reference clip (one per pair)."""

    protocols = (CROSS_IDENTITY,)
    frame_mean = False  # one value per pair (one canonical mesh per clip): per pair by nature

    def __init__(self, backend: str | None = None, model: Any = None) -> None:
        self._model = model
        super().__init__(backend)

    @property
    def model(self) -> Any:
        """The 3DMM the identity coefficients belong to (default: the Surrey Face Model)."""
        if self._model is None:
            from thbench.facegeom.morphable import load_sfm

            self._model = load_sfm()
        return self._model

    @property
    def units(self) -> str:
        return getattr(self.model, "units", "model units")

    def fields(self, analysis: Any) -> np.ndarray:
        return np.asarray(analysis.identity, np.float64)

    def update(self, batch: FrameBatch) -> None:
        pairs = self._pairs(batch)
        self._check_fits(pairs)
        for generated, _ in pairs:
            if generated.has_face:
                self._generated.append(self.fields(generated))
            else:
                self._excluded += 1
        references = pairs[:1] if self.reference == "source" else pairs
        self._reference += [self.fields(r) for _, r in references if r.has_face]

    def compute(self) -> MetricValue:
        from thbench.facegeom.fitting import shared_identity

        if not self._generated or not self._reference:
            side = "generated" if not self._generated else self.reference
            result = MetricValue.skipped(f"no {side} frame with a face ({self._excluded} "
                                         "generated frames without one)")
            result.excluded = self._excluded
            return result
        value = identity_mesh_distance(shared_identity(self._generated),
                                       shared_identity(self._reference), self.model)
        return MetricValue(value, len(self._generated), excluded=self._excluded)

    def reset(self) -> None:
        super().reset()
        self._generated: list[np.ndarray] = []
        self._reference: list[np.ndarray] = []


class AVDSource(_AVD):
    """Canonical-mesh distance of the generated clip to the source image (lower: the source's
    shape is kept)."""

    name = "avd_s"
    higher_is_better = False
    reference = "source"


class AVDDriving(_AVD):
    """Canonical-mesh distance of the generated clip to the driving clip (higher: less of the
    driver's shape)."""

    name = "avd_d"
    higher_is_better = True
    reference = "driving"
