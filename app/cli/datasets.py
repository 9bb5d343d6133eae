"""Command line: ``python -m thbench datasets {prepare,pairs,layouts}``.

Prepare one split of VoxCeleb1, VoxCeleb2 or TalkingHead-1KH from the videos you downloaded
into the clip format the benchmark reads (``<out>/clips/``, ``<out>/pairs/*.jsonl``), then point
a run config at it: ``[dataset] name = "voxceleb1-test"  root = "<out>"``. Preparation runs in
``--workers`` processes and resumes where it stopped when rerun with the same arguments.
Dataset cards (source, licence, size, what is done to the videos): ``datasets/cards/``.

Errors are one line naming the file and the problem; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from thbench.core.cli import run_subcommand
from thbench.datasets.layouts import DATASETS
from thbench.datasets.source_clips import PrepareOptions

DEFAULTS = PrepareOptions()
"""The command's preparation defaults are :class:`PrepareOptions`' (the papers' protocol)."""

EXAMPLES = """examples:
  python -m thbench datasets prepare --dataset voxceleb1 --layout fomm --root vox --split test \\
      --out prepared/vox1-test --workers 8
  python -m thbench datasets prepare --dataset voxceleb2 --layout voxceleb --root vox2 --split test
  \\
      --out prepared/vox2-test --size 512
  python -m thbench datasets prepare --dataset talkinghead1kh --layout th1kh --root th1kh --split
  val \\
      --list VAL_LIST.txt --out prepared/th1kh-val --size 512 --fps 25   # as Real3D-Portrait
  python -m thbench datasets pairs --out prepared/vox1-test --seed 1 --cross-per-source 3
"""


def _pair_options(args: argparse.Namespace):
    from thbench.datasets.pair_lists import PairOptions

    return PairOptions(seed=args.seed, cross_per_source=args.cross_per_source,
                       driving_step=args.driving_step,
                       max_driving_frames=args.max_driving_frames)


def _prepare(args: argparse.Namespace) -> int:
    from thbench.datasets.layouts import discover
    from thbench.datasets.pair_lists import write_protocols
    from thbench.datasets.split_preparation import prepare_split

    found = discover(args.dataset, args.layout, args.root, args.split, args.list)
    print(f"{args.dataset} {args.split} ({args.layout} layout): {len(found.sources)} videos, "
          f"{len(found.excluded)} entries left out, {len(found.missing)} listed but missing")
    options = PrepareOptions(size=args.size, frame_step=args.frame_step,
                             clip_length=args.clip_length, crop=args.crop, fps=args.fps,
                             skip_unusable=True)
    description = {"dataset": args.dataset, "layout": args.layout, "split": args.split,
                   "raw_root": str(Path(args.root).resolve())}
    prepare_split(found, args.out, options, description, workers=args.workers,
                  fit=not args.no_fit, retry_skipped=args.retry_skipped)
    counts = write_protocols(args.out, _pair_options(args))
    print(f"pairs: {counts}; dataset ready in {args.out}")
    return 0


def _pairs(args: argparse.Namespace) -> int:
    from thbench.datasets.pair_lists import write_protocols

    if not Path(args.out, "clips").is_dir():
        raise FileNotFoundError(f"{args.out}: not a prepared dataset (no clips/)")
    print(f"pairs: {write_protocols(args.out, _pair_options(args))}")
    return 0


def _layouts(args: argparse.Namespace) -> int:
    print(json.dumps(DATASETS, indent=1))
    return 0


def _add_pair_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pair lists")
    group.add_argument("--seed", type=int, default=0, help="seed of the cross-identity draw")
    group.add_argument("--cross-per-source", type=int, default=1,
                       help="driving clips of other identities per source clip")
    group.add_argument("--driving-step", type=int, default=1,
                       help="score every N-th driving frame")
    group.add_argument("--max-driving-frames", type=int, default=0,
                       help="at most N driving frames per pair (0: all)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thbench datasets", description=__doc__,
                                     epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    prepare = sub.add_parser(
        "prepare", help="prepare one split into clips, face records, 3DMM fits and pair lists",
        description="Prepare one split: find its videos in the layout, detect faces, crop, "
        "resize, record landmarks and 3DMM fits per frame, write the pair lists. Videos too "
        "short or unreadable, and with --crop face videos without a face, are skipped and "
        "listed in <out>/skipped.json; with --crop full a video without a face is prepared and "
        "scored on the pixel metrics.")
    prepare.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    prepare.add_argument("--layout", required=True, choices=["fomm", "voxceleb", "th1kh"],
                         help="fomm: FOMM's vox/vox-png train|test folders (VoxCeleb1); "
                         "voxceleb: <identity>/<video>/<segment>.mp4; th1kh: "
                         "{train,val}/cropped_clips from TalkingHead-1KH's scripts")
    prepare.add_argument("--root", required=True, help="folder holding the downloaded videos")
    prepare.add_argument("--split", required=True,
                         help="voxceleb1: train|test; voxceleb2: dev|test; "
                         "talkinghead1kh: train|val")
    prepare.add_argument("--out", required=True, help="folder of the prepared split")
    prepare.add_argument("--list", help="split file: VoxCeleb1's vox-metadata.csv (default: "
                         "asset vox1_metadata) or a TalkingHead-1KH clip list (default: none, "
                         "the folder is the split)")
    prepare.add_argument("--size", type=int, default=DEFAULTS.size,
                         help="crop side in pixels (256; 512 for TalkingHead-1KH as "
                         "Real3D-Portrait)")
    prepare.add_argument("--fps", type=float, default=DEFAULTS.fps,
                         help="resample to this frame rate first, nearest frame in time (25 for "
                         "TalkingHead-1KH as Real3D-Portrait); 0: the source's rate")
    prepare.add_argument("--frame-step", type=int, default=DEFAULTS.frame_step,
                         help="keep every N-th frame")
    prepare.add_argument("--clip-length", type=int, default=DEFAULTS.clip_length,
                         help="frames per clip; 0: each video is one clip (reconstruction "
                         "protocol)")
    prepare.add_argument("--crop", choices=["full", "face"], default=DEFAULTS.crop,
                         help="full: keep the frame (these layouts are face crops already); "
                         "face: re-crop around the detected faces (datasets/crop.py)")
    prepare.add_argument("--workers", type=int, default=1, help="processes")
    prepare.add_argument("--no-fit", action="store_true",
                         help="skip the 3DMM fits (SECC inputs), which need the Surrey Face "
                         "Model files")
    prepare.add_argument("--retry-skipped", action="store_true",
                         help="try again the videos an earlier run skipped")
    _add_pair_arguments(prepare)
    prepare.set_defaults(func=_prepare)

    pairs = sub.add_parser("pairs", help="rewrite the pair lists of a prepared split")
    pairs.add_argument("--out", required=True, help="folder of the prepared split")
    _add_pair_arguments(pairs)
    pairs.set_defaults(func=_pairs)

    layouts = sub.add_parser("layouts", help="print the datasets, their layouts and splits")
    layouts.set_defaults(func=_layouts)

    return run_subcommand(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
