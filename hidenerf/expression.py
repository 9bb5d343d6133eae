"""Measures of expression transfer: does the output's mouth follow the driver's?

- :func:`mouth_sensitivity` (T1): one camera, the driving SECC swapped from a closed-mouth frame
  to an open one. The output's change inside the mouth box, and on the rest of the face, as
  fractions of the two drivers' own change inside the mouth box (the issue's targets: at least
  0.5 in the mouth, under 0.1 elsewhere).
- :func:`opening_transfer`: the output's inner-lip opening against the driver's over a clip
  (dlib landmarks on both, :func:`thbench.hidenerf.pairs.mouth_opening`): the least-squares slope
  and the Pearson correlation (targets: slope 0.5, correlation 0.8).
- :func:`box_mask`: a pixel mask of a box given as frame fractions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from thbench.core.media import to_uint8
from thbench.datasets.clip import Clip
from thbench.hidenerf.model import HiDeNeRF, animate_batch
from thbench.hidenerf.pairs import mouth_box, mouth_opening


def box_mask(box: np.ndarray | Tensor, size: int) -> Tensor:
    """(size, size) bool mask of the pixels whose centres lie inside ``box`` (x0, y0, x1, y1,
    fractions of the frame)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    centres = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    inside_x = (centres >= x0) & (centres <= x1)
    inside_y = (centres >= y0) & (centres <= y1)
    return inside_y[:, None] & inside_x[None, :]


def face_box(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The 68 landmarks' box as fractions of a ``size`` px frame."""
    landmarks = np.asarray(landmarks, np.float64)
    return np.concatenate([landmarks.min(0), landmarks.max(0)]) / size


@torch.no_grad()
def mouth_sensitivity(model: HiDeNeRF, data, clip, source: int, closed: int,
                      opened: int) -> dict[str, float]:
    """T1 on one clip of a :class:`thbench.hidenerf.train.HiDeNeRFPairs`: render from the closed
    frame's camera with the closed and then the open frame's SECC. Returns ``mouth`` and
    ``rest`` (mean |output change| in the open frame's mouth box, and on the face box outside
    it, over the drivers' own mean change in that mouth box) and ``drivers`` (that change)."""
    model.eval()
    first = {k: v[None] for k, v in data.item(clip, source, closed).items()}
    second = {k: v[None] for k, v in data.item(clip, source, opened).items()}
    swapped = first | {"driving_secc": second["driving_secc"]}
    out_closed = animate_batch(model, first)["image"].clamp(0, 1)
    out_open = animate_batch(model, swapped)["image"].clamp(0, 1)
    size = out_open.shape[-1]
    record = clip.faces()[opened]
    mouth = box_mask(mouth_box(record.landmarks, clip.info.size), size)
    face = box_mask(face_box(record.landmarks, clip.info.size), size) & ~mouth
    drivers = (second["driving"] - first["driving"]).abs().mean(1)[0]
    change = (out_open - out_closed).abs().mean(1)[0]
    own = float(drivers[mouth].mean())
    return {"mouth": float(change[mouth].mean()) / own,
            "rest": float(change[face].mean()) / own, "drivers": own}


def _opening(detector, frame: np.ndarray, fallback_box) -> float:
    """The dlib mouth opening of a uint8 (H, W, 3) frame; where no face is found, of the
    landmarks fitted in ``fallback_box``."""
    face = detector.largest(frame)
    if face is None:
        face = detector.landmarks_in_box(frame, fallback_box)
    return mouth_opening(face.landmarks)


@torch.no_grad()
def opening_transfer(model: HiDeNeRF, data, clip, source: int,
                     drivers: list[int]) -> dict[str, float | list[float]]:
    """The output's dlib mouth opening against the driver's, each driver frame animated from
    ``source``: ``slope`` (least squares, output on driver), ``correlation`` (Pearson) and the
    two series. Where dlib finds no face in the output, its landmarks are fitted in the
    driver's recorded face box."""
    from thbench.facegeom.detect import FaceDetector

    detector = FaceDetector()
    model.eval()
    records = clip.faces()
    size = model.config.image_size
    scale = size / clip.info.size
    driver_open, output_open = [], []
    for driving in drivers:
        item = {k: v[None] for k, v in data.item(clip, source, driving).items()}
        output = animate_batch(model, item)["image"].clamp(0, 1)[0]
        target = torch.nn.functional.interpolate(item["driving"], size=size, mode="bilinear",
                                                 align_corners=False)[0]
        box = tuple(float(v) * scale for v in records[driving].bbox)
        driver_open.append(_opening(detector, to_uint8(target[None])[0], box))
        output_open.append(_opening(detector, to_uint8(output[None])[0], box))
    return _fit(driver_open, output_open)


def run_opening_transfer(outputs: Path, clip: Clip) -> dict[str, float | list[float]]:
    """:func:`opening_transfer` on a benchmark run's frames instead of a model: the output
    frames ``outputs/000000.png, ...`` of a same-identity pair (e.g.
    ``runs/default/outputs/hidenerf-tiny/sample/same-identity/man-000``) against the frames of
    ``clip`` that drove them, dlib on both."""
    from thbench.core.media import read_image
    from thbench.facegeom.detect import FaceDetector

    detector = FaceDetector()
    files = sorted(outputs.glob("*.png"))
    if len(files) != len(clip):
        raise ValueError(f"{outputs}: {len(files)} output frames for the {len(clip)} frames of "
                         f"{clip.clip_id}")
    driver_open, output_open = [], []
    for index, (file, record) in enumerate(zip(files, clip.faces(), strict=True)):
        if record.bbox is None:
            raise ValueError(f"{clip.clip_id}: no face recorded in frame {index} (opening "
                             "transfer is measured on clips with a face in every frame)")
        box = tuple(float(v) for v in record.bbox)
        driver_open.append(_opening(detector, clip.frame(index), box))
        output_open.append(_opening(detector, read_image(file), box))
    return _fit(driver_open, output_open)


def _fit(driver_open: list[float], output_open: list[float]) -> dict[str, float | list[float]]:
    """Least-squares slope (output on driver) and Pearson correlation of two opening series."""
    x, y = np.array(driver_open), np.array(output_open)
    slope = float(np.polyfit(x, y, 1)[0]) if x.std() > 0 else float("nan")
    correlation = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else 0.0
    return {"slope": slope, "correlation": correlation, "driver": driver_open,
            "output": output_open}
