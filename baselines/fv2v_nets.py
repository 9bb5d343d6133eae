"""The face-vid2vid networks and their configurations.

Three top-level modules, exactly the top-level keys of the official checkpoint
(``../shared/reference/fv2v-vox-state-dict.tsv``): ``kp_detector`` (canonical 3D keypoints),
``he_estimator`` (head pose as 66-bin yaw/pitch/roll logits, translation, expression
deviations) and ``generator``. The appearance feature extractor is not a module of its own in
that layout: it is the front of the generator (``first``, ``down_blocks``, ``second``,
``resblocks_3d``), followed by the 3D dense motion network, the projection back to 2D
(``third``, ``fourth``) and the SPADE decoder. The released checkpoint also carries no
discriminator, so none is built here.

Coordinates are normalised to [-1, 1] with the first and last sample *centres* at -1 and 1, the
convention of the original code, while every ``grid_sample`` keeps PyTorch's default
``align_corners=False`` as today's official code runs it. The two conventions differ by half a
voxel; reproducing that mismatch is part of behaving like the released model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from thbench.baselines import modules
from thbench.baselines.fv2v_blocks import ResBottleneck, SPADEResBlock
from thbench.core.grids import coordinate_grid_3d, keypoint_gaussians

NUM_BINS = 66
"""Head-pose bins; the degree conversion ``sum(p * idx) * 3 - 99`` assumes exactly 66."""


@dataclass(frozen=True)
class FV2VConfig:
    """Hyper-parameters; ``vox256`` reproduces ``config/vox-256.yaml`` of the unofficial code."""

    name: str
    image_size: int
    num_kp: int = 15
    feature_channel: int = 32
    # keypoint detector
    kp_expansion: int = 32
    kp_max_features: int = 1024
    kp_scale_factor: float = 0.25
    kp_num_blocks: int = 5
    kp_reshape_depth: int = 16
    kp_temperature: float = 0.1
    # head pose / expression estimator (a ResNet-50-like trunk)
    he_expansion: int = 64
    he_widths: tuple[int, int, int, int] = (256, 512, 1024, 2048)
    he_repeats: tuple[int, int, int, int] = (3, 3, 5, 2)
    # generator: appearance encoder, dense motion, SPADE decoder
    gen_expansion: int = 64
    gen_reshape_depth: int = 16
    gen_num_resblocks: int = 6
    gen_pools: int = 2
    """How many of the generator's two down blocks halve the image (the decoder's two up blocks
    double it as often). The official model: both, a feature volume at a quarter of the image.
    Fewer keep the module keys and weights' shapes and give the small CPU models a sharper
    volume."""
    dm_expansion: int = 32
    dm_max_features: int = 1024
    dm_num_blocks: int = 5
    dm_compress: int = 4
    spade_hidden: int = 128
    spade_middle_blocks: int = 6

    @property
    def size(self) -> int:
        """The model resolution (the name :class:`~thbench.baselines.warping.WarpingMethod`
        reads)."""
        return self.image_size

    @property
    def gen_max_features(self) -> int:
        """Channels of the 2D code reshaped into the 3D feature volume (C * D)."""
        return self.feature_channel * self.gen_reshape_depth


CONFIGS: dict[str, FV2VConfig] = {
    "vox256": FV2VConfig(name="vox256", image_size=256),
    # A few channels at 64 px for CPU tests and the embedded default run; same structure.
    "tiny": FV2VConfig(
        name="tiny", image_size=64, feature_channel=4,
        kp_expansion=8, kp_max_features=64, kp_scale_factor=0.5, kp_num_blocks=3,
        kp_reshape_depth=4,
        he_expansion=16, he_widths=(32, 64, 128, 256), he_repeats=(1, 1, 1, 1),
        gen_expansion=8, gen_reshape_depth=4, gen_num_resblocks=1,
        dm_expansion=8, dm_max_features=64, dm_num_blocks=3, dm_compress=2,
        spade_hidden=16, spade_middle_blocks=1,
    ),
}
# tiny with 16 feature channels: the sample recipe's generator sees the face in more detail.
CONFIGS["tiny-fine"] = replace(CONFIGS["tiny"], name="tiny-fine", feature_channel=16)
# tiny-fine with the feature volume at half the image (32 px at 64) instead of a quarter: at
# 16 px the warped face stays too soft for dlib (as FOMM's tiny-full found).
CONFIGS["tiny-sharp"] = replace(CONFIGS["tiny-fine"], name="tiny-sharp", gen_pools=1)


def get_config(config: str | FV2VConfig) -> FV2VConfig:
    if isinstance(config, FV2VConfig):
        return config
    if config not in CONFIGS:
        raise ValueError(f"unknown face-vid2vid config {config!r}; known: {', '.join(CONFIGS)}")
    return CONFIGS[config]


class KPDetector(nn.Module):
    """Canonical keypoints: 2D encoder, reshape to a 3D volume, 3D decoder, one heatmap per
    keypoint, soft-argmax (softmax with temperature) over the volume -> (B, K, 3) in [-1, 1]."""

    def __init__(self, cfg: FV2VConfig) -> None:
        super().__init__()
        self.predictor = _KPHourglass(cfg)
        self.kp = nn.Conv3d(self.predictor.out_channels, cfg.num_kp, 3, padding=1)
        self.temperature = cfg.kp_temperature
        self.scale_factor = cfg.kp_scale_factor
        if cfg.kp_scale_factor != 1:
            self.down = modules.AntiAliasDownsample(3, cfg.kp_scale_factor)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.scale_factor != 1:
            image = self.down(image)
        logits = self.kp(self.predictor(image))
        b, k, d, h, w = logits.shape
        heatmap = F.softmax(logits.view(b, k, -1) / self.temperature, dim=2).view(b, k, d, h, w)
        grid = coordinate_grid_3d(d, h, w, like=heatmap)
        return (heatmap.unsqueeze(-1) * grid).sum(dim=(2, 3, 4))


class _KPHourglass(nn.Module):
    def __init__(self, cfg: FV2VConfig) -> None:
        super().__init__()
        n, e, top = cfg.kp_num_blocks, cfg.kp_expansion, cfg.kp_max_features
        self.down_blocks = nn.Sequential()
        for i in range(n):
            self.down_blocks.add_module(
                f"down{i}", modules.DownBlock(3 if i == 0 else min(top, e * 2**i),
                                        min(top, e * 2 ** (i + 1))))
        bottleneck = min(top, e * 2**n)
        self.depth = cfg.kp_reshape_depth
        self.conv = nn.Conv2d(bottleneck, bottleneck * self.depth, 1)
        self.up_blocks = nn.Sequential()
        for i in range(n):
            self.up_blocks.add_module(
                f"up{i}", modules.UpBlock(min(top, e * 2 ** (n - i)),
                                          min(top, e * 2 ** (n - i - 1)), dims=3))
        self.out_channels = min(top, e)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(self.down_blocks(x))
        b, c, h, w = out.shape
        return self.up_blocks(out.view(b, c // self.depth, self.depth, h, w))


class HEEstimator(nn.Module):
    """Head pose (yaw, pitch, roll logits over 66 bins), translation t (3) and expression
    deviations (K * 3) from one image.

    The official forward reads yaw from ``fc_roll`` and roll from ``fc_yaw``; the released
    weights were trained that way, so the same wiring is kept here.
    """

    def __init__(self, cfg: FV2VConfig) -> None:
        super().__init__()
        w1, w2, w3, w4 = cfg.he_widths
        r1, r2, r3, r4 = cfg.he_repeats
        e = cfg.he_expansion
        self.conv1 = nn.Conv2d(3, e, 7, padding=3, stride=2)
        self.norm1 = nn.BatchNorm2d(e)
        self.conv2 = nn.Conv2d(e, w1, 1)
        self.norm2 = nn.BatchNorm2d(w1)
        self.block1 = _repeat("b1_", w1, r1)
        self.conv3 = nn.Conv2d(w1, w2, 1)
        self.norm3 = nn.BatchNorm2d(w2)
        self.block2 = ResBottleneck(w2, stride=2)
        self.block3 = _repeat("b3_", w2, r2)
        self.conv4 = nn.Conv2d(w2, w3, 1)
        self.norm4 = nn.BatchNorm2d(w3)
        self.block4 = ResBottleneck(w3, stride=2)
        self.block5 = _repeat("b5_", w3, r3)
        self.conv5 = nn.Conv2d(w3, w4, 1)
        self.norm5 = nn.BatchNorm2d(w4)
        self.block6 = ResBottleneck(w4, stride=2)
        self.block7 = _repeat("b7_", w4, r4)
        self.fc_roll = nn.Linear(w4, NUM_BINS)
        self.fc_pitch = nn.Linear(w4, NUM_BINS)
        self.fc_yaw = nn.Linear(w4, NUM_BINS)
        self.fc_t = nn.Linear(w4, 3)
        self.fc_exp = nn.Linear(w4, 3 * cfg.num_kp)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        out = F.relu(self.norm1(self.conv1(image)))
        out = F.max_pool2d(out, kernel_size=3, stride=2, padding=1)
        out = self.block1(F.relu(self.norm2(self.conv2(out))))
        out = self.block3(self.block2(F.relu(self.norm3(self.conv3(out)))))
        out = self.block5(self.block4(F.relu(self.norm4(self.conv4(out)))))
        out = self.block7(self.block6(F.relu(self.norm5(self.conv5(out)))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return {
            "yaw": self.fc_roll(out),  # sic: the official wiring, see the class docstring
            "pitch": self.fc_pitch(out),
            "roll": self.fc_yaw(out),
            "t": self.fc_t(out),
            "exp": self.fc_exp(out),
        }


def _repeat(prefix: str, channels: int, count: int) -> nn.Sequential:
    blocks = nn.Sequential()
    for i in range(count):
        blocks.add_module(f"{prefix}{i}", ResBottleneck(channels, stride=1))
    return blocks


class DenseMotionNetwork(nn.Module):
    """3D dense motion: warps a compressed copy of the source volume with each keypoint's
    translation (plus an identity "background" motion), predicts soft masks over the K + 1
    motions from those warps and the driving-minus-source keypoint Gaussians, and an
    occlusion map from the hourglass features flattened over depth."""

    def __init__(self, cfg: FV2VConfig) -> None:
        super().__init__()
        self.num_kp = cfg.num_kp
        in_ch = (cfg.num_kp + 1) * (cfg.dm_compress + 1)
        self.hourglass = modules.Hourglass(cfg.dm_expansion, in_ch, cfg.dm_num_blocks,
                                   cfg.dm_max_features, "batch", dims=3, out_block=True)
        out_ch = self.hourglass.out_channels[-1]
        self.mask = nn.Conv3d(out_ch, cfg.num_kp + 1, 7, padding=3)
        self.compress = nn.Conv3d(cfg.feature_channel, cfg.dm_compress, 1)
        self.norm = nn.BatchNorm3d(cfg.dm_compress)
        self.occlusion = nn.Conv2d(out_ch * cfg.gen_reshape_depth, 1, 7, padding=3)

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor,
                kp_source: torch.Tensor) -> dict[str, torch.Tensor]:
        b, _, d, h, w = feature.shape
        k = self.num_kp
        feature = F.relu(self.norm(self.compress(feature)))
        identity = coordinate_grid_3d(d, h, w, like=feature)[None, None]  # (1, 1, D, H, W, 3)
        # Backward motions: a driving-space point p maps to p - kp_driving + kp_source.
        shifted = identity - kp_driving[:, :, None, None, None, :] \
            + kp_source[:, :, None, None, None, :]
        motions = torch.cat([identity.expand(b, 1, d, h, w, 3), shifted], dim=1)
        repeated = feature.unsqueeze(1).expand(b, k + 1, *feature.shape[1:])
        deformed = F.grid_sample(repeated.reshape(b * (k + 1), -1, d, h, w),
                                 motions.reshape(b * (k + 1), d, h, w, 3), align_corners=False)
        deformed = deformed.view(b, k + 1, -1, d, h, w)
        heat = keypoint_gaussians(kp_driving, (d, h, w), 0.01) \
            - keypoint_gaussians(kp_source, (d, h, w), 0.01)
        heat = torch.cat([heat.new_zeros(b, 1, d, h, w), heat], dim=1).unsqueeze(2)
        prediction = self.hourglass(torch.cat([heat, deformed], dim=2).view(b, -1, d, h, w))[-1]
        mask = F.softmax(self.mask(prediction), dim=1)  # (B, K+1, D, H, W)
        deformation = (motions * mask.unsqueeze(-1)).sum(dim=1)  # (B, D, H, W, 3)
        occlusion = torch.sigmoid(self.occlusion(prediction.flatten(1, 2)))
        return {"mask": mask, "deformation": deformation, "occlusion_map": occlusion}


class SPADEDecoder(nn.Module):
    def __init__(self, cfg: FV2VConfig) -> None:
        super().__init__()
        ic = cfg.gen_expansion * 4  # width after the two down blocks
        oc = cfg.gen_expansion
        hidden = cfg.spade_hidden
        self.fc = nn.Conv2d(ic, 2 * ic, 3, padding=1)
        self.num_middle = cfg.spade_middle_blocks
        self.pools = cfg.gen_pools
        for i in range(cfg.spade_middle_blocks):
            self.add_module(f"G_middle_{i}", SPADEResBlock(2 * ic, 2 * ic, ic, hidden))
        self.up_0 = SPADEResBlock(2 * ic, ic, ic, hidden)
        self.up_1 = SPADEResBlock(ic, oc, ic, hidden)
        self.conv_img = nn.Conv2d(oc, 3, 3, padding=1)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        x = self.fc(feature)
        for i in range(self.num_middle):
            x = getattr(self, f"G_middle_{i}")(x, feature)
        for i, up in enumerate((self.up_0, self.up_1)):
            if i < self.pools:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = up(x, feature)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))


class SPADEGenerator(nn.Module):
    """Occlusion-aware SPADE generator. :meth:`encode` is the appearance feature extractor
    (source image -> 3D feature volume); :meth:`decode` warps that volume with the dense motion
    and renders the image. ``forward`` composes both like the official generator."""

    def __init__(self, cfg: FV2VConfig) -> None:
        super().__init__()
        e = cfg.gen_expansion
        self.dense_motion_network = DenseMotionNetwork(cfg)
        self.first = modules.SameBlock(3, e)
        self.down_blocks = nn.ModuleList(
            [(modules.DownBlock if i < cfg.gen_pools else modules.SameBlock)(w, 2 * w)
             for i, w in enumerate((e, 2 * e))])
        self.second = nn.Conv2d(4 * e, cfg.gen_max_features, 1)
        self.feature_channel = cfg.feature_channel
        self.depth = cfg.gen_reshape_depth
        self.resblocks_3d = nn.Sequential()
        for i in range(cfg.gen_num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", modules.ResBlock(cfg.feature_channel, dims=3))
        self.third = modules.SameBlock(cfg.gen_max_features, 4 * e, lrelu=True)
        self.fourth = nn.Conv2d(4 * e, 4 * e, 1)
        self.decoder = SPADEDecoder(cfg)

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        out = self.first(source)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        b, _, h, w = out.shape
        return self.resblocks_3d(out.view(b, self.feature_channel, self.depth, h, w))

    def decode(self, feature: torch.Tensor, kp_driving: torch.Tensor,
               kp_source: torch.Tensor) -> dict[str, torch.Tensor]:
        motion = self.dense_motion_network(feature, kp_driving, kp_source)
        deformation = motion["deformation"]
        if deformation.shape[1:4] != feature.shape[2:]:
            deformation = F.interpolate(deformation.permute(0, 4, 1, 2, 3),
                                        size=feature.shape[2:], mode="trilinear")
            deformation = deformation.permute(0, 2, 3, 4, 1)
        out = F.grid_sample(feature, deformation, align_corners=False)
        out = self.fourth(self.third(out.flatten(1, 2)))
        occlusion = motion["occlusion_map"]
        if occlusion.shape[2:] != out.shape[2:]:
            occlusion = F.interpolate(occlusion, size=out.shape[2:], mode="bilinear")
        out = out * occlusion
        return {"prediction": self.decoder(out), **motion}

    def forward(self, source: torch.Tensor, kp_driving: torch.Tensor,
                kp_source: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(source), kp_driving, kp_source)


def build_models(config: str | FV2VConfig = "vox256") -> dict[str, nn.Module]:
    """The three networks under their official checkpoint keys (randomly initialised)."""
    cfg = get_config(config)
    return {
        "generator": SPADEGenerator(cfg),
        "kp_detector": KPDetector(cfg),
        "he_estimator": HEEstimator(cfg),
    }
