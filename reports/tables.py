"""Tables like a paper's, in Markdown and LaTeX: one per dataset x protocol, methods as rows,
metrics as columns.

A header carries the direction (↑ higher is better, ↓ lower is better). A cell is the run's
headline average (``average`` in the run config: ``per-pair``, the mean of pair means, or
``per-frame``, one mean over all frames as the papers; :mod:`thbench.eval.aggregate`) with the
half-width of its 95% bootstrap interval (``12.34 ± 0.56``); a metric that has no such average
shows its own, named in its header (``avd_s ↓ [per-pair]``, ``fid ↓ [set]``).

What a table says at a glance:

- **Bands.** The compared methods first; the copy baselines (``source-copy``, ``driving-copy``)
  below them in a band of their own: bounds, never ranked, never bold; published figures last.
- **Bold means significantly best** (:func:`thbench.eval.aggregate.rank`): the best method of a
  column and every method a paired bootstrap over the same pairs and frames cannot tell apart
  from it (p ≥ :data:`~thbench.eval.aggregate.ALPHA`; the p-values are in the leaderboard).
  Paper-compatible variants (``aed_fomm``, ``akd_fomm``) and set metrics (FID, KID: one value,
  nothing to resample) are never bold.
- **Counts once.** One line under the table gives the protocol's pairs and frames and, per
  column, its own count where it differs (face metrics: the frames where the reference has a
  face); a cell whose count differs from its column's carries a note marker.
- **Notes once per cause**, numbered per table (``–¹``, ``0.12 ± 0.01²``): a metric skipped for
  every method is one note (with the columns that stand in for it), a method missing pairs for
  one reason is one note listing its cells.
- FID and KID state their generated and real frame counts; under
  :data:`MIN_REAL_FRAMES` real frames they are marked (⚠). Tables with AVD columns print the AVD
  signal, its floor and their ratio from the run's noise-floor measurement.
- Wide tables are split into groups of columns so that no Markdown row exceeds
  :data:`MAX_ROW` characters (the HTML report uses a narrower budget to fit a 1400 px window).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from thbench.eval.aggregate import (
    ALPHA,
    BOOTSTRAP_SAMPLES,
    PER_FRAME,
    PER_PAIR,
    SET,
    Summary,
    headline,
)
from thbench.eval.metrics.fid import MIN_REAL_FRAMES
from thbench.reports.published import Placed, PublishedRow, place

ARROWS = {True: "↑", False: "↓"}
WARNING = "⚠"
MAX_ROW = 250
"""Longest Markdown table row, in characters; wider tables are split into groups of columns."""
STAND_INS = {
    "lpips": ("ssim", "l1", "psnr"),
    "fid": ("kid",),
    "kid": ("fid",),
}
"""For a metric that could not run, the columns that stand in for it, in order of preference."""
STAND_IN_WHY = {
    "lpips": "perceptual similarity to the ground truth",
    "fid": "realism of the frames as a set",
    "kid": "realism of the frames as a set",
}
NEAREST = {"fid": "csim and aed_identity show only whether the identity is kept",
           "kid": "csim and aed_identity show only whether the identity is kept"}
"""What the reader has instead when no column stands in."""
SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def superscript(number: int) -> str:
    return str(number).translate(SUPERSCRIPTS)


@dataclass
class Cell:
    text: str = ""
    """``value ± half-width``; empty for a missing value (a dash when :attr:`note` is set)."""
    best: bool = False
    """Bold: the best of its column or not told apart from it."""
    note: int = 0
    """Number of the table's note about this cell (a skip, a failure, other counts), 0 for none."""

    @property
    def dash(self) -> bool:
        return not self.text and bool(self.note)


@dataclass
class Count:
    """The pairs and frames a column's values share (its ranking group's, else the most common)."""

    pairs: int
    frames: int


@dataclass
class Table:
    dataset: str
    protocol: str
    metrics: list[str]
    higher_is_better: dict[str, bool]
    rows: list[tuple[str, list[Cell]]] = field(default_factory=list)
    """The compared methods, in the run's order."""
    bounds: list[tuple[str, list[Cell]]] = field(default_factory=list)
    """The copy baselines: their own band, never bold."""
    pairs: int = 0
    frames: int = 0
    skipped: int = 0
    """Pairs of the pair list left out for every method (their source has no face)."""
    backends: dict[str, str] = field(default_factory=dict)
    average: str = PER_PAIR
    """The headline average of the cells."""
    own_average: dict[str, str] = field(default_factory=dict)
    """Metric -> its average, for the metrics shown in another one than :attr:`average`."""
    counts: dict[str, Count] = field(default_factory=dict)
    """Metric -> the count its column's values share."""
    notes: list[str] = field(default_factory=list)
    """The table's notes, note ``n`` at index ``n - 1``."""
    lines: list[str] = field(default_factory=list)
    """Plain-text lines under the table: counts, set-metric samples, AVD floor."""
    small_real: set[str] = field(default_factory=set)
    """Set metrics whose real set is under :data:`MIN_REAL_FRAMES` frames (⚠ in the header)."""
    unranked: list[str] = field(default_factory=list)
    """Metrics shown but never bold (paper-compatible variants, set metrics)."""
    published: list[Placed] = field(default_factory=list)
    """Figures the papers report (:mod:`thbench.reports.published`), shown apart from the measured
    rows and never ranked with them."""

    def header(self, metric: str, arrows: dict[bool, str] = ARROWS,
               escape: Callable[[str], str] = str) -> str:
        """``psnr ↑``, or ``avd_s ↓ [per-pair]`` for a metric in its own average (names passed
        through ``escape``)."""
        text = f"{escape(metric)} {arrows[self.higher_is_better[metric]]}"
        own = self.own_average.get(metric)
        text += f" {escape(f'[{own}]')}" if own else ""
        return text + (f" {escape(WARNING)}" if metric in self.small_real else "")

    def groups(self, width: int, cell_width: Callable[[Cell], int]) -> list[list[str]]:
        """The metrics in groups of columns (in order) whose Markdown rows fit ``width``
        characters; ``cell_width``: a cell's length as written."""
        labels = [m for m, _ in self.rows + self.bounds] + [r.label for r in self.published]
        first = max([len(label) + 2 for label in labels] + [len("method") + 2,
                                                            len(BOUND_BAND) + 4])
        columns = {m: max([len(self.header(m))] + [
            cell_width(cells[i]) for _, cells in self.rows + self.bounds]
            + [len(r.values.get(m, "")) + 2 for r in self.published]) + 3
            for i, m in enumerate(self.metrics)}
        groups: list[list[str]] = [[]]
        used = first + 2
        for metric in self.metrics:
            if groups[-1] and used + columns[metric] > width:
                groups.append([])
                used = first + 2
            groups[-1].append(metric)
            used += columns[metric]
        return groups


BOUND_BAND = "bounds: copy baselines, never ranked"
PUBLISHED_BAND = "published: not measured here, never ranked"


def format_value(summary: Summary, plus_minus: str = "±") -> str:
    value = summary.value
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    digits = 4 if abs(value) < 1 else 2
    text = f"{value:.{digits}f}"
    half = ((summary.ci_high - summary.ci_low) / 2 if not math.isnan(summary.ci_low)
            else summary.spread)
    if not math.isnan(half):
        text += f" {plus_minus} {half:.{digits}f}"
    return text


def _column_count(column: list[Summary]) -> Count:
    """The count the ranked cells share; without a ranking, the most common among all values
    (ties: the larger count)."""
    ranked = [s for s in column if s.ranked]
    pool = ranked or [s for s in column if s.status == "ok"]
    if not pool:
        return Count(0, 0)
    counts = Counter((s.n_pairs, s.n_frames) for s in pool)
    pairs, frames = max(counts, key=lambda count: (counts[count], count))
    return Count(pairs, frames)


NEVER_RANKED = ("paper-compatible", "one value over the set")
"""How :attr:`Summary.rank_note` begins for a metric that is never ranked by its nature."""


def _difference_cause(summary: Summary, count: Count) -> str:
    """Why a value covers other pairs or frames than its column's."""
    if summary.average == SET and summary.n_pairs < count.pairs:
        return "generated frames of fewer pairs (the others failed or have no output)"
    if summary.n_pairs < count.pairs:
        return summary.reason or "pairs without result rows"
    if summary.n_pairs > count.pairs:
        return "more pairs than the column's methods (those miss some)"
    return "other frames than the column's (the metric's own frame rule)"


class _Notes:
    """A table's notes, one per distinct cause; a cause lists the cells it marks, grouped by
    method and count (``tpsmm psnr, ssim: 1 pairs, 16 frames``)."""

    def __init__(self) -> None:
        self.causes: dict[str, dict[tuple[str, str], list[str]]] = {}

    def number(self, cause: str, method: str = "", metric: str = "", detail: str = "") -> int:
        cells = self.causes.setdefault(cause, {})
        if method:
            cells.setdefault((method, detail), []).append(metric)
        return list(self.causes).index(cause) + 1

    def texts(self) -> list[str]:
        texts = []
        for cause, cells in self.causes.items():
            listed = "; ".join(f"{method} {', '.join(metrics)}" + (f": {detail}" if detail else "")
                               for (method, detail), metrics in cells.items())
            texts.append(cause + (f" ({listed})" if listed else ""))
        return texts


def _skip_cause(metric: str, summary: Summary, metrics: list[str], everyone: bool) -> str:
    """A metric no method could compute: its name, the reason and what stands in for it; one
    method's failure: the reason alone (the same reason of several metrics is one note)."""
    if not everyone:
        return f"not computed: {summary.reason or summary.status}"
    text = f"{metric} not computed: {summary.reason or summary.status}"
    if metric in STAND_INS:
        present = [m for m in STAND_INS[metric] if m in metrics and m != metric]
        text += (f". Standing in for {STAND_IN_WHY[metric]}: {', '.join(present)}" if present
                 else f". No other column here measures {STAND_IN_WHY[metric]}; "
                      f"{NEAREST[metric]}")
    return text


def _counts_line(table: Table, columns: dict[str, list[Summary]]) -> str:
    """``Counts: 13 pairs, 208 frames in every column except csim: 10 pairs, 160 frames (why)``:
    the protocol's full set once, then each column count that differs, with the reason its
    values give for the pairs they miss."""
    text = f"Counts: {table.pairs} pairs, {table.frames} frames in every column"
    differing: dict[tuple[int, int, str], list[str]] = {}
    for metric, count in table.counts.items():
        if table.own_average.get(metric) == SET or not count.pairs:
            continue
        if (count.pairs, count.frames) != (table.pairs, table.frames):
            reason = next((s.reason for s in columns[metric] if s.reason and
                           (s.n_pairs, s.n_frames) == (count.pairs, count.frames)), "")
            if count.pairs == table.pairs or not reason:
                reason = ("the frames where the reference has a face"
                          if metric in FACE_REFERENCE_FRAMES else "")
            differing.setdefault((count.pairs, count.frames, reason), []).append(metric)
    if differing:
        text += " except " + "; ".join(
            f"{', '.join(metrics)}: {pairs} pairs, {frames} frames"
            + (f" ({reason})" if reason else "")
            for (pairs, frames, reason), metrics in differing.items())
    text += "."
    if table.skipped:
        text += (f" {table.skipped} more pair(s) of the pair list are not scored (the source has "
                 "no face).")
    return text


FACE_REFERENCE_FRAMES = {"csim", "aed_identity", "akd", "mkr", "aed_3dmm", "apd", "avd_s",
                         "avd_d", "avd_share"}
"""Metrics averaged over the frames where the reference has a face (docs/metrics.md)."""


def _set_line(metric: str, column: list[Summary]) -> str:
    """``fid: 208 generated frames per method against 5 real frames ⚠ ...``."""
    values = [s for s in column if s.status == "ok"]
    if not values:
        return ""
    generated = Counter(s.n_frames for s in values).most_common(1)[0][0]
    real = max(s.frames_real for s in values)
    text = f"{metric}: {generated} generated frames per method against "
    text += f"{real} real frames" if real else "a real set of unrecorded size"
    if real < MIN_REAL_FRAMES:
        text += (f" {WARNING} fewer than {MIN_REAL_FRAMES:,} real frames: biased at this size, "
                 "compare with care")
    if any(math.isfinite(s.spread) for s in values):
        text += "; ± its standard deviation over subsets"
    return text + "."


def avd_line(floor: dict | None) -> str:
    """``AVD (mm): signal ..., floor ..., ratio ...`` from a run's ``floor.json``, or empty."""
    if not floor:
        return ""
    units = floor.get("units", "mm")
    own = floor.get("avd_s", {})
    if {"signal", "floor"} <= set(own):
        signal, noise = own["signal"], own["floor"]
        ratio = own.get("ratio", signal / noise if noise else math.nan)
        compared = ("a clip vs a frame of another person", "a clip vs one of its own frames "
                    "left out, as avd_s compares")
    else:  # a floor file from before the avd_s floor: its nearest comparisons
        avd = floor.get("avd", {})
        signal, noise = avd.get("cross_person", math.nan), avd.get("clip_vs_frame", math.nan)
        ratio = signal / noise if noise else math.nan
        compared = ("clips of two different people", "a clip vs its first frame, which the "
                    "clip includes: a lower bound of avd_s's floor")
    if math.isnan(signal) or math.isnan(noise):
        return ""
    return (f"AVD noise floor (real clips, no method): signal {signal:.3f} {units} "
            f"({compared[0]}), floor {noise:.3f} {units} ({compared[1]}), signal/floor "
            f"{ratio:.2f} (goal ≥ 4); differences smaller than the floor are noise.")


def build_tables(summaries: list[Summary], plus_minus: str = "±",
                 average: str = PER_PAIR, published: Sequence[PublishedRow] = (),
                 size: int | None = None, floor: dict | None = None) -> list[Table]:
    """The tables of a run in its headline ``average``, each with its own notes; ``published``
    rows are placed in the tables of their dataset and protocol (``size``: the run's
    resolution); ``floor``: the run's noise-floor measurement (AVD line)."""
    by_table: dict[tuple[str, str], list[Summary]] = {}
    for summary in headline(summaries, average):
        by_table.setdefault((summary.dataset, summary.protocol), []).append(summary)
    tables = []
    for (dataset, protocol), group in sorted(by_table.items()):
        metrics = list(dict.fromkeys(s.metric for s in group))
        cell = {(s.method, s.metric): s for s in group}
        columns = {m: [s for s in group if s.metric == m] for m in metrics}
        table = Table(dataset, protocol, metrics, {s.metric: s.higher_is_better for s in group},
                      average=average,
                      own_average={s.metric: s.average for s in group if s.average != average})
        table.pairs = max((s.n_pairs_total for s in group if s.average != SET), default=0)
        table.frames = max((s.n_frames_total for s in group if s.average != SET), default=0)
        table.skipped = max((s.n_unscored for s in group), default=0)
        table.counts = {m: _column_count(columns[m]) for m in metrics}
        notes = _Notes()
        for method in dict.fromkeys(s.method for s in group):
            cells = []
            for metric in metrics:
                summary = cell.get((method, metric))
                if summary is None:
                    cells.append(Cell())
                elif summary.status != "ok":
                    everyone = all(s.status != "ok" for s in columns[metric])
                    cause = _skip_cause(metric, summary, metrics, everyone)
                    cells.append(Cell(note=notes.number(cause, "" if everyone else method,
                                                        metric)))
                else:
                    count = table.counts[metric]
                    note = 0
                    if (summary.n_pairs, summary.n_frames) != (count.pairs, count.frames):
                        note = notes.number(
                            _difference_cause(summary, count), method, metric,
                            f"{summary.n_pairs} pairs, {summary.n_frames} frames")
                    cells.append(Cell(format_value(summary, plus_minus),
                                      best=summary.tied_best, note=note))
            bound = any(s.bound for s in group if s.method == method)
            (table.bounds if bound else table.rows).append((method, cells))
        table.notes = notes.texts()
        table.unranked = [m for m in metrics if any(
            s.status == "ok" and not s.bound and s.rank_note.startswith(NEVER_RANKED)
            for s in columns[m])]
        table.small_real = {m for m in metrics if table.own_average.get(m) == SET and any(
            s.status == "ok" and s.frames_real < MIN_REAL_FRAMES for s in columns[m])}
        table.lines = [_counts_line(table, columns)]
        table.lines += [line for m in metrics if table.own_average.get(m) == SET
                        for line in [_set_line(m, columns[m])] if line]
        if any(m.startswith("avd") for m in metrics) and avd_line(floor):
            table.lines.append(avd_line(floor))
        table.backends = {m: next(s.backend for s in group if s.metric == m) for m in metrics}
        table.published = place(list(published), dataset, protocol, metrics, table.backends, size)
        tables.append(table)
    return tables


def backends_line(table: Table) -> str:
    """``Backends: psnr, ssim, l1: exact; ...``: each backend once, with its columns."""
    columns: dict[str, list[str]] = {}
    for metric, backend in table.backends.items():
        columns.setdefault(backend, []).append(metric)
    return "Backends: " + "; ".join(f"{', '.join(metrics)}: {backend}"
                                    for backend, metrics in columns.items())


AVERAGE_TEXT = {
    PER_PAIR: "Cells: mean over pairs, each pair weighing the same (per-pair average)",
    PER_FRAME: "Cells: mean over all frames, each frame weighing the same (per-frame average, "
               "as the papers)",
}


def caption(table: Table) -> str:
    """What a cell is and what bold means, in two sentences (plus the unranked columns)."""
    text = (AVERAGE_TEXT[table.average] + ", ± half-width of the 95% bootstrap interval over "
            f"pairs. Bold: the best method and every method that a paired bootstrap over the "
            f"same pairs and frames ({BOOTSTRAP_SAMPLES:,} resamples, seeded, two-sided) cannot "
            f"tell apart from it at level {ALPHA}; p-values in leaderboard.csv.")
    pairwise = [m for m, a in table.own_average.items() if a == PER_PAIR]
    if pairwise:
        text += f" {', '.join(pairwise)}: one value per pair by nature (per-pair average)."
    if table.unranked:
        text += f" Never bold: {', '.join(table.unranked)} (paper-compatible or one value " \
                "over the set)."
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


def _markdown_cell(cell: Cell) -> str:
    if cell.dash:
        return f"–{superscript(cell.note)}"
    text = f"**{cell.text}**" if cell.best and cell.text else cell.text
    return text + (superscript(cell.note) if cell.note else "")


def markdown_tables(summaries: list[Summary], average: str = PER_PAIR,
                    published: Sequence[PublishedRow] = (), size: int | None = None,
                    floor: dict | None = None) -> str:
    """All tables of a run in its headline ``average``: per table, its rows in bands (methods,
    bounds, published), split into groups of columns that fit :data:`MAX_ROW` characters, then
    its counts line, notes and caption."""
    blocks = []
    for table in build_tables(summaries, average=average, published=published, size=size,
                              floor=floor):
        lines = [f"### {table.dataset} / {table.protocol}"]
        index = {m: i for i, m in enumerate(table.metrics)}
        for metrics in table.groups(MAX_ROW, lambda c: len(_markdown_cell(c))):
            header = ["method"] + [table.header(m) for m in metrics]
            lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            for method, cells in table.rows:
                lines.append("| " + " | ".join(
                    [method] + [_markdown_cell(cells[index[m]]) for m in metrics]) + " |")
            if table.bounds:
                lines.append(f"| *{BOUND_BAND}* |" + " |" * len(metrics))
            for method, cells in table.bounds:
                lines.append("| " + " | ".join(
                    [method] + [_markdown_cell(cells[index[m]]) for m in metrics]) + " |")
            if table.published:
                lines.append(f"| *{PUBLISHED_BAND}* |" + " |" * len(metrics))
            for row in table.published:
                texts = [f"*{row.values[m]}*" if m in row.values else "" for m in metrics]
                lines.append("| " + " | ".join([f"*{row.label}*"] + texts) + " |")
        lines += [""] + [line + "  " for line in table.lines[:-1]] + table.lines[-1:]
        if table.notes:
            lines += [""] + [f"{superscript(n)} {text}  " for n, text in
                             enumerate(table.notes, 1)]
            lines[-1] = lines[-1].rstrip()
        lines += ["", caption(table), "", backends_line(table)]
        if table.published:
            lines += ["", PUBLISHED_CAPTION, ""] + [f"- {n}" for n in published_notes(table)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _latex_escape(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"),
                          ("$", r"\$"), ("#", r"\#"), ("_", r"\_"), ("{", r"\{"), ("}", r"\}")):
        text = text.replace(char, escaped)
    return text.replace("±", r"$\pm$").replace(WARNING, r"$\dagger$").replace("≥", r"$\geq$")


def latex_tables(summaries: list[Summary], average: str = PER_PAIR,
                 published: Sequence[PublishedRow] = (), size: int | None = None,
                 floor: dict | None = None) -> str:
    """One ``table`` environment per dataset x protocol (booktabs) in the headline
    ``average``: methods, then the bounds and the published rows each below a rule with their
    band's name; skipped metrics are dashes and cells with other counts carry a mark, each with
    its numbered note under the table."""
    blocks = []
    for table in build_tables(summaries, plus_minus=r"$\pm$", average=average,
                              published=published, size=size, floor=floor):
        arrows = {True: r"$\uparrow$", False: r"$\downarrow$"}
        width = len(table.metrics) + 1
        header = " & ".join(["Method"] + [
            table.header(m, arrows, _latex_escape) for m in table.metrics])
        lines = [r"\begin{table}[t]", r"\centering", r"\small",
                 r"\begin{tabular}{l" + "c" * len(table.metrics) + "}", r"\toprule",
                 header + r" \\", r"\midrule"]

        def row(method: str, cells: list[Cell]) -> str:
            texts = []
            for c in cells:
                mark = f"$^{{{c.note}}}$" if c.note else ""
                if c.dash:
                    texts.append(f"--{mark}")
                    continue
                value = c.text.replace("inf", r"$\infty$")
                texts.append((rf"\textbf{{{value}}}" if c.best and value else value) + mark)
            return " & ".join([_latex_escape(method)] + texts) + r" \\"

        lines += [row(method, cells) for method, cells in table.rows]
        if table.bounds:
            lines += [r"\midrule"] * bool(table.rows) + [
                rf"\multicolumn{{{width}}}{{l}}{{\textit{{{BOUND_BAND}}}}} \\"]
            lines += [row(method, cells) for method, cells in table.bounds]
        if table.published:
            lines += [r"\midrule",
                      rf"\multicolumn{{{width}}}{{l}}{{\textit{{{PUBLISHED_BAND}}}}} \\"]
        for published_row in table.published:
            texts = [rf"\textit{{{published_row.values[m]}}}" if m in published_row.values
                     else "" for m in table.metrics]
            lines.append(" & ".join(
                [rf"\textit{{{_latex_escape(published_row.label)}}}"] + texts) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}",
                  rf"\caption{{{_latex_escape(table.dataset)}, {table.protocol}. "
                  rf"{_latex_escape(caption(table))}}}"]
        lines += [rf"\par\footnotesize {_latex_escape(line)}" for line in table.lines]
        lines += [rf"\par\footnotesize $^{{{n}}}$ {_latex_escape(text)}"
                  for n, text in enumerate(table.notes, 1)]
        if table.published:
            lines.append(rf"\par\footnotesize {_latex_escape(PUBLISHED_CAPTION)}")
            lines += [rf"\par\footnotesize {_latex_escape(n)}" for n in published_notes(table)]
        lines.append(r"\end{table}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


FLOOR_ROWS = [
    ("avd", "halves", "AVD: two halves of one real clip (same person)"),
    ("avd", "mirror_clip", "AVD: a real clip vs its mirror image"),
    ("avd", "clip_vs_frame", "AVD: a real clip vs its first frame alone (the frame is part of "
                             "the clip: below avd_s's floor)"),
    ("avd", "mirror_frame", "AVD: one frame vs its mirror image"),
    ("avd", "cross_person", "AVD: clips of two different people (the signal)"),
    ("avd", "floor_ratio", "AVD floor ratio: halves / different people (goal ≤ 0.25)"),
    ("avd_s", "floor", "AVD-s floor: a clip vs one of its own frames left out (what avd_s "
                       "compares)"),
    ("avd_s", "signal", "AVD-s signal: a clip vs one frame of a different person"),
    ("avd_s", "ratio", "AVD-s signal / floor (goal ≥ 4)"),
    ("apd", "mirror_frame", "APD (degrees): a frame vs its mirror image, yaw and roll negated"),
    ("aed_3dmm", "mirror_frame", "AED-3dmm: a frame vs its mirror image"),
]
"""(metric, key, what it compares) of the noise-floor table, in order."""


def floor_table(floor: dict) -> list[tuple[str, str]]:
    """(what is compared, value) rows of a run's ``floor.json`` (eval.noise_floor); rows the
    file does not hold are left out (the AVD-s rows come with the metrics' own floor)."""
    units = floor.get("units", "")
    rows = []
    for metric, key, label in FLOOR_ROWS:
        value = floor.get(metric, {}).get(key, math.nan)
        if metric == "avd_s" and math.isnan(value):
            continue
        suffix = f" {units}" if metric.startswith("avd") and "ratio" not in key else ""
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
