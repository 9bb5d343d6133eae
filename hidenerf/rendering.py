"""Ray sampling, the density/feature decoder and volume rendering (pure functions + one MLP).

Quadrature: N sorted samples t_i on a ray own the intervals between the midpoints of their
neighbours, the first starting at ``near`` and the last ending at ``far``, so the interval
lengths delta_i always sum to ``far - near``. With uniform midpoint samples these intervals are
the N equal bins of [near, far]. alpha_i = 1 - exp(-sigma_i delta_i),
T_i = prod_{j<i} (1 - alpha_j), w_i = T_i alpha_i; a constant density sigma on [near, far]
gives an accumulated opacity of exactly 1 - exp(-sigma (far - near)).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FieldFn = Callable[[Tensor], tuple[Tensor, Tensor, Tensor | None]]
"""points (B, R, S, 3) -> (density (B, R, S), feature (B, R, S, C), aux (B, R, S, A) or None).
``aux`` (e.g. LED offsets) is carried along and sorted with the samples, not composited."""


def stratified_samples(near: Tensor, far: Tensor, n_rays: int, n_samples: int, jitter: bool,
                       generator: torch.Generator | None = None) -> Tensor:
    """Depths (B, R, S), sorted: one sample per equal bin of [near, far].

    near, far broadcastable to (B, R, 1). ``jitter=False`` (eval) puts every sample at its bin's
    midpoint, deterministic; ``jitter=True`` (train) draws it uniformly inside its bin.
    """
    batch = near.shape[0]
    u = torch.arange(n_samples, device=near.device, dtype=near.dtype)
    if jitter:
        u = u + torch.rand(batch, n_rays, n_samples, device=near.device, dtype=near.dtype,
                           generator=generator)
    else:
        u = (u + 0.5).expand(batch, n_rays, n_samples)
    return near + (far - near) * u / n_samples


def sample_pdf(bins: Tensor, weights: Tensor, n_samples: int, deterministic: bool,
               generator: torch.Generator | None = None) -> Tensor:
    """Inverse-transform sampling of a piecewise-constant PDF (hierarchical sampling).

    bins (..., S + 1) edges, weights (..., S) >= 0 -> depths (..., n_samples), sorted.
    Deterministic: quantiles at (k + 0.5) / n. Gradients do not flow through the positions.
    """
    bins, weights = bins.detach(), weights.detach()
    weights = weights + 1e-5  # a ray with no mass falls back to uniform
    pdf = weights / weights.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[..., :1]), torch.cumsum(pdf, -1)], -1)  # (..., S+1)
    cdf[..., -1] = 1.0
    shape = (*cdf.shape[:-1], n_samples)
    if deterministic:
        u = (torch.arange(n_samples, device=bins.device, dtype=bins.dtype) + 0.5) / n_samples
        u = u.expand(shape).contiguous()
    else:
        u = torch.rand(shape, device=bins.device, dtype=bins.dtype, generator=generator)
        u = torch.sort(u, -1).values
    idx = torch.searchsorted(cdf.contiguous(), u, right=True)
    below = (idx - 1).clamp(0, cdf.shape[-1] - 1)
    above = idx.clamp(0, cdf.shape[-1] - 1)
    cdf_lo, cdf_hi = cdf.gather(-1, below), cdf.gather(-1, above)
    bin_lo, bin_hi = bins.gather(-1, below), bins.gather(-1, above)
    denom = (cdf_hi - cdf_lo).clamp_min(1e-8)
    return bin_lo + (u - cdf_lo) / denom * (bin_hi - bin_lo)


def interval_edges(t: Tensor, near: Tensor, far: Tensor) -> Tensor:
    """Sorted samples t (B, R, S) -> interval edges (B, R, S + 1): near, midpoints, far."""
    mid = 0.5 * (t[..., 1:] + t[..., :-1])
    return torch.cat([near.expand_as(t[..., :1]), mid, far.expand_as(t[..., :1])], -1)


def ray_weights(density: Tensor, t: Tensor, near: Tensor, far: Tensor) -> tuple[Tensor, Tensor]:
    """density (B, R, S) >= 0 at sorted samples t (B, R, S) -> compositing weights (B, R, S)
    and interval edges (B, R, S + 1)."""
    edges = interval_edges(t, near, far)
    delta = (edges[..., 1:] - edges[..., :-1]).clamp_min(0)
    alpha = 1 - torch.exp(-density * delta)
    # T_i = exp(-sum_{j<i} sigma_j delta_j): exclusive cumulative sum, numerically stable.
    optical = density * delta
    transmittance = torch.exp(-(torch.cumsum(optical, -1) - optical))
    return alpha * transmittance, edges


def _result(weights: Tensor, edges: Tensor, feat: Tensor, t: Tensor, far: Tensor,
            background: Tensor | None) -> dict[str, Tensor]:
    opacity = weights.sum(-1)
    if background is not None:
        feat = feat + (1 - opacity)[..., None] * background
    depth = torch.where(opacity > 1e-6, (weights * t).sum(-1) / opacity.clamp_min(1e-6),
                        far[..., 0].expand_as(opacity))
    return {"feature": feat, "opacity": opacity, "depth": depth, "weights": weights,
            "edges": edges}


def composite(density: Tensor, feature: Tensor, t: Tensor, near: Tensor, far: Tensor,
              background: Tensor | None = None) -> dict[str, Tensor]:
    """Alpha-composite samples along rays.

    density (B, R, S) >= 0, feature (B, R, S, C), t (B, R, S) sorted, near/far (B, R|1, 1);
    background (C,) composited behind the volume with weight 1 - opacity (None: black).
    Returns feature (B, R, C), opacity (B, R), depth (B, R) (expected depth normalised by the
    opacity; ``far`` where the ray is empty), weights (B, R, S), edges (B, R, S + 1).
    """
    weights, edges = ray_weights(density, t, near, far)
    return _result(weights, edges, (weights[..., None] * feature).sum(-2), t, far, background)


def composite_merged(t_a: Tensor, t_b: Tensor, density: tuple[Tensor, Tensor],
                     feature: tuple[Tensor, Tensor], near: Tensor, far: Tensor,
                     background: Tensor | None = None) -> dict[str, Tensor]:
    """:func:`composite` of two sample sets of each ray together, (B, R, S_a) and (B, R, S_b)
    each sorted, without merging their features: the weights are computed in depth order, then
    taken back to each sample, and the weighted feature sum is order-free. Same values as
    compositing the merged, sorted samples (up to float summation order), without gathering
    every feature channel. Also returns the merged depths ``t`` (B, R, S_a + S_b) and ``order``,
    their positions in ``cat([a, b])``; ``weights`` and ``edges`` are in depth order too."""
    t, order = torch.sort(torch.cat([t_a, t_b], -1), -1)
    weights, edges = ray_weights(torch.cat(density, -1).gather(-1, order), t, near, far)
    own = torch.empty_like(weights).scatter_(-1, order, weights)
    w_a, w_b = own.split([t_a.shape[-1], t_b.shape[-1]], -1)
    feat = (w_a[..., None] * feature[0]).sum(-2) + (w_b[..., None] * feature[1]).sum(-2)
    return {**_result(weights, edges, feat, t, far, background), "t": t, "order": order}


class Decoder(nn.Module):
    """Point features (..., D) -> density (...) >= 0 and feature (..., C) in (0, 1).

    One hidden softplus layer (EG3D's OSG decoder). density = softplus(raw - 1), so a random
    decoder starts from a thin fog rather than a wall; feature = sigmoid.
    """

    def __init__(self, in_dim: int, hidden: int, feature_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.Softplus(),
                                 nn.Linear(hidden, 1 + feature_channels))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raw = self.net(x)
        return F.softplus(raw[..., 0] - 1), torch.sigmoid(raw[..., 1:])


def where_active(fn: Callable[..., tuple], active: Tensor, *inputs: Tensor) -> tuple:
    """``fn(*inputs)`` evaluated only where ``active`` (B, N) holds, zeros elsewhere.

    inputs (B, N, ...); ``fn`` maps inputs (B, K, ...) to a tuple of outputs (B, K, ...) (or
    None). Each batch item's active entries go first, padded to the largest count with inactive
    ones (at least one), whose outputs are dropped; each kept entry's output goes back as one
    row (``index_copy_``), not channel by channel."""
    batch, n = active.shape
    count = max(int(active.sum(1).max()), 1)
    order = torch.argsort((~active).to(torch.uint8), dim=1, stable=True)[:, :count]
    keep = active.gather(1, order)
    picked = [x.gather(1, order.reshape(batch, count, *([1] * (x.dim() - 2))).expand(
        -1, -1, *x.shape[2:])) for x in inputs]
    rows = (order + torch.arange(batch, device=order.device)[:, None] * n).flatten()

    padded = not bool(keep.all())  # one source's batch of 1: never

    def put_back(values: Tensor) -> Tensor:  # (B, count, ...) -> (B, N, ...)
        if padded:
            values = values * keep.reshape(batch, count, *([1] * (values.dim() - 2)))
        full = values.new_zeros(batch * n, *values.shape[2:])
        full.index_copy_(0, rows, values.flatten(0, 1))
        return full.reshape(batch, n, *values.shape[2:])

    return tuple(None if v is None else put_back(v) for v in fn(*picked))


def render_rays(field: FieldFn, origins: Tensor, directions: Tensor, near: Tensor, far: Tensor,
                n_coarse: int, n_fine: int, train: bool, background: Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Render rays: stratified coarse pass, optional importance pass, alpha compositing.

    origins, directions (B, R, 3) with ``X(t) = o + t d``; near, far (B, R|1, 1).
    ``field`` is a :data:`FieldFn`. The fine
    pass draws ``n_fine`` new depths from the coarse weights, evaluates only those, and
    composites coarse and fine samples together (every sample is evaluated once).
    Returns :func:`composite`'s dict plus ``t`` (B, R, S_total), ``coarse_weights`` and
    ``aux`` (B, R, S_total, A) when the field returns one.
    """
    n_rays = origins.shape[1]
    near = near.expand(origins.shape[0], -1, 1)
    far = far.expand(origins.shape[0], -1, 1)
    t = stratified_samples(near, far, n_rays, n_coarse, jitter=train, generator=generator)
    points = origins[..., None, :] + t[..., None] * directions[..., None, :]
    density, feature, aux = field(points)
    if n_fine == 0:
        out = composite(density, feature, t, near, far, background)
        coarse_weights = out["weights"]
    else:
        coarse_weights, edges = ray_weights(density, t, near, far)
        t_fine = sample_pdf(edges, coarse_weights, n_fine, deterministic=not train,
                            generator=generator)
        pts = origins[..., None, :] + t_fine[..., None] * directions[..., None, :]
        d_fine, f_fine, a_fine = field(pts)
        out = composite_merged(t, t_fine, (density, d_fine), (feature, f_fine), near, far,
                               background)
        t, order = out["t"], out.pop("order")
        if aux is not None and a_fine is not None:  # a field gives aux for every sample or none
            aux = torch.cat([aux, a_fine], 2).gather(2, order[..., None].expand(-1, -1, -1,
                                                                                 aux.shape[-1]))
    out["t"] = t
    out["coarse_weights"] = coarse_weights
    if aux is not None:
        out["aux"] = aux
    return out
