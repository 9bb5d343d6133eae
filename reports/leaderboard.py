"""Leaderboards: the long format (one row per run x method x dataset x protocol x metric x
average) and a wide view for humans (one row per method x dataset x protocol, a column per
metric, the run's headline average).

``average`` names how a row's value was formed (:mod:`thbench.eval.aggregate`): ``per-pair`` (the
mean of pair means, with the bootstrap interval), ``per-frame`` (one mean over all frames, the
papers'), ``set`` (one value over all frames: FID). Files written before the column existed
read as ``per-pair`` (``set`` for set metrics), which is what they held.

Columns are fixed (:data:`COLUMNS`); every row carries the metric's direction and backend and the
run's provenance (git commit, config hash, date), so a number never travels without its origin.
:func:`merge_leaderboard` keeps one file across runs: a run's new rows replace its old ones (the
newest row per key wins), rows of other runs stay.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict
from pathlib import Path

from thbench.core import atomic
from thbench.eval.aggregate import PER_PAIR, SET, Summary

REQUIRED = [
    "run", "method", "dataset", "protocol", "metric", "direction", "value", "ci_low", "ci_high",
    "n_pairs", "n_frames", "n_skipped", "n_errors", "status", "reason", "backend",
    "commit", "config_hash", "date",
]
"""The columns every leaderboard has (files written before coverage was recorded too)."""
COLUMNS = REQUIRED + ["n_pairs_total", "n_frames_total", "coverage", "average", "bound",
                      "p_value", "rank_note", "frames_real", "spread"]
"""``n_pairs`` of ``n_pairs_total`` scored pairs, ``n_frames`` of ``n_frames_total`` frames,
``coverage`` = n_frames / n_frames_total (see :mod:`thbench.eval.aggregate`), ``average``;
``bound`` (``true`` for a copy baseline), ``p_value`` (two-sided paired bootstrap p-value against
the column's best, ``nan`` when not ranked, ``rank_note`` then says why), ``frames_real`` (FID,
KID: the real set's frames) and ``spread`` (KID: its standard deviation over subsets)."""
KEY = ("run", "method", "dataset", "protocol", "metric", "average")


def _number(value: float) -> str:
    return "nan" if math.isnan(value) else repr(float(value))


def leaderboard_rows(summaries: list[Summary], provenance: dict[str, str]) -> list[dict]:
    """Long-format rows (str values) sorted by key; ``provenance`` gives run, commit, ..."""
    rows = []
    for summary in sorted(summaries, key=lambda s: s.key):
        record = asdict(summary) | provenance
        record["direction"] = "higher" if summary.higher_is_better else "lower"
        record["coverage"] = summary.coverage
        record["bound"] = "true" if summary.bound else "false"
        for name in ("value", "ci_low", "ci_high", "coverage", "p_value", "spread"):
            record[name] = _number(record[name])
        rows.append({c: str(record[c]) for c in COLUMNS})
    return rows


def _write(path: Path, columns: list[str], rows: list[dict]) -> Path:
    with atomic.replacing(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_leaderboard(path: Path, rows: list[dict]) -> Path:
    return _write(path, COLUMNS, rows)


def read_leaderboard(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: leaderboard not found")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(REQUIRED) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: not a leaderboard (missing columns {sorted(missing)})")
        rows = [{column: row.get(column) or "" for column in COLUMNS} | row for row in reader]
    for row in rows:
        row["average"] = row["average"] or legacy_average(row["metric"])
    return rows


def legacy_average(metric: str) -> str:
    """The average a leaderboard without the ``average`` column holds for ``metric``."""
    from thbench.eval.metrics import metric_class

    try:
        return SET if metric_class(metric).scope == "set" else PER_PAIR
    except KeyError:
        return PER_PAIR


def merge_leaderboard(path: Path, rows: list[dict]) -> Path:
    """Replace the rows of ``rows``' runs in the file at ``path`` (created if absent)."""
    runs = {row["run"] for row in rows}
    kept = [r for r in read_leaderboard(path) if r["run"] not in runs] if path.is_file() else []
    merged = sorted(kept + rows, key=lambda r: tuple(r[k] for k in KEY))
    return write_leaderboard(path, merged)


def write_wide(path: Path, rows: list[dict], average: str = PER_PAIR) -> Path:
    """One row per run x method x dataset x protocol; a column per metric (value or status),
    in the ``average`` (the run's headline) and, for a metric that has no such average, in its
    own, named in the column (``avd_s [per-pair]``, ``fid [set]``)."""
    chosen: dict[tuple, dict] = {}
    for row in rows:
        key = tuple(row[k] for k in KEY[:5])
        if key not in chosen or row["average"] == average:
            chosen[key] = row
    columns = {r["metric"]: r["metric"] if r["average"] == average
               else f"{r['metric']} [{r['average']}]" for r in chosen.values()}
    table: dict[tuple, dict[str, str]] = {}
    for row in chosen.values():
        key = (row["run"], row["method"], row["dataset"], row["protocol"])
        entry = table.setdefault(key, dict(zip(KEY[:4], key, strict=True)) | {"average": average})
        entry[columns[row["metric"]]] = row["value"] if row["status"] == "ok" else row["status"]
    return _write(path, list(KEY[:4]) + ["average"] + list(columns.values()),
                  list(table.values()))
