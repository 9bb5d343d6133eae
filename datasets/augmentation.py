"""The training augmentation of the official FOMM / TPSMM / face-vid2vid loaders
(``augmentation.py``, ``augmentation_params`` of their vox-256 configs), applied to a
(source, driving) pair as one two-frame clip:

* time flip (p = 0.5): the clip is reversed, i.e. source and driving swap;
* horizontal flip (p = 0.5): both frames are mirrored;
* colour jitter: one brightness, contrast and saturation factor each from U[1 - v, 1 + v] and
  one hue shift from U[-v, v], applied in a random order, the same for both frames (vox-256:
  v = 0.1 for all four).

The random choices come from a numpy generator the caller seeds, so an item's augmentation is
a function of its seed (reproducible, resumable, the same in any worker process).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torchvision.transforms.functional as TF
from torch import Tensor


@dataclass(frozen=True)
class Augmentation:
    horizontal_flip: bool = False
    time_flip: bool = False
    jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    """brightness, contrast, saturation, hue."""

    @property
    def active(self) -> bool:
        return self.horizontal_flip or self.time_flip or any(self.jitter)

    def draw(self, rng: np.random.Generator) -> dict:
        """This item's choices: flips, jitter factors and their order."""
        brightness, contrast, saturation, hue = self.jitter
        factors = {"brightness": rng.uniform(max(0.0, 1 - brightness), 1 + brightness),
                   "contrast": rng.uniform(max(0.0, 1 - contrast), 1 + contrast),
                   "saturation": rng.uniform(max(0.0, 1 - saturation), 1 + saturation),
                   "hue": rng.uniform(-hue, hue)}
        return {"time_flip": bool(self.time_flip and rng.random() < 0.5),
                "horizontal_flip": bool(self.horizontal_flip and rng.random() < 0.5),
                "jitter": [(name, float(factors[name])) for name in rng.permutation(
                    [n for n, v in zip(factors, self.jitter, strict=True) if v])]}

    def apply(self, source: Tensor, driving: Tensor, choice: dict) -> tuple[Tensor, Tensor]:
        """(3, H, W) frames in [0, 1] -> the augmented pair."""
        if choice["time_flip"]:
            source, driving = driving, source
        frames = []
        for frame in (source, driving):
            if choice["horizontal_flip"]:
                frame = frame.flip(-1)
            for name, value in choice["jitter"]:
                frame = _ADJUST[name](frame, value)
            frames.append(frame.clamp(0, 1))
        return frames[0], frames[1]


_ADJUST = {"brightness": TF.adjust_brightness, "contrast": TF.adjust_contrast,
           "saturation": TF.adjust_saturation, "hue": TF.adjust_hue}
