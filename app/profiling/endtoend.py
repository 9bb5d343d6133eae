"""End-to-end speed of every method, per output frame, in one table:
``python -m thbench.profiling.endtoend`` (also ``python -m thbench.profiling.hidenerf --compare``
and ``nox -s bench``).

Each method runs behind the benchmark's own Method interface (``setup`` once per source, then
``forward_batch`` one driving frame at a time), in this one process with the same torch threads,
on the same real face frames: square 256 x 256 crops of the sample video
``WolfgangLanger_Pexels.mp4``, each given once (HiDe-NeRF remembers the analyses of frames it
has seen, a gain only where several sources share a driver). A method's time per frame is therefore
everything it needs per frame: for the warping methods the keypoints, dense motion and
generator; for HiDe-NeRF also the driving frame's face analysis (dlib detection, 68 landmarks,
the eos fit, the SECC render) before its rendering. Weights are a seeded random initialisation
(the speed does not depend on the values); FOMM, TPSMM and face-vid2vid run their ``vox256``
configs, HiDe-NeRF its ``paper`` config (``--config tiny`` runs every method's tiny config).

Per method it prints the median wall-clock ms per output frame (and process CPU ms), the setup
per source (timed on a second setup: the first loads model files), and the peak memory: the
process's peak resident set (``VmHWM``, reset before each method is built) above the resident
set before it, or on CUDA the peak allocated memory. Under
the table: the FLOPs per frame that ``torch.utils.flop_counter`` counts (matrix products and
convolutions; grid sampling, the face analysis and elementwise work are not counted), the
achieved GFLOP/s, and the machine's FP32 peak measured in the same run by a matmul
microbenchmark; on the CPU both per CPU second (process time), which a loaded machine does not
distort as it does wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from thbench.profiling.baselines import header
from thbench.profiling.memory import reset_peak_rss, status_kib

METHODS = ("fomm", "tpsmm", "fv2v", "hidenerf")
HIDENERF_CONFIG = {"vox256": "paper", "tiny": "tiny"}


@dataclass(frozen=True)
class Row:
    """One method's end-to-end figures."""

    method: str
    config: str
    ms_per_frame: float
    cpu_ms_per_frame: float
    setup_ms: float
    peak_mib: float
    gflop_per_frame: float
    frames: int

    device: str = "cpu"

    @property
    def gflops(self) -> float:
        """GFLOP per second of the frame's time: CPU time on the CPU (fair on a loaded machine,
        and per CPU second whatever the thread count), wall time on a GPU."""
        ms = self.cpu_ms_per_frame if self.device == "cpu" else self.ms_per_frame
        return self.gflop_per_frame / (ms / 1e3)


def face_frames(count: int, size: int = 256, video: Path | None = None) -> torch.Tensor:
    """(count, 3, size, size) float frames in [0, 1]: square crops of the sample video around
    its face (the crop of :mod:`thbench.profiling.facegeom`)."""
    from thbench.profiling.facegeom import DEFAULT_VIDEO, square_crops

    if video is None:
        from thbench.datasets.sample import sample_media_dir

        video = sample_media_dir() / DEFAULT_VIDEO
    crops = square_crops(video, count, size)
    if len(crops) < count:
        raise ValueError(f"{video}: only {len(crops)} frames with a face, {count} needed")
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255


def build_method(name: str, config: str, device: torch.device):
    """A seeded random-init method of the family ``name`` in the profiled config."""
    from thbench.core.families import build

    torch.manual_seed(0)
    if name == "hidenerf":
        return build(name, config=HIDENERF_CONFIG.get(config, config), device=device)
    return build(name, config=config, device=device, allow_random_init=True)


def matmul_peak_gflops(device: torch.device, size: int = 1024, seconds: float = 0.5) -> float:
    """The best FP32 GFLOP/s of ``size`` x ``size`` matrix products over about ``seconds``:
    per CPU second on the CPU (as :attr:`Row.gflops`), per wall second on a GPU."""
    clock = time.process_time if device.type == "cpu" else time.perf_counter
    a = torch.rand(size, size, device=device)
    b = torch.rand(size, size, device=device)
    best, spent = 0.0, 0.0
    torch.mm(a, b)  # warm-up
    while spent < seconds:
        _sync(device)
        start = clock()
        torch.mm(a, b)
        _sync(device)
        took = max(clock() - start, 1e-9)
        spent += took
        best = max(best, 2 * size**3 / took / 1e9)
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _PeakMemory:
    """Peak memory of one method, from just before it is built (MiB above that point)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            self.base = torch.cuda.memory_allocated(device)
        else:
            self.reset = reset_peak_rss()
            self.base = status_kib("VmRSS") if self.reset else None

    def mib(self) -> float:
        if self.device.type == "cuda":
            return (torch.cuda.max_memory_allocated(self.device) - self.base) / 2**20
        peak = status_kib("VmHWM")
        if not self.reset or self.base is None or peak is None:
            return float("nan")
        return (peak - self.base) / 1024


def _count_gflop(method, frame: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        method.forward_batch(frame)
    return counter.get_total_flops() / 1e9


def measure(name: str, frames: torch.Tensor, config: str = "vox256",
            device: torch.device | str = "cpu", warmup: int = 1) -> Row:
    """Time ``name`` on ``frames``: a first setup on ``frames[0]`` (loads model files), a timed
    setup on ``frames[1]`` (the next source), ``warmup`` untimed frames, then every remaining
    frame, one at a time. No frame is given twice, so no per-frame analysis is reused."""
    device = torch.device(device)
    frames = frames.to(device)
    if len(frames) < 3 + warmup:
        raise ValueError(f"{len(frames)} frames: need 2 sources, {warmup} warm-up and 1 timed")
    memory = _PeakMemory(device)
    method = build_method(name, config, device)
    times, cpu_times = [], []
    with torch.no_grad():
        method.setup(frames[0], frames[1])
        _sync(device)
        start = time.perf_counter()
        method.setup(frames[1], frames[2])
        _sync(device)
        setup_ms = 1e3 * (time.perf_counter() - start)
        for frame in frames[2:2 + warmup]:
            method.forward_batch(frame[None])
        for frame in frames[2 + warmup:]:
            _sync(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            out = method.forward_batch(frame[None])
            _sync(device)
            times.append(1e3 * (time.perf_counter() - start))
            cpu_times.append(1e3 * (time.process_time() - cpu_start))
            if out.shape != frame[None].shape:
                raise RuntimeError(f"{name}: output {tuple(out.shape)} for a frame "
                                   f"{tuple(frame[None].shape)}")
        peak = memory.mib()
        gflop = _count_gflop(method, frames[-1][None])
    return Row(name, _config_label(name, config), statistics.median(times),
               statistics.median(cpu_times), setup_ms, peak, gflop, len(times), device.type)


def _config_label(name: str, config: str) -> str:
    return HIDENERF_CONFIG.get(config, config) if name == "hidenerf" else config


def table(rows: Sequence[Row], peak_gflops: float) -> str:
    lines = ["| method | config | ms per frame (wall) | CPU ms per frame | setup per source ms"
             " | peak memory MiB | GFLOP per frame | GFLOP/s | % of matmul peak |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r.method} | {r.config} | {r.ms_per_frame:.1f} | "
                     f"{r.cpu_ms_per_frame:.1f} | {r.setup_ms:.1f} | {r.peak_mib:.1f} | "
                     f"{r.gflop_per_frame:.2f} | {r.gflops:.2f} | "
                     f"{100 * r.gflops / peak_gflops:.1f} |")
    per = "CPU second" if rows and rows[0].device == "cpu" else "second"
    lines.append(f"FP32 peak measured in this run (1024^2 matmul, best of ~0.5 s): "
                 f"{peak_gflops:.1f} GFLOP per {per}; GFLOP/s above are per {per} too. "
                 "GFLOP per frame: matrix products and "
                 "convolutions counted by torch.utils.flop_counter (not grid sampling, the face "
                 "analysis or elementwise work). HiDe-NeRF's ms per frame include its "
                 "driving-frame face analysis (dlib detect + landmarks + eos fit + SECC).")
    return "\n".join(lines)


def compare(frames: int = 3, size: int = 256, config: str = "vox256",
            methods: Sequence[str] = METHODS, device: str | torch.device = "cpu",
            warmup: int = 1) -> list[Row]:
    """The end-to-end table (see the module docstring); returns its rows."""
    device = torch.device(device)
    print(header(device))
    clip = face_frames(2 + warmup + frames, size)
    peak = matmul_peak_gflops(device)
    rows = [measure(name, clip, config, device, warmup) for name in methods]
    print(f"{frames} timed frames per method at {size}x{size}, batch 1 (median), "
          f"1-min load average {os.getloadavg()[0]:.1f}")
    print(table(rows, peak))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thbench.profiling.endtoend",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--config", default="vox256", choices=["vox256", "tiny"],
                        help="vox256: the warping methods' official size, HiDe-NeRF paper")
    parser.add_argument("--frames", type=int, default=3, help="timed frames per method")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="default: torch's choice")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    compare(args.frames, args.size, args.config, args.methods, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
