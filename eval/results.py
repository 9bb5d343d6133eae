"""Result rows: one per pair and metric, in an append-only CSV that survives a kill.

All rows of a pair are appended in one write, flushed and fsynced, so a kill loses at most the
pair in flight. Reading tolerates a torn last line and keeps the newest row per key, so a
recomputed pair replaces its old rows without rewriting the file.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

METHOD_PAIR_ID = "*"
"""Pair id of the rows that say a whole method failed (training or set-up), not one pair."""


@dataclass
class ResultRow:
    method: str
    dataset: str
    protocol: str
    pair_id: str
    metric: str
    backend: str
    value: float
    frames: int
    status: str = "ok"
    """``ok``, ``skipped`` (the metric could not run: reason says why and the fix) or ``error``."""
    reason: str = ""
    frames_total: int = 0
    """Frames the value should cover: the pair's driving frames (a set-level row: those of the
    protocol's pairs); 0 for a pair the pair list itself skips (its source has no face)."""
    pairs: int = 0
    """Pairs whose frames the value uses: 1 for a computed pair row, the count for a set row."""
    pairs_skipped: int = 0
    """Set-level rows: the protocol's pairs left out because the pair list skips them."""
    pairs_failed: int = 0
    """Set-level rows: the protocol's pairs left out because generating or reading them failed."""
    real_frames: int = 0
    """Set-level rows (FID, KID): the real frames compared with (``frames``: the generated ones);
    below :data:`thbench.eval.metrics.fid.MIN_REAL_FRAMES` the value is flagged."""
    std: float | None = None
    """KID rows: the standard deviation over subsets; None (an empty cell) elsewhere."""

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.method, self.dataset, self.protocol, self.pair_id, self.metric)


COLUMNS = [f.name for f in fields(ResultRow)]
LEGACY_COLUMNS = COLUMNS[:10]
"""The layout before coverage was recorded; such rows read with ``frames_total = frames``."""
COVERAGE_COLUMNS = COLUMNS[:14]
"""The layout before set rows recorded ``real_frames`` and ``std`` (read as 0 and NaN)."""


def _format(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


class ResultStore:
    """The results CSV of one run folder."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def append(self, rows: list[ResultRow]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        new_file = not self.path.exists() or self.path.stat().st_size == 0
        if new_file:
            writer.writerow(COLUMNS)
        for row in rows:
            record = asdict(row)
            record["value"] = _format(row.value)
            record["std"] = "" if row.std is None else _format(row.std)
            writer.writerow([record[c] for c in COLUMNS])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="") as handle:
            self._repair_torn_tail(handle)
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())

    def _repair_torn_tail(self, handle) -> None:
        """After a kill mid-write the file may end without a newline: end that line first."""
        if handle.tell() == 0:
            return
        with self.path.open("rb") as reader:
            reader.seek(-1, os.SEEK_END)
            if reader.read(1) != b"\n":
                handle.write("\n")

    def rows(self) -> list[ResultRow]:
        """Every complete row, newest per key, in first-seen key order."""
        if not self.path.is_file():
            return []
        latest: dict[tuple, ResultRow] = {}
        with self.path.open(newline="") as handle:
            reader = csv.reader(handle)
            for record in reader:
                if record in (COLUMNS, COVERAGE_COLUMNS, LEGACY_COLUMNS):
                    continue
                try:
                    row = _parse(record)
                except ValueError:
                    continue  # a torn line
                latest[row.key] = row
        return list(latest.values())

    def done(self) -> dict[tuple[str, str, str, str, str], int]:
        """Key -> ``frames_total`` of every row present: a row counts as done for a pair only
        while the pair still has that many driving frames (a changed pair list recomputes)."""
        return {row.key: row.frames_total for row in self.rows()}


def _parse(record: list[str]) -> ResultRow:
    """A row of the current layout, or of the legacy one (coverage then taken as complete)."""
    if len(record) in (len(COLUMNS), len(COVERAGE_COLUMNS)):
        values = dict(zip(COLUMNS, record, strict=False))
    elif len(record) == len(LEGACY_COLUMNS):
        values = dict(zip(LEGACY_COLUMNS, record, strict=True))
        values["frames_total"] = values["frames"]
        values["pairs"] = "1" if values["status"] == "ok" else "0"
    else:
        raise ValueError(f"{len(record)} fields")
    numbers = {name: int(values[name]) for name in
               ("frames", "frames_total", "pairs", "pairs_skipped", "pairs_failed",
                "real_frames") if name in values}
    std = values.get("std", "")
    return ResultRow(**{**values, **numbers, "value": float(values["value"]),
                        "std": float(std) if std else None})
