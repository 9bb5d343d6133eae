"""Pair lists of a prepared dataset split, the files every method is scored on.

- same-identity: each clip's frame 0 is the source, every frame of the clip (frame 0
  included) is a driving frame and its own ground truth (VoxCeleb's and TalkingHead-1KH's
  reconstruction protocol with whole-video clips, FOMM's ``reconstruction.py``).
- cross-identity: the first clip of each video is a source; ``cross_per_source`` clips of
  other identities drive it, drawn with ``seed`` by numpy's PCG64 over clips sorted by id, so
  the list depends only on the clips, their face records and the seed, on any machine.

The options are written to ``pairs/protocols.json`` beside the lists, with the sources no
cross-identity pair could be drawn for and why (``cross_identity_undriven``), so that nothing
leaves the lists unaccounted.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from thbench.core import atomic
from thbench.datasets.clip import Clip
from thbench.datasets.protocols import (
    CROSS_IDENTITY,
    SAME_IDENTITY,
    cross_identity_pairs,
    same_identity_pairs,
    subsample_driving,
    undriven_sources,
    write_pairs,
)


@dataclass(frozen=True)
class PairOptions:
    seed: int = 0
    cross_per_source: int = 1
    driving_step: int = 1
    """Every ``driving_step``-th driving frame is scored."""
    max_driving_frames: int = 0
    """At most this many driving frames per pair (0: all)."""


def prepared_videos(root: str | os.PathLike) -> dict[str, list[str]]:
    """Source name -> its clip ids, from the preparation's done markers."""
    videos = {}
    for marker in sorted(Path(root, "clips").glob("*.done.json")):
        videos[marker.name.removesuffix(".done.json")] = json.loads(marker.read_text())["clips"]
    return videos


def write_protocols(root: str | os.PathLike, options: PairOptions) -> dict[str, int]:
    """Write ``pairs/same-identity.jsonl``, ``pairs/cross-identity.jsonl`` and
    ``pairs/protocols.json``; pair counts, and ``cross-identity undriven``: the sources left
    without a cross-identity pair (listed with the reason in ``protocols.json``)."""
    root = Path(root)
    videos = prepared_videos(root)
    clips = [Clip(root / "clips" / c) for ids in videos.values() for c in ids]
    firsts = [Clip(root / "clips" / ids[0]) for ids in videos.values() if ids]
    lists = {
        SAME_IDENTITY: same_identity_pairs(clips),
        CROSS_IDENTITY: cross_identity_pairs(firsts, clips, options.cross_per_source,
                                             options.seed),
    }
    for protocol, pairs in lists.items():
        pairs = subsample_driving(pairs, options.driving_step, options.max_driving_frames)
        write_pairs(root / "pairs" / f"{protocol}.jsonl", pairs)
    undriven = undriven_sources(firsts, clips)
    atomic.write_text(root / "pairs" / "protocols.json",
                      json.dumps(asdict(options) | {"cross_identity_undriven": undriven},
                                 indent=1, sort_keys=True) + "\n")
    return {protocol: len(pairs) for protocol, pairs in lists.items()} | {
        f"{CROSS_IDENTITY} undriven": len(undriven)}
