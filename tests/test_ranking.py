"""Bold means significantly best: copy baselines are bounds in their own band, the column's best
and every method a paired bootstrap over the same pairs cannot tell apart from it are bold, cells
on other pairs or frames and paper-compatible variants never are, counts and notes appear once,
and no Markdown row is wider than the limit."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from thbench.eval.aggregate import ALPHA, paired_p_value, summarize
from thbench.eval.results import ResultRow
from thbench.reports.leaderboard import leaderboard_rows, write_leaderboard
from thbench.reports.tables import MAX_ROW, build_tables, latex_tables, markdown_tables

PAIRS = [f"pair-{i}" for i in range(12)]
FRAMES = 4
PROVENANCE = {"run": "r", "commit": "c", "config_hash": "h", "date": "d"}


def _rows(method: str, metric: str, values, pairs=PAIRS, frames=FRAMES) -> list[ResultRow]:
    return [ResultRow(method, "d", "same-identity", pair, metric, "exact", float(value), frames,
                      frames_total=FRAMES, pairs=1)
            for pair, value in zip(pairs, values, strict=True)]


def _skipped(method: str, metric: str) -> list[ResultRow]:
    return [ResultRow(method, "d", "same-identity", pair, metric, "lpips-alex", math.nan, 0,
                      status="skipped", reason="asset 'lpips_alexnet' missing; fix: download it",
                      frames_total=FRAMES) for pair in PAIRS]


def _run() -> list[ResultRow]:
    """psnr: ``best`` leads; ``close`` trails by 0.05 on average, ±1 per pair (not told apart);
    ``worse`` is 3 dB below on every pair; ``short`` lacks a pair; ``source-copy`` (a bound)
    has the highest value of all. l1 mirrors it (lower is better)."""
    rng = np.random.default_rng(7)
    best = 30 + rng.normal(0, 2, len(PAIRS))
    close = best + np.resize([1.0, -1.0], len(PAIRS)) - 0.05  # 0.05 below, ± 1 per pair
    rows = []
    for metric, sign, offset in (("psnr", 1, 0.0), ("l1", -1, 40.0)):
        rows += _rows("best", metric, offset + sign * best)
        rows += _rows("close", metric, offset + sign * close)
        rows += _rows("worse", metric, offset + sign * (best - 3))
        rows += _rows("short", metric, offset + sign * (best + 1)[1:], pairs=PAIRS[1:])
        rows += _rows("source-copy", metric, offset + sign * (best + 20))
    for method in ("best", "close", "worse", "short", "source-copy"):
        rows += _skipped(method, "lpips")
    return rows


def test_paired_p_value_closed_forms() -> None:
    def p(differences, samples=20000):
        differences = np.asarray(differences, np.float64)
        drawn = np.random.default_rng(0).integers(0, len(differences),
                                                  size=(samples, len(differences)))
        ones = np.ones(len(differences))
        return paired_p_value(drawn, differences, ones, np.zeros(len(differences)), ones)

    assert p([0.0, 0.0, 0.0]) == 1.0  # identical to the best: nothing to tell apart
    assert p([0.3, 0.3, 0.3]) == 0.0  # the same shift on every pair: told apart
    assert p([-1.0, 1.0]) == 1.0  # resampled means -1, 0, 1 (1/4, 1/2, 1/4): both sides 3/4
    assert p([1.0, 3.0]) == 0.0  # every resample keeps the sign
    # means -1, 1, 3 with probabilities 1/4, 1/2, 1/4: P(<= 0) = 1/4, so p = 1/2
    assert p([-1.0, 3.0]) == pytest.approx(0.5, abs=0.02)
    assert p([2.0]) == 1.0  # one pair: no test
    assert math.isnan(p([1.0, math.inf]))


def test_bold_is_the_best_and_what_cannot_be_told_apart_from_it() -> None:
    summaries = {(s.method, s.metric): s for s in summarize(_run(), seed=0)
                 if s.average == "per-pair"}
    for metric in ("psnr", "l1"):
        best, close, worse = (summaries[(m, metric)] for m in ("best", "close", "worse"))
        assert best.p_value == 1.0 and best.tied_best
        assert close.p_value >= ALPHA and close.tied_best, close.p_value
        assert worse.p_value == 0.0 and not worse.tied_best
        bound = summaries[("source-copy", metric)]
        assert bound.bound and not bound.ranked and "bound" in bound.rank_note
        short = summaries[("short", metric)]
        assert not short.ranked and short.rank_note.startswith("other pairs or frames")
    assert summaries[("best", "lpips")].rank_note == "no value (skipped)"
    # deterministic: the same p-values on a second pass with the same seed
    np.testing.assert_array_equal([s.p_value for s in summarize(_run(), seed=0)],
                                  [s.p_value for s in summarize(_run(), seed=0)])


def test_leaderboard_carries_each_cells_p_value(tmp_path) -> None:
    path = write_leaderboard(tmp_path / "leaderboard.csv",
                             leaderboard_rows(summarize(_run(), seed=0), PROVENANCE))
    with path.open() as handle:
        rows = {(r["method"], r["metric"]): r for r in csv.DictReader(handle)
                if r["average"] == "per-pair"}
    assert rows[("best", "psnr")]["p_value"] == "1.0"
    assert rows[("worse", "psnr")]["p_value"] == "0.0"
    assert rows[("source-copy", "psnr")]["p_value"] == "nan"
    assert rows[("source-copy", "psnr")]["bound"] == "true"
    assert rows[("short", "l1")]["rank_note"].startswith("other pairs or frames")


def test_tables_band_the_bounds_and_bold_only_the_tied_best() -> None:
    text = markdown_tables(summarize(_run(), seed=0))
    lines = text.splitlines()
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in lines
            if line.startswith("| ")}
    assert rows["best"].count("**") == 4 and rows["close"].count("**") == 4
    assert "**" not in rows["worse"] and "**" not in rows["source-copy"]
    assert "**" not in rows["short"]
    band = lines.index("| *bounds: copy baselines, never ranked* | | | |")
    assert lines.index(rows["worse"]) < band < lines.index(rows["source-copy"])
    # counts once, notes once per cause: lpips skipped for all five methods is one note
    assert "Counts: 12 pairs, 48 frames in every column." in text
    notes = [line.rstrip() for line in lines if line and line[0] in "¹²³⁴"]
    assert notes == [
        "¹ lpips not computed: asset 'lpips_alexnet' missing; fix: download it. Standing in for "
        "perceptual similarity to the ground truth: l1, psnr",
        "² pairs without result rows (short psnr, l1: 11 pairs, 44 frames)"]
    assert rows["short"].endswith("²") or "²" in rows["short"]
    assert "at level 0.05" in text and "1,000 resamples" in text
    latex = latex_tables(summarize(_run(), seed=0))
    assert r"\textbf{" in latex and r"\multicolumn{4}{l}{\textit{bounds" in latex


def test_paper_compatible_variants_are_shown_never_bold(monkeypatch) -> None:
    from thbench.eval.metrics import metric_class

    monkeypatch.setattr(metric_class("akd_fomm"), "ranking", False, raising=False)
    rows = [ResultRow(r.method, r.dataset, r.protocol, r.pair_id, "akd_fomm", r.backend,
                      r.value, r.frames, frames_total=r.frames_total, pairs=1)
            for r in _run() if r.metric == "l1"]
    summaries = summarize(rows, seed=0)
    assert not any(s.ranked for s in summaries)
    assert {s.rank_note for s in summaries if s.method == "best"} == {
        "paper-compatible variant (the paper's frame rules): shown, never ranked"}
    text = markdown_tables(summaries)
    assert "**" not in text and "Never bold: akd_fomm" in text


def test_wide_tables_split_into_groups_of_columns_under_the_row_limit() -> None:
    metrics = ["psnr", "ssim", "l1", "csim", "aed_identity", "aed_fomm", "akd", "akd_fomm",
               "mkr", "no_face", "aed_3dmm", "apd", "psnr", "ssim", "l1"]
    rows = []
    for index, metric in enumerate(dict.fromkeys(metrics)):
        for method in ("fomm-tiny", "tpsmm-tiny", "hidenerf-tiny", "source-copy"):
            rows += _rows(method, metric, np.linspace(0.1, 0.9, len(PAIRS)) + index)
    tables = build_tables(summarize(rows, seed=0))
    text = markdown_tables(summarize(rows, seed=0))
    table_rows = [line for line in text.splitlines() if line.startswith("|")]
    assert max(len(line) for line in table_rows) <= MAX_ROW
    headers = [line for line in table_rows if line.startswith("| method")]
    assert len(headers) >= 2  # split into groups
    shown = [cell.split(" ")[0] for line in headers for cell in line.split(" | ")[1:]]
    assert shown == tables[0].metrics  # every column once, in order


def test_fid_shows_its_frame_counts_and_is_marked_under_2048_real_frames() -> None:
    from thbench.eval.aggregate import Summary

    def fid(method: str, value: float, real: int) -> Summary:
        return Summary(method, "d", "cross-identity", "fid", False, "inception", value,
                       math.nan, math.nan, 5, 80, 0, 0, "ok", "", n_pairs_total=5,
                       n_frames_total=80, average="set", frames_real=real,
                       rank_note="one value over the set: no paired test")

    small = markdown_tables([fid("fomm-tiny", 120.0, 5), fid("tpsmm-tiny", 90.0, 5)])
    assert "| method | fid ↓ [set] ⚠ |" in small and "**" not in small
    assert ("fid: 80 generated frames per method against 5 real frames ⚠ fewer than 2,048 real "
            "frames: biased at this size, compare with care.") in small
    assert "Never bold: fid" in small
    large = markdown_tables([fid("fomm-tiny", 12.0, 4096), fid("tpsmm-tiny", 9.0, 4096)])
    assert "| method | fid ↓ [set] |" in large and "against 4096 real frames." in large
