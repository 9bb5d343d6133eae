"""HiDe-NeRF ``paper`` per output frame, one speed lever at a time, in one process:
``python -m thbench.profiling.levers [--frames N] [--threads N]``.

Rendering levers (random init, 256 x 256, batch 1; the render of :class:`FrameRunner`, median
wall and CPU ms per frame, the variants interleaved frame by frame so that machine load hits them
alike; every variant's image is compared with the baseline's):

* ``baseline``: every sample evaluated (the inference path's other levers, exact and always on
  in eval, stay: channels-last refine network, plane table, LED where the SECCs differ);
* ``skip-empty``: :attr:`HiDeNeRF.skip_empty_space` (exact; the share of samples skipped is
  printed).

Then the per-frame face analysis that HiDe-NeRF needs for each driving frame (dlib detection +
68 landmarks + eos fit + SECC render, on real frames) against a cache hit (hashing the frame),
what caching the driving analysis saves when several sources share one driver; and the
tri-plane lookups of one chunk's points with ``grid_sample`` on the planes against the plane
table that inference reads (:class:`thbench.hidenerf.triplane.PlaneTable`).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time

import torch

from thbench.profiling.hidenerf import FrameRunner

VARIANTS = ("baseline", "skip-empty")


def _set_variant(runner: FrameRunner, variant: str) -> None:
    runner.model.skip_empty_space = variant != "baseline"


def render_levers(frames: int) -> dict[str, float]:
    runner = FrameRunner("paper")
    runner.setup()
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpu_times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    images: dict[str, torch.Tensor] = {}
    for index in range(frames + 1):
        for variant in VARIANTS:
            _set_variant(runner, variant)
            start, cpu_start = time.perf_counter(), time.process_time()
            image = runner.frame(index)
            if index:  # the first round is a warm-up
                times[variant].append(1e3 * (time.perf_counter() - start))
                cpu_times[variant].append(1e3 * (time.process_time() - cpu_start))
            if index == 1:
                images[variant] = image
    medians = {v: statistics.median(t) for v, t in times.items()}
    cpu = {v: statistics.median(t) for v, t in cpu_times.items()}
    for variant in VARIANTS:
        difference = (images[variant] - images["baseline"]).abs().max().item()
        print(f"  {variant:28s} {medians[variant]:8.1f} ms wall, {cpu[variant]:8.1f} ms CPU per "
              f"frame (CPU x{cpu['baseline'] / cpu[variant]:.2f}; max |image - baseline| "
              f"{difference:.1e})")
    print(f"  samples skipped by skip-empty: {100 * skipped_share(runner):.1f}%")
    return medians


def skipped_share(runner: FrameRunner) -> float:
    """Share of the rendered samples (coarse + fine) that skip-empty leaves out."""
    _set_variant(runner, "skip-empty")
    model, c = runner.model, runner.config
    with torch.no_grad():
        out = model.render(runner.planes, runner.feat_src, runner.secc, runner.source,
                           runner.source_camera, model.camera(5.0, 0.0, 0.0))
    origins, dirs = model.camera(5.0, 0.0, 0.0).rays(c.render_size, c.render_size)
    points = origins[:, :, None] + out["t"][..., None] * dirs[:, :, None]
    return float((points.abs() > 1 + c.led_max_offset).any(-1).float().mean())


def analysis_levers(count: int) -> dict[str, float]:
    from thbench.facegeom.analysis import FaceAnalyzer
    from thbench.facegeom.secc import render_secc
    from thbench.profiling.endtoend import face_frames

    frames = (face_frames(count, 256) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    analyzer = FaceAnalyzer(parts=("fit",), strict=True)
    analyzer.analyze(frames[0])  # loads the models
    spent, hashed = [], []
    for frame in frames:
        start = time.perf_counter()
        analysis = analyzer.analyze(frame)
        if analysis.has_face:
            render_secc(analysis.identity, analysis.expression, 256)
        spent.append(1e3 * (time.perf_counter() - start))
        start = time.perf_counter()
        hashlib.sha1(frame.tobytes()).hexdigest()
        hashed.append(1e3 * (time.perf_counter() - start))
    result = {"analysis": statistics.median(spent), "cache_hit": statistics.median(hashed)}
    print(f"  face analysis per driving frame {result['analysis']:8.1f} ms (dlib + landmarks + "
          f"eos + SECC, median of {len(spent)}); a cache hit {result['cache_hit']:.2f} ms")
    return result


def lookup_levers(repeats: int = 3) -> dict[str, float]:
    """The tri-plane lookups of one 512-ray chunk (96 samples a ray; 64, 128, 256 planes of 32
    channels): ``grid_sample`` on the planes (training's path) against the plane table."""
    from thbench.hidenerf.triplane import plane_table, sample_multiscale

    generator = torch.Generator().manual_seed(0)
    grid = torch.rand(1, 512 * 96, 3, generator=generator) * 2 - 1
    planes = [torch.rand(1, 3, 32, size, size, generator=generator) for size in (64, 128, 256)]
    table = plane_table(planes)
    result = {}
    for name, source in (("grid_sample", planes), ("plane table", table)):
        sample_multiscale(source, grid)
        spent = []
        for _ in range(repeats):
            start = time.perf_counter()
            sample_multiscale(source, grid)
            spent.append(1e3 * (time.perf_counter() - start))
        result[name] = statistics.median(spent)
    print(f"  tri-plane lookups of one 512-ray chunk: grid_sample {result['grid_sample']:.1f} ms,"
          f" plane table {result['plane table']:.1f} ms")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thbench.profiling.levers",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2, help="timed frames per variant")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--analysis-frames", type=int, default=8)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"HiDe-NeRF paper levers, {torch.get_num_threads()} thread(s)")
    render_levers(args.frames)
    analysis_levers(args.analysis_frames)
    lookup_levers()
    return 0


if __name__ == "__main__":
    sys.exit(main())
