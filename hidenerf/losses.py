"""HiDe-NeRF's training objective: reconstruct the driving frame from the source frame.

    l1           mean |image - driving|                       (final, refined image)
    low_res_l1   mean |low_res_image - driving at r x r|      (first 3 rendered feature channels)
    perceptual   VGG-19 relu{1..5}_1 L1 on the final image (:mod:`benchcore.vgg`); where the
                 weights are absent, ``perceptual_backend = "auto"`` replaces it with an L1 on
                 a 1, 1/2, 1/4 image pyramid and records that (``"vgg19"`` requires the weights)
    deformation  mean over rays of sum_s w_s |offset_s|^2: LED offsets where the rendering puts
                 its weight, so the canonical space stays the source's unless the expression
                 needs otherwise
    adversarial  LSGAN generator term of a patch discriminator (off by default: weight 0)

Every weight is a key of the training config's ``[loss]`` table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchcore.training import Objective
from benchcore.vgg import VGG19Features, load_vgg19, perceptual_l1
from hidenerf.model import HiDeNeRF, animate_batch, resize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LossWeights:
    l1: float = 1.0
    low_res_l1: float = 1.0
    perceptual: float = 0.1
    deformation: float = 0.1
    adversarial: float = 0.0
    perceptual_backend: str = "auto"

    @classmethod
    def from_dict(cls, table: dict, origin: str) -> LossWeights:
        unknown = sorted(set(table) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"{origin}: unknown [loss] keys {unknown}")
        weights = cls(**table)
        if weights.perceptual_backend not in ("auto", "vgg19", "l1"):
            raise ValueError(f"{origin}: perceptual_backend must be auto, vgg19 or l1")
        return weights


def resolve_perceptual(weights: LossWeights, device: torch.device) -> VGG19Features | None:
    """The VGG-19 for the perceptual term, or None for the L1-pyramid substitute (logged)."""
    from benchcore.assets import AssetMissing

    if weights.perceptual == 0 or weights.perceptual_backend == "l1":
        return None
    try:
        return load_vgg19(device)
    except AssetMissing as error:
        if weights.perceptual_backend == "vgg19":
            raise
        log.warning("HiDe-NeRF perceptual loss: %s; using an L1 image-pyramid loss instead",
                    error)
        return None


def pyramid_l1(prediction: Tensor, target: Tensor, levels: int = 3) -> Tensor:
    total = (prediction - target).abs().mean()
    for _ in range(levels - 1):
        prediction = F.avg_pool2d(prediction, 2)
        target = F.avg_pool2d(target, 2)
        total = total + (prediction - target).abs().mean()
    return total


class PatchDiscriminator(nn.Module):
    """Small LSGAN patch discriminator on [0, 1] images (used only when adversarial > 0)."""

    def __init__(self, width: int = 32, blocks: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for i in range(blocks):
            layers += [nn.Conv2d(channels, width * 2**i, 4, stride=2, padding=1),
                       nn.LeakyReLU(0.2)]
            channels = width * 2**i
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image * 2 - 1)


class HiDeNeRFObjective(Objective):
    """Batch: :class:`hidenerf.train.HiDeNeRFPairs` items (source and driving frames, SECCs,
    source and driving cameras)."""

    def __init__(self, model: HiDeNeRF, weights: LossWeights,
                 vgg: VGG19Features | None) -> None:
        super().__init__()
        self.model, self.weights = model, weights
        self.vgg = [vgg]  # a list keeps the frozen VGG out of state_dict and DDP
        if weights.adversarial > 0:
            self.discriminator = PatchDiscriminator()

    @property
    def perceptual_backend(self) -> str:
        if self.weights.perceptual == 0:
            return "off"
        return "vgg19" if self.vgg[0] is not None else "l1-pyramid (VGG-19 weights absent)"

    def forward(self, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        w, model = self.weights, self.model
        out = animate_batch(model, batch)
        image = out["image"]
        target = resize(batch["driving"], model.config.image_size)
        losses = {"l1": w.l1 * (image - target).abs().mean(),
                  "low_res_l1": w.low_res_l1 * (out["low_res_image"] - resize(
                      target, model.config.render_size)).abs().mean()}
        if w.perceptual:
            vgg = self.vgg[0]
            term = perceptual_l1(vgg, image, target) if vgg is not None else pyramid_l1(
                image, target)
            losses["perceptual"] = w.perceptual * term
        if w.deformation:
            spread = (out["weights"] * out["offsets"].pow(2).sum(-1)).sum(-1)
            losses["deformation"] = w.deformation * spread.mean()
        if w.adversarial:
            losses["adversarial"] = w.adversarial * (1 - self.discriminator(image)).pow(2).mean()
        visuals = {"source": batch["source"], "driving": batch["driving"], "output": image}
        return losses, visuals

    def discriminator_loss(self, visuals: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor:
        real = resize(batch["driving"], self.model.config.image_size)
        fake = visuals["output"].detach()
        return (1 - self.discriminator(real)).pow(2).mean() + self.discriminator(fake).pow(2).mean()
