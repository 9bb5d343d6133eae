"""VoxCeleb1/2 and TalkingHead-1KH preparation: miniature datasets in each layout, built from the
real sample videos, prepared end to end; split files; interruption and resume; pair lists."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from minivox import face_crops, metadata_names, write_frame_folder, write_video

from thbench.cli.datasets import main as datasets_main
from thbench.datasets.clip import Clip, ClipInfo, FaceRecord, write_clip
from thbench.datasets.fits import read_fits
from thbench.datasets.layouts import discover
from thbench.datasets.pair_lists import PairOptions, write_protocols
from thbench.datasets.protocols import NO_DRIVER, read_pairs, subsample_driving
from thbench.datasets.source_clips import PrepareOptions
from thbench.datasets.split_preparation import prepare_split
from thbench.datasets.splits import load_vox1_split, read_th1kh_list
from thbench.facegeom.detect import FaceDetector

REPO = Path(__file__).resolve().parents[1]
SIZE = 128
OPTIONS = PrepareOptions(size=SIZE, frame_step=2, clip_length=0, crop="full", skip_unusable=True)


# --- miniature datasets ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def crops(pyfeat_data: Path) -> dict[str, list[np.ndarray]]:
    detector = FaceDetector()
    man, woman = pyfeat_data / "single_face.mp4", pyfeat_data / "WolfgangLanger_Pexels.mp4"
    return {
        "man-a": face_crops(man, 0, 12, 3, detector),
        "man-b": face_crops(man, 36, 12, 3, detector),
        "woman-a": face_crops(woman, 0, 12, 8, detector),
        "woman-b": face_crops(woman, 200, 12, 8, detector),
        "noface": face_crops(pyfeat_data / "no_face.mp4", 0, 12, 4, detector),
    }


def corrupt_copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes()[: source.stat().st_size // 3])
    return target


@pytest.fixture(scope="module")
def fomm_root(tmp_path_factory, crops, vox1_csv) -> Path:
    """FOMM's vox layout: test/ holds two mp4 clips and a PNG-frame folder (vox-png) with the
    official names, one clip without a face (prepared: --crop full needs none), a corrupt one,
    a one-frame one, a file with a foreign name and a training clip in the wrong folder."""
    root = tmp_path_factory.mktemp("fomm")
    test = metadata_names(vox1_csv, "test", 6)
    train = metadata_names(vox1_csv, "train", 2)
    write_video(root / "test" / test[0], crops["man-a"])
    write_video(root / "test" / test[1], crops["woman-a"])
    write_frame_folder(root / "test" / test[2], crops["woman-b"])
    write_video(root / "test" / test[3], crops["noface"])
    corrupt_copy(root / "test" / test[0], root / "test" / test[4])
    write_video(root / "test" / test[5], crops["man-b"][:1])
    write_video(root / "test" / "holiday.mp4", crops["man-b"])
    write_video(root / "test" / train[0], crops["man-b"])
    write_video(root / "train" / train[1], crops["man-b"])
    return root


# --- VoxCeleb1, FOMM layout ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def fomm_prepared(fomm_root: Path, vox1_csv: Path, tmp_path_factory) -> Path:
    """The FOMM test split prepared in-process with 3DMM fits (the reference for resuming)."""
    out = tmp_path_factory.mktemp("fomm_out")
    found = discover("voxceleb1", "fomm", fomm_root, "test", vox1_csv)
    prepare_split(found, out, OPTIONS, {"dataset": "voxceleb1"}, fit=True)
    write_protocols(out, PairOptions(seed=0))
    return out


def test_fomm_layout_finds_the_listed_test_clips_and_leaves_out_the_rest(fomm_root, vox1_csv):
    found = discover("voxceleb1", "fomm", fomm_root, "test", vox1_csv)
    test = metadata_names(vox1_csv, "test", 6)
    assert [s.path.name for s in found.sources] == sorted(test, key=lambda n: n.replace("#", "_"))
    assert found.sources[0].identity == test[0].split("#")[0]
    assert found.sources[0].name == test[0].removesuffix(".mp4").replace("#", "_")
    assert found.excluded == {"test/holiday.mp4": "name is not person_id#video_id#start#end.mp4",
                              "test/" + metadata_names(vox1_csv, "train", 1)[0]:
                                  "a train clip in vox-metadata.csv"}
    assert len(found.missing) == 522 - 6 and test[0].removesuffix(".mp4") not in found.missing
    assert found.split_file.sha256 == (
        "dfbaf55a6edaaf84add29f93692f8bb7289aff1102631bcdf1b1aaf52f3953f7")


def test_fomm_split_prepares_clips_fits_and_a_summary_of_skipped_videos(fomm_prepared, vox1_csv):
    test = [n.removesuffix(".mp4").replace("#", "_") for n in metadata_names(vox1_csv, "test", 6)]
    skipped = json.loads((fomm_prepared / "skipped.json").read_text())
    assert sorted(skipped) == sorted(test[4:])
    assert "corrupt or truncated video" in skipped[test[4]]
    assert "too short: 1 frames kept" in skipped[test[5]]
    record = json.loads((fomm_prepared / "dataset.json").read_text())
    assert (record["videos"], record["clips"], record["skipped"]) == (6, 4, 2)
    # the clip without a face is prepared (--crop full), its records all false, fits all NaN
    assert record["no_face_videos"] == [test[3]]
    street = Clip(fomm_prepared / "clips" / f"{test[3]}-000")
    assert len(street) == 6 and not any(r.face for r in street.faces())
    assert np.isnan(read_fits(street)["expression"]).all()
    assert record["split_file"]["url"].endswith(
        "/ac40aac58657a3d8db85421cd4afcf465e86ead1/vox-metadata.csv")
    # every frame kept (clip_length 0, frame step 2), full frame kept, faces and fits recorded
    for name in test[:3]:
        clip_folder = fomm_prepared / "clips" / f"{name}-000"
        info = json.loads((clip_folder / "clip.json").read_text())
        assert info["frame_indices"] == [0, 2, 4, 6, 8, 10]
        assert info["crop_box"] == [0, 0, SIZE, SIZE] and info["size"] == SIZE
        assert all(record.face for record in Clip(clip_folder).faces())
        fits = read_fits(Clip(clip_folder))
        assert fits["expression"].shape == (6, 6) and fits["identity"].shape == (63,)
        assert np.isfinite(fits["expression"]).all() and np.isfinite(fits["pose"]).all()
        assert (fits["reprojection_iod"] < 0.2).all()  # the fit follows the landmarks
    # the PNG-folder clip (vox-png) reads the same way as a video clip
    assert (fomm_prepared / "clips" / f"{test[2]}-000" / "frames" / "000005.png").is_file()


def test_fomm_pairs_same_and_cross_identity(fomm_prepared, vox1_csv):
    test = [n.removesuffix(".mp4").replace("#", "_") for n in metadata_names(vox1_csv, "test", 4)]
    same = read_pairs(fomm_prepared / "pairs" / "same-identity.jsonl")
    assert [p.pair_id for p in same] == sorted(f"{n}-000" for n in test)
    assert all(p.source_frame == 0 and p.driving_frames == [0, 1, 2, 3, 4, 5] for p in same)
    assert all(not p.skip for p in same)  # the faceless clip too: it has a ground truth
    cross = read_pairs(fomm_prepared / "pairs" / "cross-identity.jsonl")
    assert len(cross) == 4
    assert all(p.source_clip.split("_")[0] != p.driving_clip.split("_")[0] for p in cross)
    # the faceless clip is a source kept in the list with its reason, never a driver
    (faceless,) = [p for p in cross if p.skip]
    assert faceless.source_clip == f"{test[3]}-000"
    assert faceless.skip == "source image has no face"
    assert all(p.driving_clip != faceless.source_clip for p in cross)


# --- interruption and resume -------------------------------------------------------------------

def complete_videos(out: Path) -> list[Path]:
    """Markers of the videos finished so far: skipped, or done with every clip's fits."""
    complete = sorted(out.glob("clips/*.skipped.json"))
    for marker in sorted(out.glob("clips/*.done.json")):
        try:
            clips = json.loads(marker.read_text())["clips"]
        except (OSError, ValueError):
            continue
        if all((out / "clips" / c / "fits.npz").is_file() for c in clips):
            complete.append(marker)
    return complete


def test_killed_preparation_resumes_without_redoing_finished_videos(fomm_root, fomm_prepared,
                                                                    vox1_csv, tmp_path, caplog):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "thbench", "datasets", "prepare", "--dataset", "voxceleb1",
               "--layout", "fomm", "--root", str(fomm_root), "--split", "test", "--out",
               str(out), "--list", str(vox1_csv), "--size", str(SIZE), "--frame-step", "2",
               "--workers", "2"]
    env = {**os.environ, "THB_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while not complete_videos(out) and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)  # the command and its worker processes
    process.wait()
    finished = complete_videos(out)
    assert 1 <= len(finished) < 6, "the kill came too late to interrupt anything"
    stamps = {p: p.stat().st_mtime_ns for p in finished}
    for marker in finished:
        for clip_id in json.loads(marker.read_text()).get("clips", []):
            for path in (out / "clips" / clip_id).rglob("*"):
                stamps[path] = path.stat().st_mtime_ns

    caplog.set_level(logging.INFO, logger="thbench")
    found = discover("voxceleb1", "fomm", fomm_root, "test", vox1_csv)
    outcomes = prepare_split(found, out, OPTIONS, {"dataset": "voxceleb1"}, fit=True)
    write_protocols(out, PairOptions(seed=0))
    assert f"{len(finished)} done earlier, {6 - len(finished)} to prepare" in caplog.messages[0]
    assert sum(o.reused for o in outcomes) == len(finished)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing finished was redone
    # the result equals the uninterrupted preparation, file for file
    reference = sorted(p.relative_to(fomm_prepared) for p in fomm_prepared.rglob("*")
                       if p.is_file() and p.suffix != ".npz")
    resumed = sorted(p.relative_to(out) for p in out.rglob("*")
                     if p.is_file() and p.suffix != ".npz")
    assert resumed == reference
    for relative in reference:
        if relative.name in ("dataset.json", "skipped.json") or relative.name.endswith(
                ".skipped.json"):
            continue
        assert (out / relative).read_bytes() == (fomm_prepared / relative).read_bytes(), relative
    ids = sorted(p.parent.name for p in out.glob("clips/*/fits.npz"))
    assert ids == sorted(p.parent.name for p in fomm_prepared.glob("clips/*/fits.npz"))


# --- VoxCeleb identity/video/segment layout ---------------------------------------------------

def test_voxceleb2_split_is_the_folder(tmp_path, crops):
    root = tmp_path / "vox2"
    write_video(root / "dev" / "mp4" / "id00012" / "21Uxsk56VDQ" / "00001.mp4", crops["man-a"])
    write_video(root / "test" / "mp4" / "id00017" / "01dfn2spqyE" / "00001.mp4", crops["man-b"])
    write_video(root / "test" / "mp4" / "id00061" / "0G9G9oyFHI8" / "00001.mp4",
                crops["woman-a"])
    write_video(root / "test" / "mp4" / "id00061" / "0G9G9oyFHI8" / "00002.mp4",
                crops["woman-b"])
    write_video(root / "test" / "mp4" / "id00090" / "street" / "00001.mp4", crops["noface"])
    write_video(root / "test" / "mp4" / "stray.mp4", crops["man-b"])
    found = discover("voxceleb2", "voxceleb", root, "test")
    assert [s.name for s in found.sources] == ["id00017_01dfn2spqyE_00001",
                                              "id00061_0G9G9oyFHI8_00001",
                                              "id00061_0G9G9oyFHI8_00002",
                                              "id00090_street_00001"]
    assert found.excluded == {"dev/mp4/id00012/21Uxsk56VDQ/00001.mp4": "in the dev split",
                              "test/mp4/stray.mp4": "not <identity>/<video>/<segment>.mp4"}
    assert found.split_file is None
    # the root may also be the split's own folder
    inner = discover("voxceleb2", "voxceleb", root / "test", "test")
    assert [s.name for s in inner.sources] == [s.name for s in found.sources]

    out = tmp_path / "out"
    options = PrepareOptions(size=64, frame_step=3, clip_length=2, crop="face",
                             skip_unusable=True)
    outcomes = prepare_split(found, out, options, {"dataset": "voxceleb2"}, fit=False)
    assert [len(o.clips) for o in outcomes] == [2, 2, 2, 0]  # 4 kept frames, clips of 2
    # --crop face needs a face to crop around: a video without any is skipped, with the reason
    assert outcomes[3].skipped.endswith("no face in any of its 4 kept frames, so nothing to "
                                        "crop around (--crop face)")
    assert list(json.loads((out / "skipped.json").read_text())) == ["id00090_street_00001"]
    counts = write_protocols(out, PairOptions(seed=3, cross_per_source=2))
    assert counts == {"same-identity": 6, "cross-identity": 6, "cross-identity undriven": 0}
    cross = read_pairs(out / "pairs" / "cross-identity.jsonl")
    assert {p.source_clip for p in cross} == {f"{s.name}-000" for s in found.sources[:3]}
    identity = {f"{s.name}-{n:03d}": s.identity for s in found.sources for n in range(2)}
    assert all(identity[p.source_clip] != identity[p.driving_clip] for p in cross)
    # one identity alone: no cross-identity driver, its sources counted with the reason
    alone = dataclasses.replace(found, sources=found.sources[1:3])
    prepare_split(alone, tmp_path / "alone", options, {}, fit=False)
    counts = write_protocols(tmp_path / "alone", PairOptions())
    assert counts == {"same-identity": 4, "cross-identity": 0, "cross-identity undriven": 2}
    record = json.loads((tmp_path / "alone" / "pairs" / "protocols.json").read_text())
    assert record["cross_identity_undriven"] == {f"{s.name}-000": NO_DRIVER
                                                 for s in alone.sources}


def test_voxceleb1_segments_take_the_fomm_partition_of_their_video(tmp_path, crops, vox1_csv):
    test = metadata_names(vox1_csv, "test", 1)[0].split("#")
    train = metadata_names(vox1_csv, "train", 1)[0].split("#")
    root = tmp_path / "vox1"
    write_video(root / test[0] / test[1] / "00001.mp4", crops["man-a"])
    write_video(root / train[0] / train[1] / "00001.mp4", crops["man-b"])
    write_video(root / "id19999" / "notAVideo00" / "00001.mp4", crops["man-b"])
    found = discover("voxceleb1", "voxceleb", root, "test", vox1_csv)
    assert [s.name for s in found.sources] == [f"{test[0]}_{test[1]}_00001"]
    assert found.excluded == {
        f"{train[0]}/{train[1]}/00001.mp4": "in the train split",
        "id19999/notAVideo00/00001.mp4": "video not in FOMM's vox-metadata.csv"}
    assert found.split_file.name == "vox1_metadata"


# --- TalkingHead-1KH ---------------------------------------------------------------------------

def test_talkinghead1kh_val_clips_checked_against_the_clip_list(tmp_path, crops):
    # video names as videos_split.sh writes them: <youtube_id>_<4-digit chunk>, ids with "_"
    listed = ["0Abc_d-EfGh_0003,1080,1920,120,480,700,80,1212,592",
              "0Abc_d-EfGh_0011,1080,1920,30,300,690,70,1200,580",
              "zYx_9_0000,1080,1920,0,300,640,40,1240,640",
              "notDownloaded_0001,1080,1920,0,90,600,50,1200,650"]
    clip_list = tmp_path / "val_list.txt"
    clip_list.write_text("\n".join(listed) + "\n")
    parsed = read_th1kh_list(clip_list)
    assert parsed[0].video_name == "0Abc_d-EfGh_0003" and parsed[0].box == (700, 80, 1212, 592)
    folder = tmp_path / "th1kh" / "val" / "cropped_clips"
    write_video(folder / parsed[0].file_name, crops["man-a"])
    write_video(folder / parsed[1].file_name, crops["man-b"])
    write_video(folder / parsed[2].file_name, crops["woman-a"])
    write_video(folder / "unlisted_S0_E10_L1_T2_R3_B4.mp4", crops["man-b"])
    found = discover("talkinghead1kh", "th1kh", tmp_path / "th1kh", "val", clip_list)
    # two chunks of one YouTube video are one speaker; "zYx_9" keeps its "_9"
    assert [s.identity for s in found.sources] == ["0Abc_d-EfGh", "0Abc_d-EfGh", "zYx_9"]
    assert found.sources[0].name == "0Abc_d-EfGh_0003_S120_E480_L700_T80_R1212_B592"
    assert found.excluded == {"val/cropped_clips/unlisted_S0_E10_L1_T2_R3_B4.mp4":
                              "not in the clip list"}
    assert found.missing == ["notDownloaded_0001_S0_E90_L600_T50_R1200_B650.mp4"]
    assert len(found.split_file.sha256) == 64

    out = tmp_path / "out"
    assert datasets_main(["prepare", "--dataset", "talkinghead1kh", "--layout", "th1kh",
                          "--root", str(tmp_path / "th1kh"), "--split", "val", "--list",
                          str(clip_list), "--out", str(out), "--size", "64", "--frame-step",
                          "4", "--no-fit", "--max-driving-frames", "2",
                          "--cross-per-source", "2"]) == 0
    same = read_pairs(out / "pairs" / "same-identity.jsonl")
    assert [p.driving_frames for p in same] == [[0, 1]] * 3  # 3 kept frames, at most 2
    cross = read_pairs(out / "pairs" / "cross-identity.jsonl")
    speaker = {s.name: s.identity for s in found.sources}
    assert cross and all(speaker[p.source_clip.rsplit("-", 1)[0]] !=
                         speaker[p.driving_clip.rsplit("-", 1)[0]] for p in cross)
    # two drivers per source where there are two: a chunk of 0Abc_d-EfGh has one other
    # speaker (zYx_9), never its sibling chunk; zYx_9 gets both chunks. Taking the chunk name
    # as the identity would give each chunk two drivers, one of them its own speaker.
    assert sorted((p.source_clip[:8], p.driving_clip[:8]) for p in cross) == [
        ("0Abc_d-E", "zYx_9_00"), ("0Abc_d-E", "zYx_9_00"),
        ("zYx_9_00", "0Abc_d-E"), ("zYx_9_00", "0Abc_d-E")]
    record = json.loads((out / "dataset.json").read_text())
    assert record["split_file"]["name"] == "talkinghead1kh-val-list"
    assert record["missing"] == found.missing and record["fits"] is None


def test_th1kh_list_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "list.txt"
    bad.write_text("vid,1080,1920,0,10,1,2,3,4\nvid,1080,1920,zero,10,1,2,3,4\n")
    with pytest.raises(ValueError, match=r"list.txt:2: not `video_name,H,W,S,E,L,T,R,B`"):
        read_th1kh_list(bad)


# --- split file --------------------------------------------------------------------------------

def test_vox1_split_counts_and_a_tampered_file_is_refused(vox1_csv, tmp_path):
    from thbench.core.assets import AssetCorrupt

    split = load_vox1_split(vox1_csv)
    # 19,550 train and 525 test rows upstream; with the repeated rows merged and the 3 clips
    # listed in both partitions in their video's first-row partition (train), FOMM's folders
    assert split.counts() == {"train": 19242, "test": 522}
    assert split.partition_of_clip("id10282#hgB5ziAudzU#008914#009055.mp4") == "train"
    assert split.partition_of_clip("id10306#ST2JZXcyYkE#018239#018675.mp4") == "train"
    assert split.partition_of_video("hgB5ziAudzU") == "train"
    assert split.partition_of_clip("id10005#WMh3ye5tBsE#003657#003994") == "train"
    tampered = tmp_path / "vox-metadata.csv"
    tampered.write_bytes(vox1_csv.read_bytes().replace(b",test,", b",train,", 1))
    with pytest.raises(AssetCorrupt, match="vox1_metadata"):
        load_vox1_split(tampered)


# --- pair lists --------------------------------------------------------------------------------

def synthetic_split(root: Path, order: list[int]) -> None:
    """Nine tiny clips of four identities (done markers as preparation writes them), created
    in the given order: pair lists must not depend on it."""
    videos = [(f"id{i % 4:05d}_vid{i}_00001", f"id{i % 4:05d}") for i in range(9)]
    for number in order:
        name, identity = videos[number]
        frames = [np.full((8, 8, 3), number * 10 + k, np.uint8) for k in range(4)]
        faces = [FaceRecord(frame=k, face=k != 2 or number != 5) for k in range(4)]
        info = ClipInfo(clip_id=f"{name}-000", identity=identity, source_file=f"{name}.mp4",
                        source_sha256="0" * 64, size=8, fps=25.0, frame_indices=[0, 1, 2, 3],
                        crop_box=[0, 0, 8, 8])
        write_clip(root / "clips" / info.clip_id, info, frames, faces)
        (root / "clips" / f"{name}.done.json").write_text(json.dumps({"clips": [info.clip_id]}))


def test_pair_lists_are_fixed_by_the_seed(tmp_path):
    for folder, order in (("a", list(range(9))), ("b", [4, 8, 0, 6, 2, 7, 1, 5, 3])):
        synthetic_split(tmp_path / folder, order)
        write_protocols(tmp_path / folder, PairOptions(seed=7, cross_per_source=2))
    for name in ("same-identity.jsonl", "cross-identity.jsonl", "protocols.json"):
        assert (tmp_path / "a" / "pairs" / name).read_bytes() == (
            tmp_path / "b" / "pairs" / name).read_bytes()
    cross = read_pairs(tmp_path / "a" / "pairs" / "cross-identity.jsonl")
    # pinned: numpy's PCG64 stream is stable across versions and machines, so is this list
    assert [p.pair_id.replace("_00001-000", "") for p in cross[:6]] == [
        "id00000_vid0__id00002_vid6", "id00000_vid0__id00003_vid3",
        "id00000_vid4__id00002_vid6", "id00000_vid4__id00003_vid3",
        "id00000_vid8__id00001_vid5", "id00000_vid8__id00003_vid3"]
    assert len(cross) == 18
    write_protocols(tmp_path / "a", PairOptions(seed=8, cross_per_source=2))
    other = read_pairs(tmp_path / "a" / "pairs" / "cross-identity.jsonl")
    assert [p.pair_id for p in other] != [p.pair_id for p in cross]


def test_driving_frames_subsampled_with_their_face_flags(tmp_path):
    synthetic_split(tmp_path, list(range(9)))
    write_protocols(tmp_path, PairOptions())
    same = {p.pair_id: p for p in read_pairs(tmp_path / "pairs" / "same-identity.jsonl")}
    pair = same["id00001_vid5_00001-000"]
    assert pair.driving_frames == [0, 1, 2, 3]
    assert pair.driving_faces == [True, True, False, True]
    (stepped,) = subsample_driving([pair], step=2)
    assert stepped.driving_frames == [0, 2] and stepped.driving_faces == [True, False]
    (limited,) = subsample_driving([pair], step=1, limit=3)
    assert limited.driving_frames == [0, 1, 2] and limited.driving_faces == [True, True, False]


# --- command line ------------------------------------------------------------------------------

def test_command_line_documents_itself():
    result = subprocess.run([sys.executable, "-m", "thbench", "datasets", "prepare", "--help"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for option in ("--layout", "--workers", "--split", "--clip-length", "--crop", "--no-fit",
                   "--retry-skipped", "--seed", "--driving-step", "vox-png"):
        assert option in result.stdout
    top = subprocess.run([sys.executable, "-m", "thbench", "datasets", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert "prepare" in top.stdout and "pairs" in top.stdout and "examples:" in top.stdout


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    code = datasets_main(["prepare", "--dataset", "voxceleb2", "--layout", "fomm", "--root",
                          str(tmp_path), "--split", "test", "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: voxceleb2 comes in layouts ('voxceleb',), not 'fomm'"
    code = datasets_main(["prepare", "--dataset", "voxceleb2", "--layout", "voxceleb",
                          "--root", str(tmp_path / "nowhere"), "--split", "test", "--out",
                          str(tmp_path / "o")])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nowhere'}: dataset folder " \
                                              "not found"


# --- frame rate ----------------------------------------------------------------------------------

def test_fps_option_resamples_to_the_nearest_frame_in_time(tmp_path, crops):
    from thbench.datasets.frames import kept_frames
    from thbench.datasets.source_clips import prepare_video

    folder = write_frame_folder(tmp_path / "clip", crops["man-a"][:10])  # a 25 fps source
    assert [i for i, _ in kept_frames(folder, 1, 30 / 25)] == [0, 1, 2, 4, 5, 6, 7, 8]
    assert [i for i, _ in kept_frames(folder, 1, 0.5)][:5] == [0, 1, 1, 2, 2]
    assert [i for i, _ in kept_frames(folder, 2, 0.5)][:4] == [0, 1, 2, 3]
    video = write_video(tmp_path / "clip.mp4", crops["man-a"][:10])  # 25 fps
    options = PrepareOptions(size=64, fps=12.5, crop="full")
    (clip,) = prepare_video(video, tmp_path / "out", "v", "man", options, FaceDetector())
    assert clip.info.frame_indices == [0, 2, 4, 6, 8] and clip.info.fps == 12.5
