"""Published figures beside measured ones: read ``reports/published.toml`` and decide, per table,
which figure is shown in which of our columns and what is said about the others.

A published row is one method in one table of one paper (:class:`PublishedRow`). In a table of
ours (one dataset x protocol) it is shown as a separate, marked row; a figure fills one of our
columns only when the paper's test set is ours (no ``differs``), its definition is the one of
that column (``ours``), our measured backend contains ``match``, and the resolution is the run's.
Every other figure becomes a note saying what differs. These rows are for reading only: the
leaderboards and the regression gate never see them.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_FILE = Path(__file__).resolve().parent / "published.toml"
MARK = "published"
"""Word every published row's label carries (tables check it, so a row is never unmarked)."""


@dataclass(frozen=True)
class PublishedFigure:
    metric: str
    """The paper's name for it (``AED``, ``PSNR``)."""
    value: float
    direction: str
    ours: str
    """Our metric with the same definition, or empty."""
    backend: str
    match: str
    """Substring our measured backend must contain for the figure to be comparable; empty:
    never comparable (the paper does not say what produced it)."""
    definition: str


@dataclass(frozen=True)
class PublishedRow:
    method: str
    label: str
    dataset: str
    protocol: str
    size: int
    citation: str
    checked: str
    differs: str
    figures: tuple[PublishedFigure, ...] = ()


@dataclass
class Placed:
    """A published row as one table shows it: values by our metric, notes for the rest."""

    label: str
    values: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    citation: str = ""


ROW_KEYS = {"method", "label", "dataset", "protocol", "size", "citation", "checked", "differs",
            "figure"}
FIGURE_KEYS = {"metric", "value", "direction", "ours", "backend", "match", "definition"}


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = set(table) - allowed
    missing = allowed - set(table) - {"figure"}
    if unknown or missing:
        parts = ([f"unknown keys {sorted(unknown)}"] if unknown else []) + (
            [f"missing keys {sorted(missing)}"] if missing else [])
        raise ValueError(f"{where}: {'; '.join(parts)}")


def _figure(table: dict, where: str) -> PublishedFigure:
    _check_keys(table, FIGURE_KEYS, where)
    if not isinstance(table["value"], int | float) or isinstance(table["value"], bool):
        raise ValueError(f"{where}: value must be a number, not {table['value']!r}")
    if table["direction"] not in ("higher", "lower"):
        raise ValueError(f"{where}: direction must be 'higher' or 'lower'")
    if table["ours"]:
        from thbench.eval.metrics import REGISTRY, metric_class

        if table["ours"] not in REGISTRY:
            raise ValueError(f"{where}: ours = {table['ours']!r} is none of our metrics "
                             f"({', '.join(REGISTRY)}); leave it empty when none matches")
        higher = metric_class(table["ours"]).higher_is_better
        if (table["direction"] == "higher") != higher:
            raise ValueError(f"{where}: direction {table['direction']!r} contradicts "
                             f"{table['ours']}, which is better {'higher' if higher else 'lower'}")
    return PublishedFigure(**{k: table[k] for k in FIGURE_KEYS} | {"value": float(table["value"])})


def read_published(path: str | os.PathLike = DEFAULT_FILE) -> list[PublishedRow]:
    """Every published row of the file; a malformed entry is one line naming the file and entry."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"{path}: {error}") from None
    rows = []
    for index, table in enumerate(data.get("row", [])):
        where = f"{path}: row {index + 1} ({table.get('label', '?')})"
        _check_keys(table, ROW_KEYS, where)
        if MARK not in table["label"]:
            raise ValueError(f"{where}: the label must say {MARK!r}, e.g. 'FOMM ({MARK}, ...)'")
        if not table["citation"].strip() or not table["checked"].strip():
            raise ValueError(f"{where}: every row needs a citation and how it was checked")
        figures = tuple(_figure(f, f"{where}, figure {n + 1}")
                        for n, f in enumerate(table.get("figure", [])))
        rows.append(PublishedRow(**{k: table[k] for k in ROW_KEYS - {"figure"}}, figures=figures))
    return rows


def _format(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"


def why_not_shown(row: PublishedRow, figure: PublishedFigure, metrics: list[str],
                  backends: dict[str, str], size: int | None) -> str:
    """Empty when ``figure`` is comparable with our column ``figure.ours``, else the reason."""
    if row.differs:
        return row.differs
    if not figure.ours:
        return figure.definition
    if figure.ours not in metrics:
        return f"this run does not compute {figure.ours}"
    if size != row.size:
        return f"resolution: paper {row.size} px, this run {f'{size} px' if size else 'unknown'}"
    backend = backends.get(figure.ours, "")
    if not figure.match or figure.match not in backend:
        return f"backend: paper {figure.backend}, ours {backend or 'unknown'}"
    return ""


def place(rows: list[PublishedRow], dataset: str, protocol: str, metrics: list[str],
          backends: dict[str, str], size: int | None = None) -> list[Placed]:
    """The published rows of one table (``dataset`` x ``protocol``), placed in its columns."""
    placed = []
    for row in rows:
        if row.dataset != dataset or row.protocol != protocol:
            continue
        entry = Placed(row.label, citation=row.citation)
        if row.differs:  # one note for the row: none of its figures is on our protocol
            figures = ", ".join(f"{f.metric} {_format(f.value)}" for f in row.figures)
            entry.notes.append(f"{figures} not comparable: {row.differs}")
            placed.append(entry)
            continue
        for figure in row.figures:
            reason = why_not_shown(row, figure, metrics, backends, size)
            if reason:
                entry.notes.append(f"{figure.metric} = {_format(figure.value)} not comparable: "
                                   f"{reason}")
            else:
                entry.values[figure.ours] = _format(figure.value)
        placed.append(entry)
    return placed
