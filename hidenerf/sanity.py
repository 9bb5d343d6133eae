"""A sanity benchmark, not a test: does HiDe-NeRF learn to reenact one identity?

    python -m thbench.hidenerf.sanity [--config configs/train/hidenerf-tiny-sample.toml]
                              [--identity woman] [--minutes 5] [--out runs/sanity]

Trains the config's model on the sample set's clips of one identity for a fixed budget of this
process's CPU time (checked every ``--chunk`` steps, so the step count depends on the machine),
then animates every held-out frame (the last ``holdout`` frames of each clip, never trained
on) from its clip's first training frame and prints, on those frames: L1 and PSNR of the
output and of ``source-copy`` (the source frame itself) against the driving frame, the share
of outputs (and of source copies) in which dlib finds a face, the learning curve (the losses
logged by the trainer), and writes ``grid.png`` (rows of source | driving | output).
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

from thbench.core.media import to_uint8, write_png
from thbench.hidenerf.model import HiDeNeRF, animate_batch
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
            for name, image in (("output", output), ("source-copy", item["source"])):
                diff = image - item["driving"]
                record[name] = {"l1": float(diff.abs().mean()),
                                "psnr": psnr(float(diff.pow(2).mean())),
                                "face": detector.largest(to_uint8(image)[0]) is not None}
            records.append(record)
            rows.append(torch.cat([item["source"], item["driving"], output], -1))
    summary = {}
    for name in ("output", "source-copy"):
        summary[name] = {key: float(np.mean([r[name][key] for r in records]))
                         for key in ("l1", "psnr", "face")}
    return {"frames": len(records), "summary": summary, "grid": torch.cat(rows, -2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thbench.hidenerf.sanity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/train/hidenerf-tiny-sample.toml")
    parser.add_argument("--identity", default="pexels-woman")
    parser.add_argument("--minutes", type=float, default=5.0, help="CPU minutes of training")
    parser.add_argument("--chunk", type=int, default=10, help="steps between budget checks")
    parser.add_argument("--out", default="runs/sanity")
    args = parser.parse_args(argv)
    out = Path(args.out)
    config = load_train_config(args.config, output_dir=str(out), name="sanity")
    config.optim.workers = 0  # the CPU budget is this process's time
    _, clips = open_training_data(config, distributed=False, log=print)
    clips = [clip for clip in clips if clip.info.identity == args.identity]
    if not clips:
        print(f"error: no sample clip of identity {args.identity!r}", file=sys.stderr)
        return 1
    model, objective, data, heldout = build_training(config, clips, FaceFits(clips),
                                                     torch.device("cpu"))
    trainer = start_trainer(config, objective, data, _cpu(), resume=False, distributed=False,
                            log=print)
    budget, started, wall = 60 * args.minutes, time.process_time(), time.perf_counter()
    while time.process_time() - started < budget and trainer.step < config.optim.steps:
        trainer.fit(trainer.step + args.chunk)
    cpu_s, wall_s = time.process_time() - started, time.perf_counter() - wall
    result = evaluate(model, data, heldout)
    out.mkdir(parents=True, exist_ok=True)
    write_png(out / "grid.png", to_uint8(result["grid"])[0])
    curve = [json.loads(line) for line in (trainer.run_dir / "scalars.jsonl").read_text()
             .splitlines()] if (trainer.run_dir / "scalars.jsonl").is_file() else []
    print(f"hidenerf sanity: {config.model} on identity {args.identity!r} "
          f"({len(clips)} clips), {trainer.step} steps in {cpu_s / 60:.1f} CPU min "
          f"({wall_s / 60:.1f} min wall, {torch.get_num_threads()} threads)")
    print("learning curve (step: total loss): " + ", ".join(
        f"{r['step']}: {r['total']:.4f}" for r in curve if "total" in r))
    print(f"held-out frames: {result['frames']}")
    print(f"{'':12} {'L1':>7} {'PSNR':>7} {'dlib face':>10}")
    for name, s in result["summary"].items():
        print(f"{name:12} {s['l1']:7.4f} {s['psnr']:7.2f} {s['face']:10.2f}")
    print(f"grid (source | driving | output): {out / 'grid.png'}")
    return 0


def _cpu():
    from thbench.training.loop import Process

    return Process(device=torch.device("cpu"))


if __name__ == "__main__":
    sys.exit(main())
