"""PSNR / SSIM / L1: closed forms and parity with scikit-image on real face frames."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from thbench.datasets.protocols import RECONSTRUCTION
from thbench.eval.metrics import build_metrics
from thbench.eval.metrics.base import FrameBatch
from thbench.eval.metrics.image import L1, PSNR, PSNR_CEILING, SSIM, gaussian_kernel1d, psnr, ssim


@pytest.fixture(scope="module")
def face_frames(pyfeat_data: Path) -> np.ndarray:
    from thbench.core.media import iter_video

    frames = list(itertools.islice(iter_video(pyfeat_data / "WolfgangLanger_Pexels.mp4"), 0, 40, 1))
    return np.stack([frames[0], frames[5], frames[39]])  # (3, 360, 640, 3) uint8


def _batch(generated: torch.Tensor, truth: torch.Tensor) -> FrameBatch:
    return FrameBatch(generated=generated, driving=truth, source=truth[0], ground_truth=truth)


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0


def test_gaussian_taps_match_scipy() -> None:
    from scipy.ndimage import gaussian_filter1d

    impulse = np.zeros(21)
    impulse[10] = 1.0
    expected = gaussian_filter1d(impulse, 1.5, truncate=3.5)[5:16]
    assert np.allclose(gaussian_kernel1d(1.5).numpy(), expected, atol=1e-15)
    assert gaussian_kernel1d(1.5).numel() == 11


def test_ssim_parity_with_skimage_on_real_frames(face_frames: np.ndarray) -> None:
    from skimage.metrics import structural_similarity

    crops = face_frames[:, 40:296, 180:436]  # 256x256 around the face
    x = _to_tensor(crops)
    y = _to_tensor(np.roll(crops, 1, axis=0))  # frame i vs frame i-1: a real, imperfect match
    noisy = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(
        0, 1
    )
    ours = ssim(x, y).numpy()
    ours_noisy = ssim(x, noisy).numpy()
    for i in range(len(crops)):
        kwargs = dict(
            channel_axis=-1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
        )
        ref = structural_similarity(
            x[i].permute(1, 2, 0).double().numpy(), y[i].permute(1, 2, 0).double().numpy(), **kwargs
        )
        ref_noisy = structural_similarity(
            x[i].permute(1, 2, 0).double().numpy(),
            noisy[i].permute(1, 2, 0).double().numpy(),
            **kwargs,
        )
        assert abs(ours[i] - ref) < 1e-4, (i, ours[i], ref)
        assert abs(ours_noisy[i] - ref_noisy) < 1e-4, (i, ours_noisy[i], ref_noisy)
    # float32 filtering stays within the tolerance too
    assert np.allclose(ssim(x, y, dtype=torch.float32).numpy(), ours, atol=1e-4)


def test_ssim_full_frame_parity(face_frames: np.ndarray) -> None:
    from skimage.metrics import structural_similarity

    x, y = _to_tensor(face_frames[:1]), _to_tensor(face_frames[2:3])
    ref = structural_similarity(
        x[0].permute(1, 2, 0).double().numpy(),
        y[0].permute(1, 2, 0).double().numpy(),
        channel_axis=-1,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
    )
    assert abs(float(ssim(x, y)[0]) - ref) < 1e-4


def test_psnr_and_l1_closed_forms() -> None:
    x = torch.zeros(2, 3, 16, 16)
    y = x.clone()
    y[1] += 0.1
    values = psnr(x, y)
    assert values[0].item() == pytest.approx(10 * math.log10(12 * 255**2))  # the ceiling
    assert PSNR_CEILING == pytest.approx(58.9226, abs=1e-4)
    assert values[1].item() == pytest.approx(20.0, abs=1e-5)  # 10 log10(1 / 0.01)
    metric = L1()
    metric.update(_batch(y, x))
    assert metric.compute().value == pytest.approx(0.05, abs=1e-7)
    assert metric.compute().frames == 2


def test_psnr_is_capped_at_the_quantisation_ceiling_and_skimage_agrees_below_it(
        face_frames: np.ndarray) -> None:
    from skimage.metrics import peak_signal_noise_ratio

    x, y = _to_tensor(face_frames[:2]), _to_tensor(face_frames[1:3])
    for i in range(2):
        ref = peak_signal_noise_ratio(x[i].double().numpy(), y[i].double().numpy(), data_range=1.0)
        assert float(psnr(x[i : i + 1], y[i : i + 1])[0]) == pytest.approx(ref, abs=1e-6)
    metric = PSNR()
    metric.update(_batch(x, x))
    result = metric.compute()
    assert result.value == pytest.approx(PSNR_CEILING) and result.frames == 2
    # just above the floor (one level off in every 6th sample: MSE = 2 x the floor) the value
    # is the textbook one; at or below it, the ceiling
    frame = torch.from_numpy(face_frames[0]).permute(2, 0, 1)[None].double() / 255
    flat = frame.clone().flatten()
    flat[::6] = (flat[::6] * 255 + torch.where(flat[::6] < 0.5, 1.0, -1.0)) / 255
    above = flat.view_as(frame)
    ref = peak_signal_noise_ratio(frame[0].numpy(), above[0].numpy(), data_range=1.0)
    assert ref < PSNR_CEILING and float(psnr(frame, above)[0]) == pytest.approx(ref, abs=1e-6)
    flat[::6], flat[1::24] = frame.flatten()[::6], flat[1::24] + 1 / 255  # MSE = floor / 2
    assert float(psnr(frame, flat.view_as(frame))[0]) == pytest.approx(PSNR_CEILING)


def test_metric_objects_accumulate_over_batches() -> None:
    gen = torch.rand(5, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    gt = torch.rand(5, 3, 24, 24, generator=torch.Generator().manual_seed(2))
    metric = SSIM()
    metric.update(_batch(gen[:2], gt[:2]))
    metric.update(_batch(gen[2:], gt[2:]))
    result = metric.compute()
    assert result.frames == 5
    assert result.value == pytest.approx(float(ssim(gen, gt).mean()), abs=1e-12)
    metric.reset()
    assert metric.compute().status == "skipped"


def test_image_metrics_need_ground_truth() -> None:
    frames = torch.rand(1, 3, 16, 16)
    batch = FrameBatch(generated=frames, driving=frames, source=frames[0])
    for metric in build_metrics(["psnr", "ssim", "l1"]):
        assert metric.protocols == RECONSTRUCTION
        assert metric.scope == "pair" and metric.backend == "exact" and metric.available() == ""
        with pytest.raises(ValueError, match="ground-truth"):
            metric.update(batch)


def test_registry_rejects_unknown_names() -> None:
    with pytest.raises(KeyError, match="unknown metric"):
        build_metrics(["nope"])
    with pytest.raises(KeyError, match="unknown metrics"):
        build_metrics(["psnr"], {"nope": {}})
