"""Pixel metrics against the ground truth: PSNR, SSIM, L1 (same-identity pairs only).

Inputs are float (B, 3, H, W) in [0, 1] (data range 1). Every value is computed per frame and
averaged over the frames of a pair (:class:`FrameMeanMetric`).

- PSNR: ``10 log10(1 / MSE)`` per frame, the MSE floored at the 8-bit quantisation noise
  ``(1/255)^2 / 12`` (:data:`QUANTISATION_MSE`), so the largest value is
  :data:`PSNR_CEILING` = ``10 log10(12 * 255^2)`` ~ 58.92 dB. The ground truth is itself an 8-bit
  quantisation of the scene: agreement closer than its quantisation noise cannot be measured,
  and identical frames (``driving-copy``, ``source-copy`` on the source frame 0 of the
  reconstruction protocol) would otherwise read ``inf`` and make every mean over them ``inf``.
  Frames whose MSE is above the floor (e.g. 8-bit frames differing by one level in more than
  a twelfth of their samples) give the textbook value.
- SSIM: Wang et al. 2004 with an 11-tap Gaussian window (sigma 1.5), K1 0.01, K2 0.03,
  population covariance, per channel then averaged; the mean is over the "valid" region (5 px
  border dropped). Equals ``skimage.metrics.structural_similarity(x, y, channel_axis=-1,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)``.
- L1: mean absolute error over pixels and channels.
"""

from __future__ import annotations

import math

import torch

from thbench.datasets.protocols import RECONSTRUCTION
from thbench.eval.metrics.base import FrameBatch, FrameMeanMetric


def _pair(batch: FrameBatch) -> tuple[torch.Tensor, torch.Tensor]:
    if batch.ground_truth is None:
        raise ValueError("this metric needs ground-truth frames (same-identity pairs only)")
    generated, truth = batch.generated, batch.ground_truth
    if generated.shape != truth.shape:
        raise ValueError(f"generated {tuple(generated.shape)} vs ground truth {tuple(truth.shape)}")
    return generated.double(), truth.double()


QUANTISATION_MSE = (1 / 255) ** 2 / 12
"""Mean squared error of uniform rounding to 8 bits (step 1/255) at data range 1: the floor of
the PSNR's MSE."""
PSNR_CEILING = 10 * math.log10(1 / QUANTISATION_MSE)
"""The largest PSNR, ``10 log10(12 * 255^2)`` ~ 58.92 dB: identical frames."""


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image PSNR (B,) in dB of (B, C, H, W) images, at most :data:`PSNR_CEILING` (the MSE
    floored at the 8-bit quantisation noise, scaled to ``data_range``)."""
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1)
    mse = mse.clamp_min(QUANTISATION_MSE * data_range**2)
    return 10.0 * torch.log10(data_range**2 / mse)


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute error (B,)."""
    return (x.double() - y.double()).abs().flatten(1).mean(1)


def gaussian_kernel1d(sigma: float = 1.5, truncate: float = 3.5) -> torch.Tensor:
    """scipy.ndimage's Gaussian taps: radius ``int(truncate * sigma + 0.5)``, normalised."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (x / sigma) ** 2)
    return taps / taps.sum()


def valid_filter_matrix(length: int, taps: torch.Tensor) -> torch.Tensor:
    """(length, length - K + 1) banded matrix M with ``(v @ M)[j] = sum_k taps[k] v[j + k]``:
    the "valid" 1-D correlation as a matrix product, which runs as one BLAS call (several
    times faster than a grouped float64 ``conv2d`` on the CPU, and exact)."""
    size = taps.numel()
    offset = torch.arange(length, device=taps.device)[:, None] - torch.arange(
        length - size + 1, device=taps.device)[None, :]
    inside = (offset >= 0) & (offset < size)
    return torch.where(inside, taps[offset.clamp(0, size - 1)], torch.zeros((), dtype=taps.dtype))


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Per-image SSIM (B,) of (B, C, H, W) images, mean over channels and the valid region.

    Separable Gaussian filtering without padding gives exactly the region scikit-image keeps
    after cropping ``(win_size - 1) // 2`` pixels on each side.
    """
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(
            f"ssim needs two (B, C, H, W) tensors of one shape, got {x.shape}, {y.shape}"
        )
    taps = gaussian_kernel1d(sigma).to(dtype=dtype, device=x.device)
    size = taps.numel()
    if min(x.shape[-2:]) < size:
        raise ValueError(
            f"ssim needs images of at least {size}x{size} px, got {tuple(x.shape[-2:])}"
        )
    b, c, h, w = x.shape
    x = x.to(dtype).reshape(b * c, 1, h, w)
    y = y.to(dtype).reshape(b * c, 1, h, w)
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (B*C, 5, H, W)
    filtered = valid_filter_matrix(h, taps).T @ (stack @ valid_filter_matrix(w, taps))
    ux, uy, uxx, uyy, uxy = filtered.unbind(1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.reshape(b, c, -1).mean(-1).mean(-1).double()


class PSNR(FrameMeanMetric):
    """Peak signal-to-noise ratio in dB against the ground truth, data range 1, capped at the
    8-bit quantisation ceiling (:data:`PSNR_CEILING`)."""

    name = "psnr"
    higher_is_better = True
    protocols = RECONSTRUCTION

    def per_frame(self, batch: FrameBatch) -> torch.Tensor:
        return psnr(*_pair(batch))


class SSIM(FrameMeanMetric):
    """Structural similarity against the ground truth (Gaussian 11/1.5, population covariance)."""

    name = "ssim"
    higher_is_better = True
    protocols = RECONSTRUCTION

    def per_frame(self, batch: FrameBatch) -> torch.Tensor:
        return ssim(*_pair(batch))


class L1(FrameMeanMetric):
    """Mean absolute error on [0, 1] RGB against the ground truth."""

    name = "l1"
    higher_is_better = False
    protocols = RECONSTRUCTION

    def per_frame(self, batch: FrameBatch) -> torch.Tensor:
        return l1(*_pair(batch))


__all__ = ["L1", "PSNR", "PSNR_CEILING", "QUANTISATION_MSE", "SSIM", "gaussian_kernel1d", "l1",
           "psnr", "ssim"]
