"""The standard face crop: a square box around the face, the same box for every frame of a clip.

Choice (stated in the dataset cards): the union of the dlib face boxes over the clip's frames
with a face, centred on that union shifted up by ``lift`` of the mean face height (dlib boxes
start at the eyebrows), side ``scale`` times the larger of the union's width and height. A fixed
box per clip keeps head motion in the frames, as the FOMM/VoxCeleb crops do. Pixels outside the
source image are filled by replicating the border.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def clip_box(
    face_boxes: list[tuple[float, float, float, float]], scale: float = 1.8, lift: float = 0.15
) -> tuple[float, float, float, float]:
    """Square (x0, y0, x1, y1) covering all ``face_boxes`` (at least one)."""
    boxes = np.asarray(face_boxes, dtype=np.float64)
    x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
    x1, y1 = boxes[:, 2].max(), boxes[:, 3].max()
    face_height = float(np.mean(boxes[:, 3] - boxes[:, 1]))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - lift * face_height
    side = scale * max(x1 - x0, y1 - y0)
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def centre_box(width: int, height: int) -> tuple[float, float, float, float]:
    """The largest centred square, used for clips without any face."""
    side = min(width, height)
    x0, y0 = (width - side) / 2, (height - side) / 2
    return (x0, y0, x0 + side, y0 + side)


def crop(image: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """Crop ``box`` (pixel coordinates, may leave the image) and resize to ``size`` x ``size``."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    height, width = image.shape[:2]
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    if pad:
        image = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    patch = image[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    return np.asarray(Image.fromarray(patch).resize((size, size), Image.Resampling.LANCZOS))


def to_crop_coordinates(
    points: np.ndarray, box: tuple[float, float, float, float], size: int
) -> np.ndarray:
    """Map (N, 2) source-pixel points into the resized crop's pixel coordinates."""
    x0, y0 = round(box[0]), round(box[1])
    side = round(box[2]) - x0
    return (np.asarray(points, dtype=np.float64) - [x0, y0]) * (size / side)
