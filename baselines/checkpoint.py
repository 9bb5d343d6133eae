"""Strict loading and saving of checkpoints in the official layouts.

An official checkpoint is a ``torch.save``d dict whose top-level keys (``generator``,
``kp_detector``, ...) each hold one module's state dict. The reference manifests in
``../shared/reference/*-state-dict.tsv`` (columns module, parameter, shape, dtype) list every
name, shape and dtype; a baseline that claims to load official weights matches them exactly.
"""

from __future__ import annotations

import csv
import itertools
import os
from pathlib import Path

import torch
from torch import nn

from thbench.core import atomic

Layout = dict[str, dict[str, tuple[tuple[int, ...], str]]]
"""module -> parameter name -> (shape, dtype name such as ``"float32"``)."""


class CheckpointMismatch(ValueError):
    """The checkpoint's names or shapes differ from the model's; the message lists them."""


class UnreadableCheckpoint(CheckpointMismatch):
    """The file is missing, not a torch checkpoint, or not a dict of state dicts."""


def read_layout(tsv: str | os.PathLike) -> Layout:
    layout: Layout = {}
    with open(tsv, newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            shape = tuple(int(n) for n in row["shape"].strip("[]").split(",") if n.strip())
            layout.setdefault(row["module"], {})[row["parameter"]] = (shape, row["dtype"])
    return layout


def layout_of(modules: dict[str, nn.Module]) -> Layout:
    return {
        key: {
            name: (tuple(tensor.shape), str(tensor.dtype).removeprefix("torch."))
            for name, tensor in module.state_dict().items()
        }
        for key, module in modules.items()
    }


def compare(expected: Layout, actual: Layout, origin: str) -> None:
    """Raise :class:`CheckpointMismatch` listing missing, unexpected and mis-shaped entries."""
    problems = []
    for key in sorted(set(expected) | set(actual)):
        if key not in actual:
            problems.append(f"missing module {key!r}")
            continue
        if key not in expected:
            problems.append(f"unexpected module {key!r}")
            continue
        want, have = expected[key], actual[key]
        missing = sorted(set(want) - set(have))
        unexpected = sorted(set(have) - set(want))
        shapes = [
            f"{key}.{n}: {have[n][0]} {have[n][1]} != {want[n][0]} {want[n][1]}"
            for n in sorted(set(want) & set(have))
            if want[n] != have[n]
        ]
        if missing:
            problems.append(f"{key}: missing keys {missing[:8]}{' …' if len(missing) > 8 else ''}"
                            f" ({len(missing)})")
        if unexpected:
            problems.append(f"{key}: unexpected keys {unexpected[:8]}"
                            f"{' …' if len(unexpected) > 8 else ''} ({len(unexpected)})")
        problems.extend(shapes[:8])
    if problems:
        raise CheckpointMismatch(f"{origin}: checkpoint does not match the model: "
                                 + "; ".join(problems))


def load_official(path: str | os.PathLike, modules: dict[str, nn.Module]) -> dict:
    """Load every module's state dict strictly from an official-layout checkpoint file.

    Returns the remaining top-level entries (optimisers, epoch) untouched.
    """
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UnreadableCheckpoint(f"{path}: checkpoint file not found") from None
    except Exception as error:  # noqa: BLE001 - torch raises many types for a bad file
        raise UnreadableCheckpoint(f"{path}: not a readable checkpoint ({_first_line(error)})") \
            from None
    if not isinstance(checkpoint, dict):
        raise UnreadableCheckpoint(f"{path}: expected a dict of state dicts, "
                                   f"got {type(checkpoint)}")
    stored = {key: checkpoint.get(key) for key in modules}
    absent = [key for key, value in stored.items() if not isinstance(value, dict)]
    if absent:
        raise CheckpointMismatch(f"{path}: missing top-level keys {absent}; has {list(checkpoint)}")
    compare(layout_of(modules), {k: layout_of_state(v) for k, v in stored.items()}, str(path))
    for key, module in modules.items():
        module.load_state_dict(stored[key], strict=True)
    return {k: v for k, v in checkpoint.items() if k not in modules}


def _first_line(error: Exception, limit: int = 200) -> str:
    """``Type: first line`` of an exception, shortened: torch.load's messages run over many
    lines (the weights_only advice), and errors are reported on one line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if lines and lines[0].startswith("Weights only load failed"):
        detail = [b for a, b in itertools.pairwise(lines) if "WeightsUnpickler error" in a]
        return "torch.load(weights_only=True) refused it" + (f": {detail[0]}" if detail else "")
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def layout_of_state(state: dict) -> dict[str, tuple[tuple[int, ...], str]]:
    """Layout of a stored state dict; a non-tensor entry shows as a mismatch, not a crash."""
    return {
        str(n): (tuple(t.shape), str(t.dtype).removeprefix("torch."))
        if isinstance(t, torch.Tensor) else ((), f"<{type(t).__name__}, not a tensor>")
        for n, t in state.items()
    }


def save_official(path: str | os.PathLike, modules: dict[str, nn.Module], **extra) -> None:
    """Write modules in the official layout, atomically (temp file then rename)."""
    payload = {key: module.state_dict() for key, module in modules.items()} | extra
    atomic.torch_save(payload, path)
