"""The dtype grid sampling runs at, shared by the model's modules."""

from __future__ import annotations

import torch
from torch import Tensor


def sampling_dtype(*tensors: Tensor) -> torch.dtype:
    """At least float32: grid sampling never runs at a reduced precision (bf16 autocast would
    round coordinates to a quarter texel of a 256 plane), float64 stays float64."""
    dtype = torch.float32
    for tensor in tensors:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype
