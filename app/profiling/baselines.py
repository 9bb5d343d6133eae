"""Inference speed of the warping baselines.

    python -m thbench.profiling.baselines [--methods fomm tpsmm fv2v] [--config vox256]
    [--batch-size 1]
                              [--frames N] [--warmup 1] [--size 256] [--threads N]
                              [--device cpu|cuda]

For each method: the weights are a seeded random initialisation (speed does not depend on the
values), the source and driving frames random ``size`` x ``size`` images. The per-pair setup
(source encoding, source and first-frame keypoints) is timed once; then ``--warmup`` batches are
run untimed and the steady per-frame work (:meth:`FramewiseMethod.forward_batch`: driving
keypoints, dense motion, generator) is timed over at least ``--frames`` frames in batches of
``--batch-size``. Each method runs in its default mode (FOMM and TPSMM relative, fv2v absolute).
The header states the torch version, the thread count and the device.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

METHODS = ("fomm", "tpsmm", "fv2v")


@dataclass(frozen=True)
class Measurement:
    method: str
    config: str
    device: str
    size: int
    batch: int
    frames: int
    seconds: float
    setup_seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    def line(self) -> str:
        return (f"{self.method:<6} {self.config:<7} {self.fps:9.3f} frames/s "
                f"({1000 * self.seconds / self.frames:8.1f} ms/frame; setup "
                f"{1000 * self.setup_seconds:7.1f} ms) at {self.size}x{self.size}, batch "
                f"{self.batch}, {self.frames} frames, {self.device}")


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def measure(name: str, config: str = "vox256", device: str | torch.device = "cpu",
            frames: int = 4, batch_size: int = 1, size: int = 256, warmup: int = 1,
            seed: int = 0) -> Measurement:
    """Time one baseline (see the module docstring)."""
    from thbench.core.families import build

    if name not in METHODS:
        raise ValueError(f"unknown baseline {name!r}; known: {', '.join(METHODS)}")
    if frames < 1 or batch_size < 1 or warmup < 0:
        raise ValueError("frames and batch_size must be >= 1, warmup >= 0")
    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        method = build(name, config=config, device=device, allow_random_init=True)
    generator = torch.Generator().manual_seed(seed)
    source = torch.rand(3, size, size, generator=generator).to(device)
    driving = torch.rand(batch_size, 3, size, size, generator=generator).to(device)
    with torch.no_grad():
        _sync(device)
        start = time.perf_counter()
        method.setup(source, driving[0])
        _sync(device)
        setup = time.perf_counter() - start
        for _ in range(warmup):
            method.forward_batch(driving)
        _sync(device)
        done, start = 0, time.perf_counter()
        while done < frames:
            method.forward_batch(driving)
            done += batch_size
        _sync(device)
        seconds = time.perf_counter() - start
    return Measurement(name, config, str(device), size, batch_size, done, seconds, setup)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(device: torch.device) -> str:
    """Torch version, threads, CPUs, device, and the load average (other processes on the
    machine slow every number down)."""
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    load = (f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")
    return (f"torch {torch.__version__}, {torch.get_num_threads()} threads "
            f"({os.cpu_count()} CPUs visible), device {device} ({where}){load}")


def benchmark(methods: Sequence[str] = METHODS, config: str = "vox256",
              device: str | torch.device | None = None, frames: int | None = None,
              batch_size: int = 1, size: int = 256, warmup: int = 1) -> list[Measurement]:
    """Measure each method in turn, printing the header and one line per method.

    ``frames`` defaults to 4 on CPU (a vox256 frame takes seconds there) and 64 on GPU."""
    device = torch.device(device) if device is not None else default_device()
    frames = frames or (4 if device.type == "cpu" else 64)
    print(header(device))
    results = []
    for name in methods:
        result = measure(name, config, device, frames, batch_size, size, warmup)
        print(result.line())
        results.append(result)
    return results


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thbench.profiling.baselines",
                                     description="frames/s of the warping baselines")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--config", default="vox256", help="vox256 (official size) or tiny")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--batch-size", type=_positive, default=1)
    parser.add_argument("--frames", type=_positive, default=None,
                        help="timed frames per method (default 4 on CPU, 64 on GPU)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed batches first")
    parser.add_argument("--size", type=_positive, default=256, help="frame side in pixels")
    parser.add_argument("--threads", type=_positive, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    benchmark(args.methods, args.config, args.device, args.frames, args.batch_size, args.size,
              args.warmup)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
