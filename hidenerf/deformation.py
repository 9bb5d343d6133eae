"""LED: lightweight expression-aware deformation, a backward offset into canonical space.

For a point x sampled on a driving-camera ray (already in canonical head coordinates, because
the head pose is the camera), LED predicts ``offset(x)`` such that ``x + offset(x)`` is where
the source's canonical tri-planes hold that point's appearance.

Inputs per point: positional encoding of x, and features of the source and driving SECC maps
sampled at x's projection onto the SECC image plane. The SECC is rendered in the canonical
frontal pose, so that projection is orthographic along z: SECC grid coordinates
(u, v) = (x, -y) / span (grid_sample convention, u to the right, v down, align_corners=False),
where ``span`` is the half-width of the SECC frame in canonical units (the SECC frame covers
[-span, span]^2 of the head box; see docs/hidenerf-design.md for the measured value).

Structure, chosen so that *equal SECCs give exactly zero offset, at init and after training*,
while a difference gives an offset of a usable size from the first step:

    e_s, e_d = E(secc_s)(u, v), E(secc_d)(u, v)              shared conv encoder, sampled
    c        = MLP_ctx([PE(x), e_s])                          context of the point, with biases
    f(e)     = MLP_body(c + A e)                              A linear without bias
    offset   = max_offset * tanh(W_out (f(e_d) - f(e_s)))     W_out without bias

f(e_d) and f(e_s) are two evaluations of the same layers on inputs of the same shape, so equal
features give bit-identical values and their difference is exactly zero. The layers have
PyTorch's initialisation except W_out (std ``out_std``, large: the SECC features change little
at init): a mouth that opens moves points by about 1e-2 canonical units at init, and 91 % of
LED's gradient elements are above Adam's eps at step 0 (measured on a sample batch). (The
previous form, a bias-free product ``c * W (e_d - e_s)`` through two SiLUs at 0 and a last layer
of std 1e-2, started with offsets below 1e-5 and 92-96 % of its gradient elements below Adam's
eps: LED had not woken by the time the learning rate decayed.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thbench.hidenerf.model_utils import sampling_dtype
from thbench.hidenerf.rendering import where_active


def positional_encoding(x: Tensor, n_freqs: int) -> Tensor:
    """NeRF encoding ``[x, sin(2^k pi x), cos(2^k pi x)]_{k<L}``: (..., D) -> (..., D (1 + 2L))."""
    if n_freqs == 0:
        return x
    freqs = (2.0 ** torch.arange(n_freqs, device=x.device, dtype=x.dtype)) * math.pi
    angles = (x[..., None, :] * freqs[:, None]).flatten(-2)  # (..., L*D)
    return torch.cat([x, torch.sin(angles), torch.cos(angles)], -1)


def secc_coords(points: Tensor, span: float) -> Tensor:
    """Orthographic projection onto the frontal SECC image: (B, N, 3) -> grid (B, N, 2)
    = (x, -y) / span."""
    return torch.stack([points[..., 0], -points[..., 1]], -1) / span


def sample_image(features: Tensor, coords: Tensor, padding: str = "border") -> Tensor:
    """features (B, C, H, W), grid coords (B, N, 2) in [-1, 1] -> (B, N, C); bilinear,
    align_corners=False, border padding by default (a point beyond the SECC frame reads the
    frame edge); float32 also under bf16 autocast (coordinates are never rounded to the
    feature dtype)."""
    dtype = sampling_dtype(features, coords)
    out = F.grid_sample(features.to(dtype), coords[:, None].to(dtype), mode="bilinear",
                        padding_mode=padding, align_corners=False)
    return out[:, :, 0].transpose(1, 2)


class SECCEncoder(nn.Module):
    """Small shared conv encoder: SECC (B, 3, S, S) in [0, 1] -> (B, C, S / 2^d, S / 2^d).

    Gives each sampled feature a receptive field of several SECC pixels, so that a point whose
    projection lies just outside a moving region (an opening mouth) still sees the motion.
    """

    def __init__(self, channels: int, downsample: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, 1, 1), nn.SiLU()]
        for _ in range(downsample):
            layers += [nn.Conv2d(channels, channels, 3, 2, 1), nn.SiLU()]
        layers += [nn.Conv2d(channels, channels, 3, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, secc: Tensor) -> Tensor:
        return self.net(secc * 2 - 1)


class LEDField(nn.Module):
    """Backward offsets from (PE(x), source SECC features, driving SECC features).

    forward(points (B, N, 3), secc_pair (B, 2C, h, w)) -> offsets (B, N, 3), exactly zero
    where the two sampled SECC features are equal. ``secc_pair`` is the source and the driving
    SECC features stacked on the channels (``torch.cat([src, drv], 1)``), stacked once per
    frame by the caller so that every chunk of points reads both in one lookup.
    :meth:`deform` gives the offsets with the features' change e_d - e_s (the model renders
    that change for the refine network's expression residual).
    """

    def __init__(self, secc_channels: int, pe_freqs: int, width: int, max_offset: float,
                 out_std: float, secc_span: float) -> None:
        super().__init__()
        self.pe_freqs = pe_freqs
        self.max_offset = max_offset
        self.secc_span = secc_span
        pe_dim = 3 * (1 + 2 * pe_freqs)
        self.context = nn.Sequential(
            nn.Linear(pe_dim + secc_channels, width), nn.SiLU(),
            nn.Linear(width, width),
        )
        self.expression = nn.Linear(secc_channels, width, bias=False)
        self.body = nn.Sequential(nn.SiLU(), nn.Linear(width, width), nn.SiLU())
        self.out = nn.Linear(width, 3, bias=False)
        nn.init.normal_(self.out.weight, std=out_std)

    def sample_features(self, points: Tensor, secc_pair: Tensor) -> tuple[Tensor, Tensor]:
        """(e_s, e_d), each (B, N, C): the SECC features at the points' projections."""
        e_s, e_d = sample_image(secc_pair, secc_coords(points, self.secc_span)).chunk(2, -1)
        return e_s, e_d

    def deform(self, points: Tensor, secc_pair: Tensor, cells: Tensor | None = None,
               where: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Offsets (B, N, 3) and the features' change e_d - e_s (B, N, C) at the points.

        With ``cells`` (:func:`differing_cells` of ``secc_pair``, in inference) only the points
        that may read differing features are evaluated, features included: the others'
        offset and change are exactly zero by construction, and in a talking head most points
        read the same SECC features twice (the driving SECC has the source's identity; about
        35% of the paper config's samples differ on the sample video). ``where`` (B, N) bool
        narrows them further (the caller's empty space: offset and change 0 there). Without
        ``cells`` (training): every point (no data-dependent shapes, no host sync on a
        GPU)."""
        def evaluate(at: Tensor) -> tuple[Tensor, Tensor]:
            e_s, e_d = self.sample_features(at, secc_pair)
            return self._offsets(at, e_s, e_d), e_d - e_s

        if cells is None:
            return evaluate(points)
        active = may_differ(cells, secc_coords(points, self.secc_span))
        if where is not None:
            active = active & where
        offsets, change = where_active(evaluate, active, points)
        return offsets, change

    def _offsets(self, points: Tensor, e_s: Tensor, e_d: Tensor) -> Tensor:
        c = self.context(torch.cat([positional_encoding(points, self.pe_freqs), e_s], -1))
        change = self.body(c + self.expression(e_d)) - self.body(c + self.expression(e_s))
        return self.max_offset * torch.tanh(self.out(change))

    def forward(self, points: Tensor, secc_pair: Tensor) -> Tensor:
        cells = None if self.training else differing_cells(secc_pair)
        return self.deform(points, secc_pair, cells)[0]


def differing_cells(secc_pair: Tensor) -> Tensor:
    """Source and driving SECC features stacked on the channels (B, 2C, h, w) -> (B, h, w)
    bool: cell (i, j) is set where any texel of rows i-1..i+2 and columns j-1..j+2 differs
    between the two. A point whose bilinear lookup starts at texel (i, j) reads texels i..i+1,
    j..j+1; the extra texel each side absorbs a floor that rounds the other way than
    ``grid_sample``'s. Where no cell is set the two features are bit-identical (the same
    weights on the same values)."""
    source, driving = secc_pair.chunk(2, 1)
    differ = (source != driving).any(1, keepdim=True).to(secc_pair.dtype)
    return F.max_pool2d(F.pad(differ, (1, 2, 1, 2)), 4, 1)[:, 0] > 0


def may_differ(cells: Tensor, coords: Tensor) -> Tensor:
    """cells (B, h, w) from :func:`differing_cells`, grid coordinates (B, N, 2) -> (B, N) bool:
    the cell where each point's bilinear lookup (border padding, align_corners=False)
    starts."""
    batch, h, w = cells.shape
    size = torch.tensor([w, h], device=coords.device, dtype=coords.dtype)
    texel = ((coords + 1) * size - 1) / 2
    start = torch.minimum(texel.clamp_min(0), size - 1).floor().long()
    index = start[..., 1] * w + start[..., 0]
    index = index + torch.arange(batch, device=coords.device)[:, None] * (h * w)
    return cells.reshape(-1)[index]
