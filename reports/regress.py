"""Regression check of a leaderboard against a stored reference, per metric and direction.

Rows are compared like with like: the same run, method, dataset, protocol, metric and average
(``per-pair``, ``per-frame``, ``set``; a reference written before the ``average`` column reads
as the per-pair one it held, see :mod:`thbench.reports.leaderboard`). A row regresses when it got
worse than the reference by more than its tolerance, when it was computed in the reference but is
missing, skipped or failed now, or when its backend changed (the numbers are then not
comparable). Better values and new rows never fail the check.

Two kinds of rows, two kinds of tolerance:

- Rows of methods that are not trained by the run (the reference methods, checkpoints given in
  the config) come from fixed inputs: decoded frames, PNG round trips, metric arithmetic and
  the face analyses. They are checked with the small absolute :data:`TOLERANCES`, which only
  absorb float differences in the face-analysis libraries between CPUs.
- Rows of methods the run trains on the CPU are not bitwise reproducible across CPUs (kernel
  choice, thread count). Their tolerances come from a file that :func:`derive_tolerances`
  writes from measurements: the spread of each row over runs of the same config on several CPU
  configurations, and the row's own 95% interval. Keys listed there as ``status_may_change``
  were ``ok`` in some of those runs and not in others (a face found in a blurry output on one
  CPU and not on another); only their values are compared, when both are ``ok``.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from thbench.core import atomic
from thbench.eval.aggregate import PER_PAIR
from thbench.reports.leaderboard import KEY, read_leaderboard

TOLERANCES: dict[str, float] = {
    "psnr": 0.05, "ssim": 0.002, "l1": 0.001, "lpips": 0.002, "fid": 0.5, "csim": 0.005,
    "aed_identity": 0.005, "akd": 0.1, "mkr": 0.01, "aed_3dmm": 0.005, "apd": 0.1,
    "avd_s": 0.05, "avd_d": 0.05, "aed_fomm": 0.005, "akd_fomm": 0.1, "no_face": 0.01,
    "kid": 1e-4, "avd_share": 0.01,
}
DEFAULT_TOLERANCE = 1e-6

SPREAD_FACTOR = 3.0
"""A trained row may move by this many times the largest difference measured between CPUs."""
INTERVAL_SHARE = 0.5
"""... or by this share of the half-width of its 95% bootstrap interval, whichever is larger.
On a real second machine, rows moved by up to 0.28 of their half-width (tpsmm-tiny MKR and
AVD-s in issue #15's measurements), while a method trained with a quarter of its steps moves
its pixel metrics by more than the half-width (see docs/regression-gate.md)."""


@dataclass
class Regression:
    key: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return f"{' / '.join(self.key)}: {self.message}"


@dataclass
class TrainedTolerances:
    """Per-row tolerances of trained methods: ``(method, dataset, protocol, metric, average)``
    -> absolute tolerance, and the keys whose status may differ between CPUs. A row of the file
    without ``average`` is a per-pair one (files written before both averages existed)."""

    tolerances: dict[tuple[str, str, str, str, str], float] = field(default_factory=dict)
    status_may_change: set[tuple[str, str, str, str, str]] = field(default_factory=set)

    @classmethod
    def read(cls, path: Path) -> TrainedTolerances:
        with path.open("rb") as handle:
            table = tomllib.load(handle)
        out = cls()
        for row in table.get("rows", []):
            key = (row["method"], row["dataset"], row["protocol"], row["metric"],
                   row.get("average", PER_PAIR))
            out.tolerances[key] = float(row["tolerance"])
            if row.get("status_may_change"):
                out.status_may_change.add(key)
        return out


def _worse(reference: float, current: float, higher_is_better: bool, tolerance: float) -> bool:
    if math.isnan(current):
        return True
    if reference == current:  # also inf == inf
        return False
    change = current - reference if higher_is_better else reference - current
    return change < -tolerance


def compare(reference: Path, current: Path, tolerances: dict[str, float] | None = None,
            trained: TrainedTolerances | None = None) -> list[Regression]:
    """Regressions of ``current`` against ``reference``. ``tolerances`` override the
    per-metric ones; ``trained`` gives the rows of trained methods theirs."""
    tolerances = TOLERANCES | (tolerances or {})
    trained = trained or TrainedTolerances()
    now = {tuple(r[k] for k in KEY): r for r in read_leaderboard(current)}
    found = []
    for ref in read_leaderboard(reference):
        key = tuple(ref[k] for k in KEY)
        row_key = key[1:]
        if ref["status"] != "ok":
            continue
        cur = now.get(key)
        if cur is None:
            found.append(Regression(key, "missing from the current leaderboard"))
        elif cur["status"] != "ok":
            if row_key not in trained.status_may_change:
                found.append(Regression(key, f"now {cur['status']}: {cur['reason']}"))
        elif cur["backend"] != ref["backend"]:
            found.append(Regression(key, f"backend changed from {ref['backend']!r} to "
                                         f"{cur['backend']!r}"))
        else:
            tolerance = trained.tolerances.get(
                row_key, tolerances.get(ref["metric"], DEFAULT_TOLERANCE))
            value, before = float(cur["value"]), float(ref["value"])
            if _worse(before, value, ref["direction"] == "higher", tolerance):
                found.append(Regression(key, f"{before:.6g} -> {value:.6g} ({ref['direction']} is "
                                             f"better, tolerance {tolerance:.3g})"))
    return found


def derive_tolerances(reference: Path, others: list[Path], methods: list[str]) -> list[dict]:
    """Tolerances of the trained ``methods``' rows, from the reference leaderboard and
    leaderboards of the same config run on other CPU configurations.

    For each row: ``max(SPREAD_FACTOR * spread, INTERVAL_SHARE * half-width, metric floor)``,
    where spread is the largest difference between the runs' values and half-width is half the
    reference row's 95% interval; the inputs are kept beside the result."""
    runs = [{tuple(r[k] for k in KEY[1:]): r for r in read_leaderboard(p)}
            for p in [reference, *others]]
    rows = []
    for key, ref in runs[0].items():
        method, dataset, protocol, metric, average = key
        if method not in methods:
            continue
        seen = [run[key] for run in runs if key in run]
        values = [float(r["value"]) for r in seen if r["status"] == "ok"]
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            continue
        spread = max(finite) - min(finite)
        low, high = float(ref["ci_low"]), float(ref["ci_high"])
        half_width = (high - low) / 2 if math.isfinite(high - low) else 0.0
        tolerance = max(SPREAD_FACTOR * spread, INTERVAL_SHARE * half_width,
                        TOLERANCES.get(metric, DEFAULT_TOLERANCE))
        rows.append({
            "method": method, "dataset": dataset, "protocol": protocol, "metric": metric,
            "average": average, "tolerance": tolerance, "spread": spread, "half_width": half_width,
            "runs": len(seen), "status_may_change": len(values) != len(seen),
        })
    return rows


def write_tolerances(path: Path, rows: list[dict], sources: list[str]) -> Path:
    """The tolerance file: a header saying how it was made, then one ``[[rows]]`` per row."""
    lines = [
        "# Tolerances of the regression gate for rows of methods trained on the CPU, written by",
        "# `python -m thbench reports derive-tolerances`; see reports/regress.py and",
        "# docs/regression-gate.md. tolerance = max(3 x spread, 0.5 x half-width of the",
        "# reference row's 95% interval, the metric's fixed-input tolerance); spread = the",
        "# largest difference between the runs below.",
        *(f"# run: {source}" for source in sources),
        "",
    ]
    for row in rows:
        lines.append("[[rows]]")
        for name, value in row.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, str):
                text = f'"{value}"'
            else:
                text = repr(value)
            lines.append(f"{name} = {text}")
        lines.append("")
    atomic.write_text(path, "\n".join(lines))
    return path
