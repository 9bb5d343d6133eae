"""Command line: ``python -m hidenerf animate --checkpoint CKPT --source IMG --driving VIDEO_OR_DIR
--out DIR [--yaw D --pitch D --roll D] [--config tiny|paper]``, and
``python -m hidenerf train --config configs/train/hidenerf-tiny-sample.toml [--resume]``
(also under ``torchrun --nproc_per_node N -m hidenerf train ...``).

Writes one PNG per driving frame (``000000.png`` ...). ``--checkpoint random`` runs a seeded
random init (for smoke tests). Errors are one line naming the file, exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from benchcore.train_config import add_train_arguments, config_from_arguments


def _frames(path: Path) -> Iterator[np.ndarray]:
    from benchcore.media import IMAGE_SUFFIXES, MediaError, iter_video, read_image

    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise MediaError(f"{path}: directory holds no images")
        for file in files:
            yield read_image(file)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        yield read_image(path)
    else:
        yield from iter_video(path)


def _batches(path: Path, batch_size: int) -> Iterator[torch.Tensor]:
    from benchcore.media import MediaError, to_tensor

    batch: list[np.ndarray] = []
    for frame in _frames(path):
        if batch and frame.shape != batch[0].shape:
            raise MediaError(f"{path}: frames differ in size ({frame.shape[:2]} vs "
                             f"{batch[0].shape[:2]})")
        batch.append(frame)
        if len(batch) == batch_size:
            yield to_tensor(np.stack(batch))
            batch = []
    if batch:
        yield to_tensor(np.stack(batch))


def animate(args: argparse.Namespace) -> int:
    from benchcore.media import MediaError, read_image, to_tensor, to_uint8, write_png
    from hidenerf.method import HiDeNeRFMethod

    driving = Path(args.driving)
    if not driving.exists():
        raise MediaError(f"{driving}: file not found")
    source = to_tensor(read_image(args.source).copy())  # read_image may return read-only
    checkpoint = None if args.checkpoint == "random" else args.checkpoint
    method = HiDeNeRFMethod(checkpoint=checkpoint, config=args.config, device=args.device,
                            yaw=args.yaw, pitch=args.pitch, roll=args.roll)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for batch in method.animate(source, _batches(driving, args.batch_size)):
        for frame in to_uint8(batch):
            write_png(out / f"{count:06d}.png", frame)
            count += 1
    print(f"wrote {count} frames to {out}")
    return 0


def train(args: argparse.Namespace) -> int:
    from benchcore.training import leave
    from hidenerf.train import train as train_model

    config = config_from_arguments(args)
    train_model(config, resume=args.resume, stop_at=args.stop_at)
    leave()  # not on an error: a barrier there would wait for ranks stuck elsewhere
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hidenerf", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    anim = commands.add_parser("animate", help="animate a source image with a driving clip")
    anim.add_argument("--checkpoint", required=True,
                      help="HiDe-NeRF checkpoint, or 'random' for a seeded random init")
    anim.add_argument("--source", required=True, help="source image")
    anim.add_argument("--driving", required=True, help="driving video or folder of images")
    anim.add_argument("--out", required=True, help="output folder for PNG frames")
    anim.add_argument("--config", choices=["tiny", "paper"], default=None,
                      help="model config (default: the checkpoint's; 'tiny' for random)")
    anim.add_argument("--yaw", type=float, default=None, help="override yaw (degrees)")
    anim.add_argument("--pitch", type=float, default=None, help="override pitch (degrees)")
    anim.add_argument("--roll", type=float, default=None, help="override roll (degrees)")
    anim.add_argument("--device", default="cpu")
    anim.add_argument("--batch-size", type=int, default=4)
    anim.set_defaults(run=animate)
    fit = commands.add_parser("train", help="train HiDe-NeRF from a training config "
                              "(a single process or under torchrun)")
    add_train_arguments(fit)
    fit.set_defaults(run=train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError, KeyError) as error:  # MediaError, CheckpointError are ValueErrors
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ImportError as error:
        print(f"error: face geometry is not available ({error})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
