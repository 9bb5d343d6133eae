"""The ``[loss]`` table of a baseline training config: one set of weights and recipe switches
for FOMM, TPSMM and face-vid2vid (each family reads the fields it uses).

The defaults are the published per-term weights; recipe features that change a run's schedule
(TPS dropout, the background motion predictor, head-pose supervision) are off by default and
switched on by the ``*-vox256.toml`` configs with the official values:

* FOMM ``config/vox-256.yaml``: perceptual 10 x 5 layers at scales 1 .. 1/8, equivariance value
  and jacobian 10, ``generator_gan: 0`` (so no GAN and no feature matching in the official run).
* TPSMM ``config/vox-256.yaml``: perceptual, equivariance value 10, warp 10, bg 10 from epoch
  ``bg_start: 10``, TPS dropout while epoch < 35 with p = min(0.1 + 0.3 * epoch / 10, 0.3);
  then the AVD stage (``train_avd_params``): L1 weight 1, random scale 0.25.
* face-vid2vid (``config/vox-256.yaml`` of the unofficial implementation): perceptual,
  equivariance value 10, keypoint prior 10 (Dt 0.1, Zt 0.33), head pose 20 against Hopenet,
  expression 5, hinge GAN 1 with feature matching 10 x 4 on a spectral-norm discriminator at
  scale 1.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WarpingLossWeights:
    scales: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    perceptual: tuple[float, ...] = (10.0, 10.0, 10.0, 10.0, 10.0)
    equivariance_value: float = 10.0
    equivariance_jacobian: float = 10.0
    sigma_affine: float = 0.05
    sigma_tps: float = 0.005
    points_tps: int = 5
    # adversarial (with ``discriminator = true``)
    generator_gan: float = 1.0
    feature_matching: tuple[float, ...] = (10.0, 10.0, 10.0, 10.0)
    gan_mode: str = "ls"
    """``ls`` (FOMM's least squares) or ``hinge`` (face-vid2vid's)."""
    discriminator_scales: tuple[float, ...] = (1.0,)
    spectral_norm: bool = True
    # TPSMM
    warp: float = 10.0
    bg: float = 10.0
    bg_start_epoch: int = -1
    """First epoch of the background motion predictor and its loss; -1: no predictor."""
    tps_dropout_epochs: int = 0
    """TPS dropout while epoch < this (official 35); 0: never."""
    tps_dropout_start: float = 0.1
    tps_dropout_max: float = 0.3
    tps_dropout_ramp_epochs: int = 10
    stage: str = "main"
    """``main``, or ``avd``: TPSMM's second stage (``train_avd.py``), which trains only the
    AVD network to rebuild the driving keypoints from the source keypoints and randomly
    scaled driving keypoints (start it from the main stage's export with ``init_from``)."""
    avd_random_scale: float = 0.25
    """The driving keypoints' x and y are scaled by factors from U[1 - s, 1 + s]."""
    avd_shift: float = 1.0
    """Weight of the AVD keypoint L1 (``lambda_shift``)."""
    # face-vid2vid
    keypoint: float = 10.0
    keypoint_distance: float = 0.1
    keypoint_depth: float = 0.33
    headpose: float = 20.0
    expression: float = 5.0

    def __post_init__(self) -> None:
        for name in ("scales", "perceptual", "feature_matching", "discriminator_scales"):
            setattr(self, name, tuple(float(v) for v in getattr(self, name)))
        if self.gan_mode not in ("ls", "hinge"):
            raise ValueError(f"gan_mode must be ls or hinge, not {self.gan_mode!r}")
        if self.stage not in ("main", "avd"):
            raise ValueError(f"stage must be main or avd, not {self.stage!r}")

    def tps_dropout(self, epoch: int) -> float:
        """TPSMM's dropout probability at ``epoch``: min(epoch / ramp * max + start, max)
        before ``tps_dropout_epochs``, else 0 (``GeneratorFullModel.forward`` of the official
        code)."""
        if epoch >= self.tps_dropout_epochs:
            return 0.0
        ramp = epoch / self.tps_dropout_ramp_epochs * self.tps_dropout_max
        return min(ramp + self.tps_dropout_start, self.tps_dropout_max)

    def background(self, epoch: int) -> bool:
        return 0 <= self.bg_start_epoch <= epoch
