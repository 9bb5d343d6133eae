"""HiDe-NeRF: MGA tri-planes + LED deformation + volume rendering + refine network.

    planes   = MGA(source image [+ source SECC])                 once per source
    e_s, e_d = SECCEncoder(source SECC), SECCEncoder(driving SECC)
    for every sample x on a ray of the (driving or free-view) head-pose camera:
        x_c            = x + LED(x, e_s, e_d)                    backward offset, canonical
        density, feat  = Decoder(concat_s triplane_s(x_c)),  density = 0 outside [-1, 1]^3
    feature image, opacity, depth = volume rendering (coarse + importance samples)
    image    = Refine(feature image)                              e.g. 32 -> 128, 64 -> 256
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hidenerf.cameras import Camera, camera_from_pose
from hidenerf.config import HiDeNeRFConfig
from hidenerf.deformation import LEDField, SECCEncoder
from hidenerf.refine import RefineNet
from hidenerf.rendering import Decoder, render_rays
from hidenerf.triplane import TriplaneEncoder, sample_multiscale


def resize(image: Tensor, size: int) -> Tensor:
    """(B, C, H, W) -> (B, C, size, size), bilinear with antialiasing when shrinking."""
    if image.shape[-2:] == (size, size):
        return image
    shrink = image.shape[-1] > size or image.shape[-2] > size
    return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=shrink)


class HiDeNeRF(nn.Module):
    """The full model; see the module docstring. Parameters are initialised from
    ``config.seed`` without changing the global RNG state."""

    def __init__(self, config: HiDeNeRFConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.seed)
            self.encoder = TriplaneEncoder(6 if c.encoder_uses_secc else 3, c.image_size,
                                           c.plane_sizes, c.plane_channels, c.encoder_base,
                                           c.encoder_max)
            self.secc_encoder = SECCEncoder(c.led_secc_channels, c.led_secc_downsample)
            self.led = LEDField(c.led_secc_channels, c.led_pe_freqs, c.led_width,
                                c.led_max_offset, c.led_out_std, c.secc_span)
            self.decoder = Decoder(len(c.plane_sizes) * c.plane_channels, c.decoder_hidden,
                                   c.feature_channels)
            self.background = nn.Parameter(torch.zeros(c.feature_channels))
            self.refine = RefineNet(c.feature_channels, c.refine_channels)

    # -- pieces -----------------------------------------------------------------------------
    def camera(self, yaw: float | Tensor, pitch: float | Tensor, roll: float | Tensor,
               translation: Tensor | None = None, scale: float | Tensor = 1.0) -> Camera:
        """A head-pose camera with this config's focal length and distance (degrees)."""
        device = self.background.device
        cam = camera_from_pose(yaw, pitch, roll, translation, scale, self.config.focal,
                               self.config.cam_distance)
        return cam.to(device)

    def encode_source(self, source_image: Tensor, source_secc: Tensor) -> list[Tensor]:
        """source_image (B, 3, H, W), source_secc (B, 3, S, S), both in [0, 1]
        -> tri-planes, list over scales of (B, 3, C, R_s, R_s)."""
        x = resize(source_image, self.config.image_size) * 2 - 1
        if self.config.encoder_uses_secc:
            x = torch.cat([x, resize(source_secc, self.config.image_size) * 2 - 1], 1)
        return self.encoder(x)

    def encode_secc(self, secc: Tensor) -> Tensor:
        """SECC (B, 3, S, S) in [0, 1] -> LED features (B, C_e, s, s)."""
        return self.secc_encoder(resize(secc, self.config.secc_size))

    def field(self, planes: list[Tensor], secc_src: Tensor, secc_drv: Tensor):
        """The radiance field for one (source, driving) pair as a :data:`FieldFn`."""

        def fn(points: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            shape = points.shape[:-1]  # (B, R, S)
            flat = points.reshape(shape[0], -1, 3)
            offsets = self.led(flat, secc_src, secc_drv)
            canonical = flat + offsets
            density, feature = self.decoder(sample_multiscale(planes, canonical))
            inside = (canonical.abs() <= 1).all(-1)
            density = density * inside
            return (density.reshape(shape), feature.reshape(*shape, -1),
                    offsets.reshape(*shape, 3))

        return fn

    def render(self, planes: list[Tensor], secc_src: Tensor, secc_drv: Tensor,
               camera: Camera) -> dict[str, Tensor]:
        """Render from encoded source and SECC features; see :meth:`forward` for the outputs."""
        c = self.config
        h = w = c.render_size
        origins, dirs = camera.rays(h, w)
        near, far = camera.near_far(c.bound_radius)
        field = self.field(planes, secc_src, secc_drv)
        background = torch.sigmoid(self.background)
        chunk = c.ray_chunk if (c.ray_chunk and not self.training) else origins.shape[1]
        parts = [
            render_rays(field, origins[:, i:i + chunk], dirs[:, i:i + chunk], near, far,
                        c.n_coarse, c.n_fine, train=self.training, background=background)
            for i in range(0, origins.shape[1], chunk)
        ]
        keys = ("feature", "opacity", "depth", "weights", "t", "aux")
        out = {k: torch.cat([p[k] for p in parts], 1) for k in keys}
        b = origins.shape[0]
        feature_image = out["feature"].transpose(1, 2).reshape(b, -1, h, w)
        image = self.refine(feature_image)
        return {
            "image": image,
            "low_res_image": feature_image[:, :3],
            "feature_image": feature_image,
            "opacity": out["opacity"].reshape(b, 1, h, w),
            "depth": out["depth"].reshape(b, 1, h, w),
            "weights": out["weights"],
            "t": out["t"],
            "offsets": out["aux"],
        }

    def forward(self, source_image: Tensor, source_secc: Tensor, driving_secc: Tensor,
                camera: Camera) -> dict[str, Tensor]:
        """Animate a source with a driving SECC, rendered from ``camera``.

        source_image (B, 3, H, W), source_secc, driving_secc (B, 3, S, S), all in [0, 1];
        camera: B head-pose cameras (driving pose, source pose or any free view).
        Returns image (B, 3, image_size, image_size) in [0, 1], low_res_image (B, 3, r, r),
        feature_image (B, F, r, r), opacity and depth (B, 1, r, r) with r = render_size,
        weights and t (B, r*r, S_total), offsets (B, r*r, S_total, 3).
        """
        planes = self.encode_source(source_image, source_secc)
        return self.render(planes, self.encode_secc(source_secc), self.encode_secc(driving_secc),
                           camera)
