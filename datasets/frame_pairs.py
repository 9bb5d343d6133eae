"""Training pairs: a source and a driving frame of the same clip, from any prepared dataset.

Item ``i`` takes unit ``i mod n_units`` (a clip, or with ``by_identity`` one identity: all its
clips, as the official loaders' ``id_sampling``) and two distinct frames drawn by a generator
seeded with ``(seed, i)``; with ``by_identity`` the clip is drawn from the identity's by
``(seed, i, 1)``, and the :class:`~thbench.datasets.augmentation.Augmentation` by ``(seed, i, 2)``.
So an item is a function of its number, in every process and worker; the sampler decides the
order. With ``fresh = True`` the trainer numbers the items of epoch ``e`` from
``e * len(pairs)`` on (``fresh_draws``): every epoch draws new pairs, as the official loaders
do, and a resumed run draws the same ones. The last ``holdout`` frames of every clip are never
drawn: they are the held-out frames a training run is checked on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from thbench.core.media import to_tensor
from thbench.datasets.augmentation import Augmentation
from thbench.datasets.clip import Clip
from thbench.datasets.prepared_dataset import PreparedDataset


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


def training_frames(clips: list[Clip], holdout: int, faces_only: bool = False
                    ) -> dict[str, list[int]]:
    """Clip id -> the frames training may draw: all but the last ``holdout``, and with
    ``faces_only`` only those whose face record found a face."""
    frames = {}
    for clip in clips:
        faces = [record.face for record in clip.faces()]
        usable = (lambda i, f=faces: f[i]) if faces_only else (lambda _: True)
        frames[clip.clip_id] = split_frames(clip, holdout, usable)[0]
    return frames


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
    ``pairs_per_clip`` items per unit (clip or identity) make one epoch.
    """

    def __init__(self, clips: list[Clip], frames: dict[str, list[int]], pairs_per_clip: int,
                 seed: int, size: int, *, by_identity: bool = False, fresh: bool = False,
                 augmentation: Augmentation | None = None) -> None:
        self.clips = [c for c in clips if len(frames.get(c.clip_id, ())) >= 2]
        if not self.clips:
            raise ValueError("no clip has two training frames; lower `holdout` or add clips")
        self.frames, self.pairs_per_clip = frames, pairs_per_clip
        self.seed, self.size = seed, size
        self.units: list[list[Clip]] = [[c] for c in self.clips]
        if by_identity:
            groups: dict[str, list[Clip]] = {}
            for clip in self.clips:
                groups.setdefault(clip.info.identity, []).append(clip)
            self.units = [groups[name] for name in sorted(groups)]
        self.by_identity, self.fresh_draws = by_identity, fresh
        self.augmentation = augmentation if augmentation and augmentation.active else None

    def __len__(self) -> int:
        return len(self.units) * self.pairs_per_clip

    def pair(self, index: int) -> tuple[Clip, int, int]:
        unit = self.units[index % len(self.units)]
        clip = unit[0]
        if self.by_identity and len(unit) > 1:
            clip = unit[int(np.random.default_rng((self.seed, index, 1)).integers(len(unit)))]
        choices = self.frames[clip.clip_id]
        source, driving = np.random.default_rng((self.seed, index)).choice(
            len(choices), size=2, replace=False)
        return clip, choices[int(source)], choices[int(driving)]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        clip, source, driving = self.pair(index)
        item = {"source": load_frame(clip, source, self.size),
                "driving": load_frame(clip, driving, self.size)}
        if self.augmentation is not None:
            choice = self.augmentation.draw(np.random.default_rng((self.seed, index, 2)))
            item["source"], item["driving"] = self.augmentation.apply(
                item["source"], item["driving"], choice)
        return item
