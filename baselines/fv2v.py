"""face-vid2vid baseline (Wang et al. 2021) as the widely used unofficial implementation
(zhanglonghao1992/One-Shot_Free-View_Neural_Talking_Head_Synthesis, ``vox-256`` config, SPADE
generator) defines it, behind the benchmark's :class:`~thbench.core.method.Method` interface.

Inference follows that implementation's ``demo.py``:

* canonical keypoints and the appearance volume come from the source only;
* source and driving keypoints are kp = R(yaw, pitch, roll) @ kp_canonical + t + exp with the
  pose read from the 66-bin classifier (see :mod:`thbench.baselines.fv2v_motion`);
* ``mode="absolute"`` (the demo's default) drives with the driving keypoints as they are;
  ``mode="relative"`` uses kp_source + (kp_driving - kp_driving_initial), the initial being the
  clip's first driving frame, optionally with the convex-hull scale (``adapt_scale``);
* ``yaw``/``pitch``/``roll`` (degrees) replace the driving pose (free view) for every frame;
  like the demo, the initial driving keypoints of relative mode keep their estimated pose;
* frames of any size are resized (bilinear, anti-aliased) to the model resolution, as the demo
  resizes to 256x256 without cropping, and the output is resized back.

Modules: :mod:`thbench.baselines.fv2v_nets` (networks, configs),
:mod:`thbench.baselines.fv2v_blocks`, :mod:`thbench.baselines.fv2v_motion` (pose, keypoints),
:mod:`thbench.baselines.fv2v_losses` (training).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from thbench.baselines.checkpoint import load_official, save_official
from thbench.baselines.fv2v_losses import LossWeights, fv2v_losses
from thbench.baselines.fv2v_motion import relative_keypoints, transform_keypoints
from thbench.baselines.fv2v_nets import CONFIGS, FV2VConfig, build_models, get_config
from thbench.core.method import FramewiseMethod
from thbench.core.resampling import resize

__all__ = ["FaceVid2Vid", "LossWeights", "build_models", "fv2v_losses", "load_models"]

MODES = ("absolute", "relative")


def load_models(
    checkpoint: str | os.PathLike | None,
    config: str | FV2VConfig = "vox256",
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> dict[str, torch.nn.Module]:
    """Build the three networks and load an official-layout checkpoint strictly (eval mode).

    Without a checkpoint the weights are a seeded random initialisation (tests, benchmarks).
    With one, the networks are allocated uninitialised (every tensor, buffers included, comes
    from the file), which avoids initialising ~170 M parameters only to overwrite them.
    """
    cfg = get_config(config)
    if checkpoint is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            models = build_models(cfg)
    else:
        with torch.device("meta"):
            models = build_models(cfg)
        models = {key: module.to_empty(device="cpu") for key, module in models.items()}
        load_official(checkpoint, models)
    return {key: module.to(device).eval() for key, module in models.items()}


class FaceVid2Vid(FramewiseMethod):
    """face-vid2vid: 3D keypoints with head pose, dense 3D motion, SPADE decoder."""

    name = "fv2v"

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        config: str = "vox256",
        mode: str = "absolute",
        yaw: float | None = None,
        pitch: float | None = None,
        roll: float | None = None,
        device: str | torch.device = "cpu",
        *,
        allow_random_init: bool = False,
        adapt_scale: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(device)
        if mode not in MODES:
            raise ValueError(f"fv2v mode must be one of {MODES}, got {mode!r}")
        if config not in CONFIGS:
            raise ValueError(f"unknown fv2v config {config!r}; known: {', '.join(CONFIGS)}")
        if checkpoint is None and not allow_random_init:
            raise ValueError(
                "fv2v needs a checkpoint: pass checkpoint= a file in the official layout "
                "(top-level keys generator, kp_detector, he_estimator; e.g. the unofficial "
                "implementation's vox-256 SPADE checkpoint). Random weights are only for tests "
                "and speed benchmarks: allow_random_init=True."
            )
        self.cfg = get_config(config)
        self.mode = mode
        self.angles = (yaw, pitch, roll)
        self.adapt_scale = adapt_scale
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.models = torch.nn.ModuleDict(load_models(checkpoint, self.cfg, self.device, seed))
        self._state: dict[str, torch.Tensor] = {}

    def describe(self) -> dict[str, str]:
        yaw, pitch, roll = self.angles
        free_view = "off" if self.angles == (None, None, None) else \
            f"yaw={yaw} pitch={pitch} roll={roll}"
        return {
            "method": self.name,
            "config": self.cfg.name,
            "checkpoint": str(self.checkpoint) if self.checkpoint else "none (random init)",
            "mode": self.mode + (" +adapt_scale" if self.adapt_scale else ""),
            "free_view": free_view,
            "resolution": str(self.cfg.image_size),
        }

    def _model_input(self, frames: torch.Tensor) -> torch.Tensor:
        size = self.cfg.image_size
        return resize(frames.to(self.device, torch.float32), size, antialias=True)

    @torch.no_grad()
    def setup(self, source: torch.Tensor, driving_first: torch.Tensor) -> None:
        if source.dim() != 3 or source.shape[0] != 3:
            raise ValueError(f"source must be (3, H, W), got {tuple(source.shape)}")
        src = self._model_input(source[None])
        kp_canonical = self.models["kp_detector"](src)
        he_estimator = self.models["he_estimator"]
        state = {
            "feature": self.models["generator"].encode(src),
            "kp_canonical": kp_canonical,
            "kp_source": transform_keypoints(kp_canonical, he_estimator(src)),
        }
        if self.mode == "relative":
            first = self._model_input(driving_first[None])
            state["kp_initial"] = transform_keypoints(kp_canonical, he_estimator(first))
        self._state = state

    @torch.no_grad()
    def forward_batch(self, driving: torch.Tensor) -> torch.Tensor:
        if not self._state:
            raise RuntimeError("call setup() (or animate()) before forward_batch()")
        batch, _, height, width = driving.shape
        frames = self._model_input(driving)
        state = {k: v.expand(batch, *v.shape[1:]) for k, v in self._state.items()}
        he = self.models["he_estimator"](frames)
        kp_driving = transform_keypoints(state["kp_canonical"], he, *self.angles)
        if self.mode == "relative":
            kp_driving = relative_keypoints(state["kp_source"], kp_driving, state["kp_initial"],
                                            self.adapt_scale)
        out = self.models["generator"].decode(state["feature"], kp_driving, state["kp_source"])
        return resize(out["prediction"], (height, width), antialias=True)

    # -- training in the harness (see baselines.train) -----------------------------------------
    @property
    def size(self) -> tuple[int, int]:
        return (self.cfg.image_size, self.cfg.image_size)

    @property
    def nets(self) -> torch.nn.ModuleDict:
        return self.models

    def training_losses(self, source: torch.Tensor, driving: torch.Tensor,
                        kit) -> dict[str, torch.Tensor]:
        """face-vid2vid's losses (:func:`fv2v_losses`) with the kit's ``[loss]`` weights and
        perceptual network: VGG-19, or, where its weights are absent, the pixel-L1 pyramid
        (reported as ``reconstruction_l1``); the head-pose term against the kit's pose
        estimator (Hopenet) when it has one; the kit's GAN terms when it has discriminators."""
        losses, self.last_prediction = fv2v_losses(
            self.models, source, driving, weights=kit.weights,
            perceptual=kit.vgg if kit.vgg is not None else "pixel", pose_target=kit.pose)
        losses.update(kit.adversarial(self.last_prediction, driving))
        return losses

    def save(self, path: str | os.PathLike, **extra) -> None:
        """Write the weights in the official layout."""
        save_official(path, dict(self.models), **extra)
