"""Common plumbing of the keypoint-warping baselines: configs, checkpoints, resolution.

A subclass names its configs, builds its modules (keyed like the official checkpoint's top-level
keys) and implements :meth:`WarpingMethod.prepare` and :meth:`WarpingMethod.generate` at the
model resolution; this class resizes frames of any size to that resolution and back.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import torch
from torch import nn

from thbench.baselines.checkpoint import load_official, save_official
from thbench.core.method import FramewiseMethod
from thbench.core.resampling import resize


class WarpingMethod(FramewiseMethod):
    #: config name -> config dataclass (with at least ``size``).
    configs: ClassVar[dict[str, Any]] = {}
    #: accepted ``mode`` values; the first is the default.
    modes: ClassVar[tuple[str, ...]] = ("relative",)
    #: resize with anti-aliasing also when enlarging (face-vid2vid's demo); otherwise only when
    #: a side shrinks (FOMM's and TPSMM's demos).
    always_antialias: ClassVar[bool] = False

    def __init__(self, checkpoint: str | os.PathLike | None = None, config: str = "vox256",
                 device: str | torch.device = "cpu", mode: str | None = None,
                 allow_random_init: bool = False) -> None:
        super().__init__(device)
        if config not in self.configs:
            raise ValueError(f"{self.name}: unknown config {config!r}; "
                             f"known: {', '.join(sorted(self.configs))}")
        mode = mode or self.modes[0]
        if mode not in self.modes:
            raise ValueError(f"{self.name}: unknown mode {mode!r}; known: {', '.join(self.modes)}")
        if checkpoint is None and not allow_random_init:
            raise ValueError(
                f"{self.name} needs trained weights: pass checkpoint='/path/to/{self.name} "
                f"checkpoint' (official {config} layout, or one written by baselines.train); "
                "random weights would give meaningless outputs")
        self.config_name, self.cfg, self.mode = config, self.configs[config], mode
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.nets = nn.ModuleDict(self.load_nets(checkpoint))
        self.nets.to(self.device).eval()

    # -- subclass API -------------------------------------------------------------------------
    def build(self, cfg: Any) -> dict[str, nn.Module]:
        raise NotImplementedError

    def load_nets(self, checkpoint: str | os.PathLike | None) -> dict[str, nn.Module]:
        """The modules: :meth:`build` (a draw from torch's global RNG), then the checkpoint's
        weights loaded strictly; what else it holds is kept as ``extra``."""
        nets = self.build(self.cfg)
        if checkpoint is not None:
            self.extra = load_official(checkpoint, nets)
        return nets

    def prepare(self, source: torch.Tensor, driving_first: torch.Tensor) -> None:
        """Per-pair state; both (1, 3, S, S) at the model resolution."""
        raise NotImplementedError

    def generate(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) driving at the model resolution -> predictions (B, 3, S, S)."""
        raise NotImplementedError

    # -- FramewiseMethod ----------------------------------------------------------------------
    @property
    def size(self) -> tuple[int, int]:
        return (self.cfg.size, self.cfg.size)

    def _resize(self, frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return resize(frames, size, antialias=True if self.always_antialias else None)

    @torch.no_grad()
    def setup(self, source: torch.Tensor, driving_first: torch.Tensor) -> None:
        if source.dim() != 3 or source.shape[0] != 3:
            raise ValueError(f"source must be (3, H, W), got {tuple(source.shape)}")
        self.nets.eval()
        self.source = self._resize(source[None].to(self.device, torch.float32), self.size)
        first = self._resize(driving_first[None].to(self.device, torch.float32), self.size)
        self.prepare(self.source, first)

    @torch.no_grad()
    def forward_batch(self, driving: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "source"):
            raise RuntimeError("call setup() (or animate()) before forward_batch()")
        frames = self._resize(driving.to(self.device, torch.float32), self.size)
        return self._resize(self.generate(self.source, frames), tuple(driving.shape[-2:]))

    def describe(self) -> dict[str, str]:
        return {"method": self.name, "config": self.config_name, "mode": self.mode,
                "checkpoint": self.checkpoint or "random-init"}

    def save(self, path: str | os.PathLike, **extra) -> None:
        """Write the weights in the official layout."""
        save_official(path, dict(self.nets), **extra)
