"""CUDA backend settings for training and evaluation, set once per process on a CUDA device.

Training asks for reproducibility: cuBLAS gets a fixed workspace (``CUBLAS_WORKSPACE_CONFIG``,
read when cuBLAS starts, so it is set before the first matmul), cuDNN picks deterministic
algorithms without benchmarking, and ``torch.use_deterministic_algorithms(True,
warn_only=True)`` warns at each op that has no deterministic CUDA kernel. Those ops remain:
the backward passes of ``grid_sample`` (every warp and tri-plane lookup) and of ``gather`` /
index-add accumulate with atomics, so two CUDA runs, or a run and its resume, agree only to
float rounding, not bit for bit. On the CPU a resume is exact (tests/test_training.py).
Training matmuls and convolutions may use TF32 (``high`` precision): deterministic, and
bf16 autocast already rounds more.

Evaluation asks for speed at fixed frame sizes (``cudnn.benchmark``) and for numbers that agree
with the CPU's within the acceptance tolerances, so it keeps full fp32 (no TF32).
"""

from __future__ import annotations

import os
from typing import Literal

import torch

CUBLAS_WORKSPACE = ":4096:8"


def configure(device: torch.device | str, purpose: Literal["train", "eval"]) -> dict[str, object]:
    """Set the backend flags for ``purpose`` when ``device`` is CUDA; returns what was set
    (nothing on other devices)."""
    device = torch.device(device)
    if device.type != "cuda":
        return {}
    train = purpose == "train"
    if train:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = not train
    torch.backends.cudnn.deterministic = train
    torch.backends.cuda.matmul.allow_tf32 = train
    torch.backends.cudnn.allow_tf32 = train
    return {"cudnn.benchmark": not train, "cudnn.deterministic": train, "tf32": train,
            "deterministic_algorithms": "warn_only" if train else False,
            "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}
