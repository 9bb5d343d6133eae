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
* frames of any size are resized (bilinear, always anti-aliased) to the model resolution, as
  the demo resizes to 256x256 without cropping, and the output is resized back
  (:class:`~thbench.baselines.warping.WarpingMethod` does both).

Modules: :mod:`thbench.baselines.fv2v_nets` (networks, configs),
:mod:`thbench.baselines.fv2v_blocks`, :mod:`thbench.baselines.fv2v_motion` (pose, keypoints),
:mod:`thbench.baselines.fv2v_losses` (training).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch
from torch import nn

from thbench.baselines.checkpoint import load_official
from thbench.baselines.fv2v_losses import fv2v_losses
from thbench.baselines.fv2v_motion import relative_keypoints, transform_keypoints
from thbench.baselines.fv2v_nets import CONFIGS, FV2VConfig, build_models, get_config
from thbench.baselines.warping import WarpingMethod

if TYPE_CHECKING:
    from thbench.baselines.train import LossKit

__all__ = ["FaceVid2Vid", "build_models", "fv2v_losses", "load_models"]


def load_models(
    checkpoint: str | os.PathLike | None,
    config: str | FV2VConfig = "vox256",
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> dict[str, torch.nn.Module]:
    """Build the three networks and load an official-layout checkpoint strictly (eval mode).

    Without a checkpoint the weights are a seeded random initialisation (tests, benchmarks),
    which leaves torch's global RNG as it was. With one, the networks are allocated
    uninitialised (every tensor, buffers included, comes from the file), which avoids
    initialising ~170 M parameters only to overwrite them.
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


class FaceVid2Vid(WarpingMethod):
    """face-vid2vid: 3D keypoints with head pose, dense 3D motion, SPADE decoder."""

    name = "fv2v"
    configs = CONFIGS
    modes = ("absolute", "relative")
    always_antialias = True

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
        self.angles = (yaw, pitch, roll)
        self.adapt_scale = adapt_scale
        self.seed = seed
        super().__init__(checkpoint, config, device, mode, allow_random_init)

    def load_nets(self, checkpoint: str | os.PathLike | None) -> dict[str, nn.Module]:
        """:func:`load_models`: a random initialisation of its own ``seed``, or the
        checkpoint's tensors without initialising first."""
        return load_models(checkpoint, self.cfg, self.device, self.seed)

    def describe(self) -> dict[str, str]:
        yaw, pitch, roll = self.angles
        free_view = "off" if self.angles == (None, None, None) else \
            f"yaw={yaw} pitch={pitch} roll={roll}"
        return super().describe() | {
            "mode": self.mode + (" +adapt_scale" if self.adapt_scale else ""),
            "free_view": free_view,
            "resolution": str(self.cfg.size),
        }

    def prepare(self, source: torch.Tensor, driving_first: torch.Tensor) -> None:
        kp_canonical = self.nets["kp_detector"](source)
        he_estimator = self.nets["he_estimator"]
        state = {
            "feature": self.nets["generator"].encode(source),
            "kp_canonical": kp_canonical,
            "kp_source": transform_keypoints(kp_canonical, he_estimator(source)),
        }
        if self.mode == "relative":
            state["kp_initial"] = transform_keypoints(kp_canonical, he_estimator(driving_first))
        self._state = state

    def generate(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        batch = driving.shape[0]
        state = {k: v.expand(batch, *v.shape[1:]) for k, v in self._state.items()}
        he = self.nets["he_estimator"](driving)
        kp_driving = transform_keypoints(state["kp_canonical"], he, *self.angles)
        if self.mode == "relative":
            kp_driving = relative_keypoints(state["kp_source"], kp_driving, state["kp_initial"],
                                            self.adapt_scale)
        return self.nets["generator"].decode(state["feature"], kp_driving,
                                             state["kp_source"])["prediction"]

    def training_losses(self, source: torch.Tensor, driving: torch.Tensor,
                        kit: LossKit) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """face-vid2vid's losses (:func:`fv2v_losses`) with the kit's ``[loss]`` weights and
        perceptual network: VGG-19, or, where its weights are absent, the pixel-L1 pyramid
        (reported as ``reconstruction_l1``); the head-pose term against the kit's pose
        estimator (Hopenet) when it has one; the kit's GAN terms when it has discriminators."""
        losses, prediction = fv2v_losses(
            self.nets, source, driving, weights=kit.weights,
            perceptual=kit.vgg if kit.vgg is not None else "pixel", pose_target=kit.pose)
        losses.update(kit.adversarial(prediction, driving))
        return losses, prediction
