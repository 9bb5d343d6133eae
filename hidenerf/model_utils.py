"""Image helpers shared by the model's modules."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def resize(image: Tensor, size: int) -> Tensor:
    """(B, C, H, W) -> (B, C, size, size), bilinear with antialiasing when shrinking."""
    if image.shape[-2:] == (size, size):
        return image
    shrink = image.shape[-1] > size or image.shape[-2] > size
    return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=shrink)


def sampling_dtype(*tensors: Tensor) -> torch.dtype:
    """At least float32: grid sampling never runs at a reduced precision (bf16 autocast would
    round coordinates to a quarter texel of a 256 plane), float64 stays float64."""
    dtype = torch.float32
    for tensor in tensors:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype
