"""A prepared dataset on disk: ``clips/`` and ``pairs/<protocol>.jsonl``."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from thbench.datasets.clip import Clip
from thbench.datasets.protocols import Pair, read_pairs


class PreparedDataset:
    def __init__(self, root: str | os.PathLike, name: str, max_pairs: int = 0) -> None:
        self.root = Path(root)
        self.name = name
        self.max_pairs = max_pairs
        """Only the first ``max_pairs`` pairs of each protocol's list are used (0: all)."""

    @cache  # noqa: B019 - one dataset object per run; clips are immutable once prepared
    def clip(self, clip_id: str) -> Clip:
        return Clip(self.root / "clips" / clip_id)

    @property
    def size(self) -> int | None:
        """The clips' side in pixels (every clip of a preparation has the same), None when the
        folder holds no clip."""
        folders = sorted(p for p in (self.root / "clips").glob("*") if p.is_dir())
        return Clip(folders[0]).info.size if folders else None

    def pairs_file(self, protocol: str) -> Path:
        return self.root / "pairs" / f"{protocol}.jsonl"

    def pairs(self, protocol: str) -> list[Pair]:
        pairs = read_pairs(self.pairs_file(protocol))
        return pairs[: self.max_pairs] if self.max_pairs > 0 else pairs
