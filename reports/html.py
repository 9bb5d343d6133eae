"""A single-file HTML report: the tables, sample grids, animated previews and bar charts.

Images are embedded as data URIs, so ``report.html`` can be mailed or attached as it is. Grids
and previews show, for the first pairs of each protocol, the source, the driving frame and each
method's output (methods whose frames are in the run folder; outputs scored from elsewhere are
left out of the pictures, not of the tables).
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from thbench.core import atomic
from thbench.datasets.prepared_dataset import PreparedDataset
from thbench.datasets.protocols import Pair
from thbench.eval.aggregate import PER_PAIR, Summary, headline
from thbench.reports.published import PublishedRow
from thbench.reports.tables import (
    ARROWS,
    BOUND_BAND,
    PUBLISHED_BAND,
    PUBLISHED_CAPTION,
    Cell,
    Table,
    build_tables,
    caption,
    floor_caption,
    floor_table,
    published_notes,
)

TILE = 128
GRID_STEPS = 4
PAIRS_SHOWN = 2


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def _png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return _data_uri(buffer.getvalue(), "image/png")


def _tile(frame: np.ndarray) -> Image.Image:
    return Image.fromarray(frame).resize((TILE, TILE), Image.Resampling.BILINEAR)


def _labelled_row(labels: list[str]) -> Image.Image:
    strip = Image.new("RGB", (TILE * len(labels), 18), "white")
    draw = ImageDraw.Draw(strip)
    for index, label in enumerate(labels):
        draw.text((index * TILE + 4, 3), label[:20], fill="black")
    return strip


class PairFrames:
    """Source, driving and each method's frames of one pair, read from disk."""

    def __init__(self, dataset: PreparedDataset, pair: Pair, outputs: dict[str, Path]) -> None:
        self.dataset, self.pair, self.outputs = dataset, pair, outputs

    @property
    def labels(self) -> list[str]:
        return ["source", "driving", *self.outputs]

    def row(self, step: int) -> list[np.ndarray]:
        from thbench.core.media import read_image

        pair = self.pair
        source = self.dataset.clip(pair.source_clip).frame(pair.source_frame)
        driving = self.dataset.clip(pair.driving_clip).frame(pair.driving_frames[step])
        return [source, driving, *(read_image(folder / f"{step:06d}.png")
                                   for folder in self.outputs.values())]

    def grid(self) -> Image.Image:
        count = len(self.pair.driving_frames)
        steps = sorted({round(i * (count - 1) / max(GRID_STEPS - 1, 1)) for i in range(GRID_STEPS)})
        rows = [np.concatenate([np.asarray(_tile(f)) for f in self.row(s)], 1) for s in steps]
        body = Image.fromarray(np.concatenate(rows, 0))
        header = _labelled_row(self.labels)
        grid = Image.new("RGB", (body.width, body.height + header.height), "white")
        grid.paste(header, (0, 0))
        grid.paste(body, (0, header.height))
        return grid

    def gif(self, fps: float) -> str:
        frames = [Image.fromarray(np.concatenate([np.asarray(_tile(f)) for f in self.row(s)], 1))
                  for s in range(len(self.pair.driving_frames))]
        buffer = io.BytesIO()
        frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                       duration=int(1000 / fps))
        return _data_uri(buffer.getvalue(), "image/gif")


def bar_chart(summaries: list[Summary], metric: str, protocol: str) -> str:
    """Bar per method with its 95% interval as an error bar; a PNG data URI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in summaries if s.metric == metric and s.protocol == protocol
             and s.status == "ok" and math.isfinite(s.value)]
    values = [s.value for s in shown]
    errors = np.array([[s.value - s.ci_low if math.isfinite(s.ci_low) else 0 for s in shown],
                       [s.ci_high - s.value if math.isfinite(s.ci_high) else 0 for s in shown]])
    figure, axis = plt.subplots(figsize=(3.2, 2.2), dpi=100)
    axis.bar(range(len(shown)), values, yerr=errors, capsize=4, color="#4c72b0")
    axis.set_xticks(range(len(shown)), [s.method for s in shown], rotation=20, fontsize=7)
    higher = shown[0].higher_is_better if shown else True
    axis.set_title(f"{metric} {ARROWS[higher]} ({protocol})", fontsize=8)
    axis.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return _data_uri(buffer.getvalue(), "image/png")


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1320px; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
td.best { font-weight: bold; }
tr.band td { text-align: left; font-style: italic; color: #555; background: #f4f4f4; }
tr.bound td { color: #555; }
tr.published td { font-style: italic; background: #eef3fb; color: #345; }
.note { color: #555; font-size: 12px; max-width: 1300px; }
ol.note { padding-left: 1.5em; }
.charts img, .pictures img { margin: 4px; border: 1px solid #ddd; max-width: 1300px; }
"""
HTML_ROW = 200
"""Budget of one HTML table row in characters of its Markdown form: at 13 px a row of this many
characters fits a 1400 px window, wider tables are split into groups of columns."""


def _cell_html(cell: Cell, notes: list[str]) -> str:
    if not cell.text and not cell.note:
        return "<td></td>"
    mark = (f'<sup title="{html.escape(notes[cell.note - 1])}">{cell.note}</sup>'
            if cell.note else "")
    text = "–" if cell.dash else html.escape(cell.text)
    return f'<td class="{"best" if cell.best and cell.text else ""}">{text}{mark}</td>'


def _table_html(table: Table) -> str:
    index = {m: i for i, m in enumerate(table.metrics)}
    parts = [f"<h3>{html.escape(table.dataset)} / {html.escape(table.protocol)}</h3>"]
    width = lambda cell: len(cell.text) + (3 if cell.note else 0)  # noqa: E731
    for metrics in table.groups(HTML_ROW, width):
        head = "".join(f"<th>{table.header(m, escape=html.escape)}</th>" for m in metrics)
        rows = [f"<tr><th>method</th>{head}</tr>"]

        def row(method: str, cells: list[Cell], kind: str = "", shown=metrics) -> str:
            tds = "".join(_cell_html(cells[index[m]], table.notes) for m in shown)
            return f'<tr class="{kind}"><td>{html.escape(method)}</td>{tds}</tr>'

        band = '<tr class="band"><td colspan="{}">{}</td></tr>'
        rows += [row(method, cells) for method, cells in table.rows]
        if table.bounds:
            rows.append(band.format(len(metrics) + 1, html.escape(BOUND_BAND)))
            rows += [row(method, cells, "bound") for method, cells in table.bounds]
        if table.published:
            rows.append(band.format(len(metrics) + 1, html.escape(PUBLISHED_BAND)))
        for published in table.published:
            tds = "".join(f"<td>{html.escape(published.values.get(m, ''))}</td>"
                          for m in metrics)
            rows.append(f'<tr class="published"><td>{html.escape(published.label)}</td>{tds}</tr>')
        parts.append(f"<table>{''.join(rows)}</table>")
    parts += [f'<p class="note">{html.escape(line)}</p>' for line in table.lines]
    if table.notes:
        parts.append('<ol class="note">' + "".join(
            f"<li>{html.escape(text)}</li>" for text in table.notes) + "</ol>")
    parts.append(f'<p class="note">{html.escape(caption(table))}</p>')
    if table.published:
        parts.append(f'<p class="note">{html.escape(PUBLISHED_CAPTION)}</p><ul class="note">'
                     + "".join(f"<li>{html.escape(n)}</li>" for n in published_notes(table))
                     + "</ul>")
    return "".join(parts)


def _floor_html(floor: dict) -> str:
    rows = "".join(f"<tr><td>{html.escape(label)}</td><td>{html.escape(value)}</td></tr>"
                   for label, value in floor_table(floor))
    return ("<h3>Noise floor of the 3DMM metrics</h3><table><tr><th>real frames compared</th>"
            f"<th>value</th></tr>{rows}</table>"
            f'<p class="note">{html.escape(floor_caption(floor))}</p>')


def write_html(path: Path, title: str, summaries: list[Summary], dataset: PreparedDataset | None,
               output_root: Path, provenance: dict[str, str], floor: dict | None = None,
               average: str = PER_PAIR, published: list[PublishedRow] = (),
               size: int | None = None) -> Path:
    """The report page; tables and charts show the run's headline ``average``."""
    summaries = headline(summaries, average)
    tables = build_tables(summaries, average=average, published=published, size=size,
                          floor=floor)
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="note">commit {html.escape(provenance["commit"])} · config '
             f'{html.escape(provenance["config_hash"])} · {html.escape(provenance["date"])}</p>',
             "<h2>Tables</h2>"]
    parts += [_table_html(t) for t in tables]
    if floor:
        parts.append(_floor_html(floor))
    parts.append("<h2>Metrics</h2><div class='charts'>")
    for table in tables:
        for metric in table.metrics:
            if any(s.metric == metric and s.protocol == table.protocol and s.status == "ok"
                   for s in summaries):
                chart = bar_chart(summaries, metric, table.protocol)
                parts.append(f'<img alt="{metric}" src="{chart}">')
    parts.append("</div>")
    if dataset is not None:
        parts.append("<h2>Samples</h2><div class='pictures'>")
        methods = list(dict.fromkeys(s.method for s in summaries))
        for table in tables:
            pairs = [p for p in dataset.pairs(table.protocol) if not p.skip][:PAIRS_SHOWN]
            for pair in pairs:
                outputs = {m: output_root / m / dataset.name / table.protocol / pair.pair_id
                           for m in methods}
                outputs = {m: f for m, f in outputs.items() if (f / ".complete").is_file()}
                if not outputs:
                    continue
                frames = PairFrames(dataset, pair, outputs)
                fps = dataset.clip(pair.driving_clip).info.fps or 6.0
                parts.append(f"<h3>{html.escape(table.protocol)}: {html.escape(pair.pair_id)}</h3>"
                             f'<img alt="grid" src="{_png(frames.grid())}">'
                             f'<img alt="preview" src="{frames.gif(fps)}">')
        parts.append("</div>")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")
    atomic.write_text(path, page)
    return path
