"""First Order Motion Model (Siarohin et al., NeurIPS 2019), vox-256 layout.

Modules and checkpoint keys: ``kp_detector`` (hourglass -> ``kp`` heatmaps and ``jacobian``
maps) and ``generator`` (encoder, ``dense_motion_network``, bottleneck, decoder). Inference is
the official demo's: keypoints and jacobians relative to the first driving frame, no movement
scale adaptation; ``grid_sample`` / bilinear ``interpolate`` with the default
``align_corners=False`` as the official code calls them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from thbench.baselines import modules
from thbench.baselines.warping import WarpingMethod
from thbench.core.grids import coordinate_grid, keypoint_gaussians

if TYPE_CHECKING:
    from thbench.baselines.train import LossKit

Keypoints = dict[str, torch.Tensor]
"""``{"value": (B, K, 2) in [-1, 1], "jacobian": (B, K, 2, 2)}``."""


@dataclass(frozen=True)
class FOMMConfig:
    size: int = 256
    num_kp: int = 10
    channels: int = 3
    temperature: float = 0.1
    kp_variance: float = 0.01
    kp_expansion: int = 32
    kp_max: int = 1024
    kp_blocks: int = 5
    kp_scale: float = 0.25
    kp_pad: int = 0
    gen_expansion: int = 64
    gen_max: int = 512
    gen_down: int = 2
    gen_bottleneck: int = 6
    dm_expansion: int = 64
    dm_max: int = 1024
    dm_blocks: int = 5
    dm_scale: float = 0.25
    align_corners: bool = False


CONFIGS = {
    "vox256": FOMMConfig(),
    "tiny": FOMMConfig(size=64, kp_expansion=8, kp_max=64, kp_blocks=3, kp_scale=0.5,
                       gen_expansion=8, gen_max=32, gen_bottleneck=2, dm_expansion=8, dm_max=64,
                       dm_blocks=3, dm_scale=0.5),
    # The embedded default's recipe (configs/train/fomm-tiny-sample.toml): no down block, so the
    # source features are warped at the full 64 px (tiny: at 16 px, which blurs the face past
    # what dlib detects in a few hundred steps); about tiny's cost per step.
    "tiny-full": FOMMConfig(size=64, kp_expansion=8, kp_max=64, kp_blocks=3, kp_scale=0.5,
                            gen_expansion=16, gen_max=64, gen_down=0, gen_bottleneck=2,
                            dm_expansion=8, dm_max=64, dm_blocks=3, dm_scale=0.5),
}


class KPDetector(nn.Module):
    """Keypoints as soft-argmax of heatmaps; jacobians as heatmap-weighted 2x2 maps."""

    def __init__(self, cfg: FOMMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.predictor = modules.Hourglass(cfg.kp_expansion, cfg.channels, cfg.kp_blocks,
                                           cfg.kp_max, norm="batch")
        width = self.predictor.out_channels[-1]
        self.kp = nn.Conv2d(width, cfg.num_kp, 7, padding=cfg.kp_pad)
        self.jacobian = nn.Conv2d(width, 4 * cfg.num_kp, 7, padding=cfg.kp_pad)
        # Start at identity jacobians, as the official initialisation.
        nn.init.zeros_(self.jacobian.weight)
        with torch.no_grad():
            self.jacobian.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * cfg.num_kp))
        if cfg.kp_scale != 1:
            self.down = modules.AntiAliasDownsample(cfg.channels, cfg.kp_scale)

    def forward(self, image: torch.Tensor) -> Keypoints:
        if self.cfg.kp_scale != 1:
            image = self.down(image)
        features = self.predictor(image)[-1]
        logits = self.kp(features)
        batch, count, height, width = logits.shape
        heat = F.softmax(logits.flatten(2) / self.cfg.temperature, dim=2).view_as(logits)
        grid = coordinate_grid(height, width, like=heat)
        value = (heat[..., None] * grid).sum(dim=(2, 3))
        maps = self.jacobian(features).view(batch, count, 4, height, width)
        jacobian = (heat[:, :, None] * maps).sum(dim=(3, 4)).view(batch, count, 2, 2)
        return {"value": value, "jacobian": jacobian}


class DenseMotionNetwork(nn.Module):
    """Combines K local affine motions (+ identity for the background) into a dense flow."""

    def __init__(self, cfg: FOMMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        cin = (cfg.num_kp + 1) * (cfg.channels + 1)
        self.hourglass = modules.Hourglass(cfg.dm_expansion, cin, cfg.dm_blocks, cfg.dm_max,
                                           norm="batch")
        width = self.hourglass.out_channels[-1]
        self.mask = nn.Conv2d(width, cfg.num_kp + 1, 7, padding=3)
        self.occlusion = nn.Conv2d(width, 1, 7, padding=3)
        if cfg.dm_scale != 1:
            self.down = modules.AntiAliasDownsample(cfg.channels, cfg.dm_scale)

    def sparse_motions(self, size: tuple[int, int], kp_driving: Keypoints,
                       kp_source: Keypoints) -> torch.Tensor:
        """(B, K+1, H, W, 2): for each keypoint, where a driving pixel comes from in the source,
        z -> kp_s + J_s J_d^-1 (z - kp_d); index 0 is the identity (background)."""
        grid = coordinate_grid(*size, like=kp_driving["value"])
        rel = grid[None, None] - kp_driving["value"][:, :, None, None, :]
        jac = kp_source["jacobian"] @ torch.inverse(kp_driving["jacobian"])
        rel = torch.einsum("bkij,bkhwj->bkhwi", jac, rel)
        motions = rel + kp_source["value"][:, :, None, None, :]
        identity = grid[None, None].expand(motions.shape[0], 1, *grid.shape)
        return torch.cat([identity, motions], dim=1)

    def forward(self, source: torch.Tensor, kp_driving: Keypoints,
                kp_source: Keypoints) -> dict[str, torch.Tensor]:
        if self.cfg.dm_scale != 1:
            source = self.down(source)
        batch, channels, height, width = source.shape
        count = self.cfg.num_kp + 1
        heat = (keypoint_gaussians(kp_driving["value"], (height, width), self.cfg.kp_variance)
                - keypoint_gaussians(kp_source["value"], (height, width), self.cfg.kp_variance))
        heat = torch.cat([heat.new_zeros(batch, 1, height, width), heat], dim=1)
        motions = self.sparse_motions((height, width), kp_driving, kp_source)
        repeated = source[:, None].expand(batch, count, channels, height, width)
        deformed = modules.warp(repeated.reshape(batch * count, channels, height, width),
                        motions.reshape(batch * count, height, width, 2),
                        self.cfg.align_corners).view(batch, count, channels, height, width)
        # Per keypoint: [heatmap, deformed RGB], as the official channel order.
        inputs = torch.cat([heat[:, :, None], deformed], dim=2).view(batch, -1, height, width)
        features = self.hourglass(inputs)[-1]
        mask = F.softmax(self.mask(features), dim=1)
        deformation = (motions * mask[..., None]).sum(dim=1)
        return {"mask": mask, "sparse_deformed": deformed, "deformation": deformation,
                "occlusion_map": torch.sigmoid(self.occlusion(features))}


class OcclusionAwareGenerator(nn.Module):
    def __init__(self, cfg: FOMMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        exp, cap = cfg.gen_expansion, cfg.gen_max
        self.first = modules.SameBlock(cfg.channels, exp, kernel=7)
        self.down_blocks = nn.ModuleList(
            modules.DownBlock(min(cap, exp * 2**i), min(cap, exp * 2 ** (i + 1)))
            for i in range(cfg.gen_down)
        )
        self.up_blocks = nn.ModuleList(
            modules.UpBlock(min(cap, exp * 2 ** (cfg.gen_down - i)),
                      min(cap, exp * 2 ** (cfg.gen_down - i - 1)))
            for i in range(cfg.gen_down)
        )
        width = min(cap, exp * 2**cfg.gen_down)
        self.bottleneck = nn.Sequential()
        for i in range(cfg.gen_bottleneck):
            self.bottleneck.add_module(f"r{i}", modules.ResBlock(width))
        self.final = nn.Conv2d(exp, cfg.channels, 7, padding=3)
        self.dense_motion_network = DenseMotionNetwork(cfg)

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        out = self.first(source)
        for block in self.down_blocks:
            out = block(out)
        return out

    def forward(self, source: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints,
                features: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``features``: :meth:`encode` of the source, to reuse across frames."""
        if features is None:
            features = self.encode(source)
        motion = self.dense_motion_network(source, kp_driving, kp_source)
        ac = self.cfg.align_corners
        out = modules.warp(features, motion["deformation"], ac)
        occlusion = motion["occlusion_map"]
        if occlusion.shape[-2:] != out.shape[-2:]:
            occlusion = F.interpolate(occlusion, size=out.shape[-2:], mode="bilinear",
                                      align_corners=ac)
        out = self.bottleneck(out * occlusion)
        for block in self.up_blocks:
            out = block(out)
        motion["prediction"] = torch.sigmoid(self.final(out))
        motion["deformed"] = modules.warp(source, motion["deformation"], ac)
        return motion


def normalize_kp(kp_source: Keypoints, kp_driving: Keypoints, kp_initial: Keypoints,
                 adapt_movement_scale: bool = False, use_relative_movement: bool = True,
                 use_relative_jacobian: bool = True) -> Keypoints:
    """The official demo's relative transfer.

    value = kp_s + scale * (kp_d - kp_d0); jacobian = J_d J_d0^-1 J_s. ``scale`` is
    sqrt(hull area of kp_s / hull area of kp_d0) when ``adapt_movement_scale``, else 1.
    """
    out = dict(kp_driving)
    if not use_relative_movement:
        return out
    scale = 1.0
    if adapt_movement_scale:
        from thbench.baselines.tpsmm import hull_scale

        scale = hull_scale(kp_source["value"], kp_initial["value"])
    out["value"] = kp_source["value"] + scale * (kp_driving["value"] - kp_initial["value"])
    if use_relative_jacobian:
        change = kp_driving["jacobian"] @ torch.inverse(kp_initial["jacobian"])
        out["jacobian"] = change @ kp_source["jacobian"]
    return out


class FOMM(WarpingMethod):
    """FOMM behind the benchmark interface (official checkpoint ``vox-cpk.pth.tar``)."""

    name = "fomm"
    configs = CONFIGS
    modes = ("relative", "absolute")
    # the papers' protocols: reconstruction (same identity) drives with absolute keypoints from
    # the clip's frame 0, as the official reconstruction.py; motion transfer (cross identity)
    # is relative to the driving clip's first frame, as the official animate.py / demo
    protocol_options = {"same-identity": {"mode": "absolute"},
                        "cross-identity": {"mode": "relative"}}

    def build(self, cfg: FOMMConfig) -> dict[str, nn.Module]:
        return {"kp_detector": KPDetector(cfg), "generator": OcclusionAwareGenerator(cfg)}

    def prepare(self, source: torch.Tensor, driving_first: torch.Tensor) -> None:
        self.kp_source = self.nets["kp_detector"](source)
        self.kp_initial = self.nets["kp_detector"](driving_first)
        self.source_features = self.nets["generator"].encode(source)

    def generate(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        kp_driving = self.nets["kp_detector"](driving)
        if self.mode == "relative":
            kp_driving = normalize_kp(self.kp_source, kp_driving, self.kp_initial)
        batch = driving.shape[0]
        kp_source = {k: v.expand(batch, *v.shape[1:]) for k, v in self.kp_source.items()}
        features = self.source_features.expand(batch, *self.source_features.shape[1:])
        source = source.expand(batch, *source.shape[1:])
        return self.nets["generator"](source, kp_driving, kp_source, features)["prediction"]

    def training_losses(self, source: torch.Tensor, driving: torch.Tensor,
                        kit: LossKit) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Reconstruct ``driving`` from ``source`` with absolute keypoints (as in training), plus
        keypoint and jacobian equivariance under a random warp of the driving frame."""
        detector, generator = self.nets["kp_detector"], self.nets["generator"]
        kp_source, kp_driving = detector(source), detector(driving)
        prediction = generator(source, kp_driving, kp_source)["prediction"]
        losses = {"perceptual": kit.perceptual(prediction, driving)}
        losses.update(kit.adversarial(prediction, driving))
        weights = kit.weights
        transform = kit.random_warp(driving.shape[0], "fomm")
        kp_warped = detector(transform.warp_frame(driving, self.cfg.align_corners))
        moved = transform.warp_points(kp_warped["value"])
        losses["equivariance_value"] = (
            weights.equivariance_value * (kp_driving["value"] - moved).abs().mean())
        jacobian = transform.jacobian(kp_warped["value"]) @ kp_warped["jacobian"]
        product = torch.inverse(kp_driving["jacobian"]) @ jacobian
        eye = torch.eye(2, dtype=product.dtype, device=product.device)
        losses["equivariance_jacobian"] = (
            weights.equivariance_jacobian * (eye - product).abs().mean())
        return losses, prediction



def config(name: str, **overrides) -> FOMMConfig:
    return replace(CONFIGS[name], **overrides)

