"""CPU tests for the defects a first CUDA run would meet (issue 30): device indices, the process
group's timeout, TPSMM's spline fit and the camera maths under bf16 autocast."""

from __future__ import annotations

import os
import warnings
from datetime import timedelta

import pytest
import torch

from thbench.baselines.tpsmm import apply_tps, fit_tps
from thbench.core import processes
from thbench.core.processes import group_timeout, local_device
from thbench.hidenerf.cameras import camera_from_pose


@pytest.mark.parametrize(("world", "local", "device", "expected"), [
    ("1", None, "cuda", "cuda:0"),  # torch.cuda.set_device needs an index
    ("1", "0", "cuda", "cuda:0"),
    ("1", None, "cuda:1", "cuda:1"),  # one process: an explicit GPU is kept
    ("4", "2", "cuda", "cuda:2"),
    ("4", "3", "cuda:3", "cuda:3"),
    ("1", None, "cpu", "cpu"),
    ("4", "2", "cpu", "cpu"),
])
def test_local_device_always_indexes_cuda(monkeypatch, world, local, device, expected) -> None:
    monkeypatch.setenv("WORLD_SIZE", world)
    if local is None:
        monkeypatch.delenv("LOCAL_RANK", raising=False)
    else:
        monkeypatch.setenv("LOCAL_RANK", local)
    assert local_device(device) == expected
    assert torch.device(local_device(device)).index is not None or expected == "cpu"


def test_explicit_gpu_under_torchrun_is_not_shared_by_every_rank(monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert local_device("cuda:0") == "cuda:0"
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.warns(UserWarning, match="LOCAL_RANK=1 uses cuda:1"):
        assert local_device("cuda:0") == "cuda:1"


def test_process_group_is_joined_with_a_long_timeout(monkeypatch) -> None:
    """torch's default is 10 minutes; rank 0 alone (held-out L1, lazy fits, noise floor,
    training inside eval) takes longer, and the waiting ranks must not time out."""
    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(processes.dist, "is_initialized", lambda: bool(calls))
    monkeypatch.setattr(processes.dist, "init_process_group",
                        lambda backend, **kw: calls.append((backend, kw)))
    monkeypatch.setattr(processes.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(processes.dist, "get_world_size", lambda: 2)
    process = processes.join("cpu")
    assert (process.rank, process.world) == (1, 2)
    assert calls == [("gloo", {"timeout": timedelta(hours=12)})]
    monkeypatch.setenv("THB_GROUP_TIMEOUT_MIN", "90")
    assert group_timeout() == timedelta(minutes=90)
    monkeypatch.setenv("THB_GROUP_TIMEOUT_MIN", "soon")
    with pytest.raises(ValueError, match="THB_GROUP_TIMEOUT_MIN='soon'"):
        group_timeout()


def test_tps_fit_runs_in_fp32_without_autocast_under_bf16(monkeypatch) -> None:
    """CUDA autocast leaves ``linalg.solve`` alone, promotes the system to fp32 and keeps the
    right-hand side bf16, and CUDA has no bf16 solve: the solve must see two fp32 operands with
    autocast off. CPU autocast would hide the mix (it casts solve's inputs), so the solve is
    watched."""
    seen = []
    solve = torch.linalg.solve

    def watched(a, b):
        seen.append((a.dtype, b.dtype, torch.is_autocast_enabled("cpu")))
        return solve(a, b)

    monkeypatch.setattr(torch.linalg, "solve", watched)
    generator = torch.Generator().manual_seed(0)
    control = (torch.rand(2, 3, 5, 2, generator=generator) * 2 - 1).bfloat16()
    target = (torch.rand(2, 3, 5, 2, generator=generator) * 2 - 1).bfloat16()
    points = torch.rand(7, 2, generator=generator) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        affine, weights = fit_tps(control, target)
        moved = apply_tps(points, control, affine, weights)
    assert seen == [(torch.float32, torch.float32, False)]
    assert affine.dtype == weights.dtype == moved.dtype == torch.float32
    reference = apply_tps(points, control.float(), *fit_tps(control.float(), target.float()))
    torch.testing.assert_close(moved, reference, atol=1e-6, rtol=1e-6)


def test_camera_and_ray_maths_stay_fp32_under_bf16_autocast() -> None:
    """Under bf16 the source-grid (u, v) moves by texels and ray directions by a fraction of
    the ray spacing; every product in cameras.py must run in fp32."""
    points = torch.rand(1, 50, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1
    plain = camera_from_pose(23.0, -11.0, 7.0, scale=1.1)
    expected = (plain.rays(64, 64), plain.source_grid(points), plain.project(points, 256, 256))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        camera = camera_from_pose(23.0, -11.0, 7.0, scale=1.1)
        got = (camera.rays(64, 64), camera.source_grid(points), camera.project(points, 256, 256))
        from_bf16_points = camera.source_grid(points.bfloat16())
    assert camera.rotation.dtype == torch.float32
    for a, b in zip((*got[0], *got[1:]), (*expected[0], *expected[1:]), strict=True):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert from_bf16_points.dtype == torch.float32
    torch.testing.assert_close(from_bf16_points, plain.source_grid(points.bfloat16().float()),
                               atol=1e-6, rtol=0)


def test_metrics_and_fan_get_the_runs_device(tmp_path, monkeypatch) -> None:
    from thbench.eval.frame_analyses import build_analyzer
    from thbench.eval.metrics import build_metrics
    from thbench.facegeom import analysis

    built = build_metrics(["psnr", "lpips", "fid"], {"fid": {"device": "cpu"}}, "cuda:1")
    assert [getattr(m, "device", None) for m in built] == [None, "cuda:1", "cpu"]
    assert [getattr(m, "device", None) for m in build_metrics(["lpips"])] == ["cpu"]
    made = []
    monkeypatch.setattr(analysis, "FaceAnalyzer", lambda **kw: made.append(kw) or kw)
    build_analyzer(build_metrics(["akd"], {"akd": {"landmarks": "fan"}}), tmp_path, "cuda:1")
    assert made[0]["parts"] == ("fan",) and made[0]["fan"].device == "cuda:1"


def test_prior_hole_fill_without_host_syncs_matches_the_bounding_box_path() -> None:
    """On CUDA the prior fills holes over the whole map (no nonzero / item syncs); wherever the
    closed mask is set it equals the CPU's bounding-box path."""
    from thbench.hidenerf.prior import _fill_holes

    size, fill = 64, 9
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disk = ((ys - 32) ** 2 + (xs - 30) ** 2 < 24**2).float()
    eyes = ((ys - 25) ** 2 + (xs - 22) ** 2 < 9) | ((ys - 25) ** 2 + (xs - 38) ** 2 < 9)
    mask = (disk * ~eyes).expand(2, 1, size, size).clone()
    closed = disk.expand(2, 1, size, size)
    z = torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(0)) * mask
    box = _fill_holes(z, mask, closed, fill, whole_map=False)
    whole = _fill_holes(z, mask, closed, fill, whole_map=True)
    assert (closed > mask).sum() > 20
    torch.testing.assert_close(whole * closed, box * closed, atol=1e-6, rtol=0)
    assert not torch.equal(whole * closed, z * closed)  # the holes were filled


def test_cuda_settings_for_training_and_evaluation(monkeypatch) -> None:
    """The flags are plain Python state, so a CPU machine can check what a CUDA run sets."""
    from thbench.core import accelerator

    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled())
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        assert accelerator.configure("cpu", "train") == {}
        assert not torch.are_deterministic_algorithms_enabled()
        accelerator.configure("cuda:0", "train")
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert torch.backends.cuda.matmul.allow_tf32
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        accelerator.configure("cuda:0", "eval")
        assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.allow_tf32
        assert not torch.backends.cuda.matmul.allow_tf32
    finally:
        (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
         torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) = saved[:4]
        torch.use_deterministic_algorithms(saved[4], warn_only=saved[5])
