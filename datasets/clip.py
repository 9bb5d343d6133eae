"""The clip format every dataset is prepared into, and that every method and metric reads.

A clip is a folder::

    <dataset root>/clips/<clip_id>/
        clip.json       metadata: identity, source file and its sha256, crop box, frame indices
        faces.jsonl     one face record per frame, in order (kept for frames without a face)
        frames/000000.png, 000001.png, ...   RGB, square, ``size`` x ``size``

A face record is ``{"frame": i, "face": bool, "bbox": [x0, y0, x1, y1], "landmarks": [[x, y]
* 68]}`` in the clip's pixel coordinates; ``bbox`` and ``landmarks`` are null without a face.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from thbench.core import atomic
from thbench.core.media import read_image, write_png


@dataclass
class FaceRecord:
    frame: int
    face: bool
    bbox: list[float] | None = None
    landmarks: list[list[float]] | None = None


@dataclass
class ClipInfo:
    clip_id: str
    identity: str
    source_file: str
    source_sha256: str
    size: int
    fps: float
    frame_indices: list[int]
    """Index of each clip frame in the source video (0 for a still image)."""
    crop_box: list[float]
    """(x0, y0, x1, y1) square crop in source pixels; may extend past the image (padded)."""
    kind: str = "video"
    notes: list[str] = field(default_factory=list)


class Clip:
    """Read access to a prepared clip folder."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        meta = self.folder / "clip.json"
        if not meta.is_file():
            raise FileNotFoundError(f"{self.folder}: not a prepared clip (no clip.json)")
        self.info = ClipInfo(**json.loads(meta.read_text()))

    @property
    def clip_id(self) -> str:
        return self.info.clip_id

    def __len__(self) -> int:
        return len(self.info.frame_indices)

    def frame_path(self, index: int) -> Path:
        return self.folder / "frames" / f"{index:06d}.png"

    def frame(self, index: int) -> np.ndarray:
        return read_image(self.frame_path(index))

    def frames(self, indices: list[int]) -> Iterator[np.ndarray]:
        for index in indices:
            yield self.frame(index)

    def faces(self) -> list[FaceRecord]:
        lines = (self.folder / "faces.jsonl").read_text().splitlines()
        return [FaceRecord(**json.loads(line)) for line in lines if line.strip()]


def write_clip(
    folder: str | os.PathLike, info: ClipInfo, frames: list[np.ndarray], faces: list[FaceRecord]
) -> Clip:
    """Write a clip folder; clip.json is written last, so its presence marks a complete clip."""
    folder = Path(folder)
    if len(frames) != len(faces) or len(frames) != len(info.frame_indices):
        raise ValueError(f"{folder}: {len(frames)} frames, {len(faces)} face records, "
                         f"{len(info.frame_indices)} indices")
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        write_png(folder / "frames" / f"{index:06d}.png", frame)
    atomic.write_text(folder / "faces.jsonl", "".join(json.dumps(asdict(f)) + "\n" for f in faces))
    atomic.write_text(folder / "clip.json", json.dumps(asdict(info), indent=1))
    return Clip(folder)
