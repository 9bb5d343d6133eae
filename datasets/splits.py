"""Official splits: which videos of a dataset belong to which split, and the list's version.

- VoxCeleb1: the train/test partition of FOMM's preprocessing, ``vox-metadata.csv`` of
  AliaksandrSiarohin/video-preprocessing (asset ``vox1_metadata``, sha256-checked). A row is a
  clip ``{person_id}#{video_id}#{start:06d}#{end:06d}.mp4`` (start/end: frames of the YouTube
  video), the name FOMM's ``load_videos.py`` writes under ``train/`` or ``test/``. That script
  writes every clip of a YouTube video into the partition of the video's *first* row, so the
  few clips listed in both partitions (videos ``hgB5ziAudzU`` and ``ST2JZXcyYkE``) land in
  ``train/``; the same rule here gives FOMM's folders exactly: 19,242 train and 522 test
  clips.
- VoxCeleb2: no split file exists; the split is the release's folder (``dev/`` or ``test/``).
- TalkingHead-1KH: the clip lists of its ``data_list.zip`` (lines ``video_name,H,W,S,E,L,T,R,B``:
  source height and width, start and end frame, crop box), which name the files its official
  crop writes: ``{video_name}_S{S}_E{E}_L{L}_T{T}_R{R}_B{B}.mp4``. The list a user passes is
  recorded by its sha256.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from thbench.core import assets

VOX1_ASSET = "vox1_metadata"
VOX1_COLUMNS = ["video_id", "start", "end", "bbox", "fps", "width", "height", "partition",
                "person_id"]


@dataclass(frozen=True)
class SplitFile:
    """Where a split came from, recorded beside the prepared dataset."""

    name: str
    path: str
    sha256: str
    url: str = ""


@dataclass(frozen=True)
class Vox1Split:
    """FOMM's VoxCeleb1 partition: clip name (without ``.mp4``) -> ``"train"`` or ``"test"``."""

    clips: dict[str, str]
    source: SplitFile

    def partition_of_clip(self, name: str) -> str | None:
        return self.clips.get(name.removesuffix(".mp4"))

    def partition_of_video(self, video_id: str) -> str | None:
        """For raw VoxCeleb1 segments, which FOMM's clips do not name: the partition of the
        YouTube video's clips (one per video, as FOMM writes them)."""
        return self._videos.get(video_id)

    @cached_property
    def _videos(self) -> dict[str, str]:
        return {name.split("#")[1]: partition for name, partition in self.clips.items()}

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for partition in self.clips.values():
            out[partition] = out.get(partition, 0) + 1
        return out


def fomm_clip_name(person_id: str, video_id: str, start: int, end: int) -> str:
    return f"{person_id}#{video_id}#{start:06d}#{end:06d}"


def load_vox1_split(path: str | os.PathLike | None = None) -> Vox1Split:
    """The FOMM VoxCeleb1 split from ``path`` (checked against the manifest's sha256) or, without
    a path, from the asset manager (offline dir or cache; it never downloads here)."""
    asset = assets.get(VOX1_ASSET)
    file = assets.verify(asset, Path(path)) if path else assets.resolve(VOX1_ASSET)
    with file.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != VOX1_COLUMNS:
            raise ValueError(f"{file}: columns {reader.fieldnames}, expected {VOX1_COLUMNS}")
        clips: dict[str, str] = {}
        first_row: dict[str, str] = {}  # video_id -> partition of its first row
        for row in reader:
            name = fomm_clip_name(row["person_id"], row["video_id"], int(row["start"]),
                                  int(row["end"]))
            clips[name] = first_row.setdefault(row["video_id"], row["partition"])
    source = SplitFile(VOX1_ASSET, str(file), asset.sha256, asset.url)
    return Vox1Split(clips, source)


@dataclass(frozen=True)
class Th1khClip:
    """One line of a TalkingHead-1KH clip list."""

    video_name: str
    height: int
    width: int
    start: int
    end: int
    box: tuple[int, int, int, int]
    """(left, top, right, bottom) in the source video's pixels."""

    @property
    def file_name(self) -> str:
        left, top, right, bottom = self.box
        return (f"{self.video_name}_S{self.start}_E{self.end}_L{left}_T{top}_R{right}"
                f"_B{bottom}.mp4")


def read_th1kh_list(path: str | os.PathLike) -> list[Th1khClip]:
    """Parse a TalkingHead-1KH clip list; a malformed line is an error naming file and line."""
    path = Path(path)
    clips = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.strip().split(",")
        try:
            if len(fields) != 9:
                raise ValueError(f"{len(fields)} fields")
            h, w, s, e, left, top, right, bottom = (int(v) for v in fields[1:])
        except ValueError as error:
            raise ValueError(f"{path}:{number}: not `video_name,H,W,S,E,L,T,R,B` ({error})") \
                from None
        clips.append(Th1khClip(fields[0], h, w, s, e, (left, top, right, bottom)))
    return clips


def th1kh_split_file(path: str | os.PathLike, split: str) -> SplitFile:
    return SplitFile(f"talkinghead1kh-{split}-list", str(path), assets.sha256_of(Path(path)))

