"""Markdown tables like a paper's: one per dataset x protocol, methods as rows, metrics as columns.

A header carries the direction (up: higher is better, down: lower is better). A cell is the mean
over pairs with the 95% bootstrap half-width (``12.34 ± 0.56``); the best value of a column is
bold; a metric that could not run is a dash with a footnote giving the reason and the fix.
"""

from __future__ import annotations

import math

from eval.aggregate import Summary

ARROWS = {True: "↑", False: "↓"}


def format_value(summary: Summary) -> str:
    value = summary.value
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    digits = 4 if abs(value) < 1 else 2
    text = f"{value:.{digits}f}"
    if not math.isnan(summary.ci_low):
        half = (summary.ci_high - summary.ci_low) / 2
        text += f" ± {half:.{digits}f}"
    return text


def _best(cells: list[Summary]) -> float | None:
    values = [c.value for c in cells if c.status == "ok" and not math.isnan(c.value)]
    if not values:
        return None
    return max(values) if cells[0].higher_is_better else min(values)


def markdown_tables(summaries: list[Summary]) -> str:
    """All tables of a run, with footnotes for skipped or failed metrics."""
    by_table: dict[tuple[str, str], list[Summary]] = {}
    for summary in summaries:
        by_table.setdefault((summary.dataset, summary.protocol), []).append(summary)
    notes: dict[str, int] = {}
    blocks = []
    for (dataset, protocol), group in sorted(by_table.items()):
        methods = list(dict.fromkeys(s.method for s in group))
        metrics = list(dict.fromkeys(s.metric for s in group))
        cell = {(s.method, s.metric): s for s in group}
        directions = {s.metric: s.higher_is_better for s in group}
        header = ["method"] + [f"{m} {ARROWS[directions[m]]}" for m in metrics]
        lines = [f"### {dataset} / {protocol}", "", "| " + " | ".join(header) + " |",
                 "|" + "---|" * len(header)]
        best = {m: _best([cell[k] for k in cell if k[1] == m]) for m in metrics}
        for method in methods:
            row = [method]
            for metric in metrics:
                summary = cell.get((method, metric))
                if summary is None:
                    row.append("")
                elif summary.status != "ok":
                    number = notes.setdefault(f"{metric}: {summary.reason or summary.status}",
                                              len(notes) + 1)
                    row.append(f"–[^{number}]")
                else:
                    text = format_value(summary)
                    row.append(f"**{text}**" if summary.value == best[metric] else text)
            lines.append("| " + " | ".join(row) + " |")
        pairs = max((s.n_pairs for s in group), default=0)
        frames = max((s.n_frames for s in group if s.n_pairs), default=0)
        lines += ["", f"Mean over {pairs} pairs ({frames} frames) ± half-width of the 95% "
                      "bootstrap interval; FID is one value over all frames.", "",
                  "Backends: " + "; ".join(
                      f"{m}: {next(s.backend for s in group if s.metric == m)}" for m in metrics)]
        blocks.append("\n".join(lines))
    footnotes = [f"[^{n}]: {text}" for text, n in notes.items()]
    return "\n\n".join(blocks + (["\n".join(footnotes)] if footnotes else [])) + "\n"
