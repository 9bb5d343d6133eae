"""Reading and writing frames: every image becomes RGB uint8 (H, W, 3), or a one-line error.

Videos are decoded with PyAV one frame at a time, so memory does not grow with clip length.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from thbench.core import atomic

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm"}


class MediaError(ValueError):
    """A file that cannot be used as frames; the message names the file and the problem."""


def to_rgb_uint8(array: np.ndarray, origin: str) -> np.ndarray:
    """Normalise an image array to RGB uint8 (H, W, 3).

    Grayscale is replicated, alpha is composited over black, 16-bit is scaled to 8-bit.
    """
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise MediaError(f"{origin}: unsupported image shape {array.shape}")
    if array.dtype == np.uint16:
        array = (array.astype(np.float64) / 257.0).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        raise MediaError(f"{origin}: unsupported pixel type {array.dtype}")
    channels = array.shape[2]
    if channels in (2, 4):
        alpha = array[:, :, -1:].astype(np.float32) / 255.0
        colour = array[:, :, :-1].astype(np.float32) * alpha
        array = colour.round().astype(np.uint8)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """RGB uint8 (H, W, 3) from an image file of any common mode (L, I;16, RGBA, P, ...)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.mode == "P":
                image = image.convert("RGBA")
            elif image.mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(image).astype(np.uint16)
                return to_rgb_uint8(array, str(path))
            elif image.mode not in ("L", "LA", "RGB", "RGBA"):
                image = image.convert("RGB")
            array = np.asarray(image)
    except FileNotFoundError:
        raise MediaError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError) as error:
        raise MediaError(f"{path}: not a readable image ({error})") from None
    return to_rgb_uint8(array, str(path))


def write_png(path: str | os.PathLike, frame: np.ndarray) -> None:
    """Write an RGB uint8 frame atomically (:mod:`thbench.core.atomic`).

    zlib level 1: a third of the default level's time for files about 4% larger (lossless
    either way); the runner writes every generated frame."""
    with atomic.replacing(path) as out:
        Image.fromarray(frame).save(out, format="PNG", compress_level=1)


def iter_video(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames of a video; corrupt, truncated or empty files raise MediaError."""
    import av

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: file not found")
    count = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            for frame in container.decode(video=0):
                count += 1
                yield frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as error:
        raise MediaError(
            f"{path}: corrupt or truncated video after {count} frames ({error})"
        ) from None
    if count == 0:
        raise MediaError(f"{path}: video has no frames")


def video_fps(path: str | os.PathLike) -> float:
    import av

    try:
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
            return float(rate) if rate else 25.0
    except (av.error.FFmpegError, IndexError) as error:
        raise MediaError(f"{path}: cannot read video header ({error})") from None


def stack_batches(frames: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Group (H, W, 3) frames into (B, H, W, 3) arrays of ``size`` frames (the last may be
    shorter), so a clip is never held in memory whole."""
    batch: list[np.ndarray] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Iterate ``items`` on a background thread, ``depth`` items ahead, so that decoding (PNG,
    video) overlaps with the consumer's work; PIL and PyAV release the GIL while decoding.
    An exception raised by ``items`` is raised here, in order."""
    import queue
    import threading

    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put((item, None))
        except BaseException as error:  # handed to the consumer
            buffer.put((None, error))
            return
        buffer.put((done, None))

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full buffer
            try:
                buffer.get_nowait()
            except queue.Empty:
                thread.join(0.01)


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(H, W, 3) or (B, H, W, 3) uint8 -> (3, H, W) or (B, 3, H, W) float in [0, 1]."""
    tensor = torch.tensor(np.ascontiguousarray(frames), dtype=torch.float32).div_(255.0)
    return tensor.movedim(-1, -3)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) or (3, H, W) float in [0, 1] -> uint8 (B, H, W, 3) or (H, W, 3)."""
    scaled = frames.detach().clamp(0, 1).mul(255.0).round().to(torch.uint8)
    return scaled.movedim(-3, -1).cpu().numpy()
