"""3DMM metrics from the shared per-frame fits: AED-3dmm, APD, AVD-s, AVD-d, AVD-share.

Fits come from ``facegeom`` (eos-py, Surrey Face Model 3448 + 6 expression blendshapes, fitted
from the 68 landmarks; the lambdas are part of the backend string). A frame whose driving frame
has no face is excluded and counted (``MetricValue.excluded``); a generated frame without a
detected face is scored from its fit inside the driving frame's face box, AED-3dmm and APD never
better than chance (:mod:`thbench.eval.metrics.face`).

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
  driver's face shape). One value per pair, from the generated frames whose driving frame has a
  face (``frames``, the same for every method) and the reference frames with a face. Their noise
  floor (two halves of one real clip, a clip vs its mirror image, and ``avd_s``'s own: a clip vs
  one of its frames) is measured by :mod:`thbench.eval.noise_floor` and given in docs/metrics.md.
- ``avd_share``: per pair ``avd_s / (avd_s + avd_d)`` in [0, 1], lower better: 0 keeps the
  source's shape (``source-copy``), 1 takes the driver's (``driving-copy``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thbench.datasets.protocols import ALL_PROTOCOLS, CROSS_IDENTITY
from thbench.eval.metrics.base import FrameBatch, MetricValue
from thbench.eval.metrics.face import FaceFrameMetric, analyses, missing_module


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
            from thbench.facegeom.fitting import STABLE_IDENTITY_LANDMARKS, Fitter

            fitter = Fitter(identity_landmarks=STABLE_IDENTITY_LANDMARKS)
            self._default = f"fit={fitter.backend}"
        return self._default

    def update(self, batch: FrameBatch) -> None:
        self._check_fits(self._pairs(batch))
        super().update(batch)

    def _check_fits(self, pairs: list[tuple[Any, Any]]) -> None:
        for generated, reference in pairs:
            for analysis in (generated, reference):
                fitted = analysis.has_face or getattr(analysis, "in_reference_box", False)
                if fitted and not np.all(np.isfinite(self.fields(analysis))):
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


def chance_expression_difference(expression: np.ndarray) -> float:
    """Mean over coefficients of ``E|e - U|`` with ``U`` uniform in [0, 1]: the expression
    distance of a guess that knows nothing (eos fits blendshape weights non-negative, 1 being the
    full expression): ``(e^2 + (1 - e)^2) / 2`` inside [0, 1], ``|e - 1/2|`` outside."""
    e = np.asarray(expression, np.float64)
    inside = (e**2 + (1 - e) ** 2) / 2
    return float(np.where((e >= 0) & (e <= 1), inside, np.abs(e - 0.5)).mean())


class AED3DMM(FitMetric):
    """Mean absolute difference of 3DMM expression coefficients, generated vs driving."""

    name = "aed_3dmm"
    higher_is_better = False
    reference = "driving"
    chance_floor = True

    def chance(self, reference: Any) -> float:
        return chance_expression_difference(reference.expression)

    def fields(self, analysis: Any) -> np.ndarray:
        return np.asarray(analysis.expression, np.float64)

    def value(self, generated: Any, reference: Any) -> float:
        a = np.asarray(generated.expression, np.float64)
        b = np.asarray(reference.expression, np.float64)
        if a.shape != b.shape:
            raise ValueError(f"expression shapes differ: {a.shape} vs {b.shape}")
        return float(np.abs(a - b).mean())


CHANCE_ANGLE = 90.0
"""Expected wrapped difference (degrees) between an angle and a uniformly random one."""


class APD(FitMetric):
    """Mean absolute head-pose difference (degrees, mean of yaw, pitch, roll) vs driving."""

    name = "apd"
    higher_is_better = False
    reference = "driving"
    chance_floor = True

    def chance(self, reference: Any) -> float:
        return CHANCE_ANGLE

    def fields(self, analysis: Any) -> np.ndarray:
        return np.array([analysis.yaw, analysis.pitch, analysis.roll], np.float64)

    def value(self, generated: Any, reference: Any) -> float:
        a = [generated.yaw, generated.pitch, generated.roll]
        b = [reference.yaw, reference.pitch, reference.roll]
        return float(angle_difference(a, b).mean())


class _AVD(FitMetric):
    """Canonical-mesh distances between the generated clip, the source image and the driving
    clip (one value per pair).

    The generated clip's identity is the mean over the frames whose driving frame has a face
    (every method of a pair uses the same frames): a generated frame without a detected face
    contributes the identity fitted to the landmarks predicted inside the driving frame's box.
    """

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
        self._check_fits(self._pairs(batch))
        generated, driving = analyses(batch, "generated"), analyses(batch, "driving")
        (source,) = analyses(batch, "source")
        for output, driver in zip(generated, driving, strict=True):
            if not driver.has_face:
                self._excluded += 1
                continue
            self._driving.append(self.fields(driver))
            if output.has_face or getattr(output, "in_reference_box", False):
                self._generated.append(self.fields(output))
            else:
                self._excluded += 1  # no in-box analysis to read (the runner always makes one)
        if source.has_face and not self._source:
            self._source.append(self.fields(source))

    def distance(self, a: list[np.ndarray], b: list[np.ndarray]) -> float:
        from thbench.facegeom.fitting import shared_identity

        return identity_mesh_distance(shared_identity(a), shared_identity(b), self.model)

    def value(self) -> float:
        raise NotImplementedError

    def compute(self) -> MetricValue:
        needed = {"generated": self._generated, "source": self._source,
                  "driving": self._driving}
        missing = [side for side in self.sides if not needed[side]]
        if missing:
            result = MetricValue.skipped(f"no {missing[0]} frame with a face ({self._excluded} "
                                         "frames left out)")
            result.excluded = self._excluded
            return result
        return MetricValue(self.value(), len(self._generated), excluded=self._excluded)

    def reset(self) -> None:
        super().reset()
        self._generated: list[np.ndarray] = []
        self._source: list[np.ndarray] = []
        self._driving: list[np.ndarray] = []


class AVDSource(_AVD):
    """Canonical-mesh distance of the generated clip to the source image (lower: the source's
    shape is kept)."""

    name = "avd_s"
    higher_is_better = False
    reference = "source"
    sides = ("generated", "source")

    def value(self) -> float:
        return self.distance(self._generated, self._source)


class AVDDriving(_AVD):
    """Canonical-mesh distance of the generated clip to the driving clip (higher: less of the
    driver's shape)."""

    name = "avd_d"
    higher_is_better = True
    reference = "driving"
    sides = ("generated", "driving")

    def value(self) -> float:
        return self.distance(self._generated, self._driving)


class AVDShare(_AVD):
    """``avd_s / (avd_s + avd_d)`` in [0, 1]: where the output's face shape lies between the
    source's (0) and the driver's (1). Lower is better; ``source-copy`` reads 0 and
    ``driving-copy`` 1 by construction. The pair's own source-driver distance sets the scale, so
    pairs of similar and of very different people weigh alike."""

    name = "avd_share"
    higher_is_better = False
    reference = "driving"
    sides = ("generated", "source", "driving")

    def value(self) -> float:
        to_source = self.distance(self._generated, self._source)
        to_driver = self.distance(self._generated, self._driving)
        total = to_source + to_driver
        return to_source / total if total > 0 else float("nan")

    def compute(self) -> MetricValue:
        result = super().compute()
        if result.status == "ok" and not np.isfinite(result.value):
            skipped = MetricValue.skipped("the output's shape equals both the source's and the "
                                          "driver's (avd_s + avd_d = 0)")
            skipped.excluded = result.excluded
            return skipped
        return result
