"""``python -m thbench animate``: animate a source image with a driving video, with any method
of the registry (:mod:`thbench.core.families`)::

    python -m thbench animate --method tpsmm --source face.jpg --driving clip.mp4 --out out.mp4

``--source`` is any photo; ``--driving`` a video file, an image or a folder of image frames
(sorted by name); ``--out`` a folder (one RGB PNG per driving frame: 000000.png, 000001.png,
...) or a video file (.mp4, .mkv, ...). ``--max-frames N`` animates the first N driving frames.

Framing (``--crop``): the methods are trained and evaluated on square face crops, so by default
the source and the driving frames are cropped as the benchmark's datasets are (a square around
the largest dlib face, 1.8 times its size; the driving video's box is taken from its first frame
with a face and kept for every frame, so head motion stays in the frames; no face: the largest
centred square) and resized to the method's size (its ``size`` where it declares one, else
256 px; ``--size`` overrides). Each crop is printed. ``--crop centre`` takes the largest centred
square; ``--crop none`` passes the frames as they are (the method resizes them itself and the
output has the driving frame size).

Weights (``--checkpoint``): a checkpoint file; or ``random``, a seeded random initialisation
that checks the wiring only (its output means nothing); or nothing, the method's default: no
weights for a method that takes none (``source-copy``, ``driving-copy``), else the official
checkpoint where the asset manager's folders hold it (``$THB_ASSETS_DIR`` or the asset cache,
under the name the error message gives), else a one-line error saying how to get one.
``--mode`` (motion transfer) and ``--yaw/--pitch/--roll`` (free view) apply to the families
that declare them. Errors are one line naming the file and the problem (exit status 2);
``--debug`` prints the traceback as well.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from thbench.baselines.checkpoint import CheckpointMismatch, UnreadableCheckpoint
from thbench.core import assets
from thbench.core.cli import checkout_config
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
from thbench.training.config import load_train_config

if TYPE_CHECKING:
    from thbench.facegeom.detect import FaceDetector

ANGLES = ("yaw", "pitch", "roll")
CROPS = ("face", "centre", "none")
DEFAULT_SIZE = 256
"""The side of the crops for a method that declares no ``size``: the benchmark's frame size."""
FACE_SEARCH = 25
"""Driving frames searched for a face before falling back to a centre crop."""


@dataclass(frozen=True)
class OfficialCheckpoint:
    """Where a family's published weights come from, and the name the asset manager's folders
    hold them under."""

    filename: str
    source: str


OFFICIAL_CHECKPOINTS = {
    "fomm": OfficialCheckpoint("vox-cpk.pth.tar",
                               "the vox-256 checkpoint linked from the README of "
                               "github.com/AliaksandrSiarohin/first-order-model"),
    "tpsmm": OfficialCheckpoint("vox.pth.tar",
                                "the vox-256 checkpoint linked from the README of "
                                "github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model"),
    "fv2v": OfficialCheckpoint("fv2v-vox256.pth.tar",
                               "the vox-256 checkpoint linked from the README of github.com/"
                               "zhanglonghao1992/One-Shot_Free-View_Neural_Talking_Head_Synthesis"),
}
TINY_CONFIGS = {"fomm", "tpsmm", "fv2v", "hidenerf"}
"""Families with a ``configs/train/<name>-tiny-sample.toml`` and its shipped checkpoint."""


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


def same_size(frames: Iterator[np.ndarray], origin: Path) -> Iterator[np.ndarray]:
    """The frames, refusing one whose size differs from the first's."""
    shape = None
    for frame in frames:
        if shape is None:
            shape = frame.shape
        elif frame.shape != shape:
            raise CliError(f"{origin}: frames differ in size ({frame.shape[:2]} after "
                           f"{shape[:2]})")
        yield frame


def batches(frames: Iterator[np.ndarray], size: int, origin: Path) -> Iterator[torch.Tensor]:
    batch: list[np.ndarray] = []
    count = 0
    for frame in frames:
        batch.append(frame)
        count += 1
        if len(batch) == size:
            yield to_tensor(np.stack(batch))
            batch = []
    if batch:
        yield to_tensor(np.stack(batch))
    if not count:
        raise CliError(f"{origin}: no driving frames")


class FrameSink:
    """Writes frames to a PNG folder or to a video file (written to a temp name, then moved)."""

    def __init__(self, out: Path, fps: float) -> None:
        self.out, self.fps, self.count = out, fps, 0
        self.video = out.suffix.lower() in VIDEO_SUFFIXES
        self.container: Any = None  # an av output container, once the first frame is in
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


def init_parameters(cls: type) -> set[str]:
    """The keyword parameters of ``cls``'s constructor, including those a subclass's
    ``*args, **kwargs`` pass up to its bases."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names |= set(inspect.signature(vars(klass)["__init__"]).parameters)
    return names - {"self", "args", "kwargs"}


def default_checkpoint(chosen: Family) -> Path:
    """The official checkpoint from the asset manager's folders, or a :class:`CliError` that
    says how to get weights."""
    official = OFFICIAL_CHECKPOINTS.get(chosen.name)
    if official is not None:
        asset = assets.Asset(chosen.name, official.filename, licence="see its source",
                             used_by=f"animate --method {chosen.name}")
        # no digest is published: the file is not checked (the strict load checks its layout)
        found = [path for path in assets.candidates(asset) if path.is_file()]
        if found:
            return found[0]
    ways = []
    if official is not None:
        ways.append(f"get {official.source} and put it in $THB_ASSETS_DIR as "
                    f"{official.filename} (or pass it with --checkpoint FILE)")
    else:
        ways.append("pass --checkpoint FILE")
    if chosen.name in TINY_CONFIGS:
        recipe = checkout_config(f"train/{chosen.name}-tiny-sample.toml")
        shipped = recipe.parents[2] / "checkpoints" / recipe.stem / chosen.exported
        ways.append(f"use the 64 px sample-set model that ships: --checkpoint {shipped} "
                    f"--config {load_train_config(recipe).model} (trained from {recipe})")
    ways.append("--checkpoint random checks the wiring with random weights")
    raise CliError(f"{chosen.name} needs trained weights and none is given or installed: "
                   + "; or ".join(ways))


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
    parameters = init_parameters(chosen.method_class())
    if args.checkpoint == "random":
        if "allow_random_init" in parameters:
            options["allow_random_init"] = True
        return options
    if args.checkpoint is None:
        if "checkpoint" not in parameters:
            return options
        checkpoint = default_checkpoint(chosen)
        print(f"checkpoint: {checkpoint} (the official one, from the asset manager's folders)")
        return options | {"checkpoint": str(checkpoint)}
    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_file():
        raise CliError(f"{checkpoint}: checkpoint file not found")
    return options | {"checkpoint": str(checkpoint)}


class Framing:
    """Crops frames to a square and resizes them to ``size`` x ``size`` (``--crop``): one box
    per input, from its first frame with a face."""

    def __init__(self, mode: str, size: int) -> None:
        self.mode, self.size = mode, size
        self._detector: FaceDetector | None = None

    def face_box(self, frame: np.ndarray) -> tuple[float, float, float, float] | None:
        """The benchmark datasets' crop around the largest face (None: no face, or not asked)."""
        if self.mode != "face":
            return None
        from thbench.datasets.crop import clip_box
        from thbench.facegeom.detect import FaceDetector

        if self._detector is None:
            self._detector = FaceDetector()
        face = self._detector.largest(frame)
        return None if face is None else clip_box([face.bbox])

    def _crops(self, name: str, path: Path, frames: list[np.ndarray],
               box: tuple[float, float, float, float] | None, how: str) -> list[np.ndarray]:
        """``frames`` cropped with ``box`` (None: the largest centred square), stating it."""
        from thbench.datasets.crop import centre_box, crop

        height, width = frames[0].shape[:2]
        box = box or centre_box(width, height)
        x0, y0, x1, y1 = (round(v) for v in box)
        print(f"{name}: {path} {width}x{height}, {how}: x {x0}..{x1}, y {y0}..{y1} -> "
              f"{self.size}x{self.size}")
        return [crop(frame, box, self.size) for frame in frames]

    def crop_image(self, image: np.ndarray, path: Path) -> np.ndarray:
        if self.mode == "none":
            return image
        box = self.face_box(image)
        how = "face crop" if box else ("no face: centre crop" if self.mode == "face"
                                       else "centre crop")
        return self._crops("source", path, [image], box, how)[0]

    def crop_frames(self, frames: Iterator[np.ndarray], path: Path) -> Iterator[np.ndarray]:
        """The frames cropped with one box: that of the first frame with a face among the first
        :data:`FACE_SEARCH` (held back meanwhile), else the centred square."""
        if self.mode == "none":
            yield from frames
            return
        from thbench.datasets.crop import crop

        held: list[np.ndarray] = []
        box = None
        for frame in frames:
            if box is not None:
                yield crop(frame, box, self.size)
                continue
            held.append(frame)
            box = self.face_box(frame)
            if box is not None:
                how = "face crop" + (f" (face from frame {len(held) - 1})" if len(held) > 1
                                     else "")
            elif self.mode != "face":
                how = "centre crop"
            elif len(held) == FACE_SEARCH:
                how = f"no face in the first {FACE_SEARCH} frames: centre crop"
            else:
                continue
            cropped = self._crops("driving", path, held, box, how)
            box = box or _centre(held[0])
            held = []
            yield from cropped
        if held:
            yield from self._crops("driving", path, held, None,
                                   f"no face in its {len(held)} frames: centre crop")


def _centre(frame: np.ndarray) -> tuple[float, float, float, float]:
    from thbench.datasets.crop import centre_box

    return centre_box(frame.shape[1], frame.shape[0])


def method_size(method: object) -> int:
    """The side a method works at: its ``size`` (an int or (H, W)) where it declares one."""
    size = getattr(method, "size", None)
    if isinstance(size, int):
        return size
    if isinstance(size, tuple) and size and isinstance(size[0], int):
        return size[0]
    return DEFAULT_SIZE


def animate(args: argparse.Namespace) -> int:
    chosen = family(args.method)
    method = chosen.method_class()(**method_options(args, chosen))
    framing = Framing(args.crop, args.size or method_size(method))
    source_path, driving_path = Path(args.source), Path(args.driving)
    source = to_tensor(np.array(framing.crop_image(read_image(source_path), source_path)))
    frames, fps = driving_frames(driving_path)
    if args.max_frames is not None:
        frames = itertools.islice(frames, args.max_frames)
    frames = framing.crop_frames(same_size(frames, driving_path), driving_path)
    sink = FrameSink(Path(args.out), fps)
    complete = False
    try:
        for output in method.animate(source, batches(frames, args.batch_size, driving_path)):
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
    run.add_argument("--checkpoint", default=None,
                     help="the method's checkpoint file; 'random': seeded random weights, "
                          "which check the wiring only; default: none for a method that "
                          "takes none, else the official checkpoint when installed")
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
    run.add_argument("--crop", choices=CROPS, default="face",
                     help="face: a square around the largest face (default); centre: the "
                          "largest centred square; none: the frames as they are")
    run.add_argument("--size", type=_positive, default=None,
                     help="side of the crops in pixels (default: the method's size, else "
                          f"{DEFAULT_SIZE})")
    run.add_argument("--device", default="cpu")
    run.add_argument("--batch-size", type=_positive, default=8)
    run.add_argument("--max-frames", type=_positive, default=None,
                     help="animate only the first N driving frames")
    run.add_argument("--debug", action="store_true", help="print tracebacks of errors")
    return run


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return animate(args)
    except (CliError, ValueError, KeyError, OSError, RuntimeError) as error:
        # MediaError, checkpoint errors, AssetError
        if args.debug:
            traceback.print_exc()
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        if isinstance(error, CheckpointMismatch) and not isinstance(error, UnreadableCheckpoint):
            message = f"{message} (do --method and --config match this checkpoint?)"
        print("error: " + " ".join(str(message).split()), file=sys.stderr)  # one line
        return 2
    except ImportError as error:
        if args.debug:
            traceback.print_exc()
        print(f"error: {args.method} is not available in this installation ({error})",
              file=sys.stderr)
        return 2
