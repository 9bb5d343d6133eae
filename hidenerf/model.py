"""HiDe-NeRF: MGA tri-planes + LED deformation + volume rendering + refine network.

    planes   = MGA(source image, posed source SECC)    once per source, in the source camera
    e_s, e_d = SECCEncoder(source SECC), SECCEncoder(driving SECC)          frontal SECCs
    for every sample x on a ray of the (driving or free-view) head camera, in canonical space:
        x_c            = x + LED(x, e_s, e_d)                    backward offset, canonical
        g              = source camera's grid coordinates of x_c      (u, v) in the source image
        density, feat  = Decoder(concat_s triplane_s(g)),  density = 0 outside [-1, 1]^3
        density       += prior_density * head_occupancy(x)       the fitted face (prior.py)
    feature image, opacity, flow = volume rendering; empty rays show the source (background)
    expression = rendered e_d - e_s: the driving SECC's change, posed by the driving camera
    warped   = source image sampled at the upsampled flow (the rendered correspondence)
    image    = Refine(feature image, opacity, warped, expression)     e.g. 32 -> 256, 64 -> 256

The expression image is the refine network's appearance residual (an open mouth's teeth and
dark interior, which no warp of a closed-mouth source holds); it is exactly zero where source
and driving SECC agree, and the refine network's path from it is bias-free, so the same SECC
leaves the output as it would be without the path.

The source pose is taken out by the cameras: the planes are built in the source camera's frame
and every driving point reaches them through canonical space (driving camera -> canonical ->
source camera), i.e. by the relative head motion of the two 3DMM fits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thbench.core.resampling import resize
from thbench.hidenerf.cameras import Camera, camera_from_pose, camera_from_vector
from thbench.hidenerf.config import HiDeNeRFConfig
from thbench.hidenerf.deformation import LEDField, SECCEncoder, differing_cells
from thbench.hidenerf.geometry import secc_z_range
from thbench.hidenerf.prior import head_occupancy, surface_map
from thbench.hidenerf.refine import RefineNet
from thbench.hidenerf.rendering import Decoder, render_rays, where_active
from thbench.hidenerf.triplane import PlaneTable, TriplaneEncoder, plane_table, sample_multiscale


class HiDeNeRF(nn.Module):
    """The full model; see the module docstring. Parameters are initialised from
    ``config.seed`` without changing the global RNG state.

    ``skip_empty_space`` (inference only): samples farther than ``led_max_offset`` outside the
    [-1, 1]^3 box, where no LED offset can bring them into the box and the density is
    therefore exactly 0, get no LED evaluation (their ``offsets`` are 0); samples that end
    outside the box after LED (density 0 too, these included) are not looked up in the
    tri-planes nor decoded (their decoder feature is 0, composited with weight 0). The images
    are the same to float rounding."""

    skip_empty_space = True

    def __init__(self, config: HiDeNeRFConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.seed)
            self.encoder = TriplaneEncoder(6 if c.encoder_uses_secc else 3, c.encoder_size,
                                           c.plane_sizes, c.plane_channels, c.encoder_base,
                                           c.encoder_max)
            self.secc_encoder = SECCEncoder(c.led_secc_channels, c.led_secc_downsample)
            self.led = LEDField(c.led_secc_channels, c.led_pe_freqs, c.led_width,
                                c.led_max_offset, c.led_out_std, c.secc_span)
            self.decoder = Decoder(len(c.plane_sizes) * c.plane_channels, c.decoder_hidden,
                                   c.feature_channels)
            self.refine = RefineNet(c.feature_channels, c.refine_channels, c.led_secc_channels)
        self.secc_z_range = secc_z_range(c.secc_span)

    # -- pieces -----------------------------------------------------------------------------
    def camera(self, yaw: float | Tensor, pitch: float | Tensor, roll: float | Tensor,
               translation: Tensor | None = None, scale: float | Tensor = 1.0) -> Camera:
        """A head-pose camera with this config's focal length and distance (degrees)."""
        device = self.decoder.net[0].weight.device
        cam = camera_from_pose(yaw, pitch, roll, translation, scale, self.config.focal,
                               self.config.cam_distance)
        return cam.to(device)

    def camera_from_vector(self, vector: Tensor) -> Camera:
        """(B, 13) camera vectors (:meth:`Camera.vector`) -> cameras with this config's lens."""
        return camera_from_vector(vector, self.config.focal, self.config.cam_distance)

    def encode_source(self, source_image: Tensor, posed_secc: Tensor) -> list[Tensor] | PlaneTable:
        """source_image (B, 3, H, W) and the source SECC *posed as the source*
        (:func:`thbench.hidenerf.geometry.posed_secc`), both in [0, 1] -> tri-planes registered with
        the source image, list over scales of (B, 3, C, R_s, R_s); in eval, their
        :class:`~thbench.hidenerf.triplane.PlaneTable` (the same lookups, about twice as fast
        on the CPU; training keeps the planes, which ``grid_sample`` differentiates).
        :meth:`render` takes them as they are, or with batch 1 for B driving frames of one
        source."""
        size = self.config.encoder_size
        x = resize(source_image, size) * 2 - 1
        if self.config.encoder_uses_secc:
            x = torch.cat([x, resize(posed_secc, size) * 2 - 1], 1)
        planes = self.encoder(x)
        return planes if self.training else plane_table(planes)

    def encode_secc(self, secc: Tensor) -> Tensor:
        """Frontal SECC (B, 3, S, S) in [0, 1] -> LED features (B, C_e, s, s)."""
        return self.secc_encoder(resize(secc, self.config.secc_size))

    def head_surface(self, driving_secc: Tensor) -> Tensor:
        """Frontal driving SECC (B, 3, S, S) -> the head prior's :func:`surface_map`."""
        secc = resize(driving_secc, self.config.secc_size)
        return surface_map(secc, *self.secc_z_range, fill=self.config.secc_size // 8 + 1)

    def field(self, planes: list[Tensor] | PlaneTable, secc_src: Tensor, secc_drv: Tensor,
              source_camera: Camera, head_surface: Tensor):
        """The radiance field for one (source, driving) pair as a :data:`FieldFn`; its feature
        carries, after the decoder's channels, the (u, v) where the deformed point projects in
        the source image, then the expression change e_d - e_s of LED's SECC features at the
        point (exactly zero where the SECCs agree). secc_src, secc_drv: LED features;
        head_surface: the driving SECC's :meth:`head_surface` (the 3DMM density prior,
        :mod:`thbench.hidenerf.prior`)."""
        c = self.config
        secc_pair = torch.cat([secc_src, secc_drv], 1)  # LED reads both in one lookup
        cells = None  # training: LED on every point
        if not self.training:  # texel-major, as the plane table: grid_sample reads runs
            secc_pair = secc_pair.contiguous(memory_format=torch.channels_last)
            cells = differing_cells(secc_pair)  # LED only where the two features may differ

        def fn(points: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            shape = points.shape[:-1]  # (B, R, S)
            flat = points.reshape(shape[0], -1, 3)
            reachable = None  # LED on points that no offset can bring into the box, unless:
            if not self.training and self.skip_empty_space:
                reachable = (flat.abs() <= 1.0 + c.led_max_offset).all(-1)
            offsets, change = self.led.deform(flat, secc_pair, cells, reachable)
            canonical = flat + offsets
            grid = source_camera.source_grid(canonical)
            inside = (canonical.abs() <= 1).all(-1)
            if self.training or not self.skip_empty_space:
                density, feature = self.decoder(sample_multiscale(planes, grid))
            else:  # a point deformed out of the box has density 0 (below): not decoded
                density, feature = where_active(
                    lambda g: self.decoder(sample_multiscale(planes, g)), inside, grid)
            prior = head_occupancy(flat, head_surface, c.secc_span, c.prior_softness)
            density = (density + c.prior_density * prior) * inside
            feature = torch.cat([feature, grid[..., :2], change.to(feature.dtype)], -1)
            return (density.reshape(shape), feature.reshape(*shape, -1),
                    offsets.reshape(*shape, 3))

        return fn

    def _background(self, source_image: Tensor) -> Tensor:
        """Per ray (B, r*r, F + 2 + C_e): the source image's colour at the ray's pixel, zero
        features, the pixel's own grid coordinates (so an empty ray warps nothing) and no
        expression change."""
        r = self.config.render_size
        b = source_image.shape[0]
        colour = resize(source_image, r).flatten(2).transpose(1, 2)
        centres = (torch.arange(r, device=source_image.device, dtype=colour.dtype) + 0.5) / r
        v, u = torch.meshgrid(centres * 2 - 1, centres * 2 - 1, indexing="ij")
        grid = torch.stack([u, v], -1).reshape(1, -1, 2).expand(b, -1, -1)
        zeros = colour.new_zeros(b, r * r, self.config.feature_channels - 3)
        change = colour.new_zeros(b, r * r, self.config.led_secc_channels)
        return torch.cat([colour, zeros, grid, change], -1)

    def render(self, planes: list[Tensor] | PlaneTable, secc_src: Tensor, driving_secc: Tensor,
               source_image: Tensor, source_camera: Camera, camera: Camera) -> dict[str, Tensor]:
        """Render from the encoded source (tri-planes, LED features of the source SECC) and the
        frontal driving SECC map (B, 3, S, S); see :meth:`forward` for the outputs."""
        c = self.config
        h = w = c.render_size
        origins, dirs = camera.rays(h, w)
        near, far = camera.near_far(origins, dirs, c.bound_radius)
        field = self.field(planes, secc_src, self.encode_secc(driving_secc), source_camera,
                           self.head_surface(driving_secc))
        background = self._background(source_image)
        chunk = c.ray_chunk if (c.ray_chunk and not self.training) else origins.shape[1]
        parts = [
            render_rays(field, origins[:, i:i + chunk], dirs[:, i:i + chunk],
                        near[:, i:i + chunk], far[:, i:i + chunk], c.n_coarse, c.n_fine,
                        train=self.training, background=background[:, i:i + chunk])
            for i in range(0, origins.shape[1], chunk)
        ]
        keys = ("feature", "opacity", "depth", "weights", "t", "aux")
        out = {k: torch.cat([p[k] for p in parts], 1) for k in keys}
        b = origins.shape[0]
        rendered = out["feature"].transpose(1, 2).reshape(b, -1, h, w)
        feature_image, flow, expression = rendered.split(
            [c.feature_channels, 2, c.led_secc_channels], 1)
        opacity = out["opacity"].reshape(b, 1, h, w)
        warped = warp(resize(source_image, c.image_size), flow)
        image = self.refine(feature_image, opacity, warped, expression)
        return {
            "image": image,
            "warped": warped,
            "flow": flow,
            "low_res_image": feature_image[:, :3],
            "feature_image": feature_image,
            "expression": expression,
            "opacity": opacity,
            "depth": out["depth"].reshape(b, 1, h, w),
            "weights": out["weights"],
            "t": out["t"],
            "offsets": out["aux"],
        }

    def forward(self, source_image: Tensor, posed_secc: Tensor, source_secc: Tensor,
                driving_secc: Tensor, source_camera: Camera, camera: Camera) -> dict[str, Tensor]:
        """Animate a source with a driving SECC, rendered from ``camera``.

        source_image (B, 3, H, W), posed_secc (B, 3, *, *) the source SECC posed as the source,
        source_secc, driving_secc (B, 3, S, S) frontal, all in [0, 1]; source_camera: the
        source's head cameras (where the tri-planes are registered); camera: B head cameras to
        render from (driving pose, source pose or any free view).
        Returns image (B, 3, image_size, image_size) in [0, 1]; warped: the source image warped
        by the rendered correspondence ``flow`` (B, 2, r, r), source grid coordinates;
        low_res_image (B, 3, r, r), feature_image (B, F, r, r), expression (B, C_e, r, r) the
        rendered change of LED's SECC features (the refine network's expression residual, zero
        where the SECCs agree), opacity and depth (B, 1, r, r)
        with r = render_size (depth: distance along the ray); weights and t (B, r*r, S_total),
        offsets (B, r*r, S_total, 3).
        """
        planes = self.encode_source(source_image, posed_secc)
        return self.render(planes, self.encode_secc(source_secc), driving_secc,
                           source_image, source_camera, camera)


def animate_batch(model: HiDeNeRF, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """The model's outputs for a batch of :class:`thbench.hidenerf.train.HiDeNeRFPairs` items."""
    return model(batch["source"], batch["posed_secc"], batch["source_secc"],
                 batch["driving_secc"], model.camera_from_vector(batch["source_camera"]),
                 model.camera_from_vector(batch["driving_camera"]))


def warp(image: Tensor, flow: Tensor) -> Tensor:
    """image (B, 3, H, W) sampled at the grid coordinates ``flow`` (B, 2, h, w) bilinearly
    upsampled to H x W (border padding): the source pixels the volume says each output pixel
    shows."""
    grid = F.interpolate(flow, size=image.shape[-2:], mode="bilinear", align_corners=False)
    return F.grid_sample(image, grid.permute(0, 2, 3, 1).to(image.dtype), mode="bilinear",
                         padding_mode="border", align_corners=False)
