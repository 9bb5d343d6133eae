"""``python -m thbench animate``: animate a source image with a driving video, with any method
of the registry (:mod:`thbench.core.families`)::

    python -m thbench animate --method fomm --checkpoint vox-cpk.pth.tar \
        --source face.png --driving clip.mp4 --out frames/

``--driving`` is a video file, an image or a folder of image frames (sorted by name); ``--out``
is a folder (one RGB PNG per driving frame: 000000.png, 000001.png, ... at the driving frame
size) or a video file (.mp4, .mkv, ...). ``--max-frames N`` animates the first N driving
frames only. ``--checkpoint random`` runs a seeded random initialisation (smoke tests).
``--mode`` (motion transfer) and ``--yaw/--pitch/--roll`` (free view) apply to the families
that declare them. Errors are one line naming the file and the problem (exit status 2).
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from thbench.baselines.checkpoint import CheckpointMismatch, UnreadableCheckpoint
from thbench.core.families import Family, available, family
from thbench.core.media import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    iter_video,
    read_image,
    to_tensor,
    to_uint8,
    video_fps,
    write_png,
)

ANGLES = ("yaw", "pitch", "roll")


class CliError(Exception):
    """A user-facing problem: printed as one line, exit status 2."""


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


def method_options(args: argparse.Namespace, chosen: Family) -> dict:
    """The constructor options the command line gives ``chosen``; an option the family does not
    declare (``Family.animate_options``) is an error, not silently dropped."""
    options = {"device": args.device}
    if args.config is not None:
        options["config"] = args.config
    given = {k: getattr(args, k) for k in ("mode", *ANGLES) if getattr(args, k) is not None}
    refused = sorted(set(given) - set(chosen.animate_options))
    if refused:
        flags = "/".join(f"--{k}" for k in refused)
        verb = "does" if len(refused) == 1 else "do"
        raise CliError(f"{flags} {verb} not apply to {chosen.name} (it takes: "
                       f"{', '.join('--' + k for k in chosen.animate_options) or 'neither'})")
    options.update(given)
    if args.checkpoint == "random":
        if "allow_random_init" in inspect.signature(chosen.method_class()).parameters:
            options["allow_random_init"] = True
        return options
    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_file():
        raise CliError(f"{checkpoint}: checkpoint file not found")
    return options | {"checkpoint": str(checkpoint)}


def animate(args: argparse.Namespace) -> int:
    chosen = family(args.method)
    method = chosen.method_class()(**method_options(args, chosen))
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


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    run = argparse.ArgumentParser(prog="python -m thbench animate",
                                  description=__doc__.split("\n")[0])
    run.add_argument("--method", required=True,
                     help=f"{', '.join(available())}, or package.module:Class")
    run.add_argument("--checkpoint", required=True,
                     help="the method's checkpoint file, or 'random' (seeded random weights)")
    run.add_argument("--source", required=True, help="source image")
    run.add_argument("--driving", required=True, help="driving video, image or folder of frames")
    run.add_argument("--out", required=True, help="output folder (PNG frames) or video file")
    run.add_argument("--config", default=None,
                     help="model config, e.g. vox256 (the baselines' default) or tiny; "
                          "HiDe-NeRF: the checkpoint's")
    run.add_argument("--mode", choices=["relative", "absolute", "avd"], default=None,
                     help="motion transfer (default: the method's official demo default)")
    for angle in ANGLES:
        run.add_argument(f"--{angle}", type=float, default=None,
                         help=f"fixed {angle} in degrees (free view: fv2v, hidenerf)")
    run.add_argument("--device", default="cpu")
    run.add_argument("--batch-size", type=_positive, default=8)
    run.add_argument("--max-frames", type=_positive, default=None,
                     help="animate only the first N driving frames")
    return run


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return animate(args)
    except (CliError, ValueError, KeyError, OSError) as error:  # MediaError, checkpoint errors
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        if isinstance(error, CheckpointMismatch) and not isinstance(error, UnreadableCheckpoint):
            message = f"{message} (do --method and --config match this checkpoint?)"
        print("error: " + " ".join(str(message).split()), file=sys.stderr)  # one line
        return 2
    except ImportError as error:
        print(f"error: {args.method} is not available in this installation ({error})",
              file=sys.stderr)
        return 2
