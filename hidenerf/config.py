"""HiDe-NeRF configurations: ``tiny`` (CPU tests, 32 -> 256 px) and ``paper`` (64 -> 256 px).

Every number here that the paper does not state is justified in ``docs/hidenerf-design.md``.
A config is a frozen dataclass; ``seed`` fixes the parameter initialisation of
:class:`thbench.hidenerf.model.HiDeNeRF` (without touching the global RNG).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class HiDeNeRFConfig:
    name: str = "tiny"
    seed: int = 0

    # Input / output resolution.
    image_size: int = 256
    """The output size; the source image is warped at this size."""
    encoder_size: int = 128
    """The tri-plane encoder sees the source (and its posed SECC) resized to this size."""
    secc_size: int = 64
    """SECC maps are resized to (secc_size, secc_size) before the LED encodes them."""
    secc_span: float = 0.8
    """Half-width of the SECC frame in canonical units: LED reads the SECC at (x, -y) / span.
    The SECC frame covers 0.67-0.89 (median 0.78) of a benchmark face crop (1.8x the face box)
    on the sample media."""

    # MGA: multi-scale tri-planes.
    plane_sizes: tuple[int, ...] = (8, 16, 32)
    plane_channels: int = 8
    """Channels per plane and per scale; scales are concatenated (decoder input n_scales * C)."""
    encoder_base: int = 16
    encoder_max: int = 64
    encoder_uses_secc: bool = True
    """Concatenate the source SECC (resized to image_size) to the source image: 6 input channels."""

    # LED: lightweight expression-aware deformation.
    led_pe_freqs: int = 4
    led_secc_channels: int = 16
    led_secc_downsample: int = 1
    """Stride-2 stages of the SECC encoder (SECC features at secc_size / 2**downsample)."""
    led_width: int = 32
    led_max_offset: float = 0.25
    """Offsets are ``led_max_offset * tanh(.)``: at most a quarter of the half-box per axis."""
    led_out_std: float = 3.0
    """Std of LED's (bias-free) output layer at init. The SECC features' change is small at
    init (a mouth opening moves them by about 0.04), so a default layer (std 0.1) leaves the
    offsets below 1e-3; at 3.0 an opening mouth moves points by about 2e-2 canonical units and
    the rest of the face by far less (measured on man-000)."""

    # Decoder (density + feature).
    decoder_hidden: int = 32
    feature_channels: int = 16
    """Rendered feature channels; the first 3 are the low-resolution RGB (EG3D convention)."""

    # The 3DMM head prior (hidenerf.prior).
    prior_density: float = 20.0
    """Density per canonical unit added inside the fitted face's extruded silhouette."""
    prior_softness: float = 0.02
    """Width (canonical units) of the prior's fall-off at the fitted surface."""

    # Camera and ray marching.
    render_size: int = 32
    focal: float = 2.0
    """Pinhole focal length in units of the image width (f_px = focal * width)."""
    cam_distance: float = 4.0
    """Distance from the camera centre to the canonical origin at scale 1 and zero translation."""
    bound_radius: float = math.sqrt(3.0)
    """near/far = head-centre depth -/+ bound_radius * scale: the whole [-1, 1]^3 box."""
    n_coarse: int = 16
    n_fine: int = 16
    ray_chunk: int = 0
    """Rays per chunk in inference (0: all rays at once). The paper config renders 512 rays at a
    time: its per-point tensors then stay near 20 MB, which the allocator reuses, where all
    4096 rays at once (about 100 MB each) are fresh pages every frame (1.5 s against 0.8 s a
    frame on a 2-core CPU)."""

    # Refine network.
    refine_channels: tuple[int, ...] = (32, 16, 8)
    """Width after each x2 upsampling stage; len = log2(image_size / render_size)."""

    def __post_init__(self) -> None:
        factor = self.image_size // self.render_size
        if factor * self.render_size != self.image_size or factor & (factor - 1):
            raise ValueError(f"image_size / render_size must be a power of two, got "
                             f"{self.image_size} / {self.render_size}")
        if 2 ** len(self.refine_channels) != factor:
            raise ValueError(f"refine_channels needs {int(math.log2(factor))} stages for "
                             f"{self.render_size} -> {self.image_size}")
        if sorted(self.plane_sizes) != list(self.plane_sizes):
            raise ValueError("plane_sizes must be increasing")
        for size in self.plane_sizes:
            if size % 2 or self.encoder_size % size:
                raise ValueError(f"plane size {size} must be even and divide encoder_size")

    @property
    def upsample_factor(self) -> int:
        return self.image_size // self.render_size

    @property
    def samples_per_ray(self) -> int:
        return self.n_coarse + self.n_fine

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> HiDeNeRFConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown HiDe-NeRF config keys: {unknown}")
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**data)


def tiny(seed: int = 0) -> HiDeNeRFConfig:
    """CPU-sized: 128 px encoder input, tri-planes 8/16/32, 32x32 rays x (16 + 16) samples
    -> 256 px."""
    return HiDeNeRFConfig(name="tiny", seed=seed)


def paper(seed: int = 0) -> HiDeNeRFConfig:
    """Paper-scale: 256 px input, tri-planes 64/128/256, 64x64 rays x (48 + 48) -> 256 px."""
    return HiDeNeRFConfig(
        name="paper",
        seed=seed,
        image_size=256,
        encoder_size=256,
        secc_size=256,
        plane_sizes=(64, 128, 256),
        plane_channels=32,
        encoder_base=64,
        encoder_max=256,
        led_pe_freqs=6,
        led_secc_channels=32,
        led_secc_downsample=1,
        led_width=64,
        decoder_hidden=64,
        feature_channels=32,
        render_size=64,
        n_coarse=48,
        n_fine=48,
        ray_chunk=512,
        refine_channels=(128, 64),
    )


CONFIGS = {"tiny": tiny, "paper": paper}


def get_config(name: str, seed: int = 0) -> HiDeNeRFConfig:
    if name not in CONFIGS:
        raise KeyError(f"unknown HiDe-NeRF config {name!r}; known: {', '.join(sorted(CONFIGS))}")
    return CONFIGS[name](seed)
