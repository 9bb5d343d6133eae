"""Image resizing and anti-aliased downsampling (pure tensor functions on (B, C, H, W))."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize(images: torch.Tensor, size: int | tuple[int, int],
           antialias: bool | None = None) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W) to ``size`` (H', W'), or (size, size) for an int; the
    input itself when it has that size already.

    ``antialias``: None filters when either side shrinks (like the official demos' skimage
    resize); True or False forces it (PyTorch's filtered path rounds differently even when it
    enlarges, so a caller that always filtered keeps doing so)."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[-2:]) == size:
        return images
    if antialias is None:
        antialias = size[0] < images.shape[-2] or size[1] < images.shape[-1]
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False,
                         antialias=antialias)


def antialias_kernel(scale: float) -> torch.Tensor:
    """(k, k) normalised Gaussian for downsampling by the integer ``1 / scale``:
    sigma = (1/scale - 1) / 2, k = 2 * round(4 sigma) + 1 (the FOMM / TPSMM / face-vid2vid
    choice; scale 1 gives the 1 x 1 identity)."""
    sigma = (1 / scale - 1) / 2
    size = 2 * round(sigma * 4) + 1
    taps = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    profile = torch.exp(-(taps**2) / (2 * sigma**2)) if sigma > 0 else (taps == 0).float()
    kernel = profile[:, None] * profile[None, :]
    return kernel / kernel.sum()


def antialias_downsample(images: torch.Tensor, weight: torch.Tensor, step: int) -> torch.Tensor:
    """Blur (B, C, H, W) with the depthwise ``weight`` (C, 1, k, k), k odd, of
    :func:`antialias_kernel` (zero padding) and keep every ``step``-th pixel
    -> (B, C, ceil(H / step), ceil(W / step))."""
    pad = weight.shape[-1] // 2
    out = F.conv2d(F.pad(images, (pad, pad, pad, pad)), weight, groups=images.shape[1])
    return out[:, :, ::step, ::step]
