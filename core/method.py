"""The one interface every talking-head method implements.

A method animates one source image with a stream of driving frames. Frames are float tensors in
[0, 1], RGB, shape (B, 3, H, W); the source is (3, H, W). The driving stream is an iterator of
batches so that memory stays flat in the clip length; the first frame of the first batch is the
clip's first driving frame, which relative-motion methods (FOMM, TPSMM) use as their reference.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import ClassVar

import torch


class PairUnsupported(ValueError):
    """A method cannot run this pair by its design (e.g. it needs a face in the source image);
    the pair becomes a counted gap with this reason for that method, never a silent drop."""


class Method(ABC):
    """A talking-head method: ``animate(source, driving batches) -> generated batches``."""

    #: Registry name, e.g. ``"source-copy"``; also the folder name of its cached outputs.
    name: str = ""
    #: Constructor options per evaluation protocol, as the method's paper evaluates it (e.g.
    #: FOMM: absolute keypoints when reconstructing a video, relative ones for motion
    #: transfer); a config's ``options`` and ``protocol_options`` override them.
    protocol_options: ClassVar[dict[str, dict]] = {}

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)

    @abstractmethod
    def animate(
        self, source: torch.Tensor, driving: Iterable[torch.Tensor]
    ) -> Iterator[torch.Tensor]:
        """Yield one generated batch (B, 3, H, W) in [0, 1] per driving batch, same shapes."""

    def describe(self) -> dict[str, str]:
        """What to record beside the numbers (checkpoint, config); override to add more."""
        return {"method": self.name}


class FramewiseMethod(Method):
    """A method whose output for a driving frame depends on the source, the clip's first driving
    frame and that frame only. Subclasses implement :meth:`setup` and :meth:`forward_batch`."""

    def setup(self, source: torch.Tensor, driving_first: torch.Tensor) -> None:
        """Prepare per-pair state (source features, reference keypoints). Both are (3, H, W)."""

    @abstractmethod
    def forward_batch(self, driving: torch.Tensor) -> torch.Tensor:
        """Map a driving batch (B, 3, H, W) to generated frames (B, 3, H, W)."""

    @torch.no_grad()
    def animate(
        self, source: torch.Tensor, driving: Iterable[torch.Tensor]
    ) -> Iterator[torch.Tensor]:
        first = True
        for batch in driving:
            batch = batch.to(self.device)
            if first:
                self.setup(source.to(self.device), batch[0])
                first = False
            yield self.forward_batch(batch).clamp(0, 1)
