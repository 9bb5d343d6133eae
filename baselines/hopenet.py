"""Hopenet (Ruiz et al., "Fine-Grained Head Pose Estimation Without Keypoints", CVPR-W 2018),
the pose estimator face-vid2vid's head-pose loss is trained against.

Architecture as natanielruiz/deep-head-pose ``code/hopenet.py``: a ResNet-50 trunk (the
parameter names of ``torchvision.models.resnet50``: ``conv1``, ``bn1``, ``layer1`` ..
``layer4``), a fixed 7x7 average pool, three 66-bin classifiers ``fc_yaw``, ``fc_pitch``,
``fc_roll`` and the unused ``fc_finetune`` (kept so the released ``hopenet_robust_alpha1.pkl``
loads strictly). Bins are 3 degrees wide: degrees = 3 * E[bin] - 99 (the same conversion as
face-vid2vid's own pose bins, :func:`thbench.baselines.fv2v_motion.headpose_to_degree`).

Input as face-vid2vid's training feeds a tensor batch: RGB in [0, 1], ImageNet mean/std
normalised, at the training resolution (256 px: the 8x8 last feature map is pooled by the
fixed 7x7 window, as in the original). The weights come from the asset manager (``hopenet``).
"""

from __future__ import annotations

import torch
from torch import nn

from thbench.baselines.fv2v_motion import headpose_to_degree

BINS = 66
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class Hopenet(nn.Module):
    """RGB (B, 3, H, W), ImageNet-normalised -> (yaw, pitch, roll) bin logits, each (B, 66)."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import resnet50

        trunk = resnet50(weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = (trunk.conv1, trunk.bn1, trunk.relu,
                                                         trunk.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = (trunk.layer1, trunk.layer2,
                                                              trunk.layer3, trunk.layer4)
        self.avgpool = nn.AvgPool2d(7)
        width = trunk.fc.in_features
        self.fc_yaw = nn.Linear(width, BINS)
        self.fc_pitch = nn.Linear(width, BINS)
        self.fc_roll = nn.Linear(width, BINS)
        self.fc_finetune = nn.Linear(width + 3, 3)  # vestigial in the original; never used

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x).flatten(1)
        return self.fc_yaw(x), self.fc_pitch(x), self.fc_roll(x)


class HopenetPose(nn.Module):
    """Frozen Hopenet as a pose estimator: frames (B, 3, H, W) in [0, 1] -> (yaw, pitch, roll)
    in degrees, each (B,)."""

    def __init__(self, state_dict: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.net = Hopenet()
        self.net.load_state_dict(state_dict)  # strict: names and shapes of the release
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_assets(cls, device: str | torch.device = "cpu") -> HopenetPose:
        """The released weights through the asset manager; raises AssetMissing when absent."""
        from thbench.core import assets

        state = torch.load(assets.resolve("hopenet"), map_location="cpu", weights_only=True)
        return cls(state).to(device)

    def train(self, mode: bool = True) -> HopenetPose:  # always in inference mode
        return super().train(False)

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = self.net((frames - self.mean) / self.std)
        yaw, pitch, roll = (headpose_to_degree(x) for x in logits)
        return yaw, pitch, roll
