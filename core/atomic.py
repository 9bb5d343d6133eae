"""Atomic file writes: a temporary file in the same folder, then ``os.replace`` over the target,
so a reader (or a rerun after a kill) sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def _temporary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.tmp")


def write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    tmp = _temporary(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, record: Any) -> None:
    write_text(path, json.dumps(record, indent=1, sort_keys=True))


def torch_save(payload: Any, path: str | os.PathLike) -> None:
    import torch

    path = Path(path)
    tmp = _temporary(path)
    torch.save(payload, tmp)
    os.replace(tmp, path)
