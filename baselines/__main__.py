"""Command line: animate a source image with a driving video using a warping baseline.

    python -m baselines animate --method fomm --checkpoint vox-cpk.pth.tar \
        --source face.png --driving clip.mp4 --out frames/

``python -m baselines train --config configs/train/fomm-tiny-sample.toml [--resume]`` trains
one (also under ``torchrun``); see :mod:`baselines.train`.

``--driving`` is a video file or a folder of image frames (sorted by name); ``--out`` is a
folder (one RGB PNG per driving frame: 000000.png, 000001.png, ... at the driving frame size)
or a video file (.mp4, .mkv, ...). ``--max-frames N`` animates the first N driving frames only.
Errors are one line naming the file and the problem (exit status 2).
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from baselines.checkpoint import CheckpointMismatch, UnreadableCheckpoint
from benchcore.media import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    MediaError,
    iter_video,
    read_image,
    to_tensor,
    to_uint8,
    video_fps,
    write_png,
)
from benchcore.train_config import add_train_arguments, config_from_arguments

METHOD_MODULES = {"fomm": "baselines.fomm", "tpsmm": "baselines.tpsmm", "fv2v": "baselines.fv2v"}


class CliError(Exception):
    """A user-facing problem: printed as one line, exit status 2."""


def load_method(name: str):
    """Import the method's module lazily (face-vid2vid may be absent) and return its class."""
    from benchcore.method import _REGISTRY

    module = METHOD_MODULES.get(name)
    if module is None:
        raise CliError(f"unknown method {name!r}; known: {', '.join(METHOD_MODULES)}")
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module:
            raise
        raise CliError(f"method {name!r} is not available in this installation "
                       f"(module {module} missing)") from None
    return _REGISTRY[name]


def driving_frames(path: Path) -> tuple[Iterator[np.ndarray], float]:
    """Frames of a video file or of an image folder (sorted by name), and the frame rate."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise CliError(f"{path}: folder holds no image frames "
                           f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        return (read_image(p) for p in files), 25.0
    if not path.exists():
        raise CliError(f"{path}: file not found")
    if path.suffix.lower() not in VIDEO_SUFFIXES and path.suffix.lower() not in IMAGE_SUFFIXES:
        raise CliError(f"{path}: not a video ({', '.join(sorted(VIDEO_SUFFIXES))}) or a folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return iter([read_image(path)]), 25.0
    return iter_video(path), video_fps(path)


def batches(frames: Iterator[np.ndarray], size: int, origin: Path) -> Iterator[torch.Tensor]:
    shape = None
    batch: list[np.ndarray] = []
    for frame in frames:
        if shape is None:
            shape = frame.shape
        elif frame.shape != shape:
            raise CliError(f"{origin}: frames differ in size ({frame.shape[:2]} after "
                           f"{shape[:2]})")
        batch.append(frame)
        if len(batch) == size:
            yield to_tensor(np.stack(batch))
            batch = []
    if batch:
        yield to_tensor(np.stack(batch))
    if shape is None:
        raise CliError(f"{origin}: no driving frames")


class FrameSink:
    """Writes frames to a PNG folder or to a video file (written to a temp name, then moved)."""

    def __init__(self, out: Path, fps: float) -> None:
        self.out, self.fps, self.count = out, fps, 0
        self.video = out.suffix.lower() in VIDEO_SUFFIXES
        self.container = None
        if self.video:
            out.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
        else:
            if out.exists() and not out.is_dir():
                raise CliError(f"{out}: exists and is not a folder")
            out.mkdir(parents=True, exist_ok=True)

    def write(self, frame: np.ndarray) -> None:
        if not self.video:
            write_png(self.out / f"{self.count:06d}.png", frame)
        else:
            self._write_video(frame)
        self.count += 1

    def _write_video(self, frame: np.ndarray) -> None:
        from fractions import Fraction

        import av

        if self.container is None:
            height, width = frame.shape[:2]
            if height % 2 or width % 2:
                raise CliError(f"{self.out}: H.264 needs even frame sizes, the driving frames are "
                               f"{width}x{height}; write to a folder instead")
            self.container = av.open(str(self.tmp), mode="w")
            self.stream = self.container.add_stream("libx264",
                                                    rate=Fraction(self.fps).limit_denominator(1001))
            self.stream.width, self.stream.height = width, height
            self.stream.pix_fmt = "yuv420p"
        image = av.VideoFrame.from_ndarray(frame, format="rgb24")
        for packet in self.stream.encode(image):
            self.container.mux(packet)

    def close(self, complete: bool) -> None:
        """Finish the video (``complete``) or drop the partial file."""
        if self.container is None:
            return
        if complete:
            for packet in self.stream.encode():
                self.container.mux(packet)
        self.container.close()
        if complete:
            os.replace(self.tmp, self.out)
        else:
            self.tmp.unlink(missing_ok=True)


def animate(args: argparse.Namespace) -> int:
    cls = load_method(args.method)
    kwargs = {"checkpoint": args.checkpoint, "config": args.config, "device": args.device}
    if args.mode is not None:
        kwargs["mode"] = args.mode
    angles = {k: getattr(args, k) for k in ("yaw", "pitch", "roll") if getattr(args, k) is not None}
    if angles and args.method != "fv2v":
        raise CliError(f"--yaw/--pitch/--roll apply to fv2v only, not {args.method}")
    kwargs.update(angles)
    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_file():
        raise CliError(f"{checkpoint}: checkpoint file not found")
    method = cls(**kwargs)
    source = to_tensor(np.array(read_image(args.source)))
    frames, fps = driving_frames(Path(args.driving))
    if args.max_frames is not None:
        frames = itertools.islice(frames, args.max_frames)
    sink = FrameSink(Path(args.out), fps)
    complete = False
    try:
        for output in method.animate(source, batches(frames, args.batch_size,
                                                     Path(args.driving))):
            for frame in to_uint8(output):
                sink.write(frame)
        complete = True
    finally:
        sink.close(complete)
    print(f"wrote {sink.count} frames to {args.out}")
    return 0


def train(args: argparse.Namespace) -> int:
    from baselines.train import train as train_baseline
    from benchcore.training import leave

    train_baseline(config_from_arguments(args), resume=args.resume, stop_at=args.stop_at)
    leave()  # not on an error: a barrier there would wait for ranks stuck elsewhere
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m baselines", description=__doc__.split("\n")[0])
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("animate", help="animate a source image with a driving video")
    run.add_argument("--method", required=True, choices=sorted(METHOD_MODULES))
    run.add_argument("--checkpoint", required=True, help="official-layout checkpoint file")
    run.add_argument("--source", required=True, help="source image")
    run.add_argument("--driving", required=True, help="driving video or folder of frames")
    run.add_argument("--out", required=True, help="output folder (PNG frames) or video file")
    run.add_argument("--mode", choices=["relative", "absolute", "avd"], default=None,
                     help="motion transfer (default: the method's official demo default)")
    for angle in ("yaw", "pitch", "roll"):
        run.add_argument(f"--{angle}", type=float, default=None,
                         help=f"fv2v only: fixed {angle} in degrees (free view)")
    run.add_argument("--config", default="vox256", help="vox256 (official) or tiny")
    run.add_argument("--device", default="cpu")
    run.add_argument("--batch-size", type=_positive, default=8)
    run.add_argument("--max-frames", type=_positive, default=None,
                     help="animate only the first N driving frames")
    fit = commands.add_parser("train", help="train a baseline from a training config "
                              "(a single process or under torchrun)")
    add_train_arguments(fit)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return train(args) if args.command == "train" else animate(args)
    except (CliError, MediaError, CheckpointMismatch, ValueError, KeyError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        if isinstance(error, CheckpointMismatch) and not isinstance(error, UnreadableCheckpoint):
            message = f"{message} (do --method and --config match this checkpoint?)"
        print("error: " + " ".join(str(message).split()), file=sys.stderr)  # one line
        return 2


if __name__ == "__main__":
    sys.exit(main())
