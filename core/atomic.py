"""Atomic file writes: a temporary file in the same folder, then ``os.replace`` over the target,
so a reader (or a rerun after a kill) sees the old file or the new one, never half of one.

Every durable file of the benchmark (clips, caches, result and leaderboard tables, markers,
checkpoints) is written through this module. Nothing is fsynced: an interrupted write leaves
the old file, which is what a rerun needs; surviving a power cut is not promised."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def replacing(path: str | os.PathLike, mode: str = "wb", **options: Any) -> Iterator[IO]:
    """A new file (``open(..., mode, **options)``) that replaces ``path`` when the block ends
    without an error; on an error it is removed and ``path`` is left as it was.

    For writers that take a file object (``np.save``, ``np.savez``, PIL, ``csv``). The temporary
    name is unique to the call, so processes writing the same path at once (ranks sharing a
    cache) never write into one temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, mode, **options) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with replacing(path, "wb") as out:
        out.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with replacing(path, "w") as out:
        out.write(text)


def write_json(path: str | os.PathLike, record: Any) -> None:
    write_text(path, json.dumps(record, indent=1, sort_keys=True))


def torch_save(payload: Any, path: str | os.PathLike) -> None:
    """``torch.save`` atomically. The temporary name is always ``.<name>.tmp``: torch names the
    archive's folder inside the file after the file it writes, so another name would change the
    checkpoint's bytes."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
