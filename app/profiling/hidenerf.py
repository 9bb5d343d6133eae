"""CPU cost of one HiDe-NeRF output frame: ``python -m thbench.profiling.hidenerf [--threads N]``;
``--compare`` puts the ``paper`` config beside FOMM, TPSMM and face-vid2vid in one table.

For ``tiny`` and ``paper``, both 256x256 (batch 1, random init, eval, no_grad), each in a fresh
subprocess, it prints:

* ms per output frame, wall clock and process CPU time (the CPU time is the fairer number on
  a shared machine; the load average is printed beside it) of what
  :class:`thbench.hidenerf.method.HiDeNeRFMethod` does per driving frame (encode the driving SECC,
  render rays x samples through LED + tri-planes + decoder, warp the source, refine), median
  over timed frames;
  the once-per-source encoding (MGA) is timed separately;
* peak memory of the per-frame renders: the process's peak resident set size (``VmHWM`` in
  ``/proc/self/status``, reset through ``/proc/self/clear_refs`` after the model is built and
  the source encoded, so earlier transients do not hide it), and its increase over the resident
  size before the first frame. Where the reset is not possible (not Linux) it falls back to the
  increase of ``getrusage(RUSAGE_SELF).ru_maxrss``, a lower bound. tracemalloc is not used: it
  sees only Python's allocator, not torch's tensor memory;
* the analytic FLOPs from the config (1 multiply-add = 2 FLOPs): rays x samples x per-point
  MLP FLOPs, which bounds the rendering (skipping empty space evaluates fewer samples), plus
  the per-frame convolutions.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

from thbench.hidenerf.config import HiDeNeRFConfig, get_config
from thbench.profiling.memory import reset_peak_rss, status_kib

SIZES = {"tiny": 256, "paper": 256}


def point_macs(c: HiDeNeRFConfig) -> dict[str, int]:
    """Multiply-adds per ray sample, by component (bilinear taps count 4 per channel)."""
    pe = 3 * (1 + 2 * c.led_pe_freqs)
    w, e = c.led_width, c.led_secc_channels
    # context (2 layers), expression (x2), body (x2), out; the adds c + A e (x2) and f_d - f_s
    led = (pe + e) * w + w * w + 2 * e * w + 2 * w * w + 3 * w + 3 * w
    secc_taps = 2 * 4 * e  # source and driving feature samples
    triplane_taps = len(c.plane_sizes) * 3 * 4 * c.plane_channels
    d_in = len(c.plane_sizes) * c.plane_channels
    decoder = d_in * c.decoder_hidden + c.decoder_hidden * (1 + c.feature_channels)
    composite = 2 * (c.feature_channels + e)  # features and the expression change
    return {"led_mlp": led, "decoder_mlp": decoder, "secc_sampling": secc_taps,
            "triplane_sampling": triplane_taps, "compositing": composite}


def conv_macs(cin: int, cout: int, k: int, size: int) -> int:
    return cin * cout * k * k * size * size


def frame_conv_macs(c: HiDeNeRFConfig) -> dict[str, int]:
    """Per-frame convolutions: the driving SECC encoder and the refine network."""
    s, e = c.secc_size, c.led_secc_channels
    secc = conv_macs(3, e, 3, s)
    for _ in range(c.led_secc_downsample):
        s //= 2
        secc += conv_macs(e, e, 3, s)
    secc += conv_macs(e, e, 3, s)
    r = c.render_size
    refine = conv_macs(c.feature_channels + 1, c.refine_channels[0], 3, r)  # + opacity
    refine += conv_macs(e, c.refine_channels[0], 3, r) + conv_macs(  # expression residual
        c.refine_channels[0], c.refine_channels[0], 3, r)
    cin = c.refine_channels[0]
    for cout in c.refine_channels:
        r *= 2  # each stage also sees the warped source (3 channels)
        refine += conv_macs(cin + 3, cout, 3, r) + conv_macs(cout, cout, 3, r) + conv_macs(
            cin + 3, cout, 1, r)
        cin = cout
    refine += conv_macs(cin, 3, 3, r)
    return {"secc_encoder": secc, "refine": refine}


def analytic(c: HiDeNeRFConfig) -> dict:
    rays = c.render_size**2
    samples = c.samples_per_ray
    per_point = point_macs(c)
    mlp = per_point["led_mlp"] + per_point["decoder_mlp"]
    convs = frame_conv_macs(c)
    return {
        "rays": rays,
        "samples_per_ray": samples,
        "mlp_flops_per_point": 2 * mlp,
        "all_flops_per_point": 2 * sum(per_point.values()),
        "render_mlp_gflops": 2 * rays * samples * mlp / 1e9,
        "render_all_gflops": 2 * rays * samples * sum(per_point.values()) / 1e9,
        "conv_gflops": {k: 2 * v / 1e9 for k, v in convs.items()},
        "frame_gflops": (2 * rays * samples * sum(per_point.values())
                         + 2 * sum(convs.values())) / 1e9,
    }


class FrameRunner:
    """A random-init model of config ``name``, a random source and random SECC maps; what the
    Method does once per source (:meth:`setup`: posed-SECC-conditioned tri-planes, source SECC
    features) and per driving frame (:meth:`frame`: driving SECC features, rays through LED,
    tri-planes and decoder, the warp and the refine network). The per-frame face analysis
    (dlib + eos) is not included."""

    def __init__(self, name: str, device: str | torch.device = "cpu") -> None:
        from thbench.hidenerf.model import HiDeNeRF

        self.config = get_config(name)
        self.device = torch.device(device)
        self.model = HiDeNeRF(self.config).eval().to(self.device)
        c = self.config
        gen = torch.Generator().manual_seed(0)
        self.source = torch.rand(1, 3, c.image_size, c.image_size, generator=gen).to(device)
        self.posed = torch.rand(1, 3, c.encoder_size, c.encoder_size, generator=gen).to(device)
        self.secc = torch.rand(1, 3, c.secc_size, c.secc_size, generator=gen).to(device)
        self.source_camera = self.model.camera(0.0, 0.0, 0.0)

    @torch.no_grad()
    def setup(self) -> None:
        self.planes = self.model.encode_source(self.source, self.posed)
        self.feat_src = self.model.encode_secc(self.secc)

    @torch.no_grad()
    def frame(self, index: int) -> torch.Tensor:
        secc = torch.roll(self.secc, index, -1)
        camera = self.model.camera(5.0 * index, 0.0, 0.0)
        return self.model.render(self.planes, self.feat_src, secc,
                                 self.source, self.source_camera, camera)["image"]


def measure(name: str, frames: int) -> dict:
    runner = FrameRunner(name)
    config, size = runner.config, SIZES[name]
    start = time.perf_counter()
    runner.setup()
    encode_ms = 1e3 * (time.perf_counter() - start)
    reset = reset_peak_rss()
    base_kib = (status_kib("VmRSS") if reset
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    times, cpu_times = [], []
    for i in range(frames + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        out = runner.frame(i)
        assert out.shape == (1, 3, size, size)
        if i > 0:  # the first frame is a warm-up
            times.append(1e3 * (time.perf_counter() - start))
            cpu_times.append(1e3 * (time.process_time() - cpu_start))
    peak_kib = (status_kib("VmHWM") if reset
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    params = sum(p.numel() for p in runner.model.parameters())
    return {"config": name, "size": size, "threads": torch.get_num_threads(),
            "params_m": params / 1e6, "encode_source_ms": encode_ms,
            "ms_per_frame": statistics.median(times), "frames_timed": len(times),
            "cpu_ms_per_frame": statistics.median(cpu_times),
            "load_average": os.getloadavg()[0],
            "memory_source": "VmHWM reset after encoding" if reset else "ru_maxrss increase",
            "rss_before_mib": base_kib / 1024, "peak_rss_mib": peak_kib / 1024,
            "peak_rss_delta_mib": (peak_kib - base_kib) / 1024,
            **analytic(config)}


def compare(frames: int, size: int = 256, config: str = "vox256") -> list:
    """FOMM, TPSMM, face-vid2vid (``config``) and HiDe-NeRF ``paper`` end to end in one table,
    one process, the same threads: :func:`thbench.profiling.endtoend.compare`."""
    from thbench.profiling.endtoend import compare as end_to_end

    return end_to_end(frames, size, config)


def report(r: dict) -> str:
    convs = ", ".join(f"{k} {v:.3f}" for k, v in r["conv_gflops"].items())
    gflops_s = r["frame_gflops"] / (r["cpu_ms_per_frame"] / 1e3)
    return "\n".join([
        f"{r['config']} {r['size']}x{r['size']} (batch 1, random init, {r['threads']} thread(s),"
        f" {r['params_m']:.2f} M params)",
        f"  ms per output frame     {r['ms_per_frame']:.1f} wall, {r['cpu_ms_per_frame']:.1f} CPU"
        f" (median of {r['frames_timed']}; 1-min load average {r['load_average']:.1f});"
        f" source encoding once {r['encode_source_ms']:.1f} ms",
        f"  peak memory             +{r['peak_rss_delta_mib']:.1f} MiB over the"
        f" {r['rss_before_mib']:.1f} MiB resident before the frames (process peak"
        f" {r['peak_rss_mib']:.1f} MiB; {r['memory_source']})",
        f"  rays x samples          {r['rays']} x {r['samples_per_ray']}"
        f" = {r['rays'] * r['samples_per_ray']} points",
        f"  MLP FLOPs per point     {r['mlp_flops_per_point']} (LED + decoder);"
        f" with sampling/compositing {r['all_flops_per_point']}",
        f"  rays x samples x MLP    {r['render_mlp_gflops']:.3f} GFLOP"
        f" (all per-point work {r['render_all_gflops']:.3f} GFLOP)",
        f"  per-frame convs         {convs} GFLOP",
        f"  total per frame         {r['frame_gflops']:.3f} GFLOP"
        f" -> {gflops_s:.2f} GFLOP/s per CPU second",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thbench.profiling.hidenerf",
                                     description=__doc__)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads (default: torch's choice, as baselines.bench)")
    parser.add_argument("--configs", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--frames", type=int, default=0, help="timed frames (0: 5 tiny, 2 paper)")
    parser.add_argument("--compare", action="store_true",
                        help="one end-to-end table: FOMM, TPSMM, face-vid2vid (vox256) and "
                             "HiDe-NeRF paper (with its per-frame face analysis) at 256x256, "
                             "same process and threads (thbench.profiling.endtoend)")
    parser.add_argument("--size", type=int, default=256, help="--compare: frame side")
    parser.add_argument("--compare-config", default="vox256", choices=["vox256", "tiny"],
                        help="--compare: vox256 (HiDe-NeRF paper) or every method's tiny")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.compare:
        compare(args.frames or 3, args.size, args.compare_config)
        return 0
    if args.one:
        frames = args.frames or (5 if args.one == "tiny" else 2)
        print(json.dumps(measure(args.one, frames)))
        return 0
    for name in args.configs:
        cmd = [sys.executable, "-m", "thbench.profiling.hidenerf", "--one", name,
               "--threads", str(args.threads), "--frames", str(args.frames)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            print(f"error: {name}: {done.stderr.strip().splitlines()[-1]}", file=sys.stderr)
            return 1
        print(report(json.loads(done.stdout.strip().splitlines()[-1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
