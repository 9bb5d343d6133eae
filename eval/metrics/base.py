"""What a metric is: a small object with ``update``/``compute``/``reset``, a direction, a backend.

The runner feeds every metric of a pair from one pass over its frames: a :class:`FrameBatch`
holds a batch of generated frames and what they are compared with. Per-pair metrics are
reset for each pair; set-level metrics (FID) accumulate over a whole method x dataset x protocol.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from thbench.datasets.protocols import ALL_PROTOCOLS


@dataclass
class FrameBatch:
    """One batch of a pair. Images are float (B, 3, H, W) in [0, 1], decoded from uint8.

    ``ground_truth`` is the driving frame itself for same-identity pairs and ``None`` for
    cross-identity pairs. ``source`` is (3, H, W). ``context`` carries shared per-frame
    analyses (landmarks, 3DMM fits, embeddings) keyed by backend, filled by the runner.
    """

    generated: torch.Tensor
    driving: torch.Tensor
    source: torch.Tensor
    ground_truth: torch.Tensor | None = None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetricValue:
    """A computed value with the number of frames it averages, or a skip with its reason."""

    value: float
    frames: int
    status: str = "ok"
    reason: str = ""
    excluded: int = 0
    """Frames left out of the mean (e.g. no face on either side); never averaged as 0 or NaN."""
    detail: str = ""
    """Extra facts about the number, for reports; may be empty."""
    real_frames: int = 0
    """Set metrics (FID, KID): the number of real frames the generated ones are compared with."""
    std: float = math.nan
    """KID: its standard deviation over subsets; NaN elsewhere."""

    @classmethod
    def skipped(cls, reason: str) -> MetricValue:
        return cls(value=math.nan, frames=0, status="skipped", reason=reason)


class Metric(ABC):
    name: str = ""
    higher_is_better: bool = False
    protocols: tuple[str, ...] = ALL_PROTOCOLS
    scope: str = "pair"
    """``"pair"``: one value per pair; ``"set"``: one value per method x dataset x protocol."""
    ranking: bool = True
    """False for a paper-compatible variant kept under its own name with its paper's own frame
    rules (``aed_fomm``, ``akd_fomm``): reports show it and never bold or rank by it."""
    frame_mean: bool = True
    """A pair's value is the mean of per-frame values over its ``frames`` frames, so the
    per-frame average over a protocol (the papers' one mean over all frames) is
    ``sum(value * frames) / sum(frames)``. False for metrics that are per pair by nature (AVD:
    one value per pair from one canonical mesh per clip) and for set metrics (FID)."""

    @property
    def backend(self) -> str:
        """What produced the number (network and weights), recorded on every row."""
        return "exact"

    def available(self) -> str:
        """Empty when the metric can run; else why not and how to fix it."""
        return ""

    @abstractmethod
    def update(self, batch: FrameBatch) -> None: ...

    @abstractmethod
    def compute(self) -> MetricValue: ...

    @abstractmethod
    def reset(self) -> None: ...


class WeightsFileMetric(Metric):
    """A metric whose network reads one weights file: the ``weights`` path given in its options,
    or else the asset manager's :meth:`asset`."""

    weights: str | None = None

    def asset(self) -> str:
        """The asset manager's name of the default weights."""
        raise NotImplementedError

    def weights_path(self) -> Path:
        if self.weights is not None:
            return Path(self.weights)
        from thbench.core import assets

        return assets.resolve(self.asset())

    def available(self) -> str:
        from thbench.core.assets import AssetError

        try:
            path = self.weights_path()
        except AssetError as error:
            return str(error)
        return "" if path.is_file() else f"{self.name} weights {path} not found"


class FrameMeanMetric(Metric):
    """Mean over frames of a per-frame value; subclasses implement :meth:`per_frame`."""

    def __init__(self) -> None:
        self.reset()

    @abstractmethod
    def per_frame(self, batch: FrameBatch) -> torch.Tensor:
        """Per-frame values (B,) as float64."""

    def update(self, batch: FrameBatch) -> None:
        values = self.per_frame(batch).double()
        self._sum += float(values.sum())
        self._count += values.numel()

    def compute(self) -> MetricValue:
        if self._count == 0:
            return MetricValue.skipped("no frames")
        return MetricValue(self._sum / self._count, self._count)

    def reset(self) -> None:
        self._sum = 0.0
        self._count = 0
