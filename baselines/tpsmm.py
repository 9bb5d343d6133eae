"""Thin-Plate Spline Motion Model (Zhao & Zhang, CVPR 2022), vox-256 layout.

Checkpoint keys: ``kp_detector`` (ResNet-18 regressing K*5 points), ``dense_motion_network``
(K thin-plate-spline warps + identity, blended by contribution maps, with multi-resolution
occlusion masks), ``inpainting_network`` and ``avd_network`` (only for the ``avd`` mode);
optionally ``bg_predictor`` (the background motion predictor, applied in reconstruction with
``background = "auto"``; a TPSMM trained here with ``bg_start_epoch`` exports it).

Inference is the official demo's ``relative`` mode: driving keypoints relative to the first
driving frame, scaled by sqrt(hull area of the source keypoints / hull area of the first
driving frame's). The official TPSMM code passes ``align_corners=True`` to every
``grid_sample`` and bilinear ``interpolate`` (unlike FOMM, which uses the default False); we do
the same so that official weights behave as published.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from thbench.baselines import modules
from thbench.baselines.checkpoint import compare, layout_of, layout_of_state
from thbench.baselines.resnet import ResNet18
from thbench.baselines.warping import WarpingMethod
from thbench.core.grids import coordinate_grid, keypoint_gaussians

if TYPE_CHECKING:
    from thbench.baselines.train import LossKit

POINTS_PER_TPS = 5


@dataclass(frozen=True)
class TPSMMConfig:
    size: int = 256
    num_tps: int = 10
    channels: int = 3
    kp_width: int = 64
    kp_variance: float = 0.01
    inp_expansion: int = 64
    inp_max: int = 512
    inp_down: int = 3
    dm_expansion: int = 64
    dm_max: int = 1024
    dm_blocks: int = 5
    dm_scale: float = 0.25
    avd_hidden: tuple[int, int, int] = (256, 512, 1024)
    avd_bottleneck: int = 128
    align_corners: bool = True


CONFIGS = {
    "vox256": TPSMMConfig(),
    "tiny": TPSMMConfig(size=64, kp_width=8, inp_expansion=8, inp_max=64, dm_expansion=8,
                        dm_max=64, dm_blocks=3, avd_hidden=(32, 64, 128), avd_bottleneck=16),
}


def config(name: str, **overrides) -> TPSMMConfig:
    return replace(CONFIGS[name], **overrides)


class KPDetector(nn.Module):
    """Image -> ``{"fg_kp": (B, 5K, 2)}`` in (-1, 1) (sigmoid of a ResNet-18 regression)."""

    def __init__(self, cfg: TPSMMConfig) -> None:
        super().__init__()
        self.fg_encoder = ResNet18(cfg.num_tps * POINTS_PER_TPS * 2, cfg.kp_width, cfg.channels)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        points = torch.sigmoid(self.fg_encoder(image)) * 2 - 1
        return {"fg_kp": points.view(image.shape[0], -1, 2)}


class BGMotionPredictor(nn.Module):
    """(source, driving) -> 3x3 affine background motion; identity at initialisation.

    Trained from ``bg_start_epoch``; at inference the official ``reconstruction.py`` applies it
    when the checkpoint holds its weights (a ``bg_predictor`` state dict beside the other
    modules, torchvision ResNet-18 names under ``bg_encoder``), the demo / ``animate.py`` never.
    The released vox checkpoint holds none (``../shared/reference/tpsmm-vox-state-dict.tsv``).
    """

    def __init__(self, cfg: TPSMMConfig) -> None:
        super().__init__()
        self.bg_encoder = ResNet18(6, cfg.kp_width, 2 * cfg.channels)
        nn.init.zeros_(self.bg_encoder.fc.weight)
        with torch.no_grad():
            self.bg_encoder.fc.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1, 0]))

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        affine = self.bg_encoder(torch.cat([source, driving], dim=1)).view(-1, 2, 3)
        last = affine.new_tensor([0.0, 0.0, 1.0]).expand(affine.shape[0], 1, 3)
        return torch.cat([affine, last], dim=1)


def _radial(squared_distance: torch.Tensor) -> torch.Tensor:
    """TPS kernel U(r) = r^2 log r^2, from r^2 (the 1e-9 keeps log finite at r = 0)."""
    return squared_distance * torch.log(squared_distance + 1e-9)


def fit_tps(control: torch.Tensor, target: torch.Tensor,
            regularisation: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """Thin-plate splines mapping ``control`` (B, G, N, 2) onto ``target`` (B, G, N, 2).

    Solves [[U + rI, P], [P^T, rI]] [w; a] = [target; 0] with P = [control, 1]; the small ridge
    r on the whole system is the official one. Returns the affine part (B, G, 3, 2) (rows: x,
    y, constant) and the radial weights (B, G, N, 2).

    Always in fp32 (fp64 inputs stay fp64) with autocast off: under bf16 autocast the system
    is promoted to fp32 while the right-hand side stays bf16, and ``linalg.solve`` refuses mixed
    dtypes (CUDA has no bf16 solve at all); the fit is tiny, so fp32 costs nothing.
    """
    dtype = _at_least_fp32(control, target)
    with torch.autocast(control.device.type, enabled=False):
        return _fit_tps_fp32(control.to(dtype), target.to(dtype), regularisation)


def _at_least_fp32(*tensors: torch.Tensor) -> torch.dtype:
    dtype = torch.float32
    for tensor in tensors:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype


def _fit_tps_fp32(control: torch.Tensor, target: torch.Tensor,
                  regularisation: float) -> tuple[torch.Tensor, torch.Tensor]:
    batch, groups, count, _ = control.shape
    kernel = _radial((control[:, :, :, None] - control[:, :, None]).pow(2).sum(-1))
    homogeneous = torch.cat([control, control.new_ones(batch, groups, count, 1)], dim=-1)
    top = torch.cat([kernel, homogeneous], dim=-1)
    bottom = torch.cat([homogeneous.transpose(-1, -2), control.new_zeros(batch, groups, 3, 3)],
                       dim=-1)
    system = torch.cat([top, bottom], dim=-2)
    system = system + regularisation * torch.eye(count + 3, dtype=system.dtype,
                                                 device=system.device)
    rhs = torch.cat([target, target.new_zeros(batch, groups, 3, 2)], dim=-2)
    params = torch.linalg.solve(system, rhs)
    return params[:, :, count:], params[:, :, :count]


def apply_tps(points: torch.Tensor, control: torch.Tensor, affine: torch.Tensor,
              weights: torch.Tensor) -> torch.Tensor:
    """Evaluate the splines of :func:`fit_tps` at points (P, 2) -> (B, G, P, 2), in fp32 with
    autocast off (as the fit)."""
    dtype = _at_least_fp32(points, control, affine, weights)
    with torch.autocast(points.device.type, enabled=False):
        points, control, affine, weights = (t.to(dtype) for t in (points, control, affine,
                                                                   weights))
        linear = points @ affine[:, :, :2] + affine[:, :, 2:]
        radial = _radial((points[None, None, :, None] - control[:, :, None]).pow(2).sum(-1))
        return linear + radial @ weights


def hull_scale(kp_source: torch.Tensor, kp_initial: torch.Tensor) -> float:
    """sqrt(convex-hull area of the source keypoints / that of the first driving frame's),
    from the first item of each (B, N, 2) batch, as the official demo.

    Degenerate (collinear) keypoints have no hull: then the scale is 1, with a warning."""
    from scipy.spatial import ConvexHull, QhullError

    try:
        source = ConvexHull(kp_source[0].detach().cpu().double().numpy()).volume
        driving = ConvexHull(kp_initial[0].detach().cpu().double().numpy()).volume
    except QhullError:
        warnings.warn("keypoints are degenerate (no convex hull): movement scale 1",
                      RuntimeWarning, stacklevel=2)
        return 1.0
    return float(np.sqrt(source) / np.sqrt(driving))


def relative_kp(kp_source: torch.Tensor, kp_driving: torch.Tensor,
                kp_initial: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """kp_s + scale * (kp_d - kp_d0); ``scale`` defaults to :func:`hull_scale`."""
    if scale is None:
        scale = hull_scale(kp_source, kp_initial)
    return kp_source + scale * (kp_driving - kp_initial)


class DenseMotionNetwork(nn.Module):
    def __init__(self, cfg: TPSMMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        count = cfg.num_tps + 1
        cin = cfg.channels * count + cfg.num_tps * POINTS_PER_TPS + 1
        self.hourglass = modules.Hourglass(cfg.dm_expansion, cin, cfg.dm_blocks, cfg.dm_max,
                                           "instance")
        widths = self.hourglass.out_channels
        self.maps = nn.Conv2d(widths[-1], count, 7, padding=3)
        # Occlusion masks at inp_down + 1 resolutions: the finest hourglass levels, then
        # upsampling blocks back to the full image resolution.
        self.up_count = round(math.log2(1 / cfg.dm_scale))
        self.mask_count = cfg.inp_down + 1
        self.up = nn.ModuleList(
            modules.UpBlock(widths[-1] // 2**i, widths[-1] // 2 ** (i + 1), norm="instance")
            for i in range(self.up_count)
        )
        occlusion_in = [widths[-1 - i] for i in reversed(range(self.mask_count - self.up_count))]
        occlusion_in += [widths[-1] // 2 ** (i + 1) for i in range(self.up_count)]
        self.occlusion = nn.ModuleList(nn.Conv2d(c, 1, 7, padding=3) for c in occlusion_in)
        if cfg.dm_scale != 1:
            self.down = modules.AntiAliasDownsample(cfg.channels, cfg.dm_scale)

    def transformations(self, size: tuple[int, int], kp_driving: torch.Tensor,
                        kp_source: torch.Tensor, bg_param: torch.Tensor | None) -> torch.Tensor:
        """(B, K+1, H, W, 2) sampling grids: background (identity or affine), then K TPS."""
        batch = kp_driving.shape[0]
        control = kp_driving.view(batch, -1, POINTS_PER_TPS, 2)
        target = kp_source.view(batch, -1, POINTS_PER_TPS, 2)
        affine, weights = fit_tps(control, target)
        grid = coordinate_grid(*size, like=kp_driving)
        tps = apply_tps(grid.view(-1, 2), control, affine, weights).view(batch, -1, *size, 2)
        background = grid[None, None].expand(batch, 1, *size, 2)
        if bg_param is not None:
            homogeneous = torch.cat([background, torch.ones_like(background[..., :1])], dim=-1)
            moved = torch.einsum("bij,bkhwj->bkhwi", bg_param, homogeneous)
            background = moved[..., :2] / moved[..., 2:3]
        return torch.cat([background, tps], dim=1)

    def forward(self, source: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor,
                bg_param: torch.Tensor | None = None,
                dropout_p: float = 0.0) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        if self.cfg.dm_scale != 1:
            source = self.down(source)
        batch, channels, height, width = source.shape
        count = self.cfg.num_tps + 1
        variance = self.cfg.kp_variance
        heat = (keypoint_gaussians(kp_driving, (height, width), variance)
                - keypoint_gaussians(kp_source, (height, width), variance))
        heat = torch.cat([heat.new_zeros(batch, 1, height, width), heat], dim=1)
        grids = self.transformations((height, width), kp_driving, kp_source, bg_param)
        repeated = source[:, None].expand(batch, count, channels, height, width)
        deformed = modules.warp(repeated.reshape(-1, channels, height, width),
                        grids.reshape(-1, height, width, 2), self.cfg.align_corners)
        deformed = deformed.view(batch, count, channels, height, width)
        # All heatmaps first, then the K+1 deformed sources, as the official channel order.
        levels = self.hourglass(torch.cat([heat, deformed.view(batch, -1, height, width)], 1))
        logits = self.maps(levels[-1])
        contribution = (_dropout_softmax(logits, dropout_p) if dropout_p > 0
                        else F.softmax(logits, dim=1))
        deformation = (grids * contribution[..., None]).sum(dim=1)
        first = self.mask_count - self.up_count
        masks = [torch.sigmoid(conv(level))
                 for conv, level in zip(self.occlusion[:first], levels[-first:], strict=True)]
        feature = levels[-1]
        for block, conv in zip(self.up, self.occlusion[first:], strict=True):
            feature = block(feature)
            masks.append(torch.sigmoid(conv(feature)))
        return {"deformed_source": deformed, "contribution_maps": contribution,
                "deformation": deformation, "occlusion_map": masks}


def _dropout_softmax(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Training-time TPS dropout (paper Eq. 7-8): zero whole TPS contribution maps (never the
    background) with probability p, then renormalise. (The official code also divides the
    logits by 1-p, but after exponentiating, so it has no effect; we leave it out.)"""
    keep = (torch.rand(logits.shape[:2], device=logits.device) >= p).to(logits.dtype)
    keep[:, 0] = 1
    weights = (logits - logits.amax(dim=1, keepdim=True)).exp() * keep[..., None, None]
    return weights / (weights.sum(dim=1, keepdim=True) + 1e-6)


class InpaintingNetwork(nn.Module):
    def __init__(self, cfg: TPSMMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        exp, cap, depth = cfg.inp_expansion, cfg.inp_max, cfg.inp_down

        def width(level: int) -> int:
            return min(cap, exp * 2**level)

        self.first = modules.SameBlock(cfg.channels, exp, kernel=7, norm="instance")
        self.down_blocks = nn.ModuleList(
            modules.DownBlock(width(i), width(i + 1), norm="instance") for i in range(depth))
        up_in = [(1 if i == 0 else 2) * width(depth - i) for i in range(depth)]
        self.up_blocks = nn.ModuleList(
            modules.UpBlock(up_in[i], width(depth - i - 1), norm="instance") for i in range(depth))
        self.resblock = nn.ModuleList(
            modules.ResBlock(up_in[i // 2], norm="instance") for i in range(2 * depth))
        self.final = nn.Conv2d(exp, cfg.channels, 7, padding=3)

    def encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Encoder features, finest (full resolution) first."""
        features = [self.first(image)]
        for block in self.down_blocks:
            features.append(block(features[-1]))
        return features

    def forward(self, source: torch.Tensor, motion: dict,
                features: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor | list]:
        """``features``: :meth:`encode` of the source, to reuse across frames."""
        ac = self.cfg.align_corners
        if features is None:
            features = self.encode(source)
        masks, flow = motion["occlusion_map"], motion["deformation"]
        warped_maps = []  # for the warp loss: gradients reach the flow only
        out = None
        for i, feature in enumerate(reversed(features)):
            moved = modules.warp(feature, flow, ac) * masks[i]
            if self.training:
                warped_maps.append(modules.warp(feature.detach(), flow, ac) * masks[i].detach())
            if out is None:
                out = moved
            elif i < len(features) - 1:
                out = torch.cat([out, moved], dim=1)
            if i < len(features) - 1:
                out = self.resblock[2 * i + 1](self.resblock[2 * i](out))
                out = self.up_blocks[i](out)
        last = masks[-1]
        out = out * (1 - last) + moved
        deformed = modules.warp(source, flow, ac)
        prediction = torch.sigmoid(self.final(out)) * (1 - last) + deformed * last
        return {**motion, "prediction": prediction, "deformed": deformed,
                "warped_encoder_maps": warped_maps}

    def encode_driving(self, driving: torch.Tensor,
                       masks: list[torch.Tensor]) -> list[torch.Tensor]:
        """Occluded encoder features of the driving frame, coarsest first (the warp loss's
        targets; no gradient)."""
        with torch.no_grad():
            features = self.encode(driving)
        return [f * m.detach() for f, m in zip(reversed(features), masks, strict=True)]


class AVDNetwork(nn.Module):
    """Animation via disentanglement: pose code of the driving keypoints + identity code of the
    source keypoints -> new keypoints."""

    def __init__(self, cfg: TPSMMConfig) -> None:
        super().__init__()
        self.size = cfg.num_tps * POINTS_PER_TPS * 2
        self.id_encoder = self._mlp([self.size, *cfg.avd_hidden, cfg.avd_bottleneck], True)
        self.pose_encoder = self._mlp([self.size, *cfg.avd_hidden, cfg.avd_bottleneck], True)
        self.decoder = self._mlp([2 * cfg.avd_bottleneck, *reversed(cfg.avd_hidden), self.size],
                                 False)

    @staticmethod
    def _mlp(widths: list[int], inplace: bool) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.Linear(cin, cout))
            if i < len(widths) - 2:
                layers += [nn.BatchNorm1d(cout), nn.ReLU(inplace=inplace)]
        return nn.Sequential(*layers)

    def forward(self, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
        """``kp_source`` (B or 1, N, 2): one source serves a whole driving batch (B, N, 2)."""
        batch = kp_driving.shape[0]
        pose = self.pose_encoder(kp_driving.reshape(batch, -1))
        ident = self.id_encoder(kp_source.reshape(kp_source.shape[0], -1)).expand(batch, -1)
        return self.decoder(torch.cat([pose, ident], dim=1)).view(batch, -1, 2)


class TPSMM(WarpingMethod):
    """TPSMM behind the benchmark interface (official checkpoint ``vox.pth.tar``)."""

    name = "tpsmm"
    configs = CONFIGS
    modes = ("relative", "absolute", "avd")
    # the papers' protocols: reconstruction (same identity) drives with absolute keypoints from
    # the clip's frame 0, as the official reconstruction.py; motion transfer (cross identity)
    # is relative to the driving clip's first frame, as the official animate.py / demo
    # reconstruction also applies the checkpoint's background predictor when it has one
    protocol_options = {"same-identity": {"mode": "absolute", "background": "auto"},
                        "cross-identity": {"mode": "relative", "background": "off"}}
    backgrounds = ("off", "auto")

    def __init__(self, *args, background: str = "off", **kwargs) -> None:
        """``background``: ``"auto"`` applies the checkpoint's ``bg_predictor`` when it holds
        one (as the official reconstruction), ``"off"`` never (as the official demo)."""
        if background not in self.backgrounds:
            raise ValueError(f"tpsmm: unknown background {background!r}; known: "
                             f"{', '.join(self.backgrounds)}")
        super().__init__(*args, **kwargs)
        self.background = background
        self.inference_bg: BGMotionPredictor | None = None
        self.bg_predictor: BGMotionPredictor | None = None  # the one training builds
        state = self.stored_bg_state()
        if background == "auto" and isinstance(state, dict):
            predictor = BGMotionPredictor(self.cfg)
            compare(layout_of({"bg_predictor": predictor}),
                    {"bg_predictor": layout_of_state(state)}, str(self.checkpoint))
            predictor.load_state_dict(state, strict=True)
            self.inference_bg = predictor.to(self.device).eval()

    def stored_bg_state(self) -> dict | None:
        """The checkpoint's ``bg_predictor`` state dict, if it holds one."""
        state = getattr(self, "extra", {}).get("bg_predictor")
        return state if isinstance(state, dict) else None

    def save(self, path, **extra) -> None:
        """The official layout, with the background predictor where there is one (as the
        official ``train.py`` checkpoints hold it): the one training built, else the one this
        checkpoint was loaded with (so the AVD stage carries the main stage's forward)."""
        if self.bg_predictor is not None:
            extra.setdefault("bg_predictor", self.bg_predictor.state_dict())
        elif self.stored_bg_state() is not None:
            extra.setdefault("bg_predictor", self.stored_bg_state())
        super().save(path, **extra)

    def describe(self) -> dict[str, str]:
        """Also whether the background predictor ran: ``checkpoint`` (its weights applied),
        ``absent`` (asked for, but the checkpoint has none) or ``off``."""
        used = "checkpoint" if self.inference_bg is not None else (
            "absent" if self.background == "auto" else "off")
        return super().describe() | {"background": used}

    def build(self, cfg: TPSMMConfig) -> dict[str, nn.Module]:
        return {"inpainting_network": InpaintingNetwork(cfg), "kp_detector": KPDetector(cfg),
                "dense_motion_network": DenseMotionNetwork(cfg), "avd_network": AVDNetwork(cfg)}

    def prepare(self, source: torch.Tensor, driving_first: torch.Tensor) -> None:
        self.kp_source = self.nets["kp_detector"](source)["fg_kp"]
        self.kp_initial = self.nets["kp_detector"](driving_first)["fg_kp"]
        self.scale = hull_scale(self.kp_source, self.kp_initial)
        self.source_features = self.nets["inpainting_network"].encode(source)

    def generate(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        kp_driving = self.nets["kp_detector"](driving)["fg_kp"]
        if self.mode == "relative":
            kp_driving = relative_kp(self.kp_source, kp_driving, self.kp_initial, self.scale)
        elif self.mode == "avd":
            kp_driving = self.nets["avd_network"](self.kp_source, kp_driving)
        batch = driving.shape[0]
        kp_source = self.kp_source.expand(batch, -1, -1)
        source = source.expand(batch, -1, -1, -1)
        features = [f.expand(batch, -1, -1, -1) for f in self.source_features]
        bg_param = None if self.inference_bg is None else self.inference_bg(source, driving)
        motion = self.nets["dense_motion_network"](source, kp_driving, kp_source, bg_param)
        return self.nets["inpainting_network"](source, motion, features)["prediction"]

    def untrained_nets(self, weights) -> tuple[str, ...]:
        """The main stage leaves the AVD network alone; the AVD stage trains only it (as the
        official ``train.py`` and ``train_avd.py``)."""
        if weights.stage == "avd":
            return tuple(key for key in self.nets if key != "avd_network")
        return ("avd_network",)

    def training_nets(self, weights) -> dict[str, nn.Module]:
        """The background motion predictor when the recipe uses one (``bg_start_epoch``),
        starting from the ``init_from`` checkpoint's when it holds one."""
        self.bg_predictor = None
        if weights.bg_start_epoch < 0:
            return {}
        self.bg_predictor = predictor = BGMotionPredictor(self.cfg)
        stored = self.stored_bg_state()
        if stored is not None:
            predictor.load_state_dict(stored, strict=True)
        return {"bg_predictor": predictor}

    def training_losses(self, source: torch.Tensor, driving: torch.Tensor,
                        kit: LossKit) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Reconstruct ``driving`` from ``source`` with absolute keypoints (as in training):
        perceptual, keypoint equivariance under a random TPS warp, the warp loss (warped,
        occluded source features against the driving frame's, moving only the flow), and from
        ``bg_start_epoch`` the background loss mean |I - A(s, d) A(d, s)| of the predicted
        background affines. TPS dropout follows :meth:`WarpingLossWeights.tps_dropout` of the
        epoch."""
        weights = kit.weights
        if weights.stage == "avd":
            return self._avd_losses(source, driving, kit)
        detector = self.nets["kp_detector"]
        inpainting = self.nets["inpainting_network"]
        kp_source, kp_driving = detector(source)["fg_kp"], detector(driving)["fg_kp"]
        predictor = self.bg_predictor if weights.background(kit.epoch) else None
        bg_param = None if predictor is None else predictor(source, driving)
        motion = self.nets["dense_motion_network"](source, kp_driving, kp_source, bg_param,
                                                   dropout_p=weights.tps_dropout(kit.epoch))
        out = inpainting(source, motion)
        prediction = out["prediction"]
        losses = {"perceptual": kit.perceptual(prediction, driving)}
        losses.update(kit.adversarial(prediction, driving))
        transform = kit.random_warp(driving.shape[0], "tpsmm")
        kp_warped = detector(transform.warp_frame(driving, self.cfg.align_corners))["fg_kp"]
        losses["equivariance_value"] = (
            weights.equivariance_value
            * (kp_driving - transform.warp_points(kp_warped)).abs().mean())
        targets = inpainting.encode_driving(driving, motion["occlusion_map"])
        losses["warp"] = weights.warp * sum(
            (target - warped).abs().mean()
            for target, warped in zip(targets, out["warped_encoder_maps"], strict=True))
        if predictor is not None and bg_param is not None and weights.bg:
            reverse = predictor(driving, source)
            eye = torch.eye(3, dtype=bg_param.dtype, device=bg_param.device)
            losses["bg"] = weights.bg * (eye - bg_param @ reverse).abs().mean()
        return losses, prediction

    def _avd_losses(self, source: torch.Tensor, driving: torch.Tensor,
                    kit: LossKit) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The AVD stage: ``avd`` = shift weight * mean |kp_d - AVD(kp_s, kp_d * scale)| with
        per-item x and y scales from U[1 - s, 1 + s] (drawn on the CPU from the kit's
        generator); the keypoints come from the frozen detector, without gradients."""
        weights = kit.weights
        with torch.no_grad():
            detector = self.nets["kp_detector"]
            kp_source, kp_driving = detector(source)["fg_kp"], detector(driving)["fg_kp"]
            spread = weights.avd_random_scale
            scale = torch.rand(driving.shape[0], 1, 2, generator=kit.generator, device="cpu")
            scale = (scale * 2 * spread + 1 - spread).to(kp_driving)
        rebuilt = self.nets["avd_network"](kp_source, kp_driving * scale)
        with torch.no_grad():  # the image the rebuilt keypoints give, for the logs
            motion = self.nets["dense_motion_network"](source, rebuilt, kp_source)
            prediction = self.nets["inpainting_network"](source, motion)["prediction"]
        return {"avd": weights.avd_shift * (kp_driving - rebuilt).abs().mean()}, prediction
