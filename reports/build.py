"""Build a run's reports from its result rows, without recomputing any metric.

Reads ``<run>/run.json`` (the resolved config and the prepared dataset's folder, written by the
runner) and ``<run>/results.csv``; writes ``leaderboard.csv``, ``leaderboard_wide.csv``,
``tables.md``, ``tables.tex`` and ``report.html`` in the run folder, and merges the run's rows
into ``<output_dir>/leaderboard.csv`` (one file across runs, newest rows per run win).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from thbench.baselines.reference import BOUNDS
from thbench.core import atomic
from thbench.core.provenance import git_commit
from thbench.datasets.prepared_dataset import PreparedDataset
from thbench.eval.aggregate import summarize
from thbench.eval.config import config_from_dict
from thbench.eval.results import ResultStore
from thbench.eval.runner import FLOOR_FILE
from thbench.reports.html import write_html
from thbench.reports.leaderboard import (
    leaderboard_rows,
    merge_leaderboard,
    write_leaderboard,
    write_wide,
)
from thbench.reports.published import DEFAULT_FILE, read_published
from thbench.reports.tables import floor_markdown, latex_tables, markdown_tables


def read_floor(run_dir: Path) -> dict | None:
    """The run's noise-floor measurement (``floor.json``, written by the runner), if any."""
    path = run_dir / FLOOR_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def build_reports(run_dir: str | Path, html: bool = True,
                  published_file: str | Path = DEFAULT_FILE) -> list[Path]:
    """Every report of the run in ``run_dir``; returns the paths written. The figures of
    ``published_file`` go beside the measured rows of the tables (Markdown, LaTeX, HTML), never
    into the leaderboards."""
    run_dir = Path(run_dir)
    record_path = run_dir / "run.json"
    if not record_path.is_file():
        raise FileNotFoundError(f"{record_path}: not a run folder (no run.json)")
    record = json.loads(record_path.read_text())
    config = config_from_dict(record["config"], str(record_path))
    rows = ResultStore(run_dir / "results.csv").rows()
    if not rows:
        raise ValueError(f"{run_dir / 'results.csv'}: no result rows to report")
    bounds = [m.display for m in config.methods if m.name in BOUNDS]
    summaries = summarize(rows, seed=config.seed, bounds=bounds)
    provenance = {"run": config.name, "commit": git_commit(), "config_hash": config.digest(),
                  "date": datetime.date.today().isoformat()}
    board = leaderboard_rows(summaries, provenance)
    paths = [write_leaderboard(run_dir / "leaderboard.csv", board),
             write_wide(run_dir / "leaderboard_wide.csv", board, config.average),
             merge_leaderboard(run_dir.parent / "leaderboard.csv", board)]
    floor = read_floor(run_dir)
    floor_text = f"\n{floor_markdown(floor)}" if floor else ""
    published, size = read_published(published_file), record.get("size")
    markdown = markdown_tables(summaries, config.average, published, size, floor)
    atomic.write_text(run_dir / "tables.md", f"# {config.name}\n\n{markdown}{floor_text}")
    atomic.write_text(run_dir / "tables.tex",
                      latex_tables(summaries, config.average, published, size, floor))
    paths += [run_dir / "tables.md", run_dir / "tables.tex"]
    if html:
        root = Path(record["dataset_root"])
        dataset = PreparedDataset(root, config.dataset.name) if root.is_dir() else None
        paths.append(write_html(run_dir / "report.html", config.name, summaries, dataset,
                                run_dir / "outputs", provenance, floor, config.average,
                                published, size))
    return paths
