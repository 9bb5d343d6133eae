"""Two reference methods that need no training and bound every metric.

``source-copy`` returns the source image for every driving frame (no motion at all);
``driving-copy`` returns the driving frame itself (perfect reconstruction on same-identity
pairs, and the driver's identity on cross-identity pairs).
"""

from __future__ import annotations

import torch

from thbench.core.method import FramewiseMethod

BOUNDS = ("source-copy", "driving-copy")
"""The families that bound every metric: reports show them in a band of their own, never
ranked and never bold (:mod:`thbench.eval.aggregate`)."""


class SourceCopy(FramewiseMethod):
    name = "source-copy"

    def setup(self, source: torch.Tensor, driving_first: torch.Tensor) -> None:
        self._source = source

    def forward_batch(self, driving: torch.Tensor) -> torch.Tensor:
        return self._source.expand_as(driving).clone()


class DrivingCopy(FramewiseMethod):
    name = "driving-copy"

    def forward_batch(self, driving: torch.Tensor) -> torch.Tensor:
        return driving.clone()
