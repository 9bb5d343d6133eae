"""HiDe-NeRF's training pairs: frame pairs that over-sample a change of expression.

Drawn uniformly, only 22 % of the sample set's pairs change the mouth opening by more than 0.05
of the inter-ocular distance; the rest teach pose alone, and LED learns nothing from them. Here
a share ``expression_share`` of the items is drawn among the clip's pairs whose **mouth
opening** (:func:`mouth_opening`, from the landmarks recorded at preparation, no second
detection) differs by more than ``min_change``; the others are drawn as
:class:`~thbench.datasets.frame_pairs.FramePairs` draws them. An expression item of a clip
without such a pair is drawn from a clip (chosen uniformly) that has some, so that the share
holds over the whole set: at a share of 0.5, 61 % of the sample set's items change the
opening (with a uniform fallback per clip, 37 %: 5 of its 11 training clips have no such
pair). An item stays a function of its number (generator seeded with ``(seed, index, 3)``).

Each item also names the driving frame's **mouth box** (:func:`mouth_box`), which the objective's
mouth L1 weighs.
"""

from __future__ import annotations

import numpy as np

from thbench.datasets.clip import Clip
from thbench.datasets.frame_pairs import FramePairs

INNER_UPPER, INNER_LOWER = [61, 62, 63], [67, 66, 65]  # 68-point inner lip, facing pairs
MOUTH = slice(48, 68)


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance between the outer eye corners (68-point landmarks 36 and 45)."""
    return float(np.linalg.norm(landmarks[36] - landmarks[45]))


def mouth_opening(landmarks: np.ndarray) -> float:
    """Inner-lip gap (mean distance of the three facing inner-lip landmark pairs) over the
    inter-ocular distance: about 0.0 closed, 0.1-0.4 open."""
    landmarks = np.asarray(landmarks, np.float64)
    gap = np.linalg.norm(landmarks[INNER_UPPER] - landmarks[INNER_LOWER], axis=-1).mean()
    return float(gap / max(inter_ocular(landmarks), 1e-6))


def mouth_box(landmarks: np.ndarray, size: int, margin: float = 0.15) -> np.ndarray:
    """(x0, y0, x1, y1) as fractions of a ``size`` px frame: the mouth landmarks' box grown by
    ``margin`` inter-ocular distances on every side, clipped to the frame."""
    landmarks = np.asarray(landmarks, np.float64)
    pad = margin * inter_ocular(landmarks)
    lo = landmarks[MOUTH].min(0) - pad
    hi = landmarks[MOUTH].max(0) + pad
    return np.clip(np.concatenate([lo, hi]) / size, 0.0, 1.0).astype(np.float32)


class ExpressionPairs(FramePairs):
    """:class:`FramePairs` whose ``pair`` draws a share of items among mouth-opening changes
    (see the module doc); ``openings[clip_id][frame]`` and ``boxes[clip_id][frame]`` come from
    the clips' recorded landmarks (NaN on frames without a face)."""

    def __init__(self, clips: list[Clip], frames: dict[str, list[int]], pairs_per_clip: int,
                 seed: int, size: int, *, expression_share: float = 0.5,
                 min_change: float = 0.05, fresh: bool = False) -> None:
        super().__init__(clips, frames, pairs_per_clip, seed, size, fresh=fresh)
        if not 0.0 <= expression_share <= 1.0:
            raise ValueError(f"expression_pairs must lie in [0, 1], not {expression_share}")
        self.expression_share, self.min_change = expression_share, min_change
        self.openings: dict[str, np.ndarray] = {}
        self.boxes: dict[str, np.ndarray] = {}
        self.changes: dict[str, np.ndarray] = {}
        for clip in self.clips:
            records = clip.faces()
            frame_size = clip.info.size
            self.openings[clip.clip_id] = np.array(
                [mouth_opening(r.landmarks) if r.face else np.nan for r in records])
            self.boxes[clip.clip_id] = np.stack(
                [mouth_box(r.landmarks, frame_size) if r.face else np.full(4, np.nan, np.float32)
                 for r in records])
            drawn = np.array(self.frames[clip.clip_id])
            opening = self.openings[clip.clip_id][drawn]
            source, driving = np.nonzero(np.abs(opening[:, None] - opening[None]) > min_change)
            self.changes[clip.clip_id] = np.stack([drawn[source], drawn[driving]], 1)

    def expression_pair_share(self) -> float:
        """Share of all (source, driving) pairs of the drawn frames that change the opening by
        more than ``min_change`` (what a uniform draw gets)."""
        changing = sum(len(self.changes[c.clip_id]) for c in self.clips)
        total = sum(len(self.frames[c.clip_id]) * (len(self.frames[c.clip_id]) - 1)
                    for c in self.clips)
        return changing / max(total, 1)

    def pair(self, index: int) -> tuple[Clip, int, int]:
        clip, source, driving = super().pair(index)
        changing = [c for c in self.clips if len(self.changes[c.clip_id])]
        rng = np.random.default_rng((self.seed, index, 3))
        if changing and rng.random() < self.expression_share:
            if not len(self.changes[clip.clip_id]):
                clip = changing[int(rng.integers(len(changing)))]
            changes = self.changes[clip.clip_id]
            source, driving = changes[int(rng.integers(len(changes)))]
        return clip, int(source), int(driving)

    def mouth_box(self, clip: Clip, frame: int) -> np.ndarray:
        return self.boxes[clip.clip_id][frame]
