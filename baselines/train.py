"""Training of the warping baselines inside the harness (FOMM, TPSMM; later face-vid2vid).

The published losses: a multi-scale perceptual loss on a VGG-19 (relu1_1 ... relu5_1, inputs at
scales 1, 1/2, 1/4, 1/8, weight 10 per layer) and an equivariance loss (a random affine + TPS
warp of the driving frame must move the keypoints accordingly; FOMM also constrains the
jacobians). An LSGAN multi-scale discriminator with feature matching is optional and off by
default, as in the vox configs' defaults we follow.

The VGG-19 weights come from the asset manager (``vgg19``). When they are absent, training
falls back to an L1 loss on the same image pyramid and says so in the log and in
:attr:`LossKit.perceptual_backend`; it never fails silently to a different objective.

A method takes part by implementing ``training_losses(source, driving, kit) -> dict`` of
weighted scalar losses (see :class:`baselines.fomm.FOMM`) and by exposing ``nets``.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from baselines.modules import ImagePyramid, coordinate_grid, resize

log = logging.getLogger(__name__)

VGG_SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))
"""torchvision ``vgg19().features`` index ranges ending at relu1_1, relu2_1, ..., relu5_1."""


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


class VGG19Features(nn.Module):
    """Frozen VGG-19 trunk returning the five relu{k}_1 activations of an RGB [0, 1] image."""

    def __init__(self, state_dict: dict[str, torch.Tensor]) -> None:
        super().__init__()
        from torchvision.models import vgg19

        trunk = vgg19(weights=None).features
        trunk.load_state_dict({k.removeprefix("features."): v for k, v in state_dict.items()
                               if k.startswith("features.")})
        self.slices = nn.ModuleList(trunk[a:b] for a, b in VGG_SLICES)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean) / self.std
        outputs = []
        for block in self.slices:
            x = block(x)
            outputs.append(x)
        return outputs


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
    from benchcore.assets import AssetMissing, resolve

    try:
        path = resolve("vgg19")
    except AssetMissing as error:
        log.warning("perceptual loss: VGG-19 weights unavailable (%s); training with a multi-scale "
                    "L1 pyramid loss instead", error)
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    log.info("perceptual loss: VGG-19 from %s", path)
    return VGG19Features(state).to(device)


def import_methods() -> None:
    """Register the baselines (face-vid2vid only where its module exists)."""
    importlib.import_module("baselines.fomm")
    importlib.import_module("baselines.tpsmm")
    try:
        importlib.import_module("baselines.fv2v")
    except ModuleNotFoundError as error:
        if error.name != "baselines.fv2v":
            raise


def train_steps(method_name: str, config: str,
                frame_pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], steps: int,
                lr: float = 2e-4, seed: int = 0, *, checkpoint: str | None = None,
                device: str = "cpu", perceptual: str = "auto", discriminator: bool = False,
                weights: LossWeights | None = None, save_to: str | None = None,
                method=None) -> list[float]:
    """Train a baseline for ``steps`` optimiser steps and return the total loss of each step.

    ``frame_pairs`` yields (source, driving) batches (B, 3, H, W) in [0, 1], resized here to the
    config's resolution; a sequence is cycled, other iterables are consumed until exhausted.
    ``perceptual``: ``"auto"`` (VGG-19 if the asset is there, else the L1 pyramid), ``"vgg19"``
    (require it) or ``"l1"``. ``method``: an already built method to train in place (then
    ``method_name``, ``config`` and ``checkpoint`` are ignored). ``save_to`` writes the trained
    weights in the official layout (plus the discriminators under ``discriminator``).
    """
    from benchcore.method import build

    torch.manual_seed(seed)
    dev = torch.device(device)
    if method is None:
        import_methods()
        method = build(method_name, checkpoint=checkpoint, config=config, device=dev,
                       allow_random_init=checkpoint is None)
    if not hasattr(method, "training_losses"):
        raise ValueError(f"method {method.name!r} does not support training in the harness")
    if perceptual not in ("auto", "vgg19", "l1"):
        raise ValueError(f"perceptual must be auto, vgg19 or l1, not {perceptual!r}")
    vgg = None
    if perceptual != "l1":
        vgg = load_vgg(dev)
        if vgg is None and perceptual == "vgg19":
            from benchcore.assets import resolve

            resolve("vgg19")  # raises AssetMissing with the fix
    else:
        log.info("perceptual loss: multi-scale L1 pyramid (requested)")
    weights = weights or LossWeights()
    rng = torch.Generator().manual_seed(seed)
    discs = None
    if discriminator:
        discs = nn.ModuleDict({_scale_key(s): Discriminator() for s in weights.scales}).to(dev)
    kit = LossKit(weights, dev, rng, vgg, discs)
    nets = method.nets
    nets.train()
    optimiser = torch.optim.Adam(nets.parameters(), lr=lr, betas=(0.5, 0.999))
    disc_optimiser = (torch.optim.Adam(discs.parameters(), lr=lr, betas=(0.5, 0.999))
                      if discs is not None else None)
    pairs = itertools.cycle(frame_pairs) if isinstance(frame_pairs, Sequence) else frame_pairs
    history: list[float] = []
    size = tuple(method.size)
    for step, (source, driving) in enumerate(pairs):
        if step >= steps:
            break
        source = resize(source.to(dev).float(), size)
        driving = resize(driving.to(dev).float(), size)
        losses = method.training_losses(source, driving, kit)
        total = sum(losses.values())
        if not math.isfinite(float(total.detach())):
            raise FloatingPointError(f"step {step}: non-finite loss {losses}")
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        optimiser.step()
        if disc_optimiser is not None:
            disc_optimiser.zero_grad(set_to_none=True)
            kit.discriminator_loss(method.last_prediction, driving).backward()
            disc_optimiser.step()
        history.append(float(total.detach()))
        log.info("step %d: %s", step,
                 ", ".join(f"{k}={float(v):.4f}" for k, v in losses.items()))
    nets.eval()
    if save_to is not None:
        extra = {"discriminator": discs.state_dict()} if discs is not None else {}
        method.save(save_to, **extra)
    return history
