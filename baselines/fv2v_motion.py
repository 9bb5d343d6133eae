"""Head pose and keypoint transformation of face-vid2vid, as the official demo computes them.

* 66-bin logits -> degrees: softmax over the bins, expectation with bin indices 0..65,
  ``degree = sum(p * idx) * 3 - 99``.
* degrees -> radians with ``/ 180 * 3.14`` (3.14, not pi: the released weights were trained and
  are run with that constant, so it is reproduced exactly).
* R = R_pitch(x axis) @ R_yaw(y axis) @ R_roll(z axis).
* kp = R @ kp_canonical + t + exp, with exp reshaped to (K, 3).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from thbench.core.rotations import rotation_x, rotation_y, rotation_z


def headpose_to_degree(logits: torch.Tensor) -> torch.Tensor:
    """(B, 66) bin logits -> (B,) degrees: softmax expectation over bin indices, * 3 - 99."""
    probabilities = F.softmax(logits, dim=1)
    index = torch.arange(logits.shape[1], dtype=probabilities.dtype, device=logits.device)
    return (probabilities * index).sum(dim=1) * 3 - 99


def rotation_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """(B,) angles in degrees -> (B, 3, 3) rotation R = R_pitch @ R_yaw @ R_roll.

    Pitch turns about x, yaw about y, roll about z, each with the official sign convention.
    """
    yaw, pitch, roll = (a / 180 * 3.14 for a in (yaw, pitch, roll))
    return rotation_x(pitch) @ rotation_y(yaw) @ rotation_z(roll)


def head_pose_degrees(
    he: dict[str, torch.Tensor],
    yaw: float | None = None,
    pitch: float | None = None,
    roll: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Estimated (yaw, pitch, roll) in degrees, each replaced by a given free-view angle."""
    angles = []
    for key, override in (("yaw", yaw), ("pitch", pitch), ("roll", roll)):
        logits = he[key]
        if override is None:
            angles.append(headpose_to_degree(logits))
        else:
            angles.append(torch.full((logits.shape[0],), float(override),
                                     dtype=logits.dtype, device=logits.device))
    return angles[0], angles[1], angles[2]


def transform_keypoints(
    kp_canonical: torch.Tensor,
    he: dict[str, torch.Tensor],
    yaw: float | None = None,
    pitch: float | None = None,
    roll: float | None = None,
) -> torch.Tensor:
    """kp = R(yaw, pitch, roll) @ kp_canonical + t + exp; kp_canonical (B, K, 3) -> (B, K, 3).

    ``yaw``/``pitch``/``roll`` (degrees) override the estimated angles (free view); ``t`` and
    ``exp`` always come from the estimator, as in the official demo.
    """
    rot = rotation_matrix(*head_pose_degrees(he, yaw, pitch, roll))
    rotated = torch.einsum("bmp,bkp->bkm", rot, kp_canonical)
    return rotated + he["t"][:, None, :] + he["exp"].view(he["exp"].shape[0], -1, 3)


def relative_keypoints(
    kp_source: torch.Tensor,
    kp_driving: torch.Tensor,
    kp_driving_initial: torch.Tensor,
    adapt_scale: bool = False,
) -> torch.Tensor:
    """Relative motion as the official demo's ``normalize_kp``:
    kp_source + (kp_driving - kp_driving_initial) * scale.

    With ``adapt_scale`` the scale is sqrt(hull volume of the source keypoints) / sqrt(hull
    volume of the initial driving keypoints), taken from the first batch element as the official
    code does (it calls the 3D hull's measure ``volume``).
    """
    scale = 1.0
    if adapt_scale:
        from scipy.spatial import ConvexHull

        source_volume = ConvexHull(kp_source[0].detach().cpu().double().numpy()).volume
        driving_volume = ConvexHull(kp_driving_initial[0].detach().cpu().double().numpy()).volume
        scale = float(np.sqrt(source_volume) / np.sqrt(driving_volume))
    return kp_source + (kp_driving - kp_driving_initial) * scale
