"""Frames of a source video: a video file, or a folder of image frames (FOMM's ``vox-png``).

A frame folder's frames are its image files in name order, as FOMM's loader reads them. Both
kinds yield ``(index, frame)`` for every ``step``-th frame; a frame folder reads only the kept
files, a video is decoded whole (its codec needs every frame).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from benchcore.media import IMAGE_SUFFIXES, MediaError, iter_video, read_image, video_fps


def frame_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MediaError(f"{folder}: frame folder has no image files")
    return files


def kept_frames(path: str | os.PathLike, step: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, RGB uint8 frame)`` for indices 0, step, 2 step, ...; MediaError on bad input."""
    path = Path(path)
    if path.is_dir():
        for index, file in enumerate(frame_files(path)):
            if index % step == 0:
                yield index, read_image(file)
        return
    for index, frame in enumerate(iter_video(path)):
        if index % step == 0:
            yield index, frame


def source_fps(path: str | os.PathLike, folder_fps: float) -> float:
    """A video's frame rate from its header; ``folder_fps`` for a frame folder (no header)."""
    path = Path(path)
    return folder_fps if path.is_dir() else video_fps(path)


def source_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file; of a frame folder, over each frame file's name and bytes in order."""
    path = Path(path)
    digest = hashlib.sha256()
    files = frame_files(path) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.name.encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
