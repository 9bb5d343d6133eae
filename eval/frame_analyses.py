"""One face analysis per frame, shared by every face metric of a pair.

The runner builds one :class:`thbench.facegeom.analysis.FaceAnalyzer` per run with the union of the
parts its face metrics need (3DMM fit, dlib descriptor, ArcFace), backed by the on-disk analysis
cache, so a driving frame is analysed once for all methods and reruns, and a generated frame once
per method. :func:`analyses_provider` is what the runner puts in ``FrameBatch.context["analyses"]``.

A generated frame in which no face is detected is analysed inside its reference's face box
(:meth:`FaceAnalyzer.analyze_in_box`): the driving frame's box (the output follows the driver's
motion), or the source's where the driving frame has no face. So every generated frame whose
reference has a face has landmarks, a fit and embeddings, and the metrics score it rather than
drop it (docs/metrics.md, "Same frames for every method").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from thbench.eval.metrics import Metric
from thbench.eval.metrics.face import AnalysisMetric


def needed_parts(metrics: Iterable[Metric]) -> tuple[str, ...] | None:
    """FaceAnalyzer parts the face metrics need, or None when no metric reads analyses."""
    from thbench.facegeom.analysis import PARTS

    face_metrics = [m for m in metrics if isinstance(m, AnalysisMetric)]
    if not face_metrics:
        return None
    wanted = {part for m in face_metrics for part in m.parts}
    return tuple(p for p in PARTS if p in wanted)


def build_analyzer(metrics: Iterable[Metric], cache_root: Path, device: str = "cpu"):
    """A cached FaceAnalyzer for ``metrics``, or None when none of them is a face metric. Its 3DMM
    identity is fitted from the speech-robust landmarks
    (:data:`thbench.facegeom.fitting.STABLE_IDENTITY_LANDMARKS`); pose and expression from all.
    Its FAN landmarks (when a metric needs them) run on ``device``."""
    parts = needed_parts(metrics)
    if parts is None:
        return None
    from thbench.facegeom.analysis import FaceAnalyzer
    from thbench.facegeom.fitting import STABLE_IDENTITY_LANDMARKS, Fitter

    fan = None
    if "fan" in parts:
        from thbench.facegeom.fan import FANLandmarks

        fan = FANLandmarks(str(device))
    fitter = Fitter(identity_landmarks=STABLE_IDENTITY_LANDMARKS) if "fit" in parts else None
    return FaceAnalyzer(parts=parts, cache=cache_root, strict=True, fan=fan, fitter=fitter)


def analyses_provider(
    analyzer, generated: np.ndarray, driving: np.ndarray, source: np.ndarray,
    ground_truth: bool,
) -> Callable[[str], list]:
    """``role -> list[FrameAnalysis]`` for one batch; each role is analysed at most once.

    ``generated`` and ``driving`` are uint8 (B, H, W, 3), ``source`` uint8 (H, W, 3). The ground
    truth is the driving frame itself where the pair has one.
    """
    frames = {"generated": generated, "driving": driving, "source": source[None]}
    if ground_truth:
        frames["ground_truth"] = driving
    memo: dict[str, list] = {}

    def provide(role: str) -> list:
        key = "driving" if role == "ground_truth" else role
        if role not in frames:
            raise KeyError(f"this pair has no {role} frames")
        if key not in memo:
            memo[key] = analyzer.analyze_batch(frames[key])
            if key == "generated":
                memo[key] = in_reference_boxes(analyzer, generated, memo[key],
                                               provide("driving"), provide("source")[0])
        return memo[key]

    return provide


def in_reference_boxes(analyzer, frames: np.ndarray, records: list, driving: list,
                       source) -> list:
    """``records`` with every frame that has no face replaced by its analysis inside the face
    box of its driving frame (or of the source where the driving frame has none); frames whose
    references have no face either stay as they are."""
    out = []
    for frame, record, driver in zip(frames, records, driving, strict=True):
        reference = driver if driver.has_face else source
        if not record.has_face and reference.has_face:
            in_box = analyzer.analyze_in_box(frame, reference.bbox)
            in_box.fan_landmarks = record.fan_landmarks
            record = in_box
        out.append(record)
    return out
