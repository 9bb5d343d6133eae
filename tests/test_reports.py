"""Reports from result rows: leaderboards (merged across runs, wide), LaTeX, HTML, regressions."""

from __future__ import annotations

import base64
import csv
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from thbench.cli.reports import main
from thbench.core.families import build
from thbench.eval.benchmark import write_run_record
from thbench.eval.config import DatasetConfig, MethodConfig, RunConfig
from thbench.eval.metrics import build_metrics
from thbench.eval.results import ResultStore
from thbench.eval.runner import Runner
from thbench.reports.build import build_reports
from thbench.reports.leaderboard import read_leaderboard


@pytest.fixture(scope="module")
def run_dir(mini_dataset, tmp_path_factory) -> Path:
    config = RunConfig(name="mini-run", output_dir=str(tmp_path_factory.mktemp("runs")),
                       dataset=DatasetConfig(name="mini", root=str(mini_dataset.root)),
                       protocols=["same-identity"], metrics=["psnr", "ssim", "l1", "lpips"],
                       methods=[MethodConfig("source-copy"), MethodConfig("driving-copy")])
    run_dir = config.run_dir
    run_dir.mkdir(parents=True)
    write_run_record(run_dir, config, mini_dataset)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("THB_ASSETS_DIR", str(run_dir / "no-assets"))  # lpips: skipped
        patch.setenv("THB_CACHE_DIR", str(run_dir / "no-cache"))
        runner = Runner(mini_dataset, ResultStore(run_dir / "results.csv"), run_dir / "outputs",
                        build_metrics(config.metrics))
        for spec in config.methods:
            runner.run(spec.name, lambda n=spec.name: build(n), config.protocols)
    build_reports(run_dir)
    return run_dir


def test_leaderboards(run_dir: Path) -> None:
    rows = read_leaderboard(run_dir / "leaderboard.csv")
    assert {(r["method"], r["metric"]) for r in rows} == {
        (m, k) for m in ("source-copy", "driving-copy") for k in ("psnr", "ssim", "l1", "lpips")}
    assert all(r["run"] == "mini-run" and r["commit"] and r["config_hash"] for r in rows)
    lpips = [r for r in rows if r["metric"] == "lpips"]
    assert {r["status"] for r in lpips} == {"skipped"} and "fix:" in lpips[0]["reason"]
    with (run_dir / "leaderboard_wide.csv").open() as handle:
        wide = {r["method"]: r for r in csv.DictReader(handle)}
    assert wide["driving-copy"]["l1"] == "0.0" and wide["driving-copy"]["lpips"] == "skipped"
    # the file beside the runs holds every run; rebuilding replaces this run's rows only
    merged = run_dir.parent / "leaderboard.csv"
    other = [dict(r, run="other-run") for r in rows]
    with merged.open("a", newline="") as handle:
        csv.DictWriter(handle, list(rows[0]), lineterminator="\n").writerows(other)
    build_reports(run_dir, html=False)
    runs = [r["run"] for r in read_leaderboard(merged)]
    assert runs.count("mini-run") == len(rows) and runs.count("other-run") == len(rows)


def test_latex_table(run_dir: Path) -> None:
    tex = (run_dir / "tables.tex").read_text()
    assert r"\begin{tabular}{lcccc}" in tex and r"\toprule" in tex
    assert r"l1 $\downarrow$" in tex and r"psnr $\uparrow$" in tex
    lines = tex.splitlines()
    driving = next(line for line in lines if line.startswith("driving-copy"))
    # the copy baselines are bounds: their own band, never bold (even at 58.92 dB)
    band = lines.index(r"\multicolumn{5}{l}{\textit{bounds: copy baselines, never ranked}} \\")
    assert lines[band - 1] == r"\midrule" and lines.index(driving) > band
    assert r"\textbf" not in tex and r"58.92 $\pm$ 0.00" in driving
    assert "--$^{1}$" in driving
    assert r"$^{1}$ lpips not computed: asset 'lpips\_alexnet' missing" in tex
    assert "Standing in for perceptual similarity to the ground truth: ssim, l1, psnr" in tex


def test_html_report_embeds_tables_charts_grids_and_previews(run_dir: Path) -> None:
    page = (run_dir / "report.html").read_text()
    assert page.count("<table>") == 1 and '<td class="">58.92 ± 0.00</td>' in page
    assert '<tr class="band"><td colspan="5">bounds: copy baselines, never ranked</td></tr>' \
        in page and 'class="best"' not in page
    images = re.findall(r'src="data:(image/\w+);base64,([^"]+)"', page)
    kinds = [kind for kind, _ in images]
    assert kinds.count("image/png") == 3 + 2  # psnr, ssim, l1 charts + 2 pair grids
    gifs = [Image.open(io.BytesIO(base64.b64decode(data))) for kind, data in images
            if kind == "image/gif"]
    assert len(gifs) == 2 and all(g.n_frames == 5 for g in gifs)  # 5 driving frames per pair
    assert gifs[0].size == (128 * 4, 128)  # source | driving | two methods


def test_regress_cli(run_dir: Path, tmp_path: Path, capsys) -> None:
    reference = tmp_path / "reference.csv"
    assert main(["update-reference", "--current", str(run_dir / "leaderboard.csv"),
                 "--reference", str(reference)]) == 0
    current = tmp_path / "current.csv"

    def edit(metric: str, method: str, **changes) -> None:
        rows = read_leaderboard(reference)
        for row in rows:
            if row["metric"] == metric and row["method"] == method and \
                    row["average"] == "per-pair":
                row.update(changes)
        with current.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)

    def regress(*extra: str) -> int:
        return main(["regress", "--reference", str(reference), "--current", str(current),
                     *extra])

    l1 = float(next(r["value"] for r in read_leaderboard(reference)
                    if r["metric"] == "l1" and r["method"] == "source-copy"))
    edit("l1", "source-copy", value=repr(l1 + 0.0005))  # worse, within tolerance 0.001
    assert regress() == 0 and "no regression" in capsys.readouterr().out
    edit("l1", "source-copy", value=repr(l1 + 0.01))  # worse beyond tolerance
    assert regress() == 1
    out = capsys.readouterr().out
    assert "1 regression(s)" in out and "mini-run / source-copy / mini / same-identity / l1" in out
    assert regress("--tolerance", "l1=0.02") == 0
    capsys.readouterr()
    edit("l1", "source-copy", value=repr(l1 - 0.01))  # better never fails
    assert regress() == 0
    edit("psnr", "driving-copy", value="30.0")  # 58.92 (identical frames) -> 30 dB is worse
    assert regress() == 1
    edit("ssim", "source-copy", status="error", reason="boom")
    assert regress() == 1 and "now error: boom" in capsys.readouterr().out
    edit("ssim", "source-copy", backend="other")
    assert regress() == 1 and "backend changed" in capsys.readouterr().out
    # a reference written before the average column: its rows are the per-pair ones
    legacy = tmp_path / "legacy.csv"
    rows = read_leaderboard(reference)
    with legacy.open("w", newline="") as handle:
        columns = [c for c in rows[0] if c != "average"]
        writer = csv.DictWriter(handle, columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(r for r in rows if r["average"] != "per-frame")
    assert {r["average"] for r in read_leaderboard(legacy)} == {"per-pair"}
    assert main(["regress", "--reference", str(legacy), "--current",
                 str(run_dir / "leaderboard.csv")]) == 0
    capsys.readouterr()
    current.write_text("not,a,leaderboard\n")
    assert regress() == 2 and "not a leaderboard" in capsys.readouterr().err


def test_build_cli_rebuilds_without_recomputing(run_dir: Path, tmp_path: Path, capsys) -> None:
    copy = tmp_path / "copy" / "mini-run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("outputs"))
    for name in ("leaderboard.csv", "tables.md", "report.html"):
        (copy / name).unlink()
    assert main(["build", str(copy)]) == 0  # outputs gone: the pictures are left out
    assert (copy / "tables.md").read_text() == (run_dir / "tables.md").read_text()
    assert "data:image/gif" not in (copy / "report.html").read_text()
    assert main(["build", str(tmp_path)]) == 2
    assert "not a run folder (no run.json)" in capsys.readouterr().err


def _chromium(page: Path, tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-quic", "--no-first-run", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp_path / 'profile'}", *flags, page.as_uri()],
                          check=True, capture_output=True, text=True, timeout=120)


def _wide_report(tmp_path: Path) -> Path:
    """The report of a run with every face metric and long method names: the widest table."""
    from thbench.eval.aggregate import summarize
    from thbench.eval.results import ResultRow
    from thbench.reports.html import write_html

    metrics = ["psnr", "ssim", "l1", "lpips", "csim", "aed_identity", "aed_fomm", "akd",
               "akd_fomm", "mkr", "no_face", "aed_3dmm", "apd"]
    rows = [ResultRow(method, "sample", "same-identity", f"pair-{p}", metric, "exact",
                      0.123456 + p + i, 16, frames_total=16, pairs=1)
            for i, metric in enumerate(metrics) for p in range(13)
            for method in ("hidenerf-tiny-long-name", "tpsmm-tiny", "fomm-tiny", "source-copy",
                           "driving-copy")]
    return write_html(tmp_path / "wide.html", "wide", summarize(rows), None, tmp_path,
                      {"commit": "c", "config_hash": "h", "date": "d"})


@pytest.mark.slow
def test_html_report_renders_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    """Drawn in a real browser 1400 px wide, every table of the report (and of a run with every
    face metric) ends inside the window: its right edge, measured by the browser, is at most
    1400 px."""
    shot = tmp_path / "report.png"
    _chromium(run_dir / "report.html", tmp_path, "--window-size=1400,1600",
              f"--screenshot={shot}")
    image = Image.open(shot).convert("L")
    assert image.size == (1400, 1600)
    histogram = image.histogram()
    assert histogram[255] < 0.97 * sum(histogram)  # not a blank page: tables and pictures drawn
    measure = ("<script>document.body.setAttribute('data-right', Math.max(...Array.from("
               "document.querySelectorAll('table'), t => t.getBoundingClientRect().right)));"
               "</script></body>")
    for page in (run_dir / "report.html", _wide_report(tmp_path)):
        probe = tmp_path / f"probe-{page.name}"
        probe.write_text(page.read_text().replace("</body>", measure))
        dom = _chromium(probe, tmp_path, "--window-size=1400,1600", "--dump-dom").stdout
        right = float(re.search(r'data-right="([0-9.]+)"', dom).group(1))
        assert 0 < right <= 1400, (page.name, right)


def test_bootstrap_interval_closed_forms() -> None:
    import numpy as np

    from thbench.eval.aggregate import bootstrap_ci

    assert bootstrap_ci(np.full(7, 0.25), seed=0) == (0.25, 0.25)  # constant: zero width
    # two values: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4
    assert bootstrap_ci(np.array([0.0, 1.0]), seed=0) == (0.0, 1.0)
    # many values: close to the normal-theory interval mean ± 1.96 s / sqrt(n)
    values = np.random.default_rng(3).normal(10.0, 2.0, size=400)
    low, high = bootstrap_ci(values, seed=0)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    assert (high - low) / 2 == pytest.approx(half, rel=0.1)
    assert (low + high) / 2 == pytest.approx(values.mean(), abs=0.05)
    assert bootstrap_ci(np.array([1.0, np.inf]), seed=0) != bootstrap_ci(np.array([1.0]), 0)


def test_html_report_names_every_method_and_metric(run_dir: Path) -> None:
    page = (run_dir / "report.html").read_text()
    for name in ("source-copy", "driving-copy", "psnr", "ssim", "l1", "lpips"):
        assert name in page


def test_published_rows_in_every_table_format_and_in_no_leaderboard(run_dir: Path,
                                                                    tmp_path: Path) -> None:
    """A published figure for the run's dataset shows in tables.md, tables.tex and report.html
    as a marked row; the run's leaderboard and the merged one keep measured rows only, and the
    regression gate compares the same rows as before."""
    published = tmp_path / "published.toml"
    published.write_text("""
[[row]]
method = "source-copy"
label = "source-copy (published, Nowhere'00 Tab. 1)"
dataset = "mini"
protocol = "same-identity"
size = 128
citation = "A. Nobody: Copying Sources, Nowhere 2000, Table 1"
checked = "a test's own figure"
differs = ""

[[row.figure]]
metric = "L1"
value = 0.0123
direction = "lower"
ours = "l1"
backend = "exact"
match = "exact"
definition = "mean absolute pixel difference"
""")
    folder = tmp_path / "runs" / run_dir.name
    shutil.copytree(run_dir, folder)
    before = (folder / "leaderboard.csv").read_text()
    build_reports(folder, published_file=published)
    tables = (folder / "tables.md").read_text()
    row = next(line for line in tables.splitlines() if "(published" in line)
    assert row.startswith("| *source-copy (published, Nowhere'00 Tab. 1)* |") and \
        "*0.0123*" in row
    assert "A. Nobody: Copying Sources, Nowhere 2000, Table 1" in tables
    assert r"\textit{0.0123}" in (folder / "tables.tex").read_text()
    assert '<tr class="published"><td>source-copy (published, Nowhere&#x27;00 Tab. 1)' in \
        (folder / "report.html").read_text()
    for board in (folder / "leaderboard.csv", folder.parent / "leaderboard.csv"):
        assert "published" not in board.read_text()
    assert _strip_dates((folder / "leaderboard.csv").read_text()) == _strip_dates(before)


def _strip_dates(text: str) -> list[list[str]]:
    """Leaderboard rows without the date and commit columns (a rebuild may differ there)."""
    rows = list(csv.reader(text.splitlines()))
    drop = {rows[0].index("date"), rows[0].index("commit")}
    return [[v for i, v in enumerate(r) if i not in drop] for r in rows]
