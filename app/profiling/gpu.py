"""GPU acceptance in one command: ``python -m thbench.profiling.gpu`` (or ``nox -s gpu``).

On a machine with CUDA (under 8 minutes on one GPU) it checks, and prints as it goes:

1. **inference**: every method's official layout (FOMM, TPSMM, face-vid2vid ``vox256``,
   HiDe-NeRF ``paper``; seeded random weights) on two real face frames on CUDA against the same
   on the CPU: the maximum absolute difference of the output images (in [0, 1]) per method;
2. **HiDe-NeRF training**: the ``paper`` model on the embedded sample set for ``--steps`` steps
   under ``torchrun --nproc-per-node 1`` (nccl, bf16), once straight through and once stopped
   half-way and resumed from its checkpoint: step time, peak memory, first and last losses, and
   the largest weight difference between the two (exact on the CPU; on CUDA the backward passes
   of ``grid_sample`` and ``gather`` use atomics, so it is float rounding, not zero);
3. **FOMM training**: the same for FOMM's ``vox256`` model (fp32, as the official recipe) with
   the sample set's training settings;
4. **evaluation**: the sample set's same-identity pairs with the FOMM just trained, once on
   CUDA and once on the CPU, every result row compared within the stated tolerances;
5. **speed**: the end-to-end table of :mod:`thbench.profiling.endtoend` on the GPU.

Without CUDA (or with ``--reduced``) the same five stages run on the CPU with the tiny configs,
a few steps, and ``torchrun`` with gloo, so that CI keeps the script alive; "CUDA" is then the
CPU again. It exits non-zero on any mismatch beyond the tolerances or any failed stage.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from thbench.core.cli import checkout_config

INFERENCE_TOLERANCE = 2e-3
"""Max |CUDA - CPU| of an output image in [0, 1] (fp32 without TF32 on both)."""
RESUME_TOLERANCE_CUDA = 1e-2
"""Max |weight difference| between a straight and a resumed CUDA run: atomics reorder sums,
Adam carries the rounding along; a resume that lost its optimiser state differs by about
lr x steps (0.1 for HiDe-NeRF's 2e-3 x 50)."""
EVAL_TOLERANCE = {"psnr": 0.05, "default": 2e-3}
"""Max |CUDA - CPU| of a result row's value: PSNR in dB, every other metric absolute."""
WARPING = {"reduced": "tiny", "full": "vox256"}
HIDENERF = {"reduced": "tiny", "full": "paper"}


@dataclass
class Check:
    stage: str
    what: str
    value: float
    tolerance: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return math.isfinite(self.value) and self.value <= self.tolerance

    def line(self) -> str:
        verdict = "ok" if self.ok else "MISMATCH"
        return (f"[{verdict}] {self.stage}: {self.what} = {self.value:.3g} "
                f"(tolerance {self.tolerance:g}){'; ' + self.detail if self.detail else ''}")


# -- 1. inference ------------------------------------------------------------------------------
def inference_checks(device: torch.device, mode: str, frames: torch.Tensor) -> list[Check]:
    from thbench.profiling.endtoend import build_method

    checks = []
    for name in ("fomm", "tpsmm", "fv2v", "hidenerf"):
        config = HIDENERF[mode] if name == "hidenerf" else WARPING[mode]
        outputs = []
        for where in (torch.device("cpu"), device):
            method = build_method(name, config, where)
            with torch.no_grad():
                method.setup(frames[0].to(where), frames[1].to(where))
                outputs.append(method.forward_batch(frames[1:].to(where)).float().cpu())
        difference = (outputs[0] - outputs[1]).abs().max().item()
        checks.append(Check("inference", f"{name} {config} max |{device.type} - cpu|",
                            difference, INFERENCE_TOLERANCE))
    return checks


# -- 2, 3. training and resume ------------------------------------------------------------------
def training_config(family: str, mode: str, device: torch.device, steps: int,
                    folder: Path) -> Path:
    """The family's sample-set recipe with the profiled model, device, amp and steps."""
    text = checkout_config(f"train/{family}-tiny-sample.toml").read_text()
    model = HIDENERF[mode] if family == "hidenerf" else WARPING[mode]
    amp = "bf16" if family == "hidenerf" and device.type == "cuda" else "off"
    replacements = {"model": f'"{model}"', "device": f'"{device.type}"',
                    "output_dir": f'"{folder.as_posix()}"', "steps": str(steps),
                    "log_every": "1", "checkpoint_every": str(max(1, steps // 2)),
                    "image_every": str(10 * steps)}
    for key, value in replacements.items():
        text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        if key in ("model", "device", "output_dir", "steps") and count != 1:
            raise ValueError(f"{family}-tiny-sample.toml: no single {key} line to replace")
    text = re.sub(r"(?m)^amp = .*\n", "", text).replace("[optim]\n", f'[optim]\namp = "{amp}"\n')
    path = folder / f"{family}-{model}.toml"
    path.write_text(text)
    return path


def _torchrun(config: Path, *extra: str, processes: int = 1) -> float:
    start = time.perf_counter()
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={processes}",
               "--master-port=29541", "-m", "thbench", "train", "--config", str(config), *extra]
    env = {**os.environ, "THB_PROGRESS": "0"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[3:])} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.pt", map_location="cpu",
                      weights_only=False)["objective"]


def training_checks(family: str, mode: str, device: torch.device, steps: int,
                    folder: Path) -> tuple[list[Check], Path]:
    """Straight run and stopped-and-resumed run; returns the checks and the straight run's
    exported checkpoint."""
    straight_dir, resumed_dir = folder / f"{family}-straight", folder / f"{family}-resumed"
    for where in (straight_dir, resumed_dir):
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
    straight = training_config(family, mode, device, steps, straight_dir)
    resumed = training_config(family, mode, device, steps, resumed_dir)
    seconds = _torchrun(straight)
    _torchrun(resumed, "--stop-at", str(steps // 2))
    _torchrun(resumed, "--resume")
    from thbench.training.config import load_train_config

    run, resumed_run = (load_train_config(c).run_dir for c in (straight, resumed))
    scalars = [json.loads(line) for line in (run / "scalars.jsonl").read_text().splitlines()]
    a, b = _weights(run), _weights(resumed_run)
    difference = max((a[k].float() - b[k].float()).abs().max().item() for k in a
                     if a[k].is_floating_point())
    peak = scalars[-1].get("cuda_peak_mib")
    memory = (f"{peak:.0f} MiB CUDA peak" if peak is not None else
              f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MiB max "
              "child RSS")
    rate = scalars[-1].get("steps_per_s", float("nan"))
    print(f"{family}: {steps} steps in {seconds:.1f} s with start-up, "
          f"{1e3 / rate:.0f} ms per step, {memory}; total loss {scalars[0]['total']:.4f} -> "
          f"{scalars[-1]['total']:.4f}; resume {'exact' if difference == 0 else 'not bit-exact'}")
    finite = all(math.isfinite(s["total"]) for s in scalars)
    tolerance = 0.0 if device.type == "cpu" else RESUME_TOLERANCE_CUDA
    checks = [Check("training", f"{family} finite losses (0 = yes)", 0.0 if finite else 1.0, 0),
              Check("training", f"{family} max |straight - resumed| weight", difference,
                    tolerance)]
    return checks, load_train_config(straight).exported


# -- 4. evaluation -----------------------------------------------------------------------------
EVAL_CONFIG = """name = "{name}"
seed = 0
device = "{device}"
batch_size = 4
output_dir = "{folder}"
protocols = ["same-identity"]
metrics = ["psnr", "l1", "lpips"]

[dataset]
name = "sample"
size = 256
frame_step = 4
clip_length = 16
crop = "face"
cross_per_source = 1

[[methods]]
name = "fomm"
label = "fomm-trained"
options = {{ checkpoint = "{checkpoint}", config = "{config}" }}
"""


def eval_checks(device: torch.device, mode: str, checkpoint: Path, folder: Path) -> list[Check]:
    from thbench.eval.results import ResultStore

    rows = {}
    for name, where in (("eval-cpu", "cpu"), (f"eval-{device.type}-2", device.type)):
        config = folder / f"{name}.toml"
        config.write_text(EVAL_CONFIG.format(name=name, device=where, folder=folder.as_posix(),
                                             checkpoint=checkpoint.as_posix(),
                                             config=WARPING[mode]))
        shutil.rmtree(folder / name, ignore_errors=True)
        command = [sys.executable, "-m", "thbench", "eval", "run", "--config", str(config)]
        done = subprocess.run(command, env={**os.environ, "THB_PROGRESS": "0"},
                              capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"eval on {where} failed:\n{done.stderr[-3000:]}")
        rows[name] = {r.key: r for r in ResultStore(folder / name / "results.csv").rows()}
    cpu, other = rows.values()
    checks = [Check("evaluation", "rows only on one side", float(len(set(cpu) ^ set(other))), 0)]
    for metric in sorted({row.metric for row in cpu.values()}):
        pairs = [(cpu[k], other[k]) for k in cpu if k in other and cpu[k].metric == metric]
        worst = max((abs(a.value - b.value) for a, b in pairs
                     if a.status == b.status == "ok"), default=0.0)
        statuses = sum(a.status != b.status for a, b in pairs)
        checks.append(Check("evaluation", f"{metric} max |{device.type} - cpu| over "
                                          f"{len(pairs)} rows",
                            worst if not statuses else math.inf,
                            EVAL_TOLERANCE.get(metric, EVAL_TOLERANCE["default"]),
                            f"{statuses} rows with another status" if statuses else ""))
    return checks


# -- the script --------------------------------------------------------------------------------
def run(mode: str, device: torch.device, steps: int, folder: Path) -> list[Check]:
    from thbench.profiling.baselines import header
    from thbench.profiling.endtoend import compare, face_frames

    folder = folder.resolve()  # the configs written below resolve relative paths against
    folder.mkdir(parents=True, exist_ok=True)  # their own folder, not the working directory
    print(f"GPU acceptance ({mode}): {header(device)}")
    checks: list[Check] = []

    def stage(title: str, function, *args):
        start = time.perf_counter()
        print(f"== {title}")
        try:
            result = function(*args)
        except Exception as error:  # a failed stage is a mismatch; the next stages still run
            checks.append(Check(title, f"failed: {str(error).strip().splitlines()[-1]}",
                                math.inf, 0))
            print(checks[-1].line())
            print(str(error)[-2000:])
            return None
        print(f"   ({time.perf_counter() - start:.1f} s)")
        return result

    frames = face_frames(3, 256 if mode == "full" else 128)
    for check in stage("1 inference", inference_checks, device, mode, frames) or []:
        checks.append(check)
        print(check.line())
    fomm_checkpoint = None
    for family in ("hidenerf", "fomm"):
        result = stage(f"{2 if family == 'hidenerf' else 3} training {family}", training_checks,
                       family, mode, device, steps, folder)
        if result:
            checks.extend(result[0])
            for check in result[0]:
                print(check.line())
            if family == "fomm":
                fomm_checkpoint = result[1]
    if fomm_checkpoint is not None:
        for check in stage("4 evaluation", eval_checks, device, mode, fomm_checkpoint,
                           folder) or []:
            checks.append(check)
            print(check.line())
    stage("5 speed", compare, 2 if mode == "reduced" else 8, 256 if mode == "full" else 128,
          WARPING[mode], ("fomm", "tpsmm", "fv2v", "hidenerf"), device, 1)
    bad = [c for c in checks if not c.ok]
    print(f"GPU acceptance ({mode}): {len(checks) - len(bad)}/{len(checks)} checks ok"
          + (f"; mismatches: {', '.join(c.what for c in bad)}" if bad else ""))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thbench.profiling.gpu",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--reduced", action="store_true",
                        help="the CPU form (tiny configs, few steps), also without this flag "
                             "when CUDA is absent")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps per run (default 100 on CUDA, 4 reduced)")
    parser.add_argument("--out", type=Path, default=Path("runs/gpu-acceptance"))
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.reduced
    mode = "full" if cuda else "reduced"
    if not cuda:
        print("no CUDA device (or --reduced): the reduced path on the CPU with tiny configs")
    device = torch.device("cuda:0" if cuda else "cpu")
    if cuda:
        from thbench.core import accelerator

        accelerator.configure(device, "eval")
    checks = run(mode, device, args.steps or (100 if cuda else 4), args.out)
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
