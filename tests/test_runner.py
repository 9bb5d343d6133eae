"""The runner on real prepared clips: metrics wired right, resume, FID, outputs on disk, reports."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from thbench.core.families import build
from thbench.datasets.protocols import CROSS_IDENTITY, SAME_IDENTITY
from thbench.eval.aggregate import summarize
from thbench.eval.metrics import build_metrics
from thbench.eval.metrics.image import PSNR_CEILING
from thbench.eval.results import ResultStore
from thbench.eval.runner import Runner
from thbench.eval.score import ExistingOutputs
from thbench.eval.set_metrics import SET_PAIR_ID
from thbench.reports.leaderboard import leaderboard_rows, read_leaderboard, write_leaderboard
from thbench.reports.tables import markdown_tables

PAIR_METRICS = ["psnr", "ssim", "l1", "akd", "mkr", "csim", "apd", "avd_s", "avd_d"]
PROTOCOLS = [SAME_IDENTITY, CROSS_IDENTITY]


def _runner(dataset, folder: Path, metrics: list[str], options=None) -> Runner:
    return Runner(dataset, ResultStore(folder / "results.csv"), folder / "outputs",
                  build_metrics(metrics, options), batch_size=3,
                  analysis_cache=folder / "analyses")


def _values(store: ResultStore) -> dict[tuple, float]:
    return {row.key: row.value for row in store.rows()}


@pytest.fixture(scope="module")
def scored(mini_dataset, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    runner = _runner(mini_dataset, folder, PAIR_METRICS)
    assert runner.unavailable() == {}
    for name in ("source-copy", "driving-copy"):
        summary = runner.run(name, lambda n=name: build(n), PROTOCOLS)
        assert summary.problems == [] and summary.computed == 5
    return folder


def test_reference_methods_bound_the_metrics(scored: Path) -> None:
    summaries = {(s.method, s.protocol, s.metric): s
                 for s in summarize(ResultStore(scored / "results.csv").rows())}
    same = SAME_IDENTITY

    def value(method, metric, protocol=same):
        return summaries[(method, protocol, metric)].value

    assert value("driving-copy", "psnr") == pytest.approx(PSNR_CEILING)  # identical frames
    assert value("driving-copy", "l1") == 0.0 and value("driving-copy", "ssim") == 1.0
    assert value("source-copy", "psnr") < 30 and value("source-copy", "l1") > 0.01
    assert value("driving-copy", "akd") == 0.0 and value("source-copy", "akd") > 0.5
    # AVD is a cross-identity metric: in same-identity pairs one shape is the right answer
    assert not any(m in ("avd_s", "avd_d") for (_, protocol, m) in summaries if protocol == same)
    cross = CROSS_IDENTITY
    assert value("driving-copy", "avd_d", cross) == 0.0
    assert value("source-copy", "avd_s", cross) == 0.0
    # the same two canonical meshes (the source's, the driving clip's) in both
    assert value("source-copy", "avd_d", cross) > 0
    assert value("source-copy", "avd_d", cross) == pytest.approx(
        value("driving-copy", "avd_s", cross))
    assert value("driving-copy", "apd", CROSS_IDENTITY) == 0.0
    assert value("source-copy", "csim", CROSS_IDENTITY) == pytest.approx(1.0, abs=1e-6)
    assert value("driving-copy", "csim", CROSS_IDENTITY) < 0.9  # drivers are other people
    # the clip whose face leaves: ground-truth frames without a face are excluded, not zeros
    rows = [r for r in ResultStore(scored / "results.csv").rows()
            if r.pair_id == "man-leaves-001" and r.metric == "akd"]
    assert {r.frames for r in rows} == {4}  # 5 driving frames, the last one has no face
    assert summaries[("source-copy", same, "mkr")].value == 0.0
    # the 3DMM metrics ran: the run measured their noise floor on the real clips once
    import json

    floor = json.loads((scored / "floor.json").read_text())
    assert floor["clips"] == 3 and floor["avd"]["halves"] < floor["avd"]["cross_person"]


def test_deleted_rows_are_recomputed_and_nothing_else(scored: Path, mini_dataset,
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "run"
    shutil.copytree(scored, folder)
    store = ResultStore(folder / "results.csv")
    before = _values(store)
    lines = (folder / "results.csv").read_text().splitlines(keepends=True)
    pairs = sorted({tuple(r[:4]) for r in csv.reader(lines[1:])})
    dropped = set(pairs[::2])  # half of the (method, dataset, protocol, pair) keys
    kept = [line for line in lines[1:] if tuple(next(csv.reader([line]))[:4]) not in dropped]
    (folder / "results.csv").write_text(lines[0] + "".join(kept))

    runner = _runner(mini_dataset, folder, PAIR_METRICS)
    computed = sum(runner.run(m, lambda m=m: build(m), PROTOCOLS).computed
                   for m in ("source-copy", "driving-copy"))
    assert computed == len(dropped)
    assert _values(store) == pytest.approx(before, nan_ok=True)


def test_fid_row_is_pytorch_fids_distance_of_streamed_statistics(
    mini_dataset, random_fid_weights, tmp_path: Path
) -> None:
    """With 12 frames in 2048 dimensions the covariances are singular and ``sqrtm`` amplifies
    rounding, so the check is on the statistics (streamed vs all features at once) and on the
    distance computed from them."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    from thbench.core.media import read_image, to_tensor
    from thbench.eval.metrics.fid import FID, FeatureStats, kernel_inception_distance

    options = {"fid": {"weights": str(random_fid_weights)},
               "kid": {"weights": str(random_fid_weights)}}
    runner = _runner(mini_dataset, tmp_path, ["l1", "fid", "kid"], options)
    for name in ("driving-copy", "source-copy"):
        runner.run(name, lambda n=name: build(n), [SAME_IDENTITY])
    set_rows = [r for r in ResultStore(tmp_path / "results.csv").rows()
                if r.pair_id == SET_PAIR_ID]
    rows = {r.method: r for r in set_rows if r.metric == "fid"}
    kid_rows = {r.method: r for r in set_rows if r.metric == "kid"}
    assert set(rows) == set(kid_rows) == {"driving-copy", "source-copy"}
    assert rows["driving-copy"].frames == 5 * 3  # three pairs of 5 driving frames
    # both show their sample: 15 generated frames against the 15 distinct real ones
    for row in (*rows.values(), *kid_rows.values()):
        assert (row.frames, row.real_frames) == (15, 15)

    fid = FID(weights=random_fid_weights)
    pairs = mini_dataset.pairs(SAME_IDENTITY)
    real = np.concatenate([
        fid.features(to_tensor(np.stack(list(mini_dataset.clip(p.driving_clip).frames(
            p.driving_frames))))).numpy() for p in pairs])
    streamed_real = FeatureStats()
    for pair in pairs:
        streamed_real.add(np.load(runner.fid.real_path(pair.driving_clip))[pair.driving_frames])
    for method, row in rows.items():
        folder = tmp_path / "outputs" / method / "mini" / SAME_IDENTITY
        frames = np.stack([read_image(f) for p in pairs
                           for f in sorted((folder / p.pair_id).glob("*.png"))])
        generated = fid.features(to_tensor(frames)).numpy()
        streamed = FeatureStats()
        for pair in pairs:
            streamed.add(np.load(runner.fid.pair_path(method, SAME_IDENTITY, pair.pair_id)))
        for stats, features in ((streamed, generated), (streamed_real, real)):
            assert np.allclose(stats.mean(), features.mean(0), rtol=1e-6, atol=1e-9)
            assert np.allclose(stats.cov(), np.cov(features, rowvar=False), rtol=1e-6,
                               atol=1e-6)
        expected = calculate_frechet_distance(streamed.mean(), streamed.cov(),
                                              streamed_real.mean(), streamed_real.cov())
        assert row.value == pytest.approx(expected, rel=1e-9)
        kid, spread = kernel_inception_distance(generated, real, seed=0)
        assert kid_rows[method].value == pytest.approx(kid, rel=1e-9)
        assert kid_rows[method].std == pytest.approx(spread, rel=1e-9, abs=1e-12)
        assert row.std is None
    assert rows["source-copy"].value > rows["driving-copy"].value + 100
    assert kid_rows["source-copy"].value > kid_rows["driving-copy"].value

    # a rerun reuses the FID row: no new line in the results file
    size = (tmp_path / "results.csv").stat().st_size
    runner.run("driving-copy", lambda: build("driving-copy"), [SAME_IDENTITY])
    assert (tmp_path / "results.csv").stat().st_size == size


def test_existing_outputs_score_like_generated_ones(scored: Path, mini_dataset,
                                                    tmp_path: Path) -> None:
    # the user's folder: driving-copy's frames, as a frame folder per pair
    generated = scored / "outputs" / "driving-copy" / "mini" / SAME_IDENTITY
    outputs = tmp_path / "mine"
    for pair in mini_dataset.pairs(SAME_IDENTITY):
        for index, path in enumerate(sorted((generated / pair.pair_id).glob("*.png"))):
            (outputs / pair.pair_id).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, outputs / pair.pair_id / f"{index:06d}.png")
    runner = _runner(mini_dataset, tmp_path, ["psnr", "l1"])
    summary = runner.run("mine", lambda: None, [SAME_IDENTITY],
                         caches={SAME_IDENTITY: ExistingOutputs(outputs)})
    assert summary.computed == 3 and summary.problems == []
    values = {r.metric: r.value for r in ResultStore(tmp_path / "results.csv").rows()}
    assert values == {"psnr": pytest.approx(PSNR_CEILING), "l1": 0.0}

    # a pair folder with one frame too few is a one-line error naming the folder
    first = mini_dataset.pairs(SAME_IDENTITY)[0].pair_id
    sorted((outputs / first).glob("*.png"))[-1].unlink()
    runner = _runner(mini_dataset, tmp_path / "again", ["l1"])
    summary = runner.run("mine", lambda: None, [SAME_IDENTITY],
                         caches={SAME_IDENTITY: ExistingOutputs(outputs)})
    assert len(summary.problems) == 1 and str(outputs / first) in summary.problems[0].message
    assert summary.computed == 2


def test_method_returning_nan_is_an_error_row_not_a_crash(mini_dataset, tmp_path: Path) -> None:
    from thbench.core.method import FramewiseMethod

    class Broken(FramewiseMethod):
        name = "broken"

        def forward_batch(self, driving):
            return driving * np.nan

    runner = _runner(mini_dataset, tmp_path, ["l1"])
    summary = runner.run("broken", Broken, [SAME_IDENTITY])
    assert summary.computed == 0 and len(summary.problems) == 3
    assert all("NaN" in p.message for p in summary.problems)
    rows = ResultStore(tmp_path / "results.csv").rows()
    assert {r.status for r in rows} == {"error"}


def test_reports_from_rows(scored: Path, tmp_path: Path) -> None:
    summaries = summarize(ResultStore(scored / "results.csv").rows(), seed=0)
    provenance = {"run": "r", "commit": "abc", "config_hash": "123", "date": "2026-11-26"}
    path = write_leaderboard(tmp_path / "leaderboard.csv", leaderboard_rows(summaries, provenance))
    rows = read_leaderboard(path)
    # same-identity: all but avd_s, avd_d; cross-identity: csim, apd, avd_s, avd_d; each
    # per pair and per frame, but AVD (one value per pair by nature) per pair only
    assert len(rows) == len(summaries) == 2 * (2 * (len(PAIR_METRICS) - 2) + 2 * 2 + 2)
    assert {r["average"] for r in rows if r["metric"] == "avd_s"} == {"per-pair"}
    l1 = next(r for r in rows if r["method"] == "source-copy" and r["metric"] == "l1")
    assert l1["direction"] == "lower" and l1["n_pairs"] == "3" and l1["commit"] == "abc"
    assert float(l1["ci_low"]) <= float(l1["value"]) <= float(l1["ci_high"])
    assert summarize(ResultStore(scored / "results.csv").rows(), seed=0) == summaries

    text = markdown_tables(summaries)
    assert "### mini / same-identity" in text and "| l1 ↓ |" in text
    same = text.split("### mini / same-identity")[1]
    driving_row = next(line for line in same.splitlines() if line.startswith("| driving-copy"))
    assert "58.92 ± 0.00" in driving_row and "**" not in same  # bounds only: nothing ranked
    assert same.index("| *bounds: copy baselines, never ranked* |") < same.index(driving_row)
    assert {r["p_value"] for r in rows} == {"nan"} and {r["bound"] for r in rows} == {"true"}


def test_skipped_metric_is_a_dash_with_its_reason(mini_dataset, tmp_path: Path,
                                                  monkeypatch) -> None:
    monkeypatch.setenv("THB_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("THB_ASSETS_DIR", str(tmp_path / "nothing-here"))
    runner = _runner(mini_dataset, tmp_path, ["l1", "lpips"])
    assert "lpips" in runner.unavailable()
    runner.run("driving-copy", lambda: build("driving-copy"), [SAME_IDENTITY])
    text = markdown_tables(summarize(ResultStore(tmp_path / "results.csv").rows()))
    assert "–¹" in text
    assert "¹ lpips not computed: asset 'lpips_alexnet' missing" in text and "fix:" in text
    assert "Standing in for perceptual similarity to the ground truth: l1" in text

