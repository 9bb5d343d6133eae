"""HiDe-NeRF's training objective: reconstruct the driving frame from the source frame.

    l1           mean |image - driving|                       (final, refined image)
    mouth_l1     mean |image - driving| inside the driving frame's mouth box (the batch's
                 ``mouth_box``, from the recorded landmarks): the whole-image L1 barely sees a
                 mouth that opens, a few hundred pixels of 65,536
    low_res_l1   mean |low_res_image - driving at r x r|      (first 3 rendered feature channels)
    perceptual   VGG-19 relu{1..5}_1 L1 on the final image (:mod:`thbench.training.vgg`); where the
                 weights are absent, ``perceptual_backend = "auto"`` replaces it with an L1 on
                 a 1, 1/2, 1/4 image pyramid and records that (``"vgg19"`` requires the weights)
    deformation  mean over rays of sum_s w_s |offset_s|^2: LED offsets where the rendering puts
                 its weight, so the canonical space stays the source's unless the expression
                 needs otherwise
    adversarial  LSGAN generator term of a multi-scale patch discriminator
                 (:mod:`thbench.hidenerf.critics`; off by default: weight 0, on in the paper
                 config), from training step ``adversarial_start`` on: started early it costs
                 mouth control (Real3D-Portrait), so the paper config starts it once the mouth
                 is learnt (the objective counts its training steps in a buffer, which the
                 trainer's checkpoints keep)
    feature_matching
                 L1 between the discriminator's features of the output and of the driving
                 frame, every scale and layer (with the adversarial term)
    identity     1 - cosine of ArcFace embeddings of output and driving frame; where the
                 ArcFace weights (asset ``arcface_r50``) or onnx2torch are absent it is skipped
                 with the reason logged and recorded as ``identity_backend``

Every weight is a key of the training config's ``[loss]`` table.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thbench.core.resampling import resize
from thbench.hidenerf.critics import (
    MultiScaleDiscriminator,
    discriminator_gan_loss,
    feature_matching_loss,
    generator_gan_loss,
    identity_loss,
)
from thbench.hidenerf.model import HiDeNeRF, animate_batch
from thbench.training.config import read_loss_table
from thbench.training.loop import Objective
from thbench.training.vgg import (
    PERCEPTUAL_BACKENDS,
    VGG19Features,
    perceptual_l1,
    perceptual_network,
)


@dataclass(frozen=True)
class HiDeNeRFLossWeights:
    l1: float = 1.0
    mouth_l1: float = 0.0
    low_res_l1: float = 0.0
    perceptual: float = 0.1
    deformation: float = 0.1
    adversarial: float = 0.0
    feature_matching: float = 0.0
    identity: float = 0.0
    perceptual_backend: str = "auto"
    adversarial_start: int = 0

    @classmethod
    def from_dict(cls, table: dict, origin: str) -> HiDeNeRFLossWeights:
        weights = read_loss_table(cls, table, origin)
        if weights.feature_matching and not weights.adversarial:
            raise ValueError(f"{origin}: feature_matching needs the adversarial term")
        if weights.perceptual_backend not in PERCEPTUAL_BACKENDS:
            raise ValueError(f"{origin}: perceptual_backend must be one of "
                             f"{PERCEPTUAL_BACKENDS}")
        return weights


def resolve_perceptual(weights: HiDeNeRFLossWeights, device: torch.device) -> VGG19Features | None:
    """The VGG-19 for the perceptual term, or None for the L1-pyramid substitute (logged)."""
    if weights.perceptual == 0:
        return None
    return perceptual_network(weights.perceptual_backend, device)


def box_l1(image: Tensor, target: Tensor, boxes: Tensor) -> Tensor:
    """Mean over the batch of each item's mean |image - target| inside its box; boxes (B, 4)
    as fractions (x0, y0, x1, y1) of the frame, at least one pixel wide."""
    size = image.shape[-1]
    centres = (torch.arange(size, device=image.device, dtype=image.dtype) + 0.5) / size
    x0, y0, x1, y1 = (boxes.to(image.dtype)[:, i, None] for i in range(4))
    inside_x = (centres >= x0) & (centres <= x1)  # (B, W)
    inside_y = (centres >= y0) & (centres <= y1)  # (B, H)
    mask = (inside_y[:, :, None] & inside_x[:, None, :]).to(image.dtype)[:, None]
    error = ((image - target).abs() * mask).sum((1, 2, 3))
    return (error / (3 * mask.sum((1, 2, 3)).clamp(min=1))).mean()


def pyramid_l1(prediction: Tensor, target: Tensor, levels: int = 3) -> Tensor:
    total = (prediction - target).abs().mean()
    for _ in range(levels - 1):
        prediction = F.avg_pool2d(prediction, 2)
        target = F.avg_pool2d(target, 2)
        total = total + (prediction - target).abs().mean()
    return total


class HiDeNeRFObjective(Objective):
    """Batch: :class:`thbench.hidenerf.train.HiDeNeRFPairs` items (source and driving frames, SECCs,
    source and driving cameras). ``identity``: the ArcFace network and its backend string from
    :func:`thbench.hidenerf.critics.load_identity_network` (None when the weight is 0)."""

    def __init__(self, model: HiDeNeRF, weights: HiDeNeRFLossWeights, vgg: VGG19Features | None,
                 identity: tuple[nn.Module | None, str] | None = None) -> None:
        super().__init__()
        self.model, self.weights = model, weights
        self.vgg = [vgg]  # lists keep the frozen critics out of state_dict and DDP
        self.arcface, self.identity_backend = identity if identity else (None, "off")
        self.arcface = [self.arcface]
        if weights.adversarial > 0:
            self.discriminator = MultiScaleDiscriminator()
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))

    @property
    def perceptual_backend(self) -> str:
        if self.weights.perceptual == 0:
            return "off"
        return "vgg19" if self.vgg[0] is not None else "l1-pyramid (VGG-19 weights absent)"

    def forward(self, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        w, model = self.weights, self.model
        adversarial = w.adversarial and int(self.steps_seen) >= w.adversarial_start
        if self.training:
            self.steps_seen += 1
        out = animate_batch(model, batch)
        image = out["image"]
        target = resize(batch["driving"], model.config.image_size)
        losses = {"l1": w.l1 * (image - target).abs().mean(),
                  "low_res_l1": w.low_res_l1 * (out["low_res_image"] - resize(
                      target, model.config.render_size)).abs().mean()}
        if w.mouth_l1:
            losses["mouth_l1"] = w.mouth_l1 * box_l1(image, target, batch["mouth_box"])
        if w.perceptual:
            vgg = self.vgg[0]
            term = perceptual_l1(vgg, image, target) if vgg is not None else pyramid_l1(
                image, target)
            losses["perceptual"] = w.perceptual * term
        if w.deformation:
            spread = (out["weights"] * out["offsets"].pow(2).sum(-1)).sum(-1)
            losses["deformation"] = w.deformation * spread.mean()
        if adversarial:
            fake = self.discriminator(image)
            losses["adversarial"] = w.adversarial * generator_gan_loss(fake)
            if w.feature_matching:
                with torch.no_grad():
                    real = self.discriminator(target)
                losses["feature_matching"] = w.feature_matching * feature_matching_loss(fake,
                                                                                        real)
        if w.identity and self.arcface[0] is not None:
            losses["identity"] = w.identity * identity_loss(self.arcface[0], image, target)
        visuals = {"source": batch["source"], "driving": batch["driving"], "output": image}
        return losses, visuals

    def discriminator_loss(self, visuals: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor:
        real = resize(batch["driving"], self.model.config.image_size)
        fake = visuals["output"].detach()
        return discriminator_gan_loss(self.discriminator(real), self.discriminator(fake))
