"""Plumbing shared by the face metrics (identity, landmarks, 3DMM).

Face metrics never run a detector themselves. The runner puts in ``batch.context["analyses"]`` a
callable ``analyses(role) -> list[FrameAnalysis]`` with ``role`` in :data:`ROLES` (``"source"``
gives a one-element list), memoised per batch, so each frame is analysed once and shared by every
face metric. A metric only reads the fields it needs (``has_face``, ``landmarks``, ``yaw``,
``pitch``, ``roll``, ``identity``, ``expression``, ``dlib_descriptor``, ``arcface``).

Which frames count (docs/metrics.md, "Same frames for every method"): a ranking face metric
averages over exactly the frames where the *reference* (ground truth or driver; the source for
CSIM) has a face, whatever the method produced, so every method of a pair is averaged over the same
frames. A frame whose reference has no face is *excluded*: counted in ``MetricValue.excluded`` and
left out of the mean, never averaged as 0 or NaN. A generated frame in which no face is detected
is *scored*, never dropped (:meth:`FaceFrameMetric.missing_value`): the runner analyses it inside
the reference frame's face box (``FrameAnalysis.in_reference_box``), and a geometry metric never
reads it better than its chance level. ``MetricValue.frames`` is the number of frames used.

The paper-compatible variants (``aed_fomm``, ``akd_fomm``) keep their scripts' own rules and have
``ranking = False``: reports show them and never bold or rank them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from thbench.eval.metrics.base import FrameBatch, Metric, MetricValue

ROLES = ("generated", "driving", "source", "ground_truth")


def analyses(batch: FrameBatch, role: str) -> list[Any]:
    """The analyses of ``role``'s frames in this batch, from ``batch.context["analyses"]``."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {ROLES}")
    provider: Callable[[str], Sequence[Any]] | None = batch.context.get("analyses")
    if provider is None:
        raise KeyError(
            "face metrics need batch.context['analyses']: a callable role -> list of "
            "facegeom FrameAnalysis (the runner fills it)"
        )
    return list(provider(role))


def paired(batch: FrameBatch, reference: str) -> list[tuple[Any, Any]]:
    """(generated, reference) analyses per generated frame; the source is broadcast."""
    generated = analyses(batch, "generated")
    other = analyses(batch, reference)
    if reference == "source":
        if len(other) != 1:
            raise ValueError(f"expected one source analysis, got {len(other)}")
        other = other * len(generated)
    if len(other) != len(generated):
        raise ValueError(f"{len(generated)} generated vs {len(other)} {reference} analyses")
    return list(zip(generated, other, strict=True))


def missing_assets(*names: str) -> str:
    """Empty when every asset resolves, else the first one's reason and fix."""
    from thbench.core import assets

    for name in names:
        try:
            assets.resolve(name)
        except assets.AssetError as error:
            return str(error)
    return ""


def missing_module(module: str, install: str) -> str:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return f"python module {module!r} not installed; fix: pip install {install}"
    return ""


def backend_pieces(analysis_backend: str, keys: Sequence[str]) -> str:
    """The ``key=value`` pieces of a ``FaceAnalyzer.backend`` string (``|``-separated)."""
    pieces = analysis_backend.split("|")
    return "|".join(p for p in pieces if p.split("=", 1)[0] in keys)


def frame_mean(total: float, count: int, excluded: int, none_kept: str) -> MetricValue:
    """``total / count`` over the ``count`` frames kept, or, when none was, a skip whose reason
    is ``none_kept``; the ``excluded`` frames are counted either way."""
    if count == 0:
        result = MetricValue.skipped(f"{none_kept} ({excluded} excluded)")
        result.excluded = excluded
        return result
    return MetricValue(total / count, count, excluded=excluded)


class AnalysisMetric(Metric):
    """A metric reading frame analyses; its backend is taken from the analyses it saw.

    ``backend_keys`` name the pieces of ``FrameAnalysis.backend`` (``det``, ``lmk``, ``fit``,
    ``dlib``, ``arcface``) this metric depends on; before any update (or when analyses carry no
    backend) :meth:`default_backend` is used.
    """

    reference: str = "ground_truth"
    """Which role the generated frames are compared with."""
    parts: tuple[str, ...] = ()
    """``FaceAnalyzer(parts=...)`` entries this metric needs (detection + landmarks always run)."""
    backend_keys: tuple[str, ...] = ()

    def default_backend(self) -> str:
        return "exact"

    @property
    def backend(self) -> str:
        seen = sorted(getattr(self, "_backends", set()))
        if not seen:
            return self.default_backend()
        return " + ".join(backend_pieces(b, self.backend_keys) or b for b in seen)

    def _pairs(self, batch: FrameBatch) -> list[tuple[Any, Any]]:
        pairs = paired(batch, self.reference)
        if not hasattr(self, "_backends"):
            self._backends: set[str] = set()
        for generated, reference in pairs:
            for analysis in (generated, reference):
                label = getattr(analysis, "backend", "")
                if label:
                    self._backends.add(label)
        return pairs


class FommFormula:
    """Mixed into a metric computed with the formula of one of FOMM's ``pose-evaluation``
    scripts: the script (``fomm_script``) is appended to the backend, so that a row says which
    formula made its number. Such a metric keeps the script's own frame rules and is shown,
    never ranked (``ranking = False``)."""

    fomm_script: str = ""
    ranking = False

    @property
    def backend(self) -> str:
        return f"{super().backend},{self.fomm_script}"


class FaceFrameMetric(AnalysisMetric):
    """Mean of ``value(generated, reference)`` over the frames where the reference has a face.

    A generated frame without a detected face counts with :meth:`missing_value`, so the frames
    (and ``frames``) are the same for every method of a pair.
    """

    chance_floor: bool = False
    """True for the geometry metrics (landmarks, pose, expression): a generated frame without a
    detected face never reads better than :meth:`chance`. dlib's shape predictor, given a box
    and no face in it, returns its mean face, which lies about 7 px from the truth on the
    sample (better than a typical output): without the floor, blanking bad frames would pay."""

    def __init__(self) -> None:
        self.reset()

    def value(self, generated: Any, reference: Any) -> float:
        """The per-frame value; ``reference`` has a face, ``generated`` has one or was analysed
        inside the reference box."""
        raise NotImplementedError

    def chance(self, reference: Any) -> float:
        """The value of a prediction that carries no information about the frame (what a
        generated frame with no face and no usable in-box analysis scores)."""
        raise NotImplementedError

    def present(self, analysis: Any) -> bool:
        """Whether the frame has what this metric reads (a detected face, by default)."""
        return analysis.has_face

    def usable(self, generated: Any) -> bool:
        """Whether :meth:`value` can read ``generated`` though no face was detected in it."""
        return bool(getattr(generated, "in_reference_box", False))

    def worse(self, a: float, b: float) -> float:
        return min(a, b) if self.higher_is_better else max(a, b)

    def missing_value(self, generated: Any, reference: Any) -> float:
        """The value of a generated frame in which no face was detected: its in-box analysis'
        value (no worse than chance for the geometry metrics), or chance without one."""
        chance = float(self.chance(reference))
        if not self.usable(generated):
            return chance
        value = float(self.value(generated, reference))
        return self.worse(value, chance) if self.chance_floor else value

    def update(self, batch: FrameBatch) -> None:
        for generated, reference in self._pairs(batch):
            if not self.present(reference):
                self._excluded += 1
                continue
            if self.present(generated):
                value = float(self.value(generated, reference))
            else:
                value = self.missing_value(generated, reference)
                self._missing += 1
            self._sum += value
            self._count += 1

    def compute(self) -> MetricValue:
        return frame_mean(self._sum, self._count, self._excluded,
                          f"no {self.reference.replace('_', '-')} frame with a face")

    def reset(self) -> None:
        self._sum, self._count, self._excluded, self._missing = 0.0, 0, 0, 0
