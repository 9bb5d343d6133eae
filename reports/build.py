"""Build a run's reports from its result rows, without recomputing any metric."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

from eval.aggregate import summarize
from eval.config import RunConfig
from eval.results import ResultStore
from reports.leaderboard import write_leaderboard
from reports.tables import markdown_tables


def git_commit() -> str:
    """The checkout's commit (``+dirty`` when it has uncommitted changes), or ``unknown``."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def build_reports(run_dir: Path, config: RunConfig) -> list[Path]:
    """``leaderboard.csv`` and ``tables.md`` in ``run_dir`` from ``run_dir/results.csv``."""
    run_dir = Path(run_dir)
    rows = ResultStore(run_dir / "results.csv").rows()
    if not rows:
        raise ValueError(f"{run_dir / 'results.csv'}: no result rows to report")
    summaries = summarize(rows, seed=config.seed)
    provenance = {"commit": git_commit(), "config_hash": config.digest(),
                  "date": datetime.date.today().isoformat()}
    leaderboard = write_leaderboard(run_dir / "leaderboard.csv", summaries, provenance)
    tables = run_dir / "tables.md"
    tables.write_text(f"# {config.name}\n\n{markdown_tables(summaries)}")
    return [leaderboard, tables]
