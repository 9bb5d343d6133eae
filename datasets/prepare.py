"""Turn a video or a photo into prepared clips: detect faces, crop, resize, record landmarks.

Resumable at the level of a source file: a ``<name>.done.json`` marker listing its clips is
written after all of them, and a file with a marker is not processed again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchcore.media import iter_video, read_image, video_fps
from datasets.clip import Clip, ClipInfo, FaceRecord, write_clip
from datasets.crop import centre_box, clip_box, crop, to_crop_coordinates
from facegeom.detect import Face, FaceDetector


@dataclass(frozen=True)
class PrepareOptions:
    size: int = 256
    frame_step: int = 4
    """Keep every ``frame_step``-th frame of the source video."""
    clip_length: int = 16
    """Frames per clip; a video is split into consecutive clips, a shorter tail is dropped."""
    crop_scale: float = 1.8


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _marker(out_root: Path, name: str) -> Path:
    return out_root / "clips" / f"{name}.done.json"


def _done(out_root: Path, name: str) -> list[Clip] | None:
    marker = _marker(out_root, name)
    if not marker.is_file():
        return None
    return [Clip(out_root / "clips" / c) for c in json.loads(marker.read_text())["clips"]]


def _mark(out_root: Path, name: str, clips: list[Clip]) -> None:
    marker = _marker(out_root, name)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps({"clips": [c.clip_id for c in clips]}))
    os.replace(tmp, marker)


def _records(faces: list[Face | None], box, size: int) -> list[FaceRecord]:
    records = []
    for index, face in enumerate(faces):
        if face is None:
            records.append(FaceRecord(frame=index, face=False))
            continue
        corners = np.array([face.bbox[:2], face.bbox[2:]])
        records.append(
            FaceRecord(
                frame=index,
                face=True,
                bbox=to_crop_coordinates(corners, box, size).ravel().round(2).tolist(),
                landmarks=to_crop_coordinates(face.landmarks, box, size).round(2).tolist(),
            )
        )
    return records


def prepare_video(
    path: str | os.PathLike,
    out_root: str | os.PathLike,
    name: str,
    identity: str,
    options: PrepareOptions,
    detector: FaceDetector,
) -> list[Clip]:
    """Split a video into clips of ``options.clip_length`` kept frames, each with its own crop."""
    path, out_root = Path(path), Path(out_root)
    done = _done(out_root, name)
    if done is not None:
        return done
    sha = file_sha256(path)
    fps = video_fps(path)
    kept: list[tuple[int, np.ndarray, Face | None]] = []
    for index, frame in enumerate(iter_video(path)):
        if index % options.frame_step == 0:
            kept.append((index, frame, detector.largest(frame)))
    clips = []
    length = options.clip_length
    for number, start in enumerate(range(0, len(kept) - length + 1, length)):
        chunk = kept[start : start + length]
        faces = [face for _, _, face in chunk]
        boxes = [face.bbox for face in faces if face is not None]
        height, width = chunk[0][1].shape[:2]
        box = clip_box(boxes, options.crop_scale) if boxes else centre_box(width, height)
        notes = [] if boxes else ["no face in any frame: centre crop"]
        info = ClipInfo(
            clip_id=f"{name}-{number:03d}",
            identity=identity,
            source_file=path.name,
            source_sha256=sha,
            size=options.size,
            fps=fps / options.frame_step,
            frame_indices=[index for index, _, _ in chunk],
            crop_box=[round(v, 2) for v in box],
            notes=notes,
        )
        frames = [crop(frame, box, options.size) for _, frame, _ in chunk]
        records = _records(faces, box, options.size)
        clips.append(write_clip(out_root / "clips" / info.clip_id, info, frames, records))
    _mark(out_root, name, clips)
    return clips


def prepare_image(
    path: str | os.PathLike,
    out_root: str | os.PathLike,
    name: str,
    identity: str,
    options: PrepareOptions,
    detector: FaceDetector,
) -> Clip:
    """A one-frame clip of the largest face in a photo (centre crop when there is none)."""
    path, out_root = Path(path), Path(out_root)
    done = _done(out_root, name)
    if done is not None:
        return done[0]
    image = read_image(path)
    face = detector.largest(image)
    height, width = image.shape[:2]
    box = clip_box([face.bbox], options.crop_scale) if face else centre_box(width, height)
    info = ClipInfo(
        clip_id=name,
        identity=identity,
        source_file=path.name,
        source_sha256=file_sha256(path),
        size=options.size,
        fps=0.0,
        frame_indices=[0],
        crop_box=[round(v, 2) for v in box],
        kind="image",
        notes=[] if face else ["no face found: centre crop"],
    )
    clip = write_clip(
        out_root / "clips" / name,
        info,
        [crop(image, box, options.size)],
        _records([face], box, options.size),
    )
    _mark(out_root, name, [clip])
    return clip
