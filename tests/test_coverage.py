"""Coverage: every row says how many frames and pairs it used out of the protocol's, tables mark
low coverage and never bold it; FID counts the pairs it left out and never aborts the run."""

from __future__ import annotations

import html
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from thbench.core.families import build
from thbench.datasets.protocols import CROSS_IDENTITY, SAME_IDENTITY
from thbench.eval.aggregate import summarize
from thbench.eval.metrics import build_metrics
from thbench.eval.results import ResultStore
from thbench.eval.runner import Runner
from thbench.eval.score import ExistingOutputs, MissingOutputs
from thbench.eval.set_metrics import SET_PAIR_ID
from thbench.reports.html import write_html
from thbench.reports.tables import markdown_tables

METRICS = ["l1", "akd", "no_face", "fid"]


@pytest.fixture(scope="module", autouse=True)
def sfm_offline(shared_dir: Path):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("THB_ASSETS_DIR", str(shared_dir / "models" / "sfm"))
        yield


def _runner(dataset, folder: Path, metrics: list[str], weights: Path) -> Runner:
    return Runner(dataset, ResultStore(folder / "results.csv"), folder / "outputs",
                  build_metrics(metrics, {"fid": {"weights": str(weights)}}), batch_size=3,
                  analysis_cache=folder / "analyses")


@pytest.fixture(scope="module")
def damaged(mini_dataset, random_fid_weights, tmp_path_factory) -> Path:
    """source-copy and driving-copy on every pair; "mine" = driving-copy's frames with one pair
    intact, one PNG corrupt, one frame of the wrong size (same-identity) and one pair missing
    (cross-identity)."""
    folder = tmp_path_factory.mktemp("coverage")
    _runner(mini_dataset, folder, METRICS[:-1], random_fid_weights).run(
        "source-copy", lambda: build("source-copy"), [SAME_IDENTITY, CROSS_IDENTITY])
    _runner(mini_dataset, folder, ["fid"], random_fid_weights).run(
        "source-copy", lambda: build("source-copy"), [CROSS_IDENTITY])
    runner = _runner(mini_dataset, folder, METRICS, random_fid_weights)  # FID: CPU-heavy
    runner.run("driving-copy", lambda: build("driving-copy"), [SAME_IDENTITY, CROSS_IDENTITY])
    mine = folder / "mine"
    for protocol in (SAME_IDENTITY, CROSS_IDENTITY):
        shutil.copytree(folder / "outputs" / "driving-copy" / "mini" / protocol, mine / protocol)
    same = [p.pair_id for p in mini_dataset.pairs(SAME_IDENTITY)]
    assert len(same) == 3
    (mine / SAME_IDENTITY / same[1] / "000002.png").write_bytes(b"not a png")
    small = Image.open(mine / SAME_IDENTITY / same[2] / "000001.png").resize((64, 64))
    small.save(mine / SAME_IDENTITY / same[2] / "000001.png")
    cross = [p.pair_id for p in mini_dataset.pairs(CROSS_IDENTITY)]
    shutil.rmtree(mine / CROSS_IDENTITY / cross[0])
    for protocol in (SAME_IDENTITY, CROSS_IDENTITY):
        summary = runner.run("mine", lambda p=protocol: MissingOutputs(mine / p), [protocol],
                             caches={protocol: ExistingOutputs(mine / protocol)})
        assert len(summary.problems) == {SAME_IDENTITY: 2, CROSS_IDENTITY: 1}[protocol]
    return folder


def _summaries(folder: Path) -> dict:
    rows = ResultStore(folder / "results.csv").rows()
    return {(s.method, s.protocol, s.metric): s for s in summarize(rows)
            if s.average != "per-frame"}


def test_rows_and_summaries_count_frames_and_pairs(damaged: Path, mini_dataset) -> None:
    s = _summaries(damaged)
    full = s[("driving-copy", SAME_IDENTITY, "l1")]
    assert (full.n_pairs, full.n_pairs_total, full.n_frames, full.n_frames_total) == (3, 3, 15, 15)
    mine = s[("mine", SAME_IDENTITY, "l1")]
    assert (mine.n_pairs, mine.n_pairs_total, mine.n_errors) == (1, 3, 2)
    assert mine.coverage == pytest.approx(5 / 15)
    # a face metric: the ground truth's face leaves in the last frame of man-leaves-001
    akd = s[("driving-copy", SAME_IDENTITY, "akd")]
    assert (akd.n_frames, akd.n_frames_total) == (14, 15)
    rows = [r for r in ResultStore(damaged / "results.csv").rows()
            if r.method == "driving-copy" and r.metric == "akd" and r.pair_id == "man-leaves-001"]
    assert (rows[0].frames, rows[0].frames_total) == (4, 5)
    # the output no-face rate exists in both protocols
    assert s[("source-copy", CROSS_IDENTITY, "no_face")].value == 0.0
    assert s[("driving-copy", SAME_IDENTITY, "no_face")].value == 0.0
    # a missing cross-identity pair: counted against the method, not dropped
    cross = s[("mine", CROSS_IDENTITY, "l1")] if ("mine", CROSS_IDENTITY, "l1") in s else None
    assert cross is None  # l1 is same-identity only
    no_face = s[("mine", CROSS_IDENTITY, "no_face")]
    assert (no_face.n_pairs, no_face.n_pairs_total, no_face.n_errors) == (1, 2, 1)


def test_fid_row_counts_the_pairs_it_left_out(damaged: Path) -> None:
    s = _summaries(damaged)
    fid = s[("mine", SAME_IDENTITY, "fid")]
    assert fid.status == "ok" and math.isfinite(fid.value)
    assert (fid.n_pairs, fid.n_pairs_total, fid.n_errors, fid.n_frames) == (1, 3, 2, 5)
    assert fid.coverage == pytest.approx(5 / 15)
    whole = s[("driving-copy", SAME_IDENTITY, "fid")]
    assert (whole.n_pairs, whole.n_errors, whole.n_frames, whole.n_frames_total) == (3, 0, 15, 15)
    cross = s[("mine", CROSS_IDENTITY, "fid")]
    assert (cross.n_pairs, cross.n_errors) == (1, 1)


def test_cross_identity_fid_does_not_reward_copying_the_driver(damaged: Path,
                                                                 mini_dataset) -> None:
    """The real set of cross-identity FID is the source identities' frames (here the two source
    photos), never the drivers': driving-copy, which shows other people, must not score best."""
    from thbench.eval.set_metrics import real_frames

    pairs = mini_dataset.pairs(CROSS_IDENTITY)
    assert real_frames(pairs, mini_dataset) == {"photo-m7": [0], "photo-man": [0]}
    assert not {p.driving_clip for p in pairs} & set(real_frames(pairs, mini_dataset))
    s = _summaries(damaged)
    copy_driver = s[("driving-copy", CROSS_IDENTITY, "fid")]
    copy_source = s[("source-copy", CROSS_IDENTITY, "fid")]
    assert copy_driver.status == copy_source.status == "ok"
    print(f"\ncross-identity FID: driving-copy {copy_driver.value:.1f}, "
          f"source-copy {copy_source.value:.1f}")
    assert copy_source.value < copy_driver.value
    # same-identity keeps the ground truth as its real set: there driving-copy is best
    same = [s[(m, SAME_IDENTITY, "fid")].value for m in ("driving-copy", "mine")]
    assert same[0] < same[1]  # ~0 up to sqrtm rounding on singular covariances


def test_tables_show_counts_once_mark_other_counts_and_never_bold_them(damaged: Path,
                                                                       tmp_path: Path) -> None:
    summaries = summarize(ResultStore(damaged / "results.csv").rows())
    text = markdown_tables(summaries).split("### mini / same-identity")[1]
    header = next(line for line in text.splitlines() if line.startswith("| method"))
    column = header.split(" | ").index("l1 ↓")
    cells = {line.split(" | ")[0]: line.split(" | ")[column] for line in text.splitlines()
             if line.startswith("| ") and not line.startswith("| method")}
    # "mine" has the best raw l1 (0: driving-copy's frames) but on 1 of 3 pairs: a marked cell,
    # never bold; the copy baselines are bounds, never bold either
    mine = cells["| mine"]
    assert mine.startswith("0.0000 ± 0.0000") and "**" not in mine
    note = mine.removeprefix("0.0000 ± 0.0000")
    (gap,) = [line for line in text.splitlines() if line.startswith(f"{note} ")]
    assert gap.startswith(f"{note} mine: 000002.png: not a readable image") or \
        "000002.png: not a readable image (cannot identify image file " \
        f"'{damaged / 'mine' / 'same-identity' / 'man-leaves-001'}/000002.png')" in gap
    assert "(mine l1, " in gap and ": 1 pairs, 5 frames)" in gap
    assert not any("**" in cell for cell in cells.values())
    assert cells["| driving-copy"] == "0.0000 ± 0.0000"  # full counts: no marker
    assert "Counts: 3 pairs, 15 frames in every column" in text
    page = write_html(tmp_path / "report.html", "t", summaries, None, tmp_path,
                      {"commit": "c", "config_hash": "h", "date": "d"}).read_text()
    number = int(note.translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")))
    title = html.escape(gap[len(note) + 1:].rstrip())
    assert f'<td class="">0.0000 ± 0.0000<sup title="{title}">{number}</sup></td>' in page


def test_forced_sqrtm_failure_is_an_error_row(damaged: Path, mini_dataset, random_fid_weights,
                                             tmp_path: Path, monkeypatch) -> None:
    """pytorch-fid raises "Imaginary component" when sqrtm's result is far from real: the run
    goes on, the other rows stay, and the FID row is an error with that reason."""
    from pytorch_fid import fid_score

    def complex_sqrtm(matrix, disp=True):
        return np.eye(len(matrix)) * (1 + 1j), 0.0

    folder = tmp_path / "run"
    shutil.copytree(damaged, folder)  # the saved features are reused: only the distance reruns
    lines = (folder / "results.csv").read_text().splitlines(keepends=True)
    (folder / "results.csv").write_text("".join(
        line for line in lines if not (line.startswith("driving-copy,") and SET_PAIR_ID in line)))
    monkeypatch.setattr(fid_score.linalg, "sqrtm", complex_sqrtm)
    runner = _runner(mini_dataset, folder, METRICS, random_fid_weights)
    summary = runner.run("driving-copy", lambda: build("driving-copy"), [SAME_IDENTITY])
    assert summary.computed == 0 and summary.reused == 3
    rows = {(r.pair_id, r.metric): r for r in ResultStore(folder / "results.csv").rows()
            if r.method == "driving-copy" and r.protocol == SAME_IDENTITY}
    fid = rows[(SET_PAIR_ID, "fid")]
    assert fid.status == "error" and "Imaginary component" in fid.reason
    assert fid.reason.startswith("fid distance failed")
    assert sum(r.metric == "l1" and r.status == "ok" for r in rows.values()) == 3
