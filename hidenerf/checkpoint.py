"""HiDe-NeRF checkpoints: ``torch.save`` of {format, config, model[, anything else]}.

The config travels with the weights, so a checkpoint rebuilds its own model; loading is strict.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from thbench.core import atomic
from thbench.hidenerf.config import HiDeNeRFConfig
from thbench.hidenerf.model import HiDeNeRF

FORMAT = "hidenerf-v1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


def save_checkpoint(path: str | os.PathLike, model: HiDeNeRF, **extra) -> None:
    """Write atomically (temp file, then rename). ``extra`` (step, optimiser state) is kept."""
    atomic.torch_save({"format": FORMAT, "config": model.config.to_dict(),
                       "model": model.state_dict(), **extra}, path)


def load_checkpoint(path: str | os.PathLike,
                    map_location: str | torch.device = "cpu") -> tuple[HiDeNeRF, dict]:
    """-> (model in eval mode, the checkpoint's other entries). Raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # unpickling errors have many types
        raise CheckpointError(f"{path}: not a readable checkpoint ({error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a HiDe-NeRF checkpoint (expected format {FORMAT!r})")
    try:
        config = HiDeNeRFConfig.from_dict(data["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: bad config ({error})") from None
    model = HiDeNeRF(config)
    try:
        result = model.load_state_dict(data["model"], strict=False)
    except RuntimeError as error:  # shape mismatches
        message = " ".join(str(error).split())[:300]
        raise CheckpointError(f"{path}: weights do not match config {config.name!r} "
                              f"({message})") from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(f"{path}: weights do not match config {config.name!r}: missing "
                              f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}")
    extra = {k: v for k, v in data.items() if k not in ("format", "config", "model")}
    return model.to(map_location).eval(), extra
