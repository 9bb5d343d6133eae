"""``python -m thbench train --config configs/train/<run>.toml [--resume] [--ship FOLDER]``:
train any trainable method family from a training config, in one process or under ``torchrun
--nproc_per_node N -m thbench train ...``. The config's ``family`` picks the trainer from the
registry (:mod:`thbench.core.families`). ``--ship`` makes the finished run's export a shipped
checkpoint (:mod:`thbench.training.shipped`). Errors are one line (exit status 2;
``--debug``: traceback).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from thbench.core.cli import run_subcommand
from thbench.core.families import family
from thbench.core.processes import leave
from thbench.training.config import load_train_config


def train(args: argparse.Namespace) -> int:
    config = load_train_config(args.config, output_dir=args.output_dir, device=args.device)
    if args.steps is not None:
        config.optim.steps, config.optim.epochs = args.steps, 0
    family(config.family).train_function()(config, resume=args.resume, stop_at=args.stop_at)
    leave()  # not on an error: a barrier there would wait for ranks stuck elsewhere
    if args.ship:
        from thbench.training.shipped import ship

        print(f"shipped {ship(config, Path(args.ship), torch.get_num_threads())}")
    return 0


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(prog="python -m thbench train",
                                      description=__doc__.split("\n")[0])
    command.add_argument("--config", required=True, help="training config (TOML)")
    command.add_argument("--resume", action="store_true",
                         help="continue the run from <run>/checkpoints/last.pt")
    command.add_argument("--stop-at", type=int, default=None,
                         help="stop after this step (the schedule stays the full run's)")
    command.add_argument("--steps", type=int, default=None,
                         help="override [optim] steps (and drop [optim] epochs)")
    command.add_argument("--output-dir", default=None, help="override output_dir")
    command.add_argument("--device", default=None, help="override device (cpu, cuda)")
    command.add_argument("--ship", default=None, metavar="FOLDER",
                         help="once trained, copy the export into FOLDER with its record "
                              "(sha256, recipe, commit, curve): a shipped checkpoint, e.g. "
                              "checkpoints/<run> for the default benchmark")
    command.add_argument("--debug", action="store_true", help="show tracebacks")
    command.set_defaults(func=train)
    return command


def main(argv: list[str] | None = None) -> int:
    return run_subcommand(parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
