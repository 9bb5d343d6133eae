"""Every baseline training loss term against a value the test computes itself from the
official formula (FOMM / TPSMM / face-vid2vid ``modules/model.py``), on fixed inputs and
seeded weights: the perceptual pyramid, equivariance value and jacobian, TPSMM's warp and
background losses and dropout schedule, face-vid2vid's keypoint prior and head pose (against
a Hopenet whose weights the test writes), and the GAN terms (hinge and least squares)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from thbench.baselines.loss_weights import WarpingLossWeights
from thbench.baselines.train import Discriminator, LossKit, build_kit


def images(seed: int, batch: int = 2, size: int = 64) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def blur_down(image: torch.Tensor, scale: float) -> torch.Tensor:
    """The official AntiAliasInterpolation2d, written out: Gaussian sigma = (1/s - 1)/2,
    size 2 round(4 sigma) + 1, zero padding, then every (1/s)-th pixel."""
    if scale == 1:
        return image
    sigma = (1 / scale - 1) / 2
    size = 2 * round(sigma * 4) + 1
    axis = np.arange(size) - (size - 1) / 2
    profile = np.exp(-(axis**2) / (2 * sigma**2))
    kernel = np.outer(profile, profile)
    kernel = torch.tensor(kernel / kernel.sum(), dtype=image.dtype)
    pad = size // 2
    out = F.conv2d(F.pad(image, (pad, pad, pad, pad)), kernel.expand(3, 1, size, size), groups=3)
    step = round(1 / scale)
    return out[:, :, ::step, ::step]


# --- perceptual pyramid ---------------------------------------------------------------------


def test_perceptual_pyramid_is_the_weighted_vgg_l1_over_scales():
    from torchvision.models import vgg19

    from thbench.training.vgg import VGG19Features

    torch.manual_seed(3)
    trunk = vgg19(weights=None).features
    state = {f"features.{k}": v for k, v in trunk.state_dict().items()}
    vgg = VGG19Features(state)
    weights = WarpingLossWeights(perceptual=(1.0, 2.0, 3.0, 4.0, 5.0))
    kit = LossKit(weights, torch.device("cpu"), torch.Generator(), vgg=vgg)
    fake, real = images(1, 1, 128), images(2, 1, 128)  # relu5_1 needs 16 px at 1/8
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    cuts = [(0, 2), (2, 7), (7, 12), (12, 21), (21, 30)]  # relu1_1 .. relu5_1
    expected = 0.0
    with torch.no_grad():
        for scale in (1, 0.5, 0.25, 0.125):
            a, b = ((blur_down(x, scale) - mean) / std for x in (fake, real))
            for weight, (start, stop) in zip((1, 2, 3, 4, 5), cuts, strict=True):
                a, b = trunk[start:stop](a), trunk[start:stop](b)
                expected += weight * (a - b).abs().mean().item()
        assert kit.perceptual(fake, real).item() == pytest.approx(expected, rel=1e-5)
        l1 = LossKit(weights, torch.device("cpu"), torch.Generator())  # no VGG: pixel pyramid
        pixels = sum(15 * (blur_down(fake, s) - blur_down(real, s)).abs().mean().item()
                     for s in (1, 0.5, 0.25, 0.125))
        assert l1.perceptual(fake, real).item() == pytest.approx(pixels, rel=1e-5)


# --- equivariance (FOMM: value and jacobian) ----------------------------------------------------


def official_warp(points: torch.Tensor, theta: torch.Tensor, params: torch.Tensor,
                  control: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FOMM's Transform.warp_coordinates and its jacobian in closed form:
    T(p) = A p + b + sum_k w_k d_k^2 log(d_k + 1e-6) with d_k = |x - cx_k| + |y - cy_k|;
    dT/dp = A + sum_k w_k (2 d_k log(d_k + 1e-6) + d_k^2 / (d_k + 1e-6)) sign(p - c_k), the
    same for both rows."""
    moved = points @ theta[:, :, :2].transpose(1, 2) + theta[:, None, :, 2]
    diff = points[:, :, None] - control[None, None]
    dist = diff.abs().sum(-1)
    w = params  # (B, 1, K)
    log = torch.log(dist + 1e-6)
    moved = moved + (dist**2 * log * w).sum(-1, keepdim=True)
    slope = ((2 * dist * log + dist**2 / (dist + 1e-6)) * w)[..., None] * diff.sign()
    jac = theta[:, None, :, :2] + slope.sum(2)[:, :, None, :]
    return moved, jac


def test_fomm_equivariance_value_and_jacobian():
    from thbench.baselines.fomm import FOMM
    from thbench.core.grids import coordinate_grid

    torch.manual_seed(0)
    method = FOMM(config="tiny", allow_random_init=True)
    method.nets.train()
    source, driving = images(4), images(5)
    weights = WarpingLossWeights(sigma_affine=0.2, sigma_tps=0.05)  # a visible warp
    kit = LossKit(weights, torch.device("cpu"), torch.Generator().manual_seed(7))
    torch.manual_seed(1)
    losses, _ = method.training_losses(source, driving, kit)

    draw = torch.Generator().manual_seed(7)  # the same draws in the same order
    theta = torch.randn(2, 2, 3, generator=draw) * 0.2 + torch.eye(2, 3)
    params = torch.randn(2, 1, 25, generator=draw) * 0.05
    control = coordinate_grid(5, 5).view(-1, 2)
    with torch.no_grad():
        detector = method.nets["kp_detector"]
        kp_driving = detector(driving)
        grid = coordinate_grid(64, 64).view(1, -1, 2).expand(2, -1, -1)
        warped_grid = official_warp(grid, theta, params, control)[0].view(2, 64, 64, 2)
        frame = F.grid_sample(driving, warped_grid, padding_mode="reflection",
                              align_corners=False)
        kp_warped = detector(frame)
        moved, jac = official_warp(kp_warped["value"], theta, params, control)
        value = (kp_driving["value"] - moved).abs().mean()
        product = torch.linalg.inv(kp_driving["jacobian"]) @ (jac @ kp_warped["jacobian"])
        jacobian = (torch.eye(2) - product).abs().mean()
    assert losses["equivariance_value"].item() == pytest.approx(10 * value.item(), rel=1e-4)
    assert losses["equivariance_jacobian"].item() == pytest.approx(10 * jacobian.item(),
                                                                   rel=1e-4)
    assert value.item() > 1e-3 and jacobian.item() > 1e-3


# --- TPSMM: warp loss, background loss, dropout schedule ---------------------------------------


def test_tpsmm_dropout_schedule_is_the_official_ramp():
    w = WarpingLossWeights(tps_dropout_epochs=35)
    expected = {0: 0.1, 1: 0.13, 5: 0.25, 6: 0.28, 7: 0.3, 20: 0.3, 34: 0.3, 35: 0.0, 99: 0.0}
    for epoch, p in expected.items():  # min(epoch / 10 * 0.3 + 0.1, 0.3) while epoch < 35
        assert w.tps_dropout(epoch) == pytest.approx(p), epoch
    assert WarpingLossWeights().tps_dropout(0) == 0.0  # off unless the config sets it
    assert not WarpingLossWeights().background(50)
    assert WarpingLossWeights(bg_start_epoch=10).background(10)
    assert not WarpingLossWeights(bg_start_epoch=10).background(9)


def tpsmm(bg_start: int = -1):
    from thbench.baselines.tpsmm import TPSMM

    torch.manual_seed(0)
    method = TPSMM(config="tiny", allow_random_init=True)
    weights = WarpingLossWeights(bg_start_epoch=bg_start)
    extra = method.training_nets(weights)
    method.nets.train()
    return method, weights, extra


def test_tpsmm_warp_loss_is_the_occluded_feature_l1():
    method, weights, _ = tpsmm()
    source, driving = images(8), images(9)
    kit = LossKit(weights, torch.device("cpu"), torch.Generator().manual_seed(1))
    losses, _ = method.training_losses(source, driving, kit)
    assert "bg" not in losses
    with torch.no_grad():
        detector = method.nets["kp_detector"]
        inpainting = method.nets["inpainting_network"]
        kp_s, kp_d = detector(source)["fg_kp"], detector(driving)["fg_kp"]
        motion = method.nets["dense_motion_network"](source, kp_d, kp_s)
        flow, masks = motion["deformation"], motion["occlusion_map"]
        sources, drivings = inpainting.encode(source)[::-1], inpainting.encode(driving)[::-1]
        total = 0.0
        for mask, s, d in zip(masks, sources, drivings, strict=True):
            grid = F.interpolate(flow.permute(0, 3, 1, 2), size=s.shape[-2:], mode="bilinear",
                                 align_corners=True).permute(0, 2, 3, 1)
            warped = F.grid_sample(s, grid, align_corners=True) * mask
            total += (d * mask - warped).abs().mean().item()
    assert len(masks) == 4
    assert losses["warp"].item() == pytest.approx(10 * total, rel=1e-4)


def test_tpsmm_background_loss_from_its_start_epoch():
    method, weights, extra = tpsmm(bg_start=2)
    assert set(extra) == {"bg_predictor"}
    fc = extra["bg_predictor"].bg_encoder.fc
    affine = torch.tensor([1.1, 0.2, -0.1, 0.05, 0.9, 0.3])
    with torch.no_grad():  # a constant prediction: A(s, d) = A(d, s) = M
        fc.weight.zero_()
        fc.bias.copy_(affine)
    m = np.vstack([affine.numpy().reshape(2, 3), [0, 0, 1]])
    expected = 10 * np.abs(np.eye(3) - m @ m).mean()
    source, driving = images(10), images(11)
    kit = LossKit(weights, torch.device("cpu"), torch.Generator().manual_seed(1), epoch=1)
    assert "bg" not in method.training_losses(source, driving, kit)[0]
    kit.epoch = 2
    losses, _ = method.training_losses(source, driving, kit)
    assert losses["bg"].item() == pytest.approx(expected, rel=1e-5)
    losses["bg"].backward()
    assert fc.bias.grad is not None and fc.bias.grad.abs().sum() > 0


# --- face-vid2vid: keypoint prior, head pose -----------------------------------------------------


def test_fv2v_keypoint_prior_is_the_official_double_loop():
    from thbench.baselines.fv2v_losses import keypoint_prior

    kp = torch.rand(3, 6, 3, generator=torch.Generator().manual_seed(2)) * 0.6 - 0.3
    total = 0.0
    for i in range(6):
        for j in range(6):
            dist = F.pairwise_distance(kp[:, i], kp[:, j], p=2, keepdim=True) ** 2
            dist = 0.1 - dist
            total += (dist * (dist > 0)).mean().item()
    total += (kp[:, :, -1].mean(-1) - 0.33).abs().mean().item()
    assert keypoint_prior(kp).item() == pytest.approx(total, rel=1e-6)


def hopenet_state(seed: int) -> dict[str, torch.Tensor]:
    """Weights of the released layout (torchvision ResNet-50 names + fc_yaw, fc_pitch, fc_roll,
    fc_finetune), made here."""
    from torchvision.models import resnet50

    torch.manual_seed(seed)
    state = {k: v for k, v in resnet50(weights=None).state_dict().items()
             if not k.startswith("fc.")}
    for head in ("fc_yaw", "fc_pitch", "fc_roll"):
        state[f"{head}.weight"] = torch.randn(66, 2048) * 1e-3
        state[f"{head}.bias"] = torch.randn(66) * 0.5
    state["fc_finetune.weight"] = torch.randn(3, 2051)
    state["fc_finetune.bias"] = torch.randn(3)
    return state


def test_hopenet_loads_the_release_layout_and_gives_degrees(tmp_path: Path, monkeypatch):
    from torchvision.models import resnet50

    from thbench.baselines.hopenet import HopenetPose
    from thbench.core import assets

    state = hopenet_state(4)
    torch.save(state, tmp_path / "hopenet_robust_alpha1.pkl")
    monkeypatch.setenv("THB_ASSETS_DIR", str(tmp_path))
    pose = HopenetPose.from_assets("cpu")
    assert assets.get("hopenet").filename == "hopenet_robust_alpha1.pkl"
    frames = torch.cat([images(12, 1, 224), images(19, 1, 224) * 0.2])
    trunk = resnet50(weights=None)
    trunk.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc")},
                          strict=False)
    trunk.eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        x = (frames - mean) / std
        x = trunk.maxpool(trunk.relu(trunk.bn1(trunk.conv1(x))))
        x = trunk.layer4(trunk.layer3(trunk.layer2(trunk.layer1(x))))
        x = F.avg_pool2d(x, 7).flatten(1)
        for head, got in zip(("fc_yaw", "fc_pitch", "fc_roll"), pose(frames), strict=True):
            logits = x @ state[f"{head}.weight"].T + state[f"{head}.bias"]
            degrees = (F.softmax(logits, 1) * torch.arange(66.0)).sum(1) * 3 - 99
            assert torch.allclose(got, degrees, atol=1e-4), head
            assert degrees.std() > 0.01  # the frames give different poses
    wrong = dict(state)
    wrong["fc_yaw.weight"] = torch.zeros(62, 2048)
    with pytest.raises(RuntimeError, match="fc_yaw"):
        HopenetPose(wrong)


def test_fv2v_headpose_and_expression_terms():
    from thbench.baselines.fv2v_losses import fv2v_losses
    from thbench.baselines.fv2v_motion import headpose_to_degree
    from thbench.baselines.fv2v_nets import build_models

    torch.manual_seed(0)
    models = build_models("tiny")
    for module in models.values():
        module.eval()  # batch statistics would differ between the two he_estimator calls
    source, driving = images(13), images(14)
    target = (torch.tensor([10.0, -20.0]), torch.tensor([0.0, 5.0]), torch.tensor([3.0, 1.0]))
    weights = WarpingLossWeights(equivariance_value=0, keypoint=0)
    losses, _ = fv2v_losses(models, source, driving, weights=weights, perceptual="pixel",
                            pose_target=lambda frames: target)
    with torch.no_grad():
        he = models["he_estimator"](driving)
        pose = sum((headpose_to_degree(he[key]) - t).abs().mean().item()
                   for key, t in zip(("yaw", "pitch", "roll"), target, strict=True))
        expression = he["exp"].abs().sum(-1).mean().item()
    assert losses["headpose"].item() == pytest.approx(20 * pose, rel=1e-5)
    assert losses["expression"].item() == pytest.approx(5 * expression, rel=1e-5)


def test_fv2v_honours_the_loss_table():
    from thbench.baselines.fv2v import FaceVid2Vid

    method = FaceVid2Vid(config="tiny", allow_random_init=True)
    kit = build_kit({"perceptual_backend": "l1", "keypoint": 0.0, "expression": 2.5,
                     "equivariance_value": 0.0}, torch.device("cpu"), "test")
    losses, _ = method.training_losses(images(15, 1), images(16, 1), kit)
    assert set(losses) == {"reconstruction_l1", "expression"}
    with torch.no_grad():
        exp = method.nets["he_estimator"](images(16, 1))["exp"].abs().sum(-1).mean()
    assert losses["expression"].item() == pytest.approx(2.5 * exp.item(), rel=1e-4)


# --- GAN ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hinge", "ls"])
def test_gan_terms_and_feature_matching(mode: str):
    kit = build_kit({"perceptual_backend": "l1", "discriminator": True, "gan_mode": mode,
                     "feature_matching": [1.0, 2.0, 3.0, 4.0]}, torch.device("cpu"), "test")
    disc = kit.discriminators["s1_0"]
    assert all(hasattr(m, "weight_orig") for m in disc.modules()
               if isinstance(m, torch.nn.Conv2d))  # spectral norm on every convolution
    disc.eval()  # freeze the spectral-norm power iteration for a fair comparison
    fake, real = images(17), images(18)
    terms = kit.adversarial(fake, real)
    with torch.no_grad():
        fake_features, fake_score = disc(fake)
        real_features, real_score = disc(real)
        matching = sum(w * (a - b).abs().mean().item() for w, a, b in
                       zip((1, 2, 3, 4), real_features, fake_features, strict=True))
        if mode == "hinge":
            gan = -fake_score.mean().item()
            critic = (F.relu(1 - real_score).mean() + F.relu(1 + fake_score).mean()).item()
        else:
            gan = ((1 - fake_score) ** 2).mean().item()
            critic = ((1 - real_score) ** 2 + fake_score**2).mean().item()
    assert terms["gan"].item() == pytest.approx(gan, rel=1e-5, abs=1e-7)
    assert terms["feature_matching"].item() == pytest.approx(matching, rel=1e-5)
    assert kit.discriminator_loss(fake, real).item() == pytest.approx(critic, rel=1e-5)
    assert math.isfinite(critic)


def test_no_gan_terms_when_generator_gan_is_zero():
    kit = build_kit({"perceptual_backend": "l1", "discriminator": True, "generator_gan": 0.0},
                    torch.device("cpu"), "test")
    assert kit.adversarial(images(1), images(2)) == {}  # FOMM vox-256: generator_gan 0


def test_discriminator_without_spectral_norm_has_plain_convolutions():
    plain = Discriminator()
    assert not any(hasattr(m, "weight_orig") for m in plain.modules())


# --- TPSMM's AVD stage ----------------------------------------------------------------------------


def test_tpsmm_avd_loss_rebuilds_the_driving_keypoints_from_scaled_ones():
    from thbench.baselines.tpsmm import TPSMM

    torch.manual_seed(0)
    method = TPSMM(config="tiny", allow_random_init=True)
    weights = WarpingLossWeights(stage="avd", avd_random_scale=0.25, avd_shift=2.0)
    assert set(method.untrained_nets(weights)) == {"kp_detector", "dense_motion_network",
                                                   "inpainting_network"}
    assert method.untrained_nets(WarpingLossWeights()) == ("avd_network",)
    method.nets.eval()  # fixed statistics: the recomputation below sees the same networks
    source, driving = images(20), images(21)
    kit = LossKit(weights, torch.device("cpu"), torch.Generator().manual_seed(4))
    losses, prediction = method.training_losses(source, driving, kit)
    assert set(losses) == {"avd"} and prediction.shape == (2, 3, 64, 64)
    scale = torch.rand(2, 2, generator=torch.Generator().manual_seed(4)) * 0.5 + 0.75
    with torch.no_grad():
        kp_s = method.nets["kp_detector"](source)["fg_kp"]
        kp_d = method.nets["kp_detector"](driving)["fg_kp"]
        scaled = torch.einsum("bij,bnj->bni", torch.diag_embed(scale), kp_d)
        rebuilt = method.nets["avd_network"](kp_s, scaled)
    assert losses["avd"].item() == pytest.approx(2 * (kp_d - rebuilt).abs().mean().item(),
                                                 rel=1e-5)
