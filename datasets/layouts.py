"""Adapters for the folder layouts users have: which source videos make up a dataset's split.

- ``fomm`` (VoxCeleb1): FOMM's ``vox`` / ``vox-png`` output, ``<root>/{train,test}/`` holding
  ``{person_id}#{video_id}#{start:06d}#{end:06d}.mp4``, each a video file or a folder of PNG
  frames; entries are checked against FOMM's ``vox-metadata.csv``.
- ``voxceleb`` (VoxCeleb1 and 2): the release's ``<identity>/<video>/<segment>.mp4`` folders
  (e.g. ``id10001/1zcIwhmdeo4/00001.mp4``) anywhere under the root. VoxCeleb2's split is the
  folder: a ``dev`` or ``test`` folder on the path, or else the requested split (the root is
  then that split's folder). VoxCeleb1 segments take the FOMM partition of their YouTube video.
- ``th1kh`` (TalkingHead-1KH): the official crop's output ``<root>/{train,val}/cropped_clips/
  {video_name}_S.._E.._L.._T.._R.._B...mp4``, checked against the clip list when one is given.
  TalkingHead-1KH has no identity labels: a clip's identity is its YouTube video (all the
  one-minute chunks ``<youtube_id>_<dddd>`` of one video show one speaker).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from thbench.datasets.splits import SplitFile, load_vox1_split, read_th1kh_list, th1kh_split_file

DATASETS: dict[str, dict[str, tuple[str, ...]]] = {
    "voxceleb1": {"layouts": ("fomm", "voxceleb"), "splits": ("train", "test")},
    "voxceleb2": {"layouts": ("voxceleb",), "splits": ("dev", "test")},
    "talkinghead1kh": {"layouts": ("th1kh",), "splits": ("train", "val")},
}

FOMM_NAME = re.compile(r"^(id\d+)#(.+)#(\d{6})#(\d{6})(\.mp4)?$")
IDENTITY = re.compile(r"^id\d+$")
TH1KH_NAME = re.compile(r"^(.+)_S(\d+)_E(\d+)_L(\d+)_T(\d+)_R(\d+)_B(\d+)\.mp4$")
TH1KH_CHUNK = re.compile(r"_\d{4}$")
"""TalkingHead-1KH's ``video_name`` is a one-minute chunk ``<youtube_id>_<4 digits>`` of a
YouTube video (its ``videos_split.sh``); YouTube ids may themselves hold ``_``."""


def th1kh_identity(video_name: str) -> str:
    """The speaker of a TalkingHead-1KH clip: its YouTube video, the chunk number stripped."""
    return TH1KH_CHUNK.sub("", video_name)


@dataclass(frozen=True)
class Source:
    """One source video of a split: a file or a frame folder, prepared under ``name``."""

    path: Path
    name: str
    identity: str


@dataclass
class Discovery:
    sources: list[Source]
    """The split's sources on disk, sorted by name."""
    excluded: dict[str, str] = field(default_factory=dict)
    """Entries on disk left out of the split (path relative to the root -> why)."""
    missing: list[str] = field(default_factory=list)
    """Entries the split file lists that are not on disk."""
    split_file: SplitFile | None = None
    """The official list the split comes from; None where the split is the folder."""
    official: int | None = None
    """How many videos (clips) the official list gives the split (VoxCeleb1 test: 522 in
    FOMM's folders); None where no list says (the split is the folder, or raw VoxCeleb1
    segments, which the list does not name)."""


def discover(dataset: str, layout: str, root: str | os.PathLike, split: str,
             split_file: str | os.PathLike | None = None) -> Discovery:
    """The sources of ``split`` of ``dataset`` stored under ``root`` in ``layout``.

    ``split_file``: VoxCeleb1's ``vox-metadata.csv`` (default: the asset manager's copy) or a
    TalkingHead-1KH clip list (default: none, the folder is the split).
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    spec = DATASETS[dataset]
    if layout not in spec["layouts"]:
        raise ValueError(f"{dataset} comes in layouts {spec['layouts']}, not {layout!r}")
    if split not in spec["splits"]:
        raise ValueError(f"{dataset} has splits {spec['splits']}, not {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    if layout == "fomm":
        found = _fomm(root, split, split_file)
    elif layout == "th1kh":
        found = _th1kh(root, split, split_file)
    else:
        found = _voxceleb(root, split, dataset, split_file)
    found.sources.sort(key=lambda s: s.name)
    return found


def _fomm(root: Path, split: str, split_file) -> Discovery:
    vox1 = load_vox1_split(split_file)
    folder = root / split
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no {split}/ folder (FOMM layout: <root>/train, "
                                f"<root>/test)")
    found = Discovery([], split_file=vox1.source)
    on_disk = set()
    for entry in sorted(folder.iterdir()):
        relative = str(entry.relative_to(root))
        match = FOMM_NAME.match(entry.name)
        if not match:
            found.excluded[relative] = "name is not person_id#video_id#start#end.mp4"
            continue
        person, video, start, end, _ = match.groups()
        listed = vox1.partition_of_clip(entry.name)
        if listed is None:
            found.excluded[relative] = "not in FOMM's vox-metadata.csv"
        elif listed != split:
            found.excluded[relative] = f"a {listed} clip in vox-metadata.csv"
        else:
            on_disk.add(entry.name.removesuffix(".mp4"))
            found.sources.append(Source(entry, f"{person}_{video}_{start}_{end}", person))
    found.missing = sorted(n for n, p in vox1.clips.items() if p == split and n not in on_disk)
    found.official = vox1.counts().get(split, 0)
    return found


def _voxceleb(root: Path, split: str, dataset: str, split_file) -> Discovery:
    vox1 = load_vox1_split(split_file) if dataset == "voxceleb1" else None
    found = Discovery([], split_file=vox1.source if vox1 else None)
    for path in sorted(root.rglob("*.mp4")):
        relative = path.relative_to(root)
        if len(relative.parts) < 3 or not IDENTITY.match(relative.parts[-3]):
            found.excluded[str(relative)] = "not <identity>/<video>/<segment>.mp4"
            continue
        identity, video = relative.parts[-3], relative.parts[-2]
        if vox1 is not None:
            where = vox1.partition_of_video(video)
            reason = "video not in FOMM's vox-metadata.csv" if where is None else ""
        else:
            folders = [p for p in relative.parts[:-3] if p in DATASETS[dataset]["splits"]]
            where, reason = (folders[-1] if folders else split), ""
        if where != split:
            found.excluded[str(relative)] = reason or f"in the {where} split"
            continue
        found.sources.append(Source(path, f"{identity}_{video}_{path.stem}", identity))
    return found


def _th1kh(root: Path, split: str, split_file) -> Discovery:
    folder = root / split / "cropped_clips"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not found (TalkingHead-1KH layout: "
                                f"<root>/{{train,val}}/cropped_clips/)")
    listed = None
    found = Discovery([])
    if split_file:
        listed = {clip.file_name for clip in read_th1kh_list(split_file)}
        found.split_file = th1kh_split_file(split_file, split)
    names = set()
    for path in sorted(folder.glob("*.mp4")):
        match = TH1KH_NAME.match(path.name)
        if not match:
            found.excluded[str(path.relative_to(root))] = "name is not video_S_E_L_T_R_B.mp4"
        elif listed is not None and path.name not in listed:
            found.excluded[str(path.relative_to(root))] = "not in the clip list"
        else:
            names.add(path.name)
            found.sources.append(Source(path, path.stem, th1kh_identity(match.group(1))))
    found.missing = sorted(listed - names) if listed is not None else []
    found.official = len(listed) if listed is not None else None
    return found
