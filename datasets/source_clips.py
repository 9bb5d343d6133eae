"""Turn a video or a photo into prepared clips: detect faces, crop, resize, record landmarks.

Resumable at the level of a source file: a ``<name>.done.json`` marker listing its clips is
written after all of them, and a file with a marker is not processed again.

A video is read twice: once to detect the face in every kept frame, once to crop each clip with
its box, so memory holds the cropped frames of a clip, never the source frames of a video.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thbench.core import atomic
from thbench.core.media import MediaError, read_image
from thbench.datasets.clip import Clip, ClipInfo, FaceRecord, write_clip
from thbench.datasets.crop import centre_box, clip_box, crop, to_crop_coordinates
from thbench.datasets.frames import kept_frames, source_fps, source_sha256
from thbench.facegeom.detect import Face, FaceDetector

CROP_MODES = ("face", "full")


class UnusableSource(MediaError):
    """A source that gives no usable clip (too few frames, or, for the face crop, no face in
    any kept frame)."""


@dataclass(frozen=True)
class PrepareOptions:
    """How source videos become clips. The defaults are the evaluation protocol of the papers
    on face-crop datasets (FOMM's VoxCeleb folders, TalkingHead-1KH's cropped clips): every
    frame, each video one clip, the crop kept, 256 px; ``python -m thbench datasets prepare`` takes
    its defaults from here. The embedded sample set (raw videos) states its own
    (:data:`thbench.datasets.sample.SAMPLE_OPTIONS`)."""

    size: int = 256
    frame_step: int = 1
    """Keep every ``frame_step``-th frame of the source video (after ``fps`` resampling)."""
    clip_length: int = 0
    """Frames per clip; a video is split into consecutive clips, a shorter tail is dropped.
    0: the whole video is one clip (the reconstruction protocol of VoxCeleb and TalkingHead-1KH
    evaluations)."""
    crop_scale: float = 1.8
    crop: str = "full"
    """``"face"``: the standard crop around the clip's faces (:mod:`thbench.datasets.crop`);
    ``"full"``: the largest centred square of the frame, for sources that already are face crops
    (FOMM's
    ``vox`` and ``vox-png``), so that they are not cropped a second time."""
    skip_unusable: bool = False
    """Raise :class:`UnusableSource` for a video with too few kept frames for one clip, or,
    with ``crop = "face"``, without a face in any kept frame, which leaves nothing to crop
    around (dataset preparation), instead of writing no clip or a centre crop (the sample set
    keeps such clips to test how metrics treat them). With ``crop = "full"`` a video without
    any face is prepared all the same, its face records all false: it has a ground truth, so
    the pixel metrics score it and face metrics count its frames as uncovered."""
    folder_fps: float = 25.0
    """Frame rate recorded for a frame-folder source, which has no header (VoxCeleb: 25)."""
    fps: float = 0.0
    """Resample the source to this frame rate before ``frame_step`` (nearest frame in time:
    frames dropped or repeated), e.g. 25 for TalkingHead-1KH as Real3D-Portrait prepares it;
    0 keeps the source's own rate."""

    def __post_init__(self) -> None:
        if self.crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {CROP_MODES}, not {self.crop!r}")
        if self.fps < 0 or self.frame_step < 1 or self.clip_length < 0 or self.size < 1:
            raise ValueError(f"fps must be >= 0, frame_step >= 1, clip_length >= 0 and size "
                             f">= 1, got {self.fps}, {self.frame_step}, {self.clip_length}, "
                             f"{self.size}")


def _marker(out_root: Path, name: str) -> Path:
    return out_root / "clips" / f"{name}.done.json"


def prepared_clips(out_root: Path, name: str) -> list[Clip] | None:
    """The clips an earlier preparation of source ``name`` made (reused), None if none did."""
    marker = _marker(out_root, name)
    if not marker.is_file():
        return None
    return [Clip(out_root / "clips" / c) for c in json.loads(marker.read_text())["clips"]]


def _mark(out_root: Path, name: str, clips: list[Clip]) -> None:
    atomic.write_text(_marker(out_root, name), json.dumps({"clips": [c.clip_id for c in clips]}))


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
    """Split a video (file or frame folder) into clips of ``options.clip_length`` kept frames,
    each with its own crop."""
    path, out_root = Path(path), Path(out_root)
    done = prepared_clips(out_root, name)
    if done is not None:
        return done
    indices: list[int] = []
    faces: list[Face | None] = []
    ratio = source_fps(path, options.folder_fps) / options.fps if options.fps else 1.0
    for index, frame in kept_frames(path, options.frame_step, ratio):
        indices.append(index)
        faces.append(detector.largest(frame))
        height, width = frame.shape[:2]
    if options.skip_unusable:
        _check_usable(path, indices, faces, options)
    length = options.clip_length or len(indices)
    starts = list(range(0, len(indices) - length + 1, length))
    sha, fps = source_sha256(path), source_fps(path, options.folder_fps)
    infos = []
    for number, start in enumerate(starts):
        boxes = [face.bbox for face in faces[start : start + length] if face is not None]
        face_crop = options.crop == "face" and boxes
        box = clip_box(boxes, options.crop_scale) if face_crop else centre_box(width, height)
        notes = [] if boxes else [
            "no face in any frame" + (": centre crop" if options.crop == "face" else "")]
        infos.append(ClipInfo(
            clip_id=f"{name}-{number:03d}",
            identity=identity,
            source_file=path.name,
            source_sha256=sha,
            size=options.size,
            fps=(options.fps or fps) / options.frame_step,
            frame_indices=indices[start : start + length],
            crop_box=[round(v, 2) for v in box],
            notes=notes,
        ))
    clips, frames = [], []
    if infos:
        for position, (_, frame) in enumerate(kept_frames(path, options.frame_step, ratio)):
            info = infos[len(clips)]
            frames.append(crop(frame, info.crop_box, options.size))
            if len(frames) == length:
                chunk = faces[position + 1 - length : position + 1]
                records = _records(chunk, info.crop_box, options.size)
                clips.append(write_clip(out_root / "clips" / info.clip_id, info, frames, records))
                frames = []
                if len(clips) == len(infos):
                    break
    _mark(out_root, name, clips)
    return clips


def _check_usable(path: Path, indices: list[int], faces: list[Face | None],
                  options: PrepareOptions) -> None:
    needed = max(options.clip_length, 2)
    if len(indices) < needed:
        raise UnusableSource(f"{path}: too short: {len(indices)} frames kept at frame step "
                             f"{options.frame_step}, a clip needs {needed}")
    if options.crop == "face" and not any(face is not None for face in faces):
        raise UnusableSource(f"{path}: no face in any of its {len(indices)} kept frames, so "
                             "nothing to crop around (--crop face)")


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
    done = prepared_clips(out_root, name)
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
        source_sha256=source_sha256(path),
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
