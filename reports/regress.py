"""Regression check of a leaderboard against a stored reference, per metric and direction.

A metric regresses when it got worse than the reference by more than its tolerance (absolute,
in the metric's units; :data:`TOLERANCES`, overridable per metric), when it was computed in the
reference but is missing, skipped or failed now, or when its backend changed (the numbers are
then not comparable). Better values and new rows never fail the check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from reports.leaderboard import KEY, read_leaderboard

TOLERANCES: dict[str, float] = {
    "psnr": 0.05, "ssim": 0.002, "l1": 0.001, "lpips": 0.002, "fid": 0.5, "csim": 0.005,
    "aed_identity": 0.005, "akd": 0.1, "mkr": 0.01, "aed_3dmm": 0.005, "apd": 0.1,
    "avd_s": 0.05, "avd_d": 0.05,
}
DEFAULT_TOLERANCE = 1e-6


@dataclass
class Regression:
    key: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return f"{' / '.join(self.key)}: {self.message}"


def _worse(reference: float, current: float, higher_is_better: bool, tolerance: float) -> bool:
    if math.isnan(current):
        return True
    if reference == current:  # also inf == inf
        return False
    change = current - reference if higher_is_better else reference - current
    return change < -tolerance


def compare(reference: Path, current: Path,
            tolerances: dict[str, float] | None = None) -> list[Regression]:
    tolerances = TOLERANCES | (tolerances or {})
    now = {tuple(r[k] for k in KEY): r for r in read_leaderboard(current)}
    found = []
    for ref in read_leaderboard(reference):
        key = tuple(ref[k] for k in KEY)
        if ref["status"] != "ok":
            continue
        cur = now.get(key)
        if cur is None:
            found.append(Regression(key, "missing from the current leaderboard"))
        elif cur["status"] != "ok":
            found.append(Regression(key, f"now {cur['status']}: {cur['reason']}"))
        elif cur["backend"] != ref["backend"]:
            found.append(Regression(key, f"backend changed from {ref['backend']!r} to "
                                         f"{cur['backend']!r}"))
        else:
            tolerance = tolerances.get(ref["metric"], DEFAULT_TOLERANCE)
            value, before = float(cur["value"]), float(ref["value"])
            if _worse(before, value, ref["direction"] == "higher", tolerance):
                found.append(Regression(key, f"{before:.6g} -> {value:.6g} ({ref['direction']} is "
                                             f"better, tolerance {tolerance:g})"))
    return found
