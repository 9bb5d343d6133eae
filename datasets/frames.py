"""Frames of a source video: a video file, or a folder of image frames (FOMM's ``vox-png``).

A frame folder's frames are its image files in name order, as FOMM's loader reads them. Both
kinds yield ``(index, frame)`` for every ``step``-th frame, optionally after resampling to
another frame rate; a frame folder reads only the kept files, a video is decoded whole (its
codec needs every frame).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from thbench.core.media import IMAGE_SUFFIXES, MediaError, iter_video, read_image, video_fps


def frame_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MediaError(f"{folder}: frame folder has no image files")
    return files


def kept_frames(path: str | os.PathLike, step: int,
                ratio: float = 1.0) -> Iterator[tuple[int, np.ndarray]]:
    """``(source index, RGB uint8 frame)`` of every ``step``-th frame of the video resampled by
    ``ratio`` = source fps / target fps (1: not resampled): output frame ``k`` is the source
    frame nearest its time, ``floor(k * ratio + 0.5)``, so frames are dropped (ratio > 1) or
    repeated (ratio < 1). MediaError on bad input."""
    path = Path(path)

    def source_index(k: int) -> int:
        return math.floor(k * ratio + 0.5)

    if path.is_dir():
        files = frame_files(path)
        k = 0
        while (index := source_index(k)) < len(files):
            if k % step == 0:
                yield index, read_image(files[index])
            k += 1
        return
    k = 0
    for index, frame in enumerate(iter_video(path)):
        while source_index(k) == index:
            if k % step == 0:
                yield index, frame
            k += 1


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
