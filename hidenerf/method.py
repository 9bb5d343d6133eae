"""HiDe-NeRF behind the benchmark's Method interface, registered as ``"hidenerf"``.

Per pair (``setup``): analyse the source frame with ``facegeom``, render its SECC (source
identity, source expression), encode the tri-planes and the source SECC features once.
Per driving frame: analyse it, render the driving SECC (source identity, *driving* expression),
and render from the driving head pose (yaw, pitch, roll) as the camera; any of the three angles
can be overridden (free view). The output is resized to the driving frame size.

Translation and scale of the 3DMM fit are not used: benchmark frames are face-aligned crops,
so the head stays at the canonical distance and centre (see docs/hidenerf-design.md).
A driving frame without a face keeps the last driving pose and expression (the source's before
the first face), so a clip never loses frames.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from benchcore.method import FramewiseMethod, register
from hidenerf.config import get_config
from hidenerf.model import HiDeNeRF


def _to_uint8_hwc(frame: Tensor):
    """(3, H, W) float in [0, 1] -> numpy uint8 (H, W, 3)."""
    scaled = frame.detach().clamp(0, 1).mul(255).round().to(torch.uint8)
    return scaled.permute(1, 2, 0).cpu().numpy()


def _secc_tensor(secc: Any) -> Tensor:
    """render_secc output (3, S, S), float in [0, 1] or uint8 -> float tensor in [0, 1]."""
    secc = torch.as_tensor(secc)
    if secc.dtype == torch.uint8:
        return secc.float() / 255.0
    return secc.float()


@register
class HiDeNeRFMethod(FramewiseMethod):
    """kwargs: checkpoint (path or None for a seeded random init), config ('tiny' | 'paper',
    must match the checkpoint's; None: the checkpoint's, or 'tiny'), device, yaw / pitch / roll
    overrides in degrees (None: the driving frame's)."""

    name = "hidenerf"

    def __init__(self, checkpoint: str | os.PathLike | None = None, config: str | None = "tiny",
                 device: str | torch.device = "cpu", yaw: float | None = None,
                 pitch: float | None = None, roll: float | None = None) -> None:
        super().__init__(device)
        self.checkpoint = str(checkpoint) if checkpoint is not None else None
        if checkpoint is None:
            self.model = HiDeNeRF(get_config(config or "tiny"))
        else:
            from hidenerf.checkpoint import CheckpointError, load_checkpoint

            self.model, _ = load_checkpoint(checkpoint)
            if config is not None and self.model.config.name != config:
                raise CheckpointError(f"{checkpoint}: holds config {self.model.config.name!r}, "
                                      f"not {config!r}")
        self.model = self.model.to(self.device).eval()
        self.overrides = {"yaw": yaw, "pitch": pitch, "roll": roll}
        self._analyzer = None

    # -- face geometry (imported lazily: facegeom may be absent at import time) ----------------
    def _analyze(self, frame: Tensor):
        if self._analyzer is None:
            from facegeom.analysis import FaceAnalyzer

            try:  # only the 3DMM fit: pose for the camera, coefficients for the SECC
                self._analyzer = FaceAnalyzer(parts=("fit",), strict=True)
            except RuntimeError as error:  # the SFM files are missing: say so, with the fix
                raise ValueError(f"hidenerf needs the 3DMM fit: {error}") from None
        return self._analyzer.analyze(_to_uint8_hwc(frame))

    def _secc(self, identity: Any, expression: Any) -> Tensor:
        from facegeom.secc import render_secc

        size = self.model.config.secc_size
        return _secc_tensor(render_secc(identity, expression, size)).to(self.device)

    def _pose(self, analysis) -> tuple[float, float, float]:
        angles = []
        for key in ("yaw", "pitch", "roll"):
            value = self.overrides[key]
            angles.append(float(getattr(analysis, key)) if value is None else float(value))
        return angles[0], angles[1], angles[2]

    # -- FramewiseMethod -------------------------------------------------------------------------
    def setup(self, source: Tensor, driving_first: Tensor) -> None:
        analysis = self._analyze(source)
        if not analysis.has_face:
            raise ValueError("hidenerf: no face found in the source image")
        self._source = analysis
        self._last = analysis
        secc = self._secc(analysis.identity, analysis.expression)[None]
        self._planes = self.model.encode_source(source[None].to(self.device), secc)
        self._secc_src = self.model.encode_secc(secc)

    def forward_batch(self, driving: Tensor) -> Tensor:
        seccs, poses = [], []
        for frame in driving:
            analysis = self._analyze(frame)
            if analysis.has_face:
                self._last = analysis
            seccs.append(self._secc(self._source.identity, self._last.expression))
            poses.append(self._pose(self._last))
        batch = driving.shape[0]
        yaw, pitch, roll = (torch.tensor(v) for v in zip(*poses, strict=True))
        camera = self.model.camera(yaw, pitch, roll)
        planes = [p.expand(batch, *p.shape[1:]) for p in self._planes]
        secc_src = self._secc_src.expand(batch, *self._secc_src.shape[1:])
        secc_drv = self.model.encode_secc(torch.stack(seccs))
        image = self.model.render(planes, secc_src, secc_drv, camera)["image"]
        if image.shape[-2:] != driving.shape[-2:]:
            shrink = image.shape[-1] > driving.shape[-1]
            image = F.interpolate(image, size=driving.shape[-2:], mode="bilinear",
                                  align_corners=False, antialias=shrink)
        return image

    def describe(self) -> dict[str, str]:
        seed = self.model.config.seed
        info = {"method": self.name, "config": self.model.config.name,
                "checkpoint": self.checkpoint or f"none (random init, seed {seed})"}
        for key, value in self.overrides.items():
            if value is not None:
                info[key] = f"{value:g}"
        return info
