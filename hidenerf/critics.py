"""Critics used by the paper config's training: a multi-scale patch discriminator trained with
LSGAN plus feature matching, and an ArcFace identity network.

Discriminator (pix2pixHD-style): ``scales`` patch discriminators, the s-th on the image average-
pooled by 2^s; each is 4x4 stride-2 convs (LeakyReLU 0.2, instance norm after the first) and a
3x3 conv to one logit per patch, and returns every block's features and the logits, so the
generator can match the real image's features at each layer (feature matching stabilises the
adversarial term without the double backward that R1 needs).

Identity: insightface's ``w600k_r50`` ArcFace (asset ``arcface_r50``), converted from ONNX to a
differentiable torch module by ``onnx2torch``; it embeds the central 60 % of a face-aligned crop
(the face box of a 1.8x crop, about ArcFace's aligned framing) resized to 112 px, RGB in [-1, 1].
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

logger = logging.getLogger(__name__)

IDENTITY_CROP = (0.2, 0.8)
"""The face box inside a benchmark crop (1.8x the face box), as fractions of the side."""


class PatchDiscriminator(nn.Module):
    """[0, 1] image -> [block features..., logits]."""

    def __init__(self, width: int, blocks: int, max_width: int = 512) -> None:
        super().__init__()
        layers, channels = [], 3
        for i in range(blocks):
            out = min(width * 2**i, max_width)
            norm: nn.Module = nn.InstanceNorm2d(out, affine=True) if i else nn.Identity()
            layers.append(nn.Sequential(nn.Conv2d(channels, out, 4, 2, 1), norm,
                                        nn.LeakyReLU(0.2)))
            channels = out
        self.blocks = nn.ModuleList(layers)
        self.logits = nn.Conv2d(channels, 1, 3, 1, 1)

    def forward(self, image: Tensor) -> list[Tensor]:
        x, outputs = image * 2 - 1, []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        outputs.append(self.logits(x))
        return outputs


class MultiScaleDiscriminator(nn.Module):
    """``scales`` patch discriminators on the image at 1, 1/2, 1/4 ... resolution."""

    def __init__(self, scales: int = 3, width: int = 64, blocks: int = 3) -> None:
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(width, blocks) for _ in range(scales))

    def forward(self, image: Tensor) -> list[list[Tensor]]:
        outputs = []
        for i, scale in enumerate(self.scales):
            outputs.append(scale(F.avg_pool2d(image, 2**i) if i else image))
        return outputs


def generator_gan_loss(fake: list[list[Tensor]]) -> Tensor:
    """LSGAN: the generator wants every scale's logits at 1."""
    return sum((1 - out[-1]).pow(2).mean() for out in fake) / len(fake)


def feature_matching_loss(fake: list[list[Tensor]], real: list[list[Tensor]]) -> Tensor:
    """Mean over scales of the summed L1 between the fake and (detached) real features."""
    total = sum(sum((f - r.detach()).abs().mean() for f, r in zip(fs[:-1], rs[:-1], strict=True))
                for fs, rs in zip(fake, real, strict=True))
    return total / len(fake)


def discriminator_gan_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """LSGAN: real logits to 1, fake logits to 0."""
    return sum((1 - r[-1]).pow(2).mean() + f[-1].pow(2).mean()
               for r, f in zip(real, fake, strict=True)) / len(real)


def load_identity_network(device: torch.device) -> tuple[nn.Module | None, str]:
    """(ArcFace as a frozen torch module, its backend) or (None, the reason it is skipped)."""
    from thbench.core import assets

    try:
        path = assets.resolve("arcface_r50")
        from onnx2torch import convert
    except (assets.AssetError, ImportError) as error:
        reason = str(error)
        if isinstance(error, ImportError):
            reason += "; fix: pip install onnx2torch"
        logger.warning("HiDe-NeRF identity loss skipped: %s", reason)
        return None, f"skipped: {reason}"
    network = convert(str(path)).eval().to(device)
    network.requires_grad_(False)
    return network, f"arcface-r50 ({path.name}, onnx2torch)"


def identity_loss(network: nn.Module, image: Tensor, target: Tensor) -> Tensor:
    """1 - cosine similarity of the ArcFace embeddings of the faces of image and target."""
    def embed(x: Tensor) -> Tensor:
        size = x.shape[-1]
        lo, hi = (int(round(f * size)) for f in IDENTITY_CROP)
        face = F.interpolate(x[..., lo:hi, lo:hi], size=(112, 112), mode="bilinear",
                             align_corners=False, antialias=True)
        return network(face * 2 - 1)

    with torch.no_grad():
        reference = embed(target)
    return (1 - F.cosine_similarity(embed(image), reference, dim=-1)).mean()
