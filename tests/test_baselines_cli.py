"""``python -m thbench animate``: end to end on real sample media for FOMM, TPSMM and
face-vid2vid (random-init checkpoints in the official layout), the PNG folder contract, and
one-line errors."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from thbench.baselines.checkpoint import save_official
from thbench.baselines.fomm import FOMM
from thbench.baselines.fv2v import FaceVid2Vid
from thbench.baselines.tpsmm import TPSMM
from thbench.cli.animate import main
from thbench.core.media import iter_video, read_image, to_tensor, to_uint8, write_png

REPO = Path(__file__).resolve().parents[1]
METHODS = {"fomm": FOMM, "tpsmm": TPSMM, "fv2v": FaceVid2Vid}


def _checkpoint(folder: Path, name: str, config: str, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    method = METHODS[name](config=config, allow_random_init=True)
    path = folder / f"{name}-{config}.pth.tar"
    save_official(path, dict(method.nets))
    return path


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("checkpoints")
    return {name: _checkpoint(folder, name, "tiny", seed=i) for i, name in enumerate(METHODS)}


@pytest.fixture(scope="module")
def media(pyfeat_data: Path) -> dict[str, Path]:
    paths = {"video": pyfeat_data / "single_face.mp4", "photo": pyfeat_data / "single_face.jpg"}
    for path in paths.values():
        if not path.is_file():
            pytest.skip(f"{path} is absent")
    return paths


@pytest.fixture(scope="module")
def frames_256(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 2 real 256x256 PNG driving frames (centre crops of single_face.mp4, frames
    0 and 6) and a 256x256 source (the photo's centre crop) beside it as source.png."""
    folder = tmp_path_factory.mktemp("frames256")
    driving = folder / "driving"
    driving.mkdir()
    frames = itertools.islice(iter_video(media["video"]), 0, 7, 6)
    for i, frame in enumerate(frames):
        crop = Image.fromarray(frame[:, 140:500]).resize((256, 256), Image.BILINEAR)
        write_png(driving / f"frame_{i:03d}.png", np.asarray(crop))
    photo = read_image(media["photo"])[:562, :562]
    write_png(folder / "source.png", np.asarray(Image.fromarray(photo).resize((256, 256))))
    return folder


def _outputs(folder: Path) -> list[np.ndarray]:
    names = sorted(os.listdir(folder))
    assert names == [f"{i:06d}.png" for i in range(len(names))]
    images = []
    for name in names:
        with Image.open(folder / name) as image:
            assert image.format == "PNG" and image.mode == "RGB"
            images.append(np.asarray(image))
    return images


def _expected(name: str, checkpoint: Path, config: str, source: np.ndarray,
              driving: list[np.ndarray], batch: int, **kwargs) -> np.ndarray:
    """What the method itself gives for these frames, in the same batches."""
    method = METHODS[name](checkpoint=checkpoint, config=config, **kwargs)
    frames = to_tensor(np.stack(driving))
    out = method.animate(to_tensor(source), frames.split(batch))
    return np.concatenate([to_uint8(o) for o in out])


# --- end to end --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fomm", "tpsmm", "fv2v"])
def test_animate_a_real_video_in_a_subprocess(name: str, tiny_checkpoints: dict[str, Path],
                                              media: dict[str, Path], tmp_path: Path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "thbench", "animate", "--method", name,
               "--config", "tiny", "--checkpoint", str(tiny_checkpoints[name]),
               "--source", str(media["photo"]), "--driving", str(media["video"]),
               "--out", str(out), "--max-frames", "3", "--batch-size", "2", "--crop", "none"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote 3 frames to {out}"
    images = _outputs(out)
    assert len(images) == 3
    assert {image.shape for image in images} == {(360, 640, 3)}  # the driving frame size
    # frame k of the output is the method's output for driving frame k, source = the photo
    driving = list(itertools.islice(iter_video(media["video"]), 3))
    expected = _expected(name, tiny_checkpoints[name], "tiny", read_image(media["photo"]),
                         driving, batch=2)
    difference = np.abs(np.stack(images).astype(int) - expected.astype(int))
    assert difference.max() <= 1, difference.max()


@pytest.mark.parametrize("name", ["fomm", "tpsmm"])
def test_png_folder_in_and_out_at_256_resizes_nothing(name: str, frames_256: Path,
                                                      tmp_path: Path):
    """vox256 takes 256x256 frames as they are: the PNGs written are the networks' outputs on
    the input pixels, with no resampling on the way in or out."""
    checkpoint = _checkpoint(tmp_path, name, "vox256")
    out = tmp_path / "out"
    code = main(["--method", name, "--checkpoint", str(checkpoint),
                 "--source", str(frames_256 / "source.png"),
                 "--driving", str(frames_256 / "driving"), "--out", str(out),
                 "--batch-size", "2", "--crop", "none"])
    assert code == 0
    images = _outputs(out)
    assert len(images) == 2 and {image.shape for image in images} == {(256, 256, 3)}

    method = METHODS[name](checkpoint=checkpoint)
    source = to_tensor(read_image(frames_256 / "source.png"))[None]
    driving = torch.stack([to_tensor(read_image(p))
                           for p in sorted((frames_256 / "driving").iterdir())])
    with torch.no_grad():  # the model called directly at its resolution: no resize anywhere
        method.prepare(source, driving[:1])
        expected = to_uint8(method.generate(source, driving).clamp(0, 1))
    difference = np.abs(np.stack(images).astype(int) - expected.astype(int))
    assert difference.max() <= 1, difference.max()


def test_png_folder_contract_for_fv2v(frames_256: Path, tiny_checkpoints: dict[str, Path],
                                      tmp_path: Path):
    out = tmp_path / "out"
    code = main(["--method", "fv2v", "--config", "tiny",
                 "--checkpoint", str(tiny_checkpoints["fv2v"]),
                 "--source", str(frames_256 / "source.png"),
                 "--driving", str(frames_256 / "driving"), "--out", str(out),
                 "--yaw", "20", "--pitch", "-5", "--roll", "0", "--crop", "none"])
    assert code == 0
    images = _outputs(out)
    assert len(images) == 2 and {image.shape for image in images} == {(256, 256, 3)}
    driving = [read_image(p) for p in sorted((frames_256 / "driving").iterdir())]
    expected = _expected("fv2v", tiny_checkpoints["fv2v"], "tiny",
                         read_image(frames_256 / "source.png"), driving, batch=8,
                         yaw=20.0, pitch=-5.0, roll=0.0)
    assert np.abs(np.stack(images).astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.slow
def test_png_folder_in_and_out_at_256_resizes_nothing_fv2v(frames_256: Path, tmp_path: Path):
    checkpoint = _checkpoint(tmp_path, "fv2v", "vox256")
    out = tmp_path / "out"
    assert main(["--method", "fv2v", "--checkpoint", str(checkpoint),
                 "--source", str(frames_256 / "source.png"),
                 "--driving", str(frames_256 / "driving"), "--out", str(out),
                 "--max-frames", "1", "--crop", "none"]) == 0
    images = _outputs(out)
    assert len(images) == 1 and images[0].shape == (256, 256, 3)
    method = FaceVid2Vid(checkpoint=checkpoint)
    source = to_tensor(read_image(frames_256 / "source.png"))
    first = to_tensor(read_image(sorted((frames_256 / "driving").iterdir())[0]))
    with torch.no_grad():
        method.setup(source, first)
        state = method._state
        he = method.nets["he_estimator"](first[None])
        from thbench.baselines.fv2v_motion import transform_keypoints

        kp = transform_keypoints(state["kp_canonical"], he)
        raw = method.nets["generator"].decode(state["feature"], kp, state["kp_source"])
    expected = to_uint8(raw["prediction"].clamp(0, 1))
    assert np.abs(images[0].astype(int) - expected[0].astype(int)).max() <= 1


# --- any photo and video, no checkpoint ---------------------------------------------------------


@pytest.fixture(scope="module")
def everyday_media(media: dict[str, Path], pyfeat_data: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 640x480 photo (single_face.jpg resized) and a 480p video (854x480: the first 6
    frames of WolfgangLanger_Pexels.mp4, 640x360, enlarged), as a user has them."""
    import av

    video = pyfeat_data / "WolfgangLanger_Pexels.mp4"
    if not video.is_file():
        pytest.skip(f"{video} is absent")
    folder = tmp_path_factory.mktemp("everyday")
    photo = folder / "photo.jpg"
    Image.fromarray(read_image(media["photo"])).resize((640, 480)).save(photo)
    clip = folder / "clip480p.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 854, 480, "yuv420p"
        for frame in itertools.islice(iter_video(video), 6):
            image = np.asarray(Image.fromarray(frame).resize((854, 480)))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return {"photo": photo, "video": clip}


def _animate(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "thbench", "animate", *argv], cwd=REPO,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **env},
                          capture_output=True, text=True, timeout=300)


def test_animate_without_a_checkpoint_on_a_photo_and_a_480p_video(
        everyday_media: dict[str, Path], tmp_path: Path):
    """No --checkpoint: a method without weights runs; one with weights uses the official file
    the asset manager's folder holds, or says in one line what is missing and how to get it.
    Both inputs are face-cropped to the method's size, and the crop is printed."""
    empty = {"THB_ASSETS_DIR": str(tmp_path / "assets"), "THB_CACHE_DIR": str(tmp_path)}
    media = ["--source", str(everyday_media["photo"]), "--driving", str(everyday_media["video"])]
    out = tmp_path / "copy.mp4"
    done = _animate(["--method", "source-copy", *media, "--out", str(out)], empty)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"source: {everyday_media['photo']} 640x480, face crop: x ")
    assert lines[1].startswith(f"driving: {everyday_media['video']} 854x480, face crop")
    assert lines[0].endswith("-> 256x256") and lines[1].endswith("-> 256x256")
    assert lines[2] == f"wrote 6 frames to {out}"
    frames = list(iter_video(out))
    assert len(frames) == 6 and frames[0].shape == (256, 256, 3)

    missing = _animate(["--method", "tpsmm", *media, "--out", str(tmp_path / "t.mp4")], empty)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith("error: tpsmm needs trained weights")
    assert "$THB_ASSETS_DIR as vox.pth.tar" in missing.stderr
    assert "checkpoints/tpsmm-tiny-sample/checkpoint.pth.tar --config tiny" in missing.stderr
    assert not (tmp_path / "t.mp4").exists()

    (tmp_path / "assets").mkdir()  # the official layout and size: vox256, under its name
    official = tmp_path / "assets" / "vox.pth.tar"
    torch.manual_seed(0)
    save_official(official, dict(TPSMM(allow_random_init=True).nets))
    out = tmp_path / "tpsmm.mp4"
    done = _animate(["--method", "tpsmm", *media, "--out", str(out), "--max-frames", "2"],
                    empty)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"checkpoint: {official} (the official one, from " \
        "the asset manager's folders)"
    assert [f.shape for f in iter_video(out)] == [(256, 256, 3)] * 2


def test_face_crop_is_the_datasets_crop(everyday_media: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]):
    """The source is cropped as the benchmark's datasets crop a photo (the square around the
    largest dlib face, 1.8 times its size), and --crop centre takes the centred square."""
    from thbench.datasets.crop import centre_box, clip_box, crop
    from thbench.facegeom.detect import FaceDetector

    photo = read_image(everyday_media["photo"])
    face = FaceDetector().largest(photo)
    assert face is not None
    for mode, box in (("face", clip_box([face.bbox])), ("centre", centre_box(640, 480))):
        out = tmp_path / mode
        assert main(["--method", "source-copy", "--source", str(everyday_media["photo"]),
                     "--driving", str(everyday_media["photo"]), "--out", str(out),
                     "--crop", mode, "--size", "128"]) == 0
        (image,) = _outputs(out)
        expected = crop(photo, box, 128)
        assert np.abs(image.astype(int) - expected.astype(int)).max() == 0, mode
    assert "centre crop: x 80..560, y 0..480 -> 128x128" in capsys.readouterr().out


def test_debug_prints_the_traceback(capsys: pytest.CaptureFixture[str], media: dict[str, Path],
                                    tmp_path: Path):
    argv = ["--method", "fomm", "--checkpoint", str(tmp_path / "absent.pth"), "--source",
            str(media["photo"]), "--driving", str(media["video"]), "--out", str(tmp_path)]
    assert main(argv) == 2
    plain = capsys.readouterr().err
    assert main([*argv, "--debug"]) == 2
    debug = capsys.readouterr().err
    assert "Traceback" not in plain and "Traceback (most recent call last)" in debug
    assert debug.splitlines()[-1] == plain.strip()  # the same one line, after the traceback


# --- errors ------------------------------------------------------------------------------------


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    assert all(line.startswith("source: ") for line in captured.out.splitlines())  # the crop
    return lines[0]


def test_one_line_errors(capsys: pytest.CaptureFixture[str], tiny_checkpoints: dict[str, Path],
                         media: dict[str, Path], tmp_path: Path):
    def argv(method="fomm", checkpoint=tiny_checkpoints["fomm"], driving=media["video"],
             *extra):
        return ["--method", method, "--config", "tiny", "--checkpoint",
                str(checkpoint), "--source", str(media["photo"]), "--driving", str(driving),
                "--out", str(tmp_path / "out"), "--max-frames", "2", *extra]

    message = _fails(capsys, argv(checkpoint=tmp_path / "absent.pth"))
    assert message == f"error: {tmp_path / 'absent.pth'}: checkpoint file not found"

    message = _fails(capsys, argv("tpsmm", tiny_checkpoints["fomm"]))  # FOMM file for TPSMM
    assert "missing top-level keys" in message and "do --method and --config match" in message

    vox = ["--config", "vox256"]  # a tiny checkpoint is not a vox256 one (the last --config wins)
    message = _fails(capsys, argv("fomm", tiny_checkpoints["fomm"], media["video"], *vox))
    assert "checkpoint does not match the model" in message and "!=" in message

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(os.urandom(256))
    unreadable = _fails(capsys, argv(checkpoint=garbage))
    assert "not a readable checkpoint" in unreadable and "--config match" not in unreadable

    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(media["video"].read_bytes()[:4096] + os.urandom(2048))
    message = _fails(capsys, argv(driving=corrupt))
    assert str(corrupt) in message

    empty = tmp_path / "no-frames"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    message = _fails(capsys, argv(driving=empty))
    assert message.startswith(f"error: {empty}: folder holds no image frames")

    message = _fails(capsys, argv("fomm", tiny_checkpoints["fomm"], media["video"],
                                  "--yaw", "10"))
    assert message == "error: --yaw does not apply to fomm (it takes: --mode)"

    message = _fails(capsys, argv("fomm", tiny_checkpoints["fomm"], tmp_path / "absent.mp4"))
    assert message == f"error: {tmp_path / 'absent.mp4'}: file not found"


def test_errors_in_a_subprocess_have_no_traceback(tiny_checkpoints: dict[str, Path],
                                                  media: dict[str, Path], tmp_path: Path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    result = subprocess.run(
        [sys.executable, "-m", "thbench", "animate", "--method", "tpsmm", "--config", "tiny",
         "--checkpoint", str(tiny_checkpoints["tpsmm"]), "--source", str(media["photo"]),
         "--driving", str(corrupt), "--out", str(tmp_path / "out")],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {corrupt}: ")
    assert "Traceback" not in result.stderr
    assert not any((tmp_path / "out").glob("*.png"))


# --- speed benchmark ---------------------------------------------------------------------------


def test_bench_prints_frames_per_second_of_each_baseline(capsys: pytest.CaptureFixture[str]):
    from thbench.profiling import baselines as bench

    threads = torch.get_num_threads()
    assert bench.main(["--config", "tiny", "--size", "64", "--frames", "3", "--batch-size",
                       "2", "--warmup", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"torch {torch.__version__}, {threads} threads")
    assert [line.split()[:2] for line in lines[1:]] == [[m, "tiny"] for m in bench.METHODS]
    for line in lines[1:]:
        fps = float(line.split()[2])
        assert fps > 0 and "frames/s" in line and "at 64x64, batch 2, 4 frames" in line
    result = bench.measure("tpsmm", "tiny", frames=1, size=64, warmup=0)
    assert result.frames == 1 and result.fps == pytest.approx(1 / result.seconds)
    with pytest.raises(ValueError, match="unknown baseline"):
        bench.measure("hidenerf", "tiny")
