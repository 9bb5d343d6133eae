"""A sanity benchmark, not a test: does HiDe-NeRF learn to reenact, expression included?

    python -m thbench.hidenerf.sanity [--config configs/train/hidenerf-tiny-sample.toml]
                              [--identity woman | --clip man-000] [--minutes 5] [--out runs/sanity]
                              [--checkpoint model.pt] [--transfer man-000,man-leaves-000]
    python -m thbench.hidenerf.sanity --run runs/default [--method hidenerf-tiny]

Trains the config's model on the sample set's clips of one identity (or one clip: T3, the
overfit) for a fixed budget of this process's CPU time (checked every ``--chunk`` steps, so the
step count depends on the machine), or loads ``--checkpoint`` (e.g. the one ``nox -s eval``
trains) and trains nothing. Then animates every held-out frame (the last ``holdout`` frames of
each clip, never trained on) from its clip's first training frame and prints, on those frames:
L1, PSNR and the L1 inside the driving mouth box, of the output and of ``source-copy`` (the
source frame itself), the share of outputs (and of source copies) in which dlib finds a face,
and the learning curve. The expression checks (:mod:`thbench.hidenerf.expression`): T1 on every
trained clip (fixed camera, the driving SECC swapped from its most closed to its most open
frame: targets mouth >= 0.5, rest < 0.1), and on each ``--transfer`` clip the slope and
correlation of the output's dlib mouth opening against the driver's over all its frames, from
its first (targets 0.5 and 0.8). Writes ``grid.png`` (rows of source | driving | output) and
``expression.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from thbench.core import atomic
from thbench.core.cli import checkout_config
from thbench.core.logs import configure
from thbench.core.media import to_uint8, write_png
from thbench.datasets.clip import Clip
from thbench.hidenerf.checkpoint import load_checkpoint
from thbench.hidenerf.expression import (
    box_mask,
    mouth_sensitivity,
    opening_transfer,
    run_opening_transfer,
)
from thbench.hidenerf.model import HiDeNeRF, animate_batch
from thbench.hidenerf.pairs import ExpressionPairs
from thbench.hidenerf.train import FaceFits, HiDeNeRFPairs, build_training
from thbench.training.config import load_train_config, open_training_data, start_trainer


def psnr(l2: float) -> float:
    return 10 * math.log10(1 / max(l2, 1e-12))


@torch.no_grad()
def evaluate(model: HiDeNeRF, data: HiDeNeRFPairs, heldout: dict[str, list[int]]) -> dict:
    """Per held-out frame: output and source-copy errors, dlib face found; and grid rows."""
    from thbench.facegeom.detect import FaceDetector

    detector = FaceDetector()
    model.eval()
    rows, records = [], []
    for clip in data.pairs.clips:
        source = data.pairs.frames[clip.clip_id][0]
        for driving in heldout.get(clip.clip_id, []):
            item = {k: v[None] for k, v in data.item(clip, source, driving).items()}
            output = animate_batch(model, item)["image"].clamp(0, 1)
            record = {}
            mouth = box_mask(item["mouth_box"][0], output.shape[-1])
            for name, image in (("output", output), ("source-copy", item["source"])):
                diff = image - item["driving"]
                record[name] = {"l1": float(diff.abs().mean()),
                                "psnr": psnr(float(diff.pow(2).mean())),
                                "mouth_l1": float(diff.abs().mean(1)[0][mouth].mean()),
                                "face": detector.largest(to_uint8(image)[0]) is not None}
            records.append(record)
            rows.append(torch.cat([item["source"], item["driving"], output], -1))
    summary = {}
    for name in ("output", "source-copy"):
        summary[name] = {key: float(np.mean([r[name][key] for r in records]))
                         for key in ("l1", "psnr", "mouth_l1", "face")}
    return {"frames": len(records), "summary": summary, "grid": torch.cat(rows, -2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thbench.hidenerf.sanity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="training config (default: the "
                        "checkout's configs/train/hidenerf-tiny-sample.toml)")
    parser.add_argument("--identity", default="pexels-woman")
    parser.add_argument("--clip", default=None, help="train on this clip only (T3)")
    parser.add_argument("--checkpoint", default=None, help="evaluate this model, train nothing")
    parser.add_argument("--transfer", default="man-000,man-leaves-000",
                        help="clips whose opening transfer is measured (comma-separated)")
    parser.add_argument("--minutes", type=float, default=5.0, help="CPU minutes of training")
    parser.add_argument("--chunk", type=int, default=10, help="steps between budget checks")
    parser.add_argument("--out", default="runs/sanity")
    parser.add_argument("--run", default=None, metavar="RUN_DIR",
                        help="measure the opening transfer of a benchmark run's outputs (e.g. "
                             "runs/default) on the --transfer clips, train nothing")
    parser.add_argument("--method", default="hidenerf-tiny", help="the label of --run's method")
    args = parser.parse_args(argv)
    configure()
    if args.run:
        return run_transfer(Path(args.run), args.method, [n for n in args.transfer.split(",") if n])
    out = Path(args.out)
    config = load_train_config(args.config or checkout_config("train/hidenerf-tiny-sample.toml"),
                               output_dir=str(out), name="sanity")
    config.optim.workers = 0  # the CPU budget is this process's time
    _, every_clip = open_training_data(config, distributed=False)
    clips = [clip for clip in every_clip
             if (clip.clip_id == args.clip if args.clip else clip.info.identity == args.identity)]
    if not clips:
        print(f"error: no sample clip {args.clip or args.identity!r}", file=sys.stderr)
        return 1
    names = [n for n in args.transfer.split(",") if n]
    transfer = [clip for clip in every_clip if clip.clip_id in names]
    fits = FaceFits(clips + transfer)
    model, objective, data, heldout = build_training(config, clips, fits, torch.device("cpu"))
    curve, steps, cpu_s, wall_s = [], 0, 0.0, 0.0
    if args.checkpoint:
        model, _ = load_checkpoint(args.checkpoint)
    else:
        trainer = start_trainer(config, objective, data, _cpu(), resume=False,
                                distributed=False)
        budget, started, wall = 60 * args.minutes, time.process_time(), time.perf_counter()
        while time.process_time() - started < budget and trainer.step < config.optim.steps:
            trainer.fit(trainer.step + args.chunk)
        cpu_s, wall_s = time.process_time() - started, time.perf_counter() - wall
        steps = trainer.step
        scalars = trainer.run_dir / "scalars.jsonl"
        curve = [json.loads(line) for line in scalars.read_text().splitlines()] \
            if scalars.is_file() else []
    result = evaluate(model, data, heldout)
    out.mkdir(parents=True, exist_ok=True)
    write_png(out / "grid.png", to_uint8(result["grid"])[0])
    expression = expression_checks(model, data, clips, transfer, fits)
    atomic.write_json(out / "expression.json", expression | {"heldout": result["summary"]})
    trained = (f"checkpoint {args.checkpoint}" if args.checkpoint else
               f"{steps} steps in {cpu_s / 60:.1f} CPU min ({wall_s / 60:.1f} min wall, "
               f"{torch.get_num_threads()} threads)")
    print(f"hidenerf sanity: {model.config.name} on {args.clip or 'identity ' + args.identity!r} "
          f"({len(clips)} clips), {trained}")
    if curve:
        keys = [k for k in ("total", "l1", "mouth_l1", "deformation") if k in curve[0]]
        print("learning curve (step: " + ", ".join(keys) + "): " + "; ".join(
            f"{r['step']}: " + ", ".join(f"{r[k]:.3g}" for k in keys) for r in curve))
    print(f"held-out frames: {result['frames']}")
    print(f"{'':12} {'L1':>7} {'PSNR':>7} {'mouth L1':>9} {'dlib face':>10}")
    for name, s in result["summary"].items():
        print(f"{name:12} {s['l1']:7.4f} {s['psnr']:7.2f} {s['mouth_l1']:9.4f} {s['face']:10.2f}")
    ratio = result["summary"]["output"]["mouth_l1"] / result["summary"]["source-copy"]["mouth_l1"]
    print(f"held-out mouth L1 / source-copy's: {ratio:.2f} (T3 target < 0.6)")
    for clip_id, t1 in expression["t1"].items():
        print(f"T1 {clip_id}: mouth {t1['mouth']:.2f} (>= 0.5), rest {t1['rest']:.3f} (< 0.1) "
              f"of the drivers' mouth change {t1['drivers']:.3f}")
    for clip_id, t in expression["transfer"].items():
        print(f"opening transfer {clip_id}: slope {t['slope']:.2f} (>= 0.5), correlation "
              f"{t['correlation']:.2f} (>= 0.8) over {len(t['driver'])} frames")
    print(f"grid (source | driving | output): {out / 'grid.png'}; {out / 'expression.json'}")
    return 0


def run_transfer(run_dir: Path, method: str, clip_ids: list[str]) -> int:
    """The opening slope and correlation of ``method``'s same-identity outputs in a benchmark
    run, against the clips that drove them (the issue's done-when measure)."""
    record = json.loads((run_dir / "run.json").read_text())
    dataset = record["config"]["dataset"]["name"]
    for clip_id in clip_ids:
        clip = Clip(Path(record["dataset_root"]) / "clips" / clip_id)
        outputs = run_dir / "outputs" / method / dataset / "same-identity" / clip_id
        t = run_opening_transfer(outputs, clip)
        print(f"opening transfer {method} {clip_id}: slope {t['slope']:.2f} (>= 0.5), "
              f"correlation {t['correlation']:.2f} (>= 0.8) over {len(clip)} frames")
    return 0


def expression_checks(model: HiDeNeRF, data: HiDeNeRFPairs, clips: list, transfer: list,
                      fits: FaceFits) -> dict:
    """T1 on every trained clip (its most closed and most open face frame, from its first
    training frame) and the opening transfer on every ``transfer`` clip."""
    t1 = {}
    for clip in data.pairs.clips:
        opening = data.pairs.openings[clip.clip_id]
        faces = [i for i in range(len(clip)) if fits.has_face(clip, i)]
        closed = min(faces, key=lambda i: opening[i])
        opened = max(faces, key=lambda i: opening[i])
        source = data.pairs.frames[clip.clip_id][0]
        t1[clip.clip_id] = mouth_sensitivity(model, data, clip, source, closed, opened)
    frames = {c.clip_id: [i for i in range(len(c)) if fits.has_face(c, i)] for c in transfer}
    moves = {}
    if transfer:
        every = HiDeNeRFPairs(ExpressionPairs(transfer, frames, 1, 0, model.config.image_size),
                              fits, model.config)
        for clip in transfer:
            moves[clip.clip_id] = opening_transfer(model, every, clip, frames[clip.clip_id][0],
                                                   frames[clip.clip_id])
    return {"t1": t1, "transfer": moves}


def _cpu():
    from thbench.training.loop import Process

    return Process(device=torch.device("cpu"))


if __name__ == "__main__":
    sys.exit(main())
