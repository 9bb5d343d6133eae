"""The noise floor of the 3DMM metrics, measured on the dataset's real clips (no method involved).

A metric value is only meaningful above what it reads between two things that are the same. On
every real video clip of the pair lists (its frames with a face):

- ``avd``: the canonical-mesh distance
(:func:`thbench.eval.metrics.morphable.identity_mesh_distance`
  of :func:`thbench.facegeom.fitting.shared_identity` identities) between
  - ``halves``: the first and the second half of one clip (same person, same clip);
  - ``mirror_clip``: a clip and its mirror image (a face's shape is nearly symmetric);
  - ``clip_vs_frame``: a clip and its first face frame alone (what ``avd_s`` compares: a
    generated clip with a one-frame source);
  - ``mirror_frame``: one frame and its mirror image;
  - ``cross_person``: two clips of different identities (the signal the floor is compared with);
  and ``floor_ratio`` = ``halves / cross_person`` (the goal is 1/4 or less).
- ``avd_s``: the floor and signal of exactly the comparison ``avd_s`` makes, a clip's shared
  identity against one frame's identity: ``floor`` = every face frame of a clip against the
  shared identity of the clip's other frames (same person: what a perfect method would read),
  ``signal`` = a clip's shared identity against each face frame of every clip of a different
  person, ``ratio`` = ``signal / floor`` (the goal is 4 or more).
- ``apd``: a frame vs its mirror image with yaw and roll negated (degrees).
- ``aed_3dmm``: a frame's expression coefficients vs its mirror image's.

Each number is a mean over clips (``*_max`` the largest). The result is written beside the run's
results (``floor.json``) and shown in the reports next to the metrics.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from thbench.datasets.prepared_dataset import PreparedDataset
from thbench.eval.metrics.morphable import angle_difference, identity_mesh_distance
from thbench.facegeom.fitting import shared_identity

MIN_FRAMES = 4
"""Clips with fewer face frames are left out (two halves of at least two frames)."""


def real_clips(dataset: PreparedDataset, protocols: list[str]) -> list[str]:
    """Distinct video clips driving the protocols' pairs, sorted."""
    clips = {pair.driving_clip for protocol in protocols for pair in dataset.pairs(protocol)}
    return sorted(c for c in clips if dataset.clip(c).info.kind == "video")


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def measure_floor(dataset: PreparedDataset, protocols: list[str], analyzer: Any,
                  model: Any) -> dict[str, Any]:
    """The floor numbers (see the module docstring); ``analyzer`` is a FaceAnalyzer with the
    ``fit`` part (its cache makes the clips' frames free after the first run)."""
    per_clip: dict[str, tuple[str, list, list]] = {}
    for clip_id in real_clips(dataset, protocols):
        clip = dataset.clip(clip_id)
        frames = [f for f, record in zip(clip.frames(list(range(len(clip)))), clip.faces(),
                                         strict=True) if record.face]
        pairs = [(analyzer.analyze(f), analyzer.analyze(np.ascontiguousarray(f[:, ::-1])))
                 for f in frames]
        pairs = [(a, m) for a, m in pairs if a.has_face and m.has_face]
        if len(pairs) >= MIN_FRAMES:
            per_clip[clip_id] = (clip.info.identity, [a for a, _ in pairs], [m for _, m in pairs])

    def distance(a: list, b: list) -> float:
        return identity_mesh_distance(shared_identity([r.identity for r in a]),
                                      shared_identity([r.identity for r in b]), model)

    halves, mirror_clip, clip_frame, mirror_frame, apd, aed = [], [], [], [], [], []
    for _, frames, mirrored in per_clip.values():
        middle = len(frames) // 2
        halves.append(distance(frames[:middle], frames[middle:]))
        mirror_clip.append(distance(frames, mirrored))
        clip_frame.append(distance(frames, frames[:1]))
        mirror_frame.append(distance(frames[:1], mirrored[:1]))
        first, flipped = frames[0], mirrored[0]
        apd.append(float(angle_difference([first.yaw, first.pitch, first.roll],
                                          [-flipped.yaw, flipped.pitch, -flipped.roll]).mean()))
        aed.append(float(np.abs(np.asarray(first.expression, np.float64)
                                - np.asarray(flipped.expression, np.float64)).mean()))
    cross = [distance(a[1], b[1]) for a, b in itertools.combinations(per_clip.values(), 2)
             if a[0] != b[0]]
    avd = {"halves": _mean(halves), "halves_max": max(halves, default=math.nan),
           "mirror_clip": _mean(mirror_clip), "clip_vs_frame": _mean(clip_frame),
           "mirror_frame": _mean(mirror_frame), "cross_person": _mean(cross)}
    avd["floor_ratio"] = avd["halves"] / avd["cross_person"] if cross else math.nan
    return {"clips": len(per_clip), "cross_pairs": len(cross), "units": model.units,
            "backend": analyzer.backend, "avd": avd,
            "avd_s": clip_vs_frame(per_clip, model),
            "apd": {"mirror_frame": _mean(apd)}, "aed_3dmm": {"mirror_frame": _mean(aed)}}


def clip_vs_frame(per_clip: dict[str, tuple[str, list, list]], model: Any) -> dict[str, Any]:
    """``avd_s``'s own floor (a frame against the rest of its clip) and signal (a clip against
    a frame of another person), in model units, with their ratio and counts."""
    identities = {clip: (person, [np.asarray(r.identity, np.float64) for r in frames])
                  for clip, (person, frames, _) in per_clip.items()}
    floor, signal = [], []
    for person, frames in identities.values():
        for index, frame in enumerate(frames):
            rest = frames[:index] + frames[index + 1:]
            floor.append(identity_mesh_distance(shared_identity(rest), frame, model))
        shared = shared_identity(frames)
        for someone, others in identities.values():
            if someone != person:
                signal += [identity_mesh_distance(shared, frame, model) for frame in others]
    result = {"floor": _mean(floor), "signal": _mean(signal), "floor_frames": len(floor),
              "signal_frames": len(signal)}
    result["ratio"] = (result["signal"] / result["floor"]
                       if floor and signal and result["floor"] > 0 else math.nan)
    return result
