"""The frozen VGG-19 of the perceptual losses (HiDe-NeRF and the baselines' training).

The ImageNet weights are torchvision's ``vgg19-dcbb9e9d.pth``, through the asset manager
(``vgg19``). :func:`load_vgg19` raises :class:`thbench.core.assets.AssetMissing` (with the fix)
when they are absent; :func:`perceptual_network` turns a training config's
``perceptual_backend`` into the network or, visibly, into None (the caller's L1 image pyramid).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import nn

from thbench.core.assets import AssetMissing

logger = logging.getLogger(__name__)

PERCEPTUAL_BACKENDS = ("auto", "vgg19", "l1")
"""A ``[loss]`` table's ``perceptual_backend``: VGG-19 where its weights are here, else an L1
image pyramid (logged); VGG-19 or fail; the L1 pyramid."""

VGG_SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))
"""torchvision ``vgg19().features`` index ranges ending at relu1_1, relu2_1, ..., relu5_1."""

_CACHE: dict[str, VGG19Features] = {}


class VGG19Features(nn.Module):
    """Frozen VGG-19 trunk: RGB (B, 3, H, W) in [0, 1] -> the five relu{k}_1 activations."""

    def __init__(self, state_dict: Mapping[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        from torchvision.models import vgg19

        trunk = vgg19(weights=None).features
        if state_dict is not None:
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


def load_vgg19(device: str | torch.device = "cpu") -> VGG19Features:
    """VGG-19 with ImageNet weights (cached per device); raises AssetMissing when absent."""
    from thbench.core import assets

    key = str(torch.device(device))
    if key not in _CACHE:
        state = torch.load(assets.resolve("vgg19"), map_location="cpu", weights_only=True)
        _CACHE[key] = VGG19Features(state).to(device)
    return _CACHE[key]


def perceptual_network(backend: str, device: str | torch.device) -> VGG19Features | None:
    """The VGG-19 ``backend`` (one of :data:`PERCEPTUAL_BACKENDS`) asks for, or None where the
    perceptual terms become an L1 image pyramid; ``vgg19`` without its weights raises
    AssetMissing with the fix."""
    if backend == "l1":
        logger.info("perceptual loss: multi-scale L1 pyramid (requested)")
        return None
    try:
        vgg = load_vgg19(device)
    except AssetMissing as error:
        if backend == "vgg19":
            raise
        logger.warning("perceptual loss: VGG-19 weights unavailable (%s); training with a "
                       "multi-scale L1 pyramid loss instead", error)
        return None
    logger.info("perceptual loss: VGG-19")
    return vgg


def perceptual_l1(vgg: VGG19Features, prediction: torch.Tensor, target: torch.Tensor,
                  weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    """sum_k weights[k] * mean |vgg_k(prediction) - vgg_k(target)| (target features detached)."""
    with torch.no_grad():
        real = vgg(target)
    return sum(w * (a - b).abs().mean() for w, a, b in zip(weights, vgg(prediction), real,
                                                           strict=True))
