"""Issue #20's done-when: a miniature FOMM ``vox-png`` test folder made from the real sample
videos, prepared with ``python -m thbench datasets prepare`` and run with official-layout FOMM and
TPSMM checkpoints (random weights, TPSMM's with a background predictor). The same-identity outputs
equal the reconstruction protocol computed here, frame by frame, directly with the networks
loaded from the checkpoint files: source = frame 0, every frame driving (frame 0 included),
absolute keypoints, TPSMM's background predictor applied. Also: a pair whose frame 0 has no
face keeps its pixel rows, a method that cannot run a pair leaves a counted, reasoned gap, and
a run config contradicting the prepared folder stops with a one-line error. The tree's
fourth clip has no face in any frame: prepared all the same (``--crop full``), counted, scored
on the pixel metrics, its frames counted as uncovered by the face metrics, and a method that
needs a source face leaves a gap the tables footnote with its reason."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from thbench.baselines import fomm, tpsmm
from thbench.cli.datasets import main as datasets_main
from thbench.cli.eval import main as eval_main
from thbench.core.media import read_image, to_tensor, to_uint8
from thbench.core.method import FramewiseMethod, PairUnsupported
from thbench.core.resampling import resize
from thbench.datasets.prepared_dataset import PreparedDataset
from thbench.eval.aggregate import summarize
from thbench.eval.metrics import build_metrics
from thbench.eval.results import ResultStore
from thbench.eval.runner import Runner
from thbench.reports.html import write_html
from thbench.reports.tables import latex_tables, markdown_tables

SIZE = 128  # the prepared frames; the tiny models run at 64 px, resized as the method does
SAME = "same-identity"


@pytest.fixture(scope="module")
def prepared(vox_png_root: Path, vox1_csv: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vox_prepared") / "vox1-test"
    assert datasets_main(["prepare", "--dataset", "voxceleb1", "--layout", "fomm", "--root",
                          str(vox_png_root), "--split", "test", "--list", str(vox1_csv),
                          "--out", str(out), "--size", str(SIZE), "--no-fit"]) == 0
    return out


def write_config(folder: Path, root: Path, checkpoints: dict[str, Path], metrics: list[str],
                 dataset_extra: str = "") -> Path:
    path = folder / "config.toml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""
name = "vox"
output_dir = "{folder / 'runs'}"
protocols = ["{SAME}"]
metrics = {metrics!r}
average = "per-frame"

[dataset]
name = "vox1-mini"
root = "{root}"
{dataset_extra}
""" + "".join(f"""
[[methods]]
name = "{name}"
options = {{ checkpoint = "{path}", config = "tiny" }}
""" for name, path in checkpoints.items()))
    return path


@pytest.fixture(scope="module")
def vox_run(prepared: Path, official_checkpoints, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("vox_run")
    config = write_config(folder, prepared, official_checkpoints, ["psnr", "l1", "akd"],
                          f"size = {SIZE}\nclip_length = 0")
    assert eval_main(["run", "--config", str(config)]) == 0
    return folder / "runs" / "vox"


def test_preparation_counts_against_the_official_split(prepared: Path, capsys) -> None:
    record = json.loads((prepared / "dataset.json").read_text())
    assert (record["official_videos"], record["prepared_videos"], record["clips"]) == (522, 4, 4)
    assert record["options"]["size"] == SIZE and record["options"]["frame_step"] == 1
    assert record["skipped"] == 0
    pairs = PreparedDataset(prepared, "v").pairs(SAME)
    assert [p.driving_frames for p in pairs] == [list(range(6))] * 4  # frame 0 included
    assert sorted(p.source_face for p in pairs) == [False, False, True, True]
    assert all(not p.skip for p in pairs)  # a ground truth: scored without a source face
    (street,) = [p for p in pairs if not any(p.driving_faces)]
    assert record["no_face_videos"] == [street.source_clip.removesuffix("-000")]
    info = json.loads((prepared / "clips" / street.source_clip / "clip.json").read_text())
    assert info["notes"] == ["no face in any frame"] and info["crop_box"] == [0, 0, SIZE, SIZE]


def test_preparation_log_names_the_official_count(vox_png_root, vox1_csv, tmp_path,
                                                  caplog) -> None:
    caplog.set_level(logging.INFO, logger="thbench")
    assert datasets_main(["prepare", "--dataset", "voxceleb1", "--layout", "fomm", "--root",
                          str(vox_png_root), "--split", "test", "--list", str(vox1_csv),
                          "--out", str(tmp_path / "p"), "--size", "128", "--frame-step", "2",
                          "--no-fit"]) == 0
    out = "\n".join(caplog.messages)
    assert ("split: 4 of the 522 official videos prepared (518 short: 518 missing on disk, "
            "0 skipped), from vox1_metadata; 1 of them without a face in any frame (scored on "
            "the pixel metrics, their frames counted as uncovered by the face metrics)") in out
    assert "4 clips in all; 0 skipped (skipped.json)" in out


def _nets(name: str, path: Path) -> dict[str, torch.nn.Module]:
    """The checkpoint's modules, loaded straight from the file (not through the method)."""
    state = torch.load(path, weights_only=True)
    if name == "fomm":
        cfg = fomm.CONFIGS["tiny"]
        nets = {"kp_detector": fomm.KPDetector(cfg),
                "generator": fomm.OcclusionAwareGenerator(cfg)}
    else:
        cfg = tpsmm.CONFIGS["tiny"]
        nets = {"kp_detector": tpsmm.KPDetector(cfg),
                "dense_motion_network": tpsmm.DenseMotionNetwork(cfg),
                "inpainting_network": tpsmm.InpaintingNetwork(cfg),
                "bg_predictor": tpsmm.BGMotionPredictor(cfg)}
    for key, net in nets.items():
        net.load_state_dict(state[key])
        net.eval()
    return nets


@torch.no_grad()
def reconstruct(name: str, nets: dict, source: np.ndarray, driving: np.ndarray,
                background: bool = True) -> np.ndarray:
    """One frame of the reconstruction protocol (official ``reconstruction.py``): absolute
    keypoints of the driving frame, TPSMM's background affine of (source, driving)."""
    s = resize(to_tensor(source[None]), (64, 64))
    d = resize(to_tensor(driving[None]), (64, 64))
    if name == "fomm":
        out = nets["generator"](s, nets["kp_detector"](d), nets["kp_detector"](s))
    else:
        bg = nets["bg_predictor"](s, d) if background else None
        motion = nets["dense_motion_network"](s, nets["kp_detector"](d)["fg_kp"],
                                              nets["kp_detector"](s)["fg_kp"], bg)
        out = nets["inpainting_network"](s, motion)
    return to_uint8(resize(out["prediction"], (SIZE, SIZE)).clamp(0, 1))[0]


@pytest.mark.parametrize("name", ["fomm", "tpsmm"])
def test_same_identity_outputs_are_the_reconstruction_protocol(vox_run, prepared,
                                                               official_checkpoints, name):
    nets = _nets(name, official_checkpoints[name])
    dataset = PreparedDataset(prepared, "vox1-mini")
    checked, background_shows = 0, 0
    for pair in dataset.pairs(SAME):
        clip = dataset.clip(pair.source_clip)
        frames = [clip.frame(i) for i in range(len(clip))]
        folder = vox_run / "outputs" / name / "vox1-mini" / SAME / pair.pair_id
        assert len(list(folder.glob("*.png"))) == len(frames) == 6
        for index, frame in enumerate(frames):
            expected = reconstruct(name, nets, frames[0], frame).astype(int)
            output = read_image(folder / f"{index:06d}.png").astype(int)
            assert np.abs(output - expected).max() <= 1, (pair.pair_id, index)
            if name == "tpsmm":
                without = reconstruct(name, nets, frames[0], frame, background=False)
                background_shows += np.abs(output - without.astype(int)).max() > 2
            checked += 1
    assert checked == 24
    if name == "tpsmm":  # the check could tell a run without the background predictor
        assert background_shows == checked
    record = json.loads((vox_run / "run.json").read_text())
    built = record["methods_built"][name][SAME]
    assert built["mode"] == "absolute"
    assert built.get("background", "checkpoint") == "checkpoint"
    assert record["method_options"]["tpsmm"][SAME]["background"] == "auto"
    assert record["dataset_prepared_with"]["size"] == SIZE


def test_pair_without_a_face_in_frame_0_keeps_its_pixel_rows(vox_run, prepared) -> None:
    dataset = PreparedDataset(prepared, "vox1-mini")
    faceless = next(p for p in dataset.pairs(SAME) if not p.source_face and any(p.driving_faces))
    rows = {(r.method, r.metric): r for r in ResultStore(vox_run / "results.csv").rows()
            if r.pair_id == faceless.pair_id}
    for method in ("fomm", "tpsmm"):
        for metric in ("l1", "psnr"):
            row = rows[(method, metric)]
            assert row.status == "ok" and row.frames == row.frames_total == 6
        akd = rows[(method, "akd")]  # face metrics count the frames they leave out
        assert akd.frames_total == 6
    faces = [r.face for r in dataset.clip(faceless.source_clip).faces()]
    assert faces[0] is False and any(faces)


def test_a_method_that_cannot_run_a_pair_leaves_a_counted_reasoned_gap(prepared, tmp_path):
    dataset = PreparedDataset(prepared, "vox1-mini")
    faceless = [p.pair_id for p in dataset.pairs(SAME) if not p.source_face]
    sources = [to_tensor(dataset.clip(p).frame(0)) for p in faceless]
    assert len(faceless) == 2  # frame 0 without a face; no face at all

    class NeedsFace(FramewiseMethod):
        """Copies the driving frame; refuses a source without a face, as HiDe-NeRF does."""

        name = "needs-face"

        def setup(self, source, driving_first):
            if any(torch.equal(source, faceless) for faceless in sources):
                raise PairUnsupported("needs-face needs a face in the source image")

        def forward_batch(self, driving):
            return driving

    runner = Runner(dataset, ResultStore(tmp_path / "results.csv"), tmp_path / "outputs",
                    build_metrics(["l1"]), batch_size=4,
                    analysis_cache=tmp_path / "analyses")
    summary = runner.run("needs-face", NeedsFace, [SAME])
    assert summary.computed == 2 and summary.problems == []
    assert [g.pair_id for g in summary.unsupported] == faceless
    rows = ResultStore(tmp_path / "results.csv").rows()
    gap = next(r for r in rows if r.pair_id in faceless)
    assert gap.status == "skipped" and gap.frames_total == 6
    assert gap.reason == "needs-face cannot run this pair: needs-face needs a face in the " \
                         "source image"
    summaries = summarize(rows)
    (l1,) = [s for s in summaries if s.average == "per-frame"]
    assert (l1.n_pairs, l1.n_pairs_total, l1.n_skipped, l1.n_frames) == (2, 4, 2, 12)
    assert "needs-face cannot run this pair" in l1.reason
    # the tables give the gap with its reason, once, not only the run log
    line = ("Counts: 4 pairs, 24 frames in every column except l1: 2 pairs, 12 frames "
            "(needs-face cannot run this pair: needs-face needs a face in the source image).")
    text = markdown_tables(summaries, "per-frame")
    assert "| needs-face | 0.0000 ± 0.0000 |" in text and line in text.splitlines()
    assert "not scored (the source has no face)" not in text  # no pair-list skip here
    latex = latex_tables(summaries, "per-frame")
    assert r"\par\footnotesize " + line.replace("_", r"\_") in latex
    page = write_html(tmp_path / "report.html", "t", summaries, None, tmp_path,
                      {"commit": "c", "config_hash": "h", "date": "d"}, average="per-frame")
    assert f'<p class="note">{line}</p>' in page.read_text()


def test_video_without_any_face_is_scored_on_the_pixel_metrics(vox_run, prepared) -> None:
    """Prepared under --crop full though no frame has a face: L1 and PSNR on all its frames,
    the face metric counts all of them as uncovered, and the table footnotes that gap."""
    dataset = PreparedDataset(prepared, "vox1-mini")
    (street,) = [p for p in dataset.pairs(SAME) if not any(p.driving_faces)]
    rows = ResultStore(vox_run / "results.csv").rows()
    mine = {(r.method, r.metric): r for r in rows if r.pair_id == street.pair_id}
    for method in ("fomm", "tpsmm"):
        for metric in ("l1", "psnr"):
            row = mine[(method, metric)]
            assert row.status == "ok" and row.frames == row.frames_total == 6
            assert np.isfinite(row.value)
        akd = mine[(method, "akd")]
        assert (akd.status, akd.frames, akd.frames_total) == ("skipped", 0, 6)
        assert "(6 excluded)" in akd.reason
    summaries = {(s.method, s.metric): s for s in summarize(rows) if s.average == "per-frame"}
    for method in ("fomm", "tpsmm"):
        l1, akd = summaries[(method, "l1")], summaries[(method, "akd")]
        assert (l1.n_pairs, l1.n_pairs_total, l1.n_frames, l1.n_frames_total) == (4, 4, 24, 24)
        assert akd.n_frames_total == 24 and akd.n_frames <= 24 - 6 - 4  # street + frames 0-3


def test_dataset_settings_that_differ_from_the_prepared_folder_fail_in_one_line(
        prepared, official_checkpoints, tmp_path, capsys) -> None:
    config = write_config(tmp_path, prepared, {"fomm": official_checkpoints["fomm"]}, ["l1"],
                          "size = 256")
    assert eval_main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {prepared / 'dataset.json'}: dataset.size = 256 in the run config, "
                   f"but {prepared} was prepared with size = {SIZE}; prepare it again with "
                   "that setting or remove dataset.size from the run config")
    # the same through --set, for a pair-list setting
    config = write_config(tmp_path / "b", prepared, {"fomm": official_checkpoints["fomm"]},
                          ["l1"])
    assert eval_main(["run", "--config", str(config), "--set",
                      "dataset.cross_per_source=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pairs/protocols.json: dataset.cross_per_source = 3" in err
    assert "prepared with cross_per_source = 1" in err
