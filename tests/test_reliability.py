"""A run killed with SIGKILL loses at most the pair in flight; bad inputs are one-line errors."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from thbench.core.media import MediaError, iter_video, read_image
from thbench.eval.results import COLUMNS, ResultStore

REPO = Path(__file__).resolve().parents[1]


def _run(folder: Path, dataset_root: Path, run_config) -> subprocess.Popen:
    env = {**os.environ, "THB_PROGRESS": "0", "THB_CACHE_DIR": str(folder / "cache")}
    config = run_config(folder, "killed", dataset_root, ["l1", "akd", "csim"])
    return subprocess.Popen(
        [sys.executable, "-m", "thbench", "eval", "run", "--config", str(config)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_mid_run_then_rerun_equals_an_uninterrupted_run(mini_dataset, run_config,
                                                                 tmp_path: Path) -> None:
    reference = _run(tmp_path / "whole", mini_dataset.root, run_config)
    killed_dir = tmp_path / "killed"
    victim = _run(killed_dir, mini_dataset.root, run_config)
    results = killed_dir / "runs" / "killed" / "results.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (results.is_file() and
                                               results.read_text().count("\n") > 3):
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert reference.wait(timeout=300) == 0, reference.stderr.read()[-2000:]
    whole = ResultStore(tmp_path / "whole" / "runs" / "killed" / "results.csv").rows()
    interrupted = ResultStore(results).rows()
    assert 0 < len(interrupted) < len(whole), "the kill came too late to test anything"

    rerun = _run(killed_dir, mini_dataset.root, run_config)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read()[-2000:]
    out = rerun.stdout.read()
    assert "reused" in out
    final = ResultStore(results).rows()
    assert sorted((r.key, r.value, r.frames, r.status) for r in final) == sorted(
        (r.key, r.value, r.frames, r.status) for r in whole)
    lines = [line for line in results.read_text().splitlines() if line.strip()]
    assert lines.count(",".join(COLUMNS)) == 1
    assert len(lines) - 1 == len(final)  # no row written twice, no torn line left behind


def test_torn_last_line_is_ignored_and_repaired(tmp_path: Path) -> None:
    from thbench.eval.results import ResultRow

    store = ResultStore(tmp_path / "results.csv")
    row = ResultRow("m", "d", "p", "pair", "l1", "exact", 0.5, 3)
    store.append([row])
    with (tmp_path / "results.csv").open("a") as handle:
        handle.write("m,d,p,pair2,l1,exa")  # killed mid-write
    assert store.rows() == [row]
    second = ResultRow("m", "d", "p", "pair2", "l1", "exact", 0.25, 3)
    store.append([second])
    assert store.rows() == [row, second]


def test_set_rows_carry_their_sample_and_older_layouts_still_read(tmp_path: Path) -> None:
    from thbench.eval.results import COVERAGE_COLUMNS, ResultRow

    store = ResultStore(tmp_path / "results.csv")
    kid = ResultRow("m", "d", "p", "(all pairs)", "kid", "x", 0.012, 40, real_frames=5,
                    std=0.003)
    store.append([kid])
    assert store.rows() == [kid]
    older = tmp_path / "older.csv"  # the layout before real_frames and std
    row_text = "m,d,p,(all pairs),fid,x,12.5,40,ok,,40,3,0,0"
    older.write_text(",".join(COVERAGE_COLUMNS) + f"\n{row_text}\n")
    (row,) = ResultStore(older).rows()
    assert (row.value, row.frames, row.real_frames, row.std) == (12.5, 40, 0, None)


# -- bad inputs, made from the real sample media -------------------------------------------------

def test_truncated_video_is_a_one_line_error_naming_the_file(pyfeat_data: Path,
                                                             tmp_path: Path) -> None:
    data = (pyfeat_data / "single_face.mp4").read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(MediaError) as error:
        for _ in iter_video(truncated):
            pass
    message = str(error.value)
    assert message.startswith(f"{truncated}: ") and "\n" not in message


def test_zero_frame_and_non_video_files(tmp_path: Path) -> None:
    import av

    empty = tmp_path / "empty.mp4"
    with av.open(str(empty), "w") as container:  # a header and a flushed encoder, no frame
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
        for packet in stream.encode(None):
            container.mux(packet)
    assert empty.stat().st_size > 0
    with pytest.raises(MediaError, match=f"{empty}: (video has no frames|no video stream)"):
        list(iter_video(empty))
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(MediaError, match=str(text)):
        list(iter_video(text))


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "P"])
def test_image_modes_become_rgb_uint8(pyfeat_data: Path, tmp_path: Path, mode: str) -> None:
    photo = Image.open(pyfeat_data / "single_face.jpg").convert("RGB")
    if mode == "I;16":
        grey = np.asarray(photo.convert("L"), np.uint16) * 257
        converted = Image.fromarray(grey)
        assert converted.mode.startswith("I;16")
    else:
        converted = photo.convert(mode)
    path = tmp_path / f"photo-{mode.replace(';', '')}.png"
    converted.save(path)
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (photo.height, photo.width, 3)
    if mode in ("L", "I;16"):
        assert np.array_equal(image[..., 0], image[..., 2])  # grey replicated
        reference = np.asarray(photo.convert("L"))
        assert np.abs(image[..., 0].astype(int) - reference).max() <= 1


def test_images_of_any_size_and_aspect_prepare_or_say_why(pyfeat_data: Path,
                                                          tmp_path: Path) -> None:
    from thbench.datasets.source_clips import PrepareOptions, prepare_image
    from thbench.facegeom.detect import FaceDetector

    photo = Image.open(pyfeat_data / "single_face.jpg").convert("RGB")
    detector = FaceDetector()
    options = PrepareOptions(size=64, frame_step=4, clip_length=16, crop="face")
    huge_size = (3840, round(photo.height * 3840 / photo.width))  # 4K wide, aspect kept
    cases = {"tiny": photo.resize((32, 32)), "huge": photo.resize(huge_size),
             "wide": photo.crop((0, 0, photo.width, photo.height // 2))}
    for name, image in cases.items():
        path = tmp_path / f"{name}.png"
        image.save(path)
        clip = prepare_image(path, tmp_path / "out", name, name, options, detector)
        assert clip.frame(0).shape == (64, 64, 3)
    tiny = prepare_image(tmp_path / "tiny.png", tmp_path / "out", "tiny", "x", options, detector)
    assert tiny.info.notes == ["no face found: centre crop"]  # 32 px: too small for dlib
    huge = prepare_image(tmp_path / "huge.png", tmp_path / "out", "huge", "x", options, detector)
    normal = prepare_image(pyfeat_data / "single_face.jpg", tmp_path / "out", "normal", "x",
                           options, detector)
    assert huge.faces()[0].face  # found on the downscaled copy, landmarks at full resolution
    # the same face, the same crop: landmarks agree within 2 px of the 64 px clip
    assert np.abs(np.subtract(huge.faces()[0].landmarks, normal.faces()[0].landmarks)).mean() < 2


def test_method_with_wrong_shape_is_an_error_row(mini_dataset, tmp_path: Path) -> None:
    from thbench.core.method import FramewiseMethod
    from thbench.eval.metrics import build_metrics
    from thbench.eval.runner import Runner

    class HalfSize(FramewiseMethod):
        name = "half-size"

        def forward_batch(self, driving):
            return driving[..., ::2, ::2]

    runner = Runner(mini_dataset, ResultStore(tmp_path / "results.csv"), tmp_path / "outputs",
                    build_metrics(["l1"]))
    summary = runner.run("half-size", HalfSize, ["same-identity"])
    assert len(summary.problems) == 3 and summary.computed == 0
    assert "method returned shape (5, 3, 64, 64) for a driving batch of (5, 3, 128, 128)" in (
        summary.problems[0].message)


def test_preparation_skips_a_corrupt_file_and_goes_on(pyfeat_data: Path, tmp_path: Path,
                                                      monkeypatch, caplog) -> None:
    import json

    from thbench.datasets import sample
    from thbench.datasets.source_clips import PrepareOptions

    media = tmp_path / "media"
    media.mkdir()
    for name in ("single_face.mp4", "single_face.jpg"):
        (media / name).symlink_to(pyfeat_data / name)
    data = (pyfeat_data / "single_face.mp4").read_bytes()
    (media / "broken.mp4").write_bytes(data[: len(data) // 3])
    monkeypatch.setattr(sample, "sample_media_dir", lambda: media)
    monkeypatch.setattr(sample, "VIDEOS", [("broken.mp4", "broken", "x"),
                                           ("single_face.mp4", "man", "man")])
    monkeypatch.setattr(sample, "PHOTOS", [("single_face.jpg", "photo-man", "man")])
    monkeypatch.setattr(sample, "PACKAGE_PHOTOS", [])
    caplog.set_level(logging.INFO, logger="thbench")
    dataset = sample.prepare_sample_set(tmp_path / "set", PrepareOptions(64, 12, 5, crop="face"))
    skipped = json.loads((tmp_path / "set" / "skipped.json").read_text())
    assert list(skipped) == ["broken.mp4"] and str(media / "broken.mp4") in skipped["broken.mp4"]
    assert any(line.startswith("  skipped broken.mp4: ") for line in caplog.messages)
    assert [p.pair_id for p in dataset.pairs("same-identity")] == ["man-000"]
