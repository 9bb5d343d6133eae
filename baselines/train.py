"""Training of the warping baselines inside the harness (FOMM, TPSMM, face-vid2vid).

The published losses: a multi-scale perceptual loss on a VGG-19 (relu1_1 ... relu5_1, inputs at
scales 1, 1/2, 1/4, 1/8, weight 10 per layer) and an equivariance loss (a random affine + TPS
warp of the driving frame must move the keypoints accordingly; FOMM also constrains the
jacobians); face-vid2vid adds its keypoint and expression priors (:mod:`baselines.fv2v_losses`).
An LSGAN multi-scale discriminator with feature matching is optional and off by default.

The VGG-19 weights come from the asset manager (``vgg19``). When they are absent, training
falls back to an L1 loss on the same image pyramid and says so in the log, in
:attr:`LossKit.perceptual_backend` and in the run folder's ``config.json``; it never fails
silently to a different objective.

A method takes part by implementing ``training_losses(source, driving, kit) -> dict`` of
weighted scalar losses, setting ``last_prediction``, and exposing ``nets`` (an
``nn.ModuleDict`` keyed like the official checkpoint) and ``save``. :func:`train` runs it under
:class:`benchcore.training.Trainer` (one process, or DDP under torchrun) from a training config.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from baselines.modules import ImagePyramid, coordinate_grid
from benchcore.train_config import (
    TrainConfig,
    open_training_data,
    start_trainer,
    write_resolved_config,
)
from benchcore.training import Objective, seed_all
from benchcore.vgg import VGG19Features, load_vgg19
from datasets.frame_pairs import FramePairs, split_frames

log = logging.getLogger(__name__)

@dataclass
class LossWeights:
    scales: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    perceptual: tuple[float, ...] = (10.0, 10.0, 10.0, 10.0, 10.0)
    equivariance_value: float = 10.0
    equivariance_jacobian: float = 10.0
    warp: float = 10.0
    generator_gan: float = 1.0
    feature_matching: float = 10.0
    sigma_affine: float = 0.05
    sigma_tps: float = 0.005
    points_tps: int = 5


class RandomWarp:
    """A random affine + thin-plate-spline warp of the plane, for the equivariance losses.

    theta = [I | 0] + N(0, sigma_affine); radial weights N(0, sigma_tps) on a points_tps^2 grid
    of control points. ``kernel`` picks the radial function: FOMM's d^2 log d with d the L1
    distance, or TPSMM's r^2 log r^2 with r the Euclidean distance.
    """

    def __init__(self, batch: int, weights: LossWeights, kernel: str, generator: torch.Generator,
                 device: torch.device) -> None:
        if kernel not in ("fomm", "tpsmm"):
            raise ValueError(f"unknown kernel {kernel!r}")
        self.kernel = kernel
        noise = torch.randn(batch, 2, 3, generator=generator) * weights.sigma_affine
        self.theta = (noise + torch.eye(2, 3)).to(device)
        count = weights.points_tps
        self.control = coordinate_grid(count, count).view(-1, 2).to(device)
        params = torch.randn(batch, 1, count * count, generator=generator) * weights.sigma_tps
        self.params = params.to(device)

    def warp_points(self, points: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) -> (B, N, 2)."""
        out = points @ self.theta[:, :, :2].transpose(1, 2) + self.theta[:, None, :, 2]
        diff = points[:, :, None] - self.control[None, None]
        if self.kernel == "fomm":
            dist = diff.abs().sum(-1)
            radial = dist**2 * torch.log(dist + 1e-6)
        else:
            dist = diff.pow(2).sum(-1)
            radial = dist * torch.log(dist + 1e-9)
        return out + (radial * self.params).sum(-1, keepdim=True)

    def warp_frame(self, frame: torch.Tensor, align_corners: bool) -> torch.Tensor:
        batch, _, height, width = frame.shape
        grid = coordinate_grid(height, width, like=frame).view(1, -1, 2).expand(batch, -1, -1)
        grid = self.warp_points(grid).view(batch, height, width, 2)
        return F.grid_sample(frame, grid, padding_mode="reflection", align_corners=align_corners)

    def jacobian(self, points: torch.Tensor) -> torch.Tensor:
        """d warp / d point at (B, N, 2) -> (B, N, 2, 2), differentiable."""
        with torch.enable_grad():
            points = points.detach().requires_grad_(True) if not points.requires_grad else points
            moved = self.warp_points(points)
            rows = [torch.autograd.grad(moved[..., i].sum(), points, create_graph=True)[0]
                    for i in range(2)]
        return torch.stack(rows, dim=-2)


class Discriminator(nn.Module):
    """Patch discriminator (conv 4x4 -> instance norm -> leaky relu -> avg pool), one per scale."""

    def __init__(self, channels: int = 3, width: int = 64, blocks: int = 4, cap: int = 512) -> None:
        super().__init__()
        layers, cin = [], channels
        for i in range(blocks):
            cout = min(cap, width * 2**i)
            layers.append(nn.Sequential(
                nn.Conv2d(cin, cout, 4), nn.InstanceNorm2d(cout, affine=True) if i else
                nn.Identity(), nn.LeakyReLU(0.2), nn.AvgPool2d(2) if i < blocks - 1 else
                nn.Identity()))
            cin = cout
        self.blocks = nn.ModuleList(layers)
        self.head = nn.Conv2d(cin, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features, self.head(x)


@dataclass
class LossKit:
    """What a method's ``training_losses`` needs: weights, the image losses, random warps."""

    weights: LossWeights
    device: torch.device
    generator: torch.Generator
    vgg: VGG19Features | None = None
    discriminators: nn.ModuleDict | None = None
    pyramid: ImagePyramid = field(init=False)

    def __post_init__(self) -> None:
        self.pyramid = ImagePyramid(list(self.weights.scales)).to(self.device)

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

    def random_warp(self, batch: int, kernel: str) -> RandomWarp:
        return RandomWarp(batch, self.weights, kernel, self.generator, self.device)

    def generator_gan(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """LSGAN generator term plus discriminator feature matching (0 without discriminator)."""
        if self.discriminators is None:
            return prediction.new_zeros(())
        total = prediction.new_zeros(())
        for scale, pred, real in zip(self.weights.scales, self.pyramid(prediction),
                                     self.pyramid(target), strict=True):
            disc = self.discriminators[_scale_key(scale)]
            fake_features, fake_score = disc(pred)
            with torch.no_grad():
                real_features, _ = disc(real)
            total = total + self.weights.generator_gan * (1 - fake_score).pow(2).mean()
            for a, b in zip(fake_features, real_features, strict=True):
                total = total + self.weights.feature_matching * (a - b).abs().mean()
        return total

    def discriminator_loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = prediction.new_zeros(())
        for scale, pred, real in zip(self.weights.scales, self.pyramid(prediction.detach()),
                                     self.pyramid(target), strict=True):
            disc = self.discriminators[_scale_key(scale)]
            total = total + (1 - disc(real)[1]).pow(2).mean() + disc(pred)[1].pow(2).mean()
        return total


def _scale_key(scale: float) -> str:
    return f"s{scale}".replace(".", "_")


def load_vgg(device: torch.device) -> VGG19Features | None:
    """VGG-19 from the asset manager, or None (with a clear log line) when it is absent."""
    from benchcore.assets import AssetMissing

    try:
        vgg = load_vgg19(device)
    except AssetMissing as error:
        log.warning("perceptual loss: VGG-19 weights unavailable (%s); training with a multi-scale "
                    "L1 pyramid loss instead", error)
        return None
    log.info("perceptual loss: VGG-19")
    return vgg


class BaselineObjective(Objective):
    """A baseline's ``training_losses`` as a :class:`benchcore.training.Objective`.

    The random equivariance warps draw from a generator reseeded from torch's global RNG at
    every step, so the trainer's RNG checkpoint covers them.
    """

    def __init__(self, method, kit: LossKit) -> None:
        super().__init__()
        if not hasattr(method, "training_losses"):
            raise ValueError(f"method {method.name!r} does not support training in the harness")
        self.method, self.kit = method, kit
        self.nets = method.nets
        if kit.discriminators is not None:
            self.discriminator = kit.discriminators

    def forward(self, batch: dict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        self.kit.generator.manual_seed(int(torch.randint(0, 2**62, ())))
        source, driving = batch["source"], batch["driving"]
        losses = self.method.training_losses(source, driving, self.kit)
        return losses, {"source": source, "driving": driving,
                        "output": self.method.last_prediction}

    def discriminator_loss(self, visuals: dict, batch: dict) -> torch.Tensor:
        return self.kit.discriminator_loss(visuals["output"], batch["driving"])


def loss_weights(table: dict, origin: str) -> tuple[LossWeights, str, bool]:
    """(weights, perceptual mode, discriminator on) from a config's ``[loss]`` table: the
    :class:`LossWeights` fields plus ``perceptual_backend`` (auto | vgg19 | l1) and
    ``discriminator`` (bool)."""
    table = dict(table)
    mode = table.pop("perceptual_backend", "auto")
    discriminator = bool(table.pop("discriminator", False))
    if mode not in ("auto", "vgg19", "l1"):
        raise ValueError(f"{origin}: perceptual_backend must be auto, vgg19 or l1, not {mode!r}")
    try:
        weights = LossWeights(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in table.items()})
    except TypeError as error:
        raise ValueError(f"{origin}: [loss] {error}") from None
    return weights, mode, discriminator


def build_kit(table: dict, device: torch.device, origin: str) -> LossKit:
    weights, mode, discriminator = loss_weights(table, origin)
    vgg = None
    if mode == "vgg19":
        vgg = load_vgg19(device)  # raises AssetMissing with the fix
    elif mode == "auto":
        vgg = load_vgg(device)
    else:
        log.info("perceptual loss: multi-scale L1 pyramid (requested)")
    discs = (nn.ModuleDict({_scale_key(s): Discriminator() for s in weights.scales})
             if discriminator else None)
    return LossKit(weights, device, torch.Generator(device=device), vgg, discs)


def train(config: TrainConfig, *, resume: bool = False, stop_at: int | None = None,
          distributed: bool = True, log=print) -> Path:
    """Train a baseline from a training config; returns the official-layout checkpoint the run
    exports (``<run>/checkpoint.pth.tar``, written by rank 0 at the end).

    A run whose folder already holds a finished checkpoint is not trained again."""
    from benchcore.method import build

    import_methods()
    process, data = open_training_data(config, distributed, log)
    exported = config.exported
    seed_all(config.seed)  # the initial weights
    method = build(config.family, config=config.model, device=process.device,
                   allow_random_init=True)
    kit = build_kit(config.loss, process.device, f"{config.name} [loss]")
    objective = BaselineObjective(method, kit)
    frames = {c.clip_id: split_frames(c, config.data.holdout)[0] for c in data}
    pairs = FramePairs(data, frames, config.data.pairs_per_clip, config.seed, method.size[0])
    trainer = start_trainer(config, objective, pairs, process, resume=resume,
                            distributed=distributed, log=log)
    if trainer.step >= config.optim.steps and exported.is_file():
        log(f"{config.name}: already trained ({exported})")
        return exported
    write_resolved_config(config, {"perceptual_backend": kit.perceptual_backend}, process)
    trainer.fit(stop_at)
    if process.main:
        method.save(exported)
    log(f"{config.name}: step {trainer.step}, checkpoint {exported}")
    return exported


def import_methods() -> None:
    """Register the baselines."""
    for module in ("baselines.fomm", "baselines.tpsmm", "baselines.fv2v"):
        importlib.import_module(module)
