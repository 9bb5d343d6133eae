"""Tables like a paper's, in Markdown and LaTeX: one per dataset x protocol, methods as rows,
metrics as columns.

A header carries the direction (↑ higher is better, ↓ lower is better). A cell is the run's
headline average (``average`` in the run config: ``per-pair``, the mean of pair means, or
``per-frame``, one mean over all frames as the papers; :mod:`thbench.eval.aggregate`) with the 95%
bootstrap half-width (``12.34 ± 0.56``), and the caption says which one it is; a metric that has
no such average shows its own, named in its header (``avd_s ↓ [per-pair]``, ``fid ↓ [set]``).
The best value of a column is bold; a metric that could not run is a dash with a footnote giving
the reason and the fix.

Coverage is part of every cell: a value computed on fewer pairs than the protocol scores shows
its own count (``(5/8 pairs)``); a value computed on under :data:`LOW_COVERAGE` of the
protocol's frames (a face metric where faces were missing, failed pairs) shows its coverage
(``⚠ 4% of frames``) and is never bold, whatever its value. A cell with fewer pairs also has a
numbered footnote saying how many pairs have no value and why (the leaderboard's ``reason``,
e.g. ``hidenerf: 1 of 4 pairs not scored: hidenerf cannot run this pair: ...``), so the gap is
explained in the table itself, not only in the run log.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from thbench.eval.aggregate import PER_FRAME, PER_PAIR, Summary, headline
from thbench.reports.published import Placed, PublishedRow, place

ARROWS = {True: "↑", False: "↓"}
LOW_COVERAGE = 0.9
"""Share of the protocol's frames under which a value is marked and never bold."""
WARNING = "⚠"


@dataclass
class Cell:
    text: str = ""
    best: bool = False
    note: int = 0
    """Footnote number of a skipped or failed metric, 0 for a value."""
    pairs: str = ""
    """``"5/8 pairs"`` when the value comes from fewer pairs than the protocol scores."""
    coverage: str = ""
    """``"4% of frames"`` when the value covers under :data:`LOW_COVERAGE` of the frames."""
    gap_note: int = 0
    """Footnote number of the reason for the missing pairs (:func:`gap_text`), 0 for none."""

    @property
    def remarks(self) -> str:
        """The coverage remarks in plain text, e.g. ``" (5/8 pairs) ⚠ 4% of frames"``."""
        text = f" ({self.pairs})" if self.pairs else ""
        return text + (f" {WARNING} {self.coverage}" if self.coverage else "")


@dataclass
class Table:
    dataset: str
    protocol: str
    metrics: list[str]
    higher_is_better: dict[str, bool]
    rows: list[tuple[str, list[Cell]]] = field(default_factory=list)
    pairs: int = 0
    frames: int = 0
    skipped: int = 0
    """Pairs of the pair list left out for every method (their source has no face)."""
    backends: dict[str, str] = field(default_factory=dict)
    average: str = PER_PAIR
    """The headline average of the cells."""
    own_average: dict[str, str] = field(default_factory=dict)
    """Metric -> its average, for the metrics shown in another one than :attr:`average`."""

    def header(self, metric: str, arrows: dict[bool, str] = ARROWS,
               escape: Callable[[str], str] = str) -> str:
        """``psnr ↑``, or ``avd_s ↓ [per-pair]`` for a metric in its own average (names passed
        through ``escape``)."""
        text = f"{escape(metric)} {arrows[self.higher_is_better[metric]]}"
        own = self.own_average.get(metric)
        return text + (f" {escape(f'[{own}]')}" if own else "")
    published: list[Placed] = field(default_factory=list)
    """Figures the papers report (:mod:`thbench.reports.published`), shown apart from the measured
    rows and never ranked with them."""


def format_value(summary: Summary, plus_minus: str = "±") -> str:
    value = summary.value
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    digits = 4 if abs(value) < 1 else 2
    text = f"{value:.{digits}f}"
    if not math.isnan(summary.ci_low):
        half = (summary.ci_high - summary.ci_low) / 2
        text += f" {plus_minus} {half:.{digits}f}"
    return text


def low_coverage(summary: Summary) -> bool:
    return summary.coverage < LOW_COVERAGE  # False when unknown (NaN)


def gap_text(summary: Summary) -> str:
    """Why a value covers fewer pairs than the protocol scores: ``"hidenerf: 1 of 4 pairs not
    scored: <reason>"`` (the first reason among its pairs without a value, as the leaderboard's
    ``reason`` column; pairs without any result row are named as such)."""
    gap = summary.n_pairs_total - summary.n_pairs
    recorded = summary.n_skipped - summary.n_unscored + summary.n_errors
    unrecorded = gap - recorded
    reasons = [summary.reason] if summary.reason and recorded else []
    if unrecorded > 0:
        reasons.append(f"{unrecorded} without result rows")
    return (f"{summary.method}: {gap} of {summary.n_pairs_total} pairs not scored: "
            + ("; ".join(reasons) or "no reason recorded"))


def _best(cells: list[Summary]) -> float | None:
    values = [c.value for c in cells
              if c.status == "ok" and not math.isnan(c.value) and not low_coverage(c)]
    if not values:
        return None
    return max(values) if cells[0].higher_is_better else min(values)


def build_tables(summaries: list[Summary], plus_minus: str = "±",
                 average: str = PER_PAIR, published: list[PublishedRow] = (),
                 size: int | None = None) -> tuple[list[Table], dict]:
    """The tables of a run in its headline ``average`` and the footnotes (text -> number)
    they refer to; ``published`` rows are placed in the tables of their dataset and protocol
    (``size``: the run's resolution)."""
    by_table: dict[tuple[str, str], list[Summary]] = {}
    for summary in headline(summaries, average):
        by_table.setdefault((summary.dataset, summary.protocol), []).append(summary)
    notes: dict[str, int] = {}
    tables = []
    for (dataset, protocol), group in sorted(by_table.items()):
        metrics = list(dict.fromkeys(s.metric for s in group))
        cell = {(s.method, s.metric): s for s in group}
        table = Table(dataset, protocol, metrics, {s.metric: s.higher_is_better for s in group},
                      average=average,
                      own_average={s.metric: s.average for s in group if s.average != average})
        best = {m: _best([s for s in group if s.metric == m]) for m in metrics}
        for method in dict.fromkeys(s.method for s in group):
            cells = []
            for metric in metrics:
                summary = cell.get((method, metric))
                if summary is None:
                    cells.append(Cell())
                elif summary.status != "ok":
                    text = f"{metric}: {summary.reason or summary.status}"
                    cells.append(Cell(note=notes.setdefault(text, len(notes) + 1)))
                else:
                    low = low_coverage(summary)
                    short = summary.n_pairs < summary.n_pairs_total
                    cells.append(Cell(
                        format_value(summary, plus_minus),
                        best=not low and summary.value == best[metric],
                        pairs=f"{summary.n_pairs}/{summary.n_pairs_total} pairs" if short else "",
                        coverage=f"{summary.coverage:.0%} of frames" if low else "",
                        gap_note=notes.setdefault(gap_text(summary), len(notes) + 1)
                        if short else 0))
            table.rows.append((method, cells))
        table.pairs = max((s.n_pairs_total for s in group), default=0)
        table.frames = max((s.n_frames_total for s in group), default=0)
        table.skipped = max((s.n_unscored for s in group), default=0)
        table.backends = {m: next(s.backend for s in group if s.metric == m) for m in metrics}
        table.published = place(list(published), dataset, protocol, metrics, table.backends, size)
        tables.append(table)
    return tables, notes


AVERAGE_TEXT = {
    PER_PAIR: "Mean over the protocol's {pairs} scored pairs ({frames} frames), each pair "
              "weighing the same (per-pair average)",
    PER_FRAME: "Mean over all {frames} frames of the protocol's {pairs} scored pairs, each frame "
               "weighing the same (per-frame average, as the papers)",
}
CAPTION = (" ± half-width of the 95% bootstrap interval over pairs; FID is one value over all "
           "frames. A value from fewer pairs shows its own count; one computed on under 90% of "
           "the frames shows its coverage (⚠) and is never bold.")


def caption(table: Table) -> str:
    text = (AVERAGE_TEXT[table.average] + CAPTION).format(pairs=table.pairs, frames=table.frames)
    pairwise = [m for m, a in table.own_average.items() if a == PER_PAIR]
    if pairwise:
        text += (f" {', '.join(pairwise)}: one value per pair by nature, so a per-pair "
                 "average.")
    if table.skipped:
        text += (f" {table.skipped} more pair(s) of the pair list are not scored (the source has "
                 "no face).")
    return text


PUBLISHED_CAPTION = ("Rows in italics are figures the papers report (reports/published.toml), "
                     "not measured here and never ranked, in the leaderboards or in the "
                     "regression gate; a figure fills one of our columns only where its "
                     "definition, backend, test set and resolution are ours.")


def published_notes(table: Table) -> list[str]:
    """Per published row of ``table``: its citation and what keeps its figures out."""
    lines = []
    for row in table.published:
        text = f"{row.label}: {row.citation}"
        if row.notes:
            text += " Not shown: " + "; ".join(row.notes) + "."
        lines.append(text)
    return lines


def markdown_tables(summaries: list[Summary], average: str = PER_PAIR,
                    published: list[PublishedRow] = (), size: int | None = None) -> str:
    """All tables of a run in its headline ``average``, with footnotes for skipped or failed
    metrics and for values missing pairs and, below the measured rows, the published ones
    (marked, in italics)."""
    tables, notes = build_tables(summaries, average=average, published=published, size=size)
    blocks = []
    for table in tables:
        header = ["method"] + [table.header(m) for m in table.metrics]
        lines = [f"### {table.dataset} / {table.protocol}", "", "| " + " | ".join(header) + " |",
                 "|" + "---|" * len(header)]
        for method, cells in table.rows:
            texts = [f"–[^{c.note}]" if c.note else
                     (f"**{c.text}**" if c.best else c.text) + c.remarks
                     + (f"[^{c.gap_note}]" if c.gap_note else "") for c in cells]
            lines.append("| " + " | ".join([method] + texts) + " |")
        for row in table.published:
            texts = [f"*{row.values[m]}*" if m in row.values else "" for m in table.metrics]
            lines.append("| " + " | ".join([f"*{row.label}*"] + texts) + " |")
        lines += ["", caption(table), "",
                  "Backends: " + "; ".join(f"{m}: {b}" for m, b in table.backends.items())]
        if table.published:
            lines += ["", PUBLISHED_CAPTION, ""] + [f"- {n}" for n in published_notes(table)]
        blocks.append("\n".join(lines))
    footnotes = [f"[^{n}]: {text}" for text, n in notes.items()]
    return "\n\n".join(blocks + (["\n".join(footnotes)] if footnotes else [])) + "\n"


def _latex_escape(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"),
                          ("$", r"\$"), ("#", r"\#"), ("_", r"\_"), ("{", r"\{"), ("}", r"\}")):
        text = text.replace(char, escaped)
    return text


def latex_tables(summaries: list[Summary], average: str = PER_PAIR,
                 published: list[PublishedRow] = (), size: int | None = None) -> str:
    """One ``table`` environment per dataset x protocol (booktabs) in the headline
    ``average``; skipped metrics are dashes and values missing pairs carry a mark, each with a
    numbered note under the table; published rows below a rule, in italics."""
    tables, notes = build_tables(summaries, plus_minus=r"$\pm$", average=average,
                                 published=published, size=size)
    by_number = {n: text for text, n in notes.items()}
    blocks = []
    for table in tables:
        arrows = {True: r"$\uparrow$", False: r"$\downarrow$"}
        header = " & ".join(["Method"] + [
            table.header(m, arrows, _latex_escape) for m in table.metrics])
        lines = [r"\begin{table}[t]", r"\centering", r"\small",
                 r"\begin{tabular}{l" + "c" * len(table.metrics) + "}", r"\toprule",
                 header + r" \\", r"\midrule"]
        used = []
        for method, cells in table.rows:
            texts = []
            for c in cells:
                if c.note:
                    texts.append(f"--$^{{{c.note}}}$")
                    used.append(c.note)
                else:
                    value = c.text.replace("inf", r"$\infty$")
                    remarks = _latex_escape(c.remarks).replace(WARNING, r"$\dagger$")
                    if c.gap_note:
                        remarks += f"$^{{{c.gap_note}}}$"
                        used.append(c.gap_note)
                    texts.append((rf"\textbf{{{value}}}" if c.best else value) + remarks)
            lines.append(" & ".join([_latex_escape(method)] + texts) + r" \\")
        if table.published:
            lines.append(r"\midrule")
        for row in table.published:
            texts = [rf"\textit{{{row.values[m]}}}" if m in row.values else ""
                     for m in table.metrics]
            lines.append(" & ".join([rf"\textit{{{_latex_escape(row.label)}}}"] + texts)
                         + r" \\")
        text = caption(table).replace("±", r"$\pm$").replace("%", r"\%")
        text = text.replace(WARNING, r"$\dagger$")
        lines += [r"\bottomrule", r"\end{tabular}",
                  rf"\caption{{{_latex_escape(table.dataset)}, {table.protocol}. {text}}}"]
        for number in dict.fromkeys(used):
            lines.append(rf"\par\footnotesize $^{{{number}}}$ {_latex_escape(by_number[number])}")
        if table.published:
            lines.append(rf"\par\footnotesize {_latex_escape(PUBLISHED_CAPTION)}")
            lines += [rf"\par\footnotesize {_latex_escape(n)}" for n in published_notes(table)]
        lines.append(r"\end{table}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


FLOOR_ROWS = [
    ("avd", "halves", "AVD: two halves of one real clip (same person)"),
    ("avd", "mirror_clip", "AVD: a real clip vs its mirror image"),
    ("avd", "clip_vs_frame", "AVD: a real clip vs its first frame alone (as avd_s compares)"),
    ("avd", "mirror_frame", "AVD: one frame vs its mirror image"),
    ("avd", "cross_person", "AVD: clips of two different people (the signal)"),
    ("avd", "floor_ratio", "AVD floor ratio: halves / different people (goal ≤ 0.25)"),
    ("apd", "mirror_frame", "APD (degrees): a frame vs its mirror image, yaw and roll negated"),
    ("aed_3dmm", "mirror_frame", "AED-3dmm: a frame vs its mirror image"),
]
"""(metric, key, what it compares) of the noise-floor table, in order."""


def floor_table(floor: dict) -> list[tuple[str, str]]:
    """(what is compared, value) rows of a run's ``floor.json`` (eval.noise_floor)."""
    units = floor.get("units", "")
    rows = []
    for metric, key, label in FLOOR_ROWS:
        value = floor.get(metric, {}).get(key, math.nan)
        suffix = f" {units}" if metric == "avd" and key != "floor_ratio" else ""
        rows.append((label, "n/a" if math.isnan(value) else f"{value:.3f}{suffix}"))
    return rows


def floor_caption(floor: dict) -> str:
    return (f"Measured on {floor.get('clips', 0)} real clips of the dataset "
            f"({floor.get('cross_pairs', 0)} pairs of clips of different people), no method "
            "involved: a difference between methods smaller than these is within the metrics' "
            "noise. Backend: "
            f"{floor.get('backend', '')}.")


def floor_markdown(floor: dict) -> str:
    """The noise floor of the 3DMM metrics as a Markdown section."""
    lines = ["### Noise floor of the 3DMM metrics", "", "| real frames compared | value |",
             "|---|---|"]
    lines += [f"| {label} | {value} |" for label, value in floor_table(floor)]
    return "\n".join(lines + ["", floor_caption(floor)]) + "\n"
