"""Training of the warping baselines inside the harness (FOMM, TPSMM, face-vid2vid).

The published losses: a multi-scale perceptual loss on a VGG-19 (relu1_1 ... relu5_1, inputs at
scales 1, 1/2, 1/4, 1/8, weight 10 per layer) and an equivariance loss (a random affine + TPS
warp of the driving frame must move the keypoints accordingly; FOMM also constrains the
jacobians); TPSMM its warp loss, TPS dropout and, from an epoch on, a background motion
predictor with its loss; face-vid2vid its keypoint, expression and head-pose (Hopenet) terms
(:mod:`thbench.baselines.fv2v_losses`). A discriminator (LSGAN or hinge, spectral norm, feature
matching) is optional. Weights and recipe switches:
:class:`thbench.baselines.loss_weights.WarpingLossWeights` (the ``[loss]`` table);
``configs/train/*-vox256.toml`` hold the official recipes.

The VGG-19 weights come from the asset manager (``vgg19``). When they are absent, training
falls back to an L1 loss on the same image pyramid and says so in the log, in
:attr:`LossKit.perceptual_backend` and in the run folder's ``config.json``; it never fails
silently to a different objective.

A method takes part by implementing ``training_losses(source, driving, kit) -> (losses,
prediction)``: a dict of weighted scalar losses and the predicted frames (for the
discriminator and the logged images), and by exposing ``nets`` (an
``nn.ModuleDict`` keyed like the official checkpoint) and ``save``. :func:`train` runs it under
:class:`thbench.training.loop.Trainer` (one process, or DDP under torchrun) from a training config.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from thbench.baselines.loss_weights import WarpingLossWeights
from thbench.baselines.modules import ImagePyramid
from thbench.baselines.random_warp import RandomTPSWarp
from thbench.core.seeding import seed_all
from thbench.datasets.frame_pairs import FramePairs, training_frames
from thbench.training.config import (
    TrainConfig,
    open_training_data,
    read_loss_table,
    start_trainer,
    write_resolved_config,
)
from thbench.training.loop import Objective
from thbench.training.vgg import PERCEPTUAL_BACKENDS, VGG19Features, perceptual_network

logger = logging.getLogger(__name__)


class Discriminator(nn.Module):
    """Patch discriminator (conv 4x4 -> instance norm -> leaky relu 0.2 -> avg pool), one per
    scale, as FOMM's ``modules/discriminator.py`` (block_expansion 32: widths 64 .. 512), with
    every convolution spectrally normalised when ``spectral_norm`` (``sn: True`` in the
    official vox-256 configs)."""

    def __init__(self, channels: int = 3, width: int = 64, blocks: int = 4, cap: int = 512,
                 spectral_norm: bool = False) -> None:
        super().__init__()
        wrap = nn.utils.spectral_norm if spectral_norm else (lambda module: module)
        layers, cin = [], channels
        for i in range(blocks):
            cout = min(cap, width * 2**i)
            layers.append(nn.Sequential(
                wrap(nn.Conv2d(cin, cout, 4)), nn.InstanceNorm2d(cout, affine=True) if i else
                nn.Identity(), nn.LeakyReLU(0.2), nn.AvgPool2d(2) if i < blocks - 1 else
                nn.Identity()))
            cin = cout
        self.blocks = nn.ModuleList(layers)
        self.head = wrap(nn.Conv2d(cin, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features, self.head(x)


PoseEstimator = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
"""frames (B, 3, H, W) in [0, 1] -> (yaw, pitch, roll), each (B,) in degrees."""


@dataclass
class LossKit:
    """What a method's ``training_losses`` needs: weights, the image losses, random warps, the
    current epoch (for epoch-scheduled recipe parts) and, for face-vid2vid, a pose estimator."""

    weights: WarpingLossWeights
    device: torch.device
    generator: torch.Generator
    vgg: VGG19Features | None = None
    discriminators: nn.ModuleDict | None = None
    pose: PoseEstimator | None = None
    epoch: int = 0
    pyramid: ImagePyramid = field(init=False)
    disc_pyramid: ImagePyramid = field(init=False)

    def __post_init__(self) -> None:
        if self.generator.device.type != "cpu":
            raise ValueError(f"LossKit: the warp generator must be a CPU generator (draws are "
                             f"moved to {self.device}), not one on {self.generator.device}")
        self.pyramid = ImagePyramid(list(self.weights.scales)).to(self.device)
        self.disc_pyramid = ImagePyramid(list(self.weights.discriminator_scales)).to(self.device)

    @property
    def perceptual_backend(self) -> str:
        return "vgg19" if self.vgg is not None else "l1-pyramid"

    def perceptual(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Sum over scales and VGG layers of weight * mean |f(pred) - f(target)|; without VGG,
        sum over scales of sum(weights) * mean |pred - target| (the same overall weight)."""
        total = prediction.new_zeros(())
        for pred, real in zip(self.pyramid(prediction), self.pyramid(target), strict=True):
            if self.vgg is None:
                total = total + sum(self.weights.perceptual) * (pred - real).abs().mean()
                continue
            for weight, a, b in zip(self.weights.perceptual, self.vgg(pred), self.vgg(real),
                                    strict=True):
                total = total + weight * (a - b.detach()).abs().mean()
        return total

    def random_warp(self, batch: int, kernel: str) -> RandomTPSWarp:
        w = self.weights
        return RandomTPSWarp(batch, w.sigma_affine, w.sigma_tps, w.points_tps, kernel,
                             self.device, self.generator)

    def adversarial(self, prediction: torch.Tensor,
                    target: torch.Tensor) -> dict[str, torch.Tensor]:
        """``gan`` (LSGAN (1 - D(fake))^2 or hinge -D(fake), mean, times ``generator_gan``) and
        ``feature_matching`` (per discriminator layer, weight * mean |f(real) - f(fake)|) over
        the discriminator scales; none without a discriminator or with ``generator_gan`` 0,
        as the official code skips both then."""
        w = self.weights
        if self.discriminators is None or w.generator_gan == 0:
            return {}
        gan = matching = prediction.new_zeros(())
        for scale, pred, real in zip(w.discriminator_scales, self.disc_pyramid(prediction),
                                     self.disc_pyramid(target), strict=True):
            disc = self.discriminators[_scale_key(scale)]
            fake_features, fake_score = disc(pred)
            with torch.no_grad():
                real_features, _ = disc(real)
            score = -fake_score.mean() if w.gan_mode == "hinge" else (1 - fake_score).pow(2).mean()
            gan = gan + w.generator_gan * score
            for weight, a, b in zip(w.feature_matching, real_features, fake_features,
                                    strict=True):
                matching = matching + weight * (a - b).abs().mean()
        return {"gan": gan, "feature_matching": matching}

    def discriminator_loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """LSGAN (1 - D(real))^2 + D(fake)^2, or hinge -min(D(real) - 1, 0) - min(-D(fake) - 1,
        0), means summed over the discriminator scales."""
        total = prediction.new_zeros(())
        for scale, pred, real in zip(self.weights.discriminator_scales,
                                     self.disc_pyramid(prediction.detach()),
                                     self.disc_pyramid(target), strict=True):
            disc = self.discriminators[_scale_key(scale)]
            real_score, fake_score = disc(real)[1], disc(pred)[1]
            if self.weights.gan_mode == "hinge":
                total = total - torch.clamp(real_score - 1, max=0).mean() \
                    - torch.clamp(-fake_score - 1, max=0).mean()
            else:
                total = total + (1 - real_score).pow(2).mean() + fake_score.pow(2).mean()
        return total


def _scale_key(scale: float) -> str:
    return f"s{scale}".replace(".", "_")


class BaselineObjective(Objective):
    """A baseline's ``training_losses`` as a :class:`thbench.training.loop.Objective`.

    The random equivariance warps draw from a generator reseeded from torch's global RNG at
    every step, so the trainer's RNG checkpoint covers them. Modules only training uses (a
    method's ``training_nets(weights)``, e.g. TPSMM's background motion predictor) live here
    under ``extra``: they are checkpointed with the run, and the method's ``save`` decides
    what its export holds (TPSMM's holds the background predictor as ``bg_predictor``, as the
    official checkpoints do, and its inference applies it). A method's
    ``untrained_nets(weights)`` are frozen (another stage trains them).
    """

    def __init__(self, method, kit: LossKit) -> None:
        super().__init__()
        if not hasattr(method, "training_losses"):
            raise ValueError(f"method {method.name!r} does not support training in the harness")
        self.method, self.kit = method, kit
        self.nets = method.nets
        frozen = method.untrained_nets(kit.weights) if hasattr(method, "untrained_nets") else ()
        for key in frozen:
            self.nets[key].requires_grad_(False)
        extra = method.training_nets(kit.weights) if hasattr(method, "training_nets") else {}
        self.extra = nn.ModuleDict(extra)
        # a module used only from some epoch on (TPSMM's bg predictor) has no gradient before
        self.find_unused_parameters = bool(extra)
        if kit.discriminators is not None:
            self.discriminator = kit.discriminators

    def set_epoch(self, epoch: int) -> None:
        self.kit.epoch = epoch

    def forward(self, batch: dict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        self.kit.generator.manual_seed(int(torch.randint(0, 2**62, ())))
        source, driving = batch["source"], batch["driving"]
        losses, prediction = self.method.training_losses(source, driving, self.kit)
        return losses, {"source": source, "driving": driving, "output": prediction}

    def discriminator_loss(self, visuals: dict, batch: dict) -> torch.Tensor:
        return self.kit.discriminator_loss(visuals["output"], batch["driving"])


@dataclass(frozen=True)
class LossOptions:
    """A ``[loss]`` table: the :class:`WarpingLossWeights` fields plus how to get the networks the
    losses need: ``perceptual_backend`` (auto | vgg19 | l1), ``discriminator`` (bool) and
    ``pose_estimator`` (off | hopenet; face-vid2vid's head-pose term)."""

    weights: WarpingLossWeights
    perceptual: str = "auto"
    discriminator: bool = False
    pose_estimator: str = "off"


def loss_weights(table: dict, origin: str) -> LossOptions:
    """Parse a config's ``[loss]`` table (errors name ``origin``)."""
    table = dict(table)
    mode = table.pop("perceptual_backend", "auto")
    discriminator = bool(table.pop("discriminator", False))
    pose = table.pop("pose_estimator", "off")
    if mode not in PERCEPTUAL_BACKENDS:
        raise ValueError(f"{origin}: perceptual_backend must be one of {PERCEPTUAL_BACKENDS}, "
                         f"not {mode!r}")
    if pose not in ("off", "hopenet"):
        raise ValueError(f"{origin}: pose_estimator must be off or hopenet, not {pose!r}")
    return LossOptions(read_loss_table(WarpingLossWeights, table, origin), mode, discriminator,
                       pose)


def build_kit(table: dict, device: torch.device, origin: str) -> LossKit:
    options = loss_weights(table, origin)
    weights = options.weights
    vgg = perceptual_network(options.perceptual, device)  # vgg19: AssetMissing with the fix
    discs = (nn.ModuleDict({_scale_key(s): Discriminator(spectral_norm=weights.spectral_norm)
                            for s in weights.discriminator_scales})
             if options.discriminator else None)
    pose = None
    if options.pose_estimator == "hopenet" and weights.headpose:
        from thbench.baselines.hopenet import HopenetPose

        pose = HopenetPose.from_assets(device)  # raises AssetMissing with the fix
    return LossKit(weights, device, torch.Generator(), vgg, discs, pose)


def train(config: TrainConfig, *, resume: bool = False, stop_at: int | None = None,
          distributed: bool = True) -> Path:
    """Train a baseline from a training config; returns the official-layout checkpoint the run
    exports (``<run>/checkpoint.pth.tar``, written by rank 0 at the end). An earlier stage that
    ``init_from`` names by its config is trained (or resumed, or reused) first.

    A run whose folder already holds a finished checkpoint is not trained again."""
    from thbench.core.families import build

    earlier = config.earlier_stage()
    start = (str(train(earlier, resume=True, distributed=distributed)) if earlier else
             config.init_from or None)
    process, data = open_training_data(config, distributed)
    if earlier and process.world > 1:
        torch.distributed.barrier()  # rank 0 wrote the earlier stage's export
    exported = config.exported
    seed_all(config.seed)  # the initial weights
    method = build(config.family, config=config.model, device=process.device,
                   checkpoint=start, allow_random_init=True)
    kit = build_kit(config.loss, process.device, f"{config.name} [loss]")
    objective = BaselineObjective(method, kit)
    d = config.data
    frames = training_frames(data, d.holdout, d.faces_only)
    pairs = FramePairs(data, frames, d.pairs_per_clip, config.seed, method.size[0],
                       by_identity=d.identity_sampling, fresh=d.fresh_pairs,
                       augmentation=d.augmentation())
    trainer = start_trainer(config, objective, pairs, process, resume=resume,
                            distributed=distributed)
    if trainer.step >= trainer.total_steps and exported.is_file():
        logger.info(f"{config.name}: already trained ({exported})")
        return exported
    write_resolved_config(config, {"perceptual_backend": kit.perceptual_backend,
                                   "pose_estimator": "hopenet" if kit.pose else "off"}, process)
    trainer.fit(stop_at)
    if process.main:
        method.save(exported)
    logger.info(f"{config.name}: step {trainer.step}, checkpoint {exported}")
    return exported
