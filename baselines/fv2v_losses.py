"""Training losses of face-vid2vid (Wang et al., CVPR 2021), weighted as the unofficial
implementation's ``config/vox-256.yaml`` does.

:func:`fv2v_losses` returns weighted terms; the trainer sums them. Terms:

* ``perceptual``: multi-scale (1, 1/2, 1/4, 1/8, anti-aliased pyramid) VGG19 L1 on relu1_1 ..
  relu5_1, weight 10 each. The VGG19 ImageNet weights come only through
  ``thbench.core.assets.resolve("vgg19")``; when missing,
  :class:`thbench.core.assets.AssetMissing` is
  raised with the fix. ``perceptual="pixel"`` is an explicit, differently named substitute
  (``reconstruction_l1``: the same pyramid with pixel L1) for offline smoke tests; it never
  replaces VGG silently.
* ``equivariance_value``: keypoints of a randomly TPS-warped driving frame, warped back, must
  match the driving keypoints (x, y only), weight 10.
* ``keypoint``: keypoint prior, sum over pairs of max(0, Dt - |k_i - k_j|^2) with Dt = 0.1, plus
  |mean depth - Zt| with Zt = 0.33, weight 10.
* ``headpose``: sum over yaw, pitch and roll of the mean L1 in degrees between the estimated
  pose and a pretrained pose estimator's (Hopenet, :mod:`thbench.baselines.hopenet`), weight 20;
  computed when the caller passes ``pose_target``, otherwise absent.
* ``expression``: the deformation prior, L1 norm of the expression deviations, weight 5.

The adversarial and feature-matching terms need a discriminator, which the official
checkpoint layout does not carry: :class:`thbench.baselines.train.LossKit` adds them (hinge GAN,
spectral norm, as the official config). Weights:
:class:`thbench.baselines.loss_weights.WarpingLossWeights`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from thbench.baselines.fv2v_motion import headpose_to_degree, transform_keypoints
from thbench.baselines.loss_weights import WarpingLossWeights
from thbench.baselines.modules import ImagePyramid
from thbench.baselines.random_warp import RandomTPSWarp
from thbench.training.vgg import load_vgg19

PoseTarget = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
"""frames (B, 3, H, W) in [0, 1] -> (yaw, pitch, roll), each (B,) in degrees."""


def keypoint_prior(kp: torch.Tensor, distance: float = 0.1, depth: float = 0.33) -> torch.Tensor:
    """Unweighted prior: sum over ordered pairs (i, j), diagonal included, of the batch mean of
    max(0, Dt - |k_i - k_j + 1e-6|^2), plus mean over batch of |mean_k z_k - Zt|.

    The 1e-6 is ``F.pairwise_distance``'s eps in the original; the diagonal then contributes a
    constant ~Dt * K, which has no gradient and is kept so values compare with the original.
    """
    diff = kp[:, :, None, :] - kp[:, None, :, :] + 1e-6
    squared = diff.pow(2).sum(-1)  # (B, K, K)
    spread = F.relu(distance - squared).mean(0).sum()
    return spread + (kp[:, :, -1].mean(-1) - depth).abs().mean()


def fv2v_losses(
    models: Mapping[str, nn.Module],
    source: torch.Tensor,
    driving: torch.Tensor,
    *,
    weights: WarpingLossWeights | None = None,
    perceptual: str | nn.Module = "vgg19",
    pose_target: PoseTarget | None = None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Weighted face-vid2vid training losses for one batch (sum the values to train), and the
    generated frames (B, 3, S, S).

    ``models`` holds ``generator``, ``kp_detector`` and ``he_estimator`` (see
    :func:`thbench.baselines.fv2v_nets.build_models`); ``source`` and ``driving`` are (B, 3, S, S)
    in [0, 1] at the model resolution, two frames of the same clip. ``perceptual`` is ``"vgg19"``
    (asset-managed ImageNet weights; raises AssetMissing when absent), ``"pixel"`` (explicit
    pixel-L1 substitute, reported as ``reconstruction_l1``) or a module returning a list of
    feature maps. The random equivariance warp draws from torch's global RNG.
    """
    w = weights or WarpingLossWeights()
    generator, kp_detector, he_estimator = (
        models["generator"], models["kp_detector"], models["he_estimator"])
    kp_canonical = kp_detector(source)
    he_source = he_estimator(source)
    he_driving = he_estimator(driving)
    kp_source = transform_keypoints(kp_canonical, he_source)
    kp_driving = transform_keypoints(kp_canonical, he_driving)
    generated = generator(source, kp_driving, kp_source)["prediction"]

    losses: dict[str, torch.Tensor] = {}
    pyramid = ImagePyramid(list(w.scales), driving.shape[1]).to(driving)
    real_pyramid, fake_pyramid = pyramid(driving), pyramid(generated)
    if isinstance(perceptual, str) and perceptual == "pixel":
        losses["reconstruction_l1"] = sum(
            w.perceptual[0] * (fake - real).abs().mean()
            for fake, real in zip(fake_pyramid, real_pyramid, strict=True))
    else:
        if isinstance(perceptual, str):
            if perceptual != "vgg19":
                raise ValueError(f"perceptual must be 'vgg19', 'pixel' or a module, "
                                 f"got {perceptual!r}")
            perceptual = load_vgg19(source.device)
        total = source.new_zeros(())
        for fake, real in zip(fake_pyramid, real_pyramid, strict=True):
            fake_features = perceptual(fake)
            with torch.no_grad():
                real_features = perceptual(real)
            for weight, a, b in zip(w.perceptual, fake_features, real_features, strict=False):
                total = total + weight * (a - b.detach()).abs().mean()
        losses["perceptual"] = total

    if w.equivariance_value:
        warp = RandomTPSWarp(driving.shape[0], w.sigma_affine, w.sigma_tps, w.points_tps, "fomm",
                             driving.device, dtype=driving.dtype)
        frame = warp.warp_frame(driving, align_corners=False)
        kp_warped = transform_keypoints(kp_canonical, he_estimator(frame))
        value = (kp_driving[..., :2] - warp.warp_points(kp_warped[..., :2])).abs().mean()
        losses["equivariance_value"] = w.equivariance_value * value

    if w.keypoint:
        losses["keypoint"] = w.keypoint * keypoint_prior(
            kp_driving, w.keypoint_distance, w.keypoint_depth)

    if w.headpose and pose_target is not None:
        with torch.no_grad():
            targets = pose_target(driving)
        value = sum((headpose_to_degree(he_driving[key]) - target.to(source)).abs().mean()
                    for key, target in zip(("yaw", "pitch", "roll"), targets, strict=True))
        losses["headpose"] = w.headpose * value

    if w.expression:
        losses["expression"] = w.expression * he_driving["exp"].abs().sum(-1).mean()
    return losses, generated
