"""Training pairs: a source and a driving frame of the same clip, from any prepared dataset.

Item ``i`` takes clip ``i mod n_clips`` and two distinct frames drawn by a generator seeded with
``(seed, i)``, so an item is the same in every epoch, process and worker; the sampler decides
the order. The last ``holdout`` frames of every clip are never drawn: they are the held-out
frames a training run is checked on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from benchcore.media import to_tensor
from datasets.clip import Clip
from datasets.prepared import PreparedDataset


def video_clips(dataset: PreparedDataset, min_frames: int) -> list[Clip]:
    """The dataset's clips with at least ``min_frames`` frames, sorted by id (photos have one
    frame and drop out)."""
    folders = sorted(p.parent for p in Path(dataset.root, "clips").glob("*/clip.json"))
    clips = [Clip(folder) for folder in folders]
    return [clip for clip in clips if len(clip) >= min_frames]


def split_frames(clip: Clip, holdout: int,
                 usable: Callable[[int], bool] = lambda _: True) -> tuple[list[int], list[int]]:
    """(training frames, held-out frames) of a clip: the last ``holdout`` frames are held out;
    frames for which ``usable`` is false (e.g. no face) are left out of both."""
    cut = len(clip) - holdout
    frames = [i for i in range(len(clip)) if usable(i)]
    return [i for i in frames if i < cut], [i for i in frames if i >= cut]


def load_frame(clip: Clip, index: int, size: int) -> Tensor:
    """(3, size, size) float in [0, 1]; antialiased bilinear resize when the clip differs."""
    frame = to_tensor(clip.frame(index)[None])
    if frame.shape[-1] != size or frame.shape[-2] != size:
        frame = F.interpolate(frame, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=frame.shape[-1] > size)
    return frame[0].clamp(0, 1)


class FramePairs(Dataset):
    """``{"source", "driving"}``: (3, size, size) frames in [0, 1] of one clip.

    ``frames`` maps clip id to the frame indices that may be drawn (at least two per clip).
    """

    def __init__(self, clips: list[Clip], frames: dict[str, list[int]], pairs_per_clip: int,
                 seed: int, size: int) -> None:
        self.clips = [c for c in clips if len(frames.get(c.clip_id, ())) >= 2]
        if not self.clips:
            raise ValueError("no clip has two training frames; lower `holdout` or add clips")
        self.frames, self.pairs_per_clip = frames, pairs_per_clip
        self.seed, self.size = seed, size

    def __len__(self) -> int:
        return len(self.clips) * self.pairs_per_clip

    def pair(self, index: int) -> tuple[Clip, int, int]:
        clip = self.clips[index % len(self.clips)]
        choices = self.frames[clip.clip_id]
        source, driving = np.random.default_rng((self.seed, index)).choice(
            len(choices), size=2, replace=False)
        return clip, choices[int(source)], choices[int(driving)]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        clip, source, driving = self.pair(index)
        return {"source": load_frame(clip, source, self.size),
                "driving": load_frame(clip, driving, self.size)}

