"""``leaderboard.csv``: the long format, one row per method x dataset x protocol x metric.

Columns are fixed (:data:`COLUMNS`); every row carries the metric's direction and backend and the
run's provenance (git commit, config hash, date), so a number never travels without its origin.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import asdict
from pathlib import Path

from eval.aggregate import Summary

COLUMNS = [
    "method", "dataset", "protocol", "metric", "direction", "value", "ci_low", "ci_high",
    "n_pairs", "n_frames", "n_skipped", "n_errors", "status", "reason", "backend",
    "commit", "config_hash", "date",
]


def _number(value: float) -> str:
    return "nan" if math.isnan(value) else repr(float(value))


def write_leaderboard(path: Path, summaries: list[Summary], provenance: dict[str, str]) -> Path:
    """Write the summaries (sorted by key) atomically; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for summary in sorted(summaries, key=lambda s: s.key):
            record = asdict(summary) | provenance
            record["direction"] = "higher" if summary.higher_is_better else "lower"
            for name in ("value", "ci_low", "ci_high"):
                record[name] = _number(record[name])
            writer.writerow([record[c] for c in COLUMNS])
    os.replace(tmp, path)
    return path


def read_leaderboard(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))
