"""68 face landmarks with face-alignment's FAN, the network behind FOMM's and TPSMM's AKD and MKR.

The ``face-alignment`` package (PyPI) provides the networks and the geometry; its own loader
downloads weights from a URL, so here the networks are built from its classes and their state
dicts are read from the asset manager's files (``fan_s3fd``: the S3FD face detector,
``fan_2dfan4``: 2D-FAN-4), loaded strictly. The pipeline is the one FOMM's pose-evaluation runs
(``extract.py``'s ``extract_face_pose``: ``FaceAlignment(LandmarksType._2D, flip_input=False)``,
``get_landmarks(frame)``, then ``kp[0]``): S3FD boxes with score above 0.5 in the detector's
order, the *first* one (not the largest), a 256x256 crop around the box (centre moved up by 0.12
box heights, scale = (w + h) / 195), FAN heatmaps of that crop alone (no mirrored crop), the
heatmap maxima (quarter-pixel refined) mapped back to image pixels.
"""

from __future__ import annotations

from functools import cached_property
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from thbench.core import assets

DETECTOR_ASSET = "fan_s3fd"
LANDMARK_ASSET = "fan_2dfan4"


def missing() -> str:
    """"" when face-alignment and both weight files are there, else the reason and the fix."""
    import importlib.util

    if importlib.util.find_spec("face_alignment") is None:
        return "python module 'face_alignment' not installed; fix: pip install face-alignment"
    for name in (DETECTOR_ASSET, LANDMARK_ASSET):
        try:
            assets.resolve(name)
        except assets.AssetError as error:
            return str(error)
    return ""


def load_landmark_network(weights: str | Path) -> torch.nn.Module:
    """face-alignment's ``FAN(4)`` with the state dict at ``weights`` (strict: every name and
    shape must match)."""
    from face_alignment.models.fan import FAN

    network = FAN(4)
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return network.eval().requires_grad_(False)


def load_detector(weights: str | Path, device: str = "cpu"):
    """face-alignment's S3FD detector with the state dict at ``weights`` (loaded strictly)."""
    from face_alignment.detection.sfd.sfd_detector import SFDDetector

    return SFDDetector(device, path_to_detector=str(weights))


class FANLandmarks:
    """S3FD + 2D-FAN-4: ``landmarks(rgb)`` -> (68, 2) float32 pixels of the first face or None."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    @property
    def backend(self) -> str:
        names = "+".join(assets.get(n).filename for n in (DETECTOR_ASSET, LANDMARK_ASSET))
        return (f"face-alignment-{version('face-alignment')}:s3fd+2DFAN-4({names}),first face,"
                "no flip")

    def available(self) -> str:
        return missing()

    @cached_property
    def detector(self):
        return load_detector(assets.resolve(DETECTOR_ASSET), self.device)

    @cached_property
    def network(self) -> torch.nn.Module:
        return load_landmark_network(assets.resolve(LANDMARK_ASSET)).to(self.device)

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        boxes = self.detector.detect_from_image(np.ascontiguousarray(rgb))
        if len(boxes) == 0:
            return None
        return self.landmarks_in_box(rgb, boxes[0])

    @torch.no_grad()
    def landmarks_in_box(self, rgb: np.ndarray, box) -> np.ndarray:
        """(68, 2) float32 pixel landmarks of the face in ``box`` (x0, y0, x1, y1)."""
        from face_alignment.utils import (
            CENTER_Y_OFFSET,
            REFERENCE_SCALE,
            crop,
            get_preds_fromhm,
        )

        x0, y0, x1, y1 = (float(v) for v in box[:4])
        center = np.array([x1 - (x1 - x0) / 2.0, y1 - (y1 - y0) / 2.0])
        center[1] -= (y1 - y0) * CENTER_Y_OFFSET
        scale = (x1 - x0 + y1 - y0) / REFERENCE_SCALE
        patch = crop(np.asarray(rgb), center, scale).transpose((2, 0, 1)).astype(np.float32)
        batch = torch.from_numpy(patch / 255.0)[None].to(self.device)
        heatmaps = self.network(batch)[-1]
        _, points, _ = get_preds_fromhm(heatmaps.cpu().numpy(), center, scale)
        return np.asarray(points, np.float32).reshape(68, 2)
