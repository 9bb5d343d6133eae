"""Prepare a dataset split: every source video into clips, in parallel processes, resumably.

Each video is one job (:func:`prepare_source`): detect and crop (:func:`prepare_video`), then
fit the 3DMM on each clip (:mod:`thbench.datasets.fits`). Jobs run in a spawn-started process pool,
so dlib and eos never share state across a fork. A video is finished once its done marker exists
(and its clips' fits, when fitting); a video that cannot be used gets a ``.skipped.json``
marker with the reason (too short, corrupt or unreadable file, no face to crop around with
``crop = "face"``). A video without any face under ``crop = "full"`` is prepared (its face
records all false) and counted apart (``no_face_videos``): it is scored on the pixel metrics.
A rerun after an interruption submits only the videos with neither marker; ``retry_skipped``
tries the skipped ones again.

Outputs beside ``clips/``: ``skipped.json`` (video -> reason, as the sample set writes it) and
``dataset.json`` (dataset, layout, split, split file and its sha256, the videos left out and
missing, options, counts, the official count of the split where a list gives one), both the
same for a resumed and an uninterrupted preparation. The log ends with the prepared count
against the official one (:func:`official_line`).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from thbench.core import atomic
from thbench.core.media import MediaError
from thbench.core.progress import progress
from thbench.datasets.clip import Clip
from thbench.datasets.fits import fit_clip, has_fits
from thbench.datasets.layouts import Discovery, Source
from thbench.datasets.source_clips import PrepareOptions, prepare_video
from thbench.facegeom.detect import FaceDetector
from thbench.facegeom.fitting import Fitter

logger = logging.getLogger(__name__)

SHOWN_SKIPPED = 20
"""Skipped videos named in the log; all of them are in ``skipped.json``."""


@dataclass(frozen=True)
class Outcome:
    name: str
    clips: list[str]
    skipped: str = ""
    """Why the video gave no clip; empty when it was prepared."""
    reused: bool = False
    """Finished by an earlier run."""
    no_face: bool = False
    """Prepared, but no frame of it has a face (pixel metrics only)."""


def _no_face(clips: list[Clip]) -> bool:
    """Whether prepared ``clips`` (one video's) exist and none of their frames has a face."""
    return bool(clips) and not any(r.face for clip in clips for r in clip.faces())


@cache
def _detector() -> FaceDetector:
    return FaceDetector()


@cache
def _fitter() -> Fitter:
    return Fitter()


def _skip_marker(out_root: Path, name: str) -> Path:
    return out_root / "clips" / f"{name}.skipped.json"


def prepare_source(source: Source, out_root: Path, options: PrepareOptions,
                   fit: bool) -> Outcome:
    """One video, start to finish (runs in a worker process). Bad input becomes a skip
    marker; any other failure is raised as one line naming the file."""
    try:
        clips = prepare_video(source.path, out_root, source.name, source.identity, options,
                              _detector())
        if fit:
            for clip in clips:
                fit_clip(clip, _fitter())
    except MediaError as error:
        _write_json(_skip_marker(out_root, source.name),
                    {"source": str(source.path), "reason": str(error)})
        return Outcome(source.name, [], skipped=str(error))
    except Exception as error:
        raise RuntimeError(f"{source.path}: {type(error).__name__}: {error}") from error
    return Outcome(source.name, [c.clip_id for c in clips], no_face=_no_face(clips))


def finished(source: Source, out_root: Path, fit_backend: str | None,
             retry_skipped: bool = False) -> Outcome | None:
    """The outcome of an earlier run, or None when the video still has work to do."""
    skip = _skip_marker(out_root, source.name)
    if skip.is_file() and not retry_skipped:
        return Outcome(source.name, [], json.loads(skip.read_text())["reason"], reused=True)
    done = out_root / "clips" / f"{source.name}.done.json"
    if not done.is_file():
        return None
    clips = [Clip(out_root / "clips" / c) for c in json.loads(done.read_text())["clips"]]
    if fit_backend and not all(has_fits(clip, fit_backend) for clip in clips):
        return None
    return Outcome(source.name, [c.clip_id for c in clips], reused=True,
                   no_face=_no_face(clips))


def prepare_split(found: Discovery, out_root: str | os.PathLike, options: PrepareOptions,
                  description: dict, *, workers: int = 1, fit: bool = True,
                  retry_skipped: bool = False) -> list[Outcome]:
    """Prepare every source of ``found`` into ``out_root``; ``description`` (dataset, layout,
    split, raw root) goes into ``dataset.json``. Returns one outcome per source, by name."""
    out_root = Path(out_root)
    (out_root / "clips").mkdir(parents=True, exist_ok=True)
    fit_backend = None
    if fit:
        reason = _fitter().available()
        if reason:
            raise RuntimeError(f"3DMM fits need the Surrey Face Model ({reason}); or prepare "
                               f"without fits (--no-fit)")
        fit_backend = _fitter().backend
    outcomes: dict[str, Outcome] = {}
    pending = []
    for source in found.sources:
        earlier = finished(source, out_root, fit_backend, retry_skipped)
        if earlier is None:
            _skip_marker(out_root, source.name).unlink(missing_ok=True)
            pending.append(source)
        else:
            outcomes[source.name] = earlier
    logger.info(f"{len(found.sources)} videos: {len(outcomes)} done earlier, {len(pending)} to "
                f"prepare with {workers} process{'es' if workers > 1 else ''}")
    bar = progress(total=len(pending), unit="video", desc="preparing", enabled=bool(pending))
    with bar:
        for outcome in _run(pending, out_root, options, fit, workers):
            outcomes[outcome.name] = outcome
            bar.update()
    ordered = [outcomes[source.name] for source in found.sources]
    _write_records(out_root, found, ordered, options, description, fit_backend)
    _log_summary(ordered)
    logger.info(official_line(found, ordered))
    return ordered


def official_line(found: Discovery, outcomes: list[Outcome]) -> str:
    """How many of the split's videos were prepared, against the official count where a list
    gives one, so that a smaller test set never goes unnoticed."""
    prepared = sum(not o.skipped for o in outcomes)
    if found.official is None:
        return (f"split: {prepared} videos prepared of {len(outcomes)} found (no official list "
                "gives this split's size)" + no_face_remark(outcomes))
    short = found.official - prepared
    return (f"split: {prepared} of the {found.official} official videos prepared"
            + (f" ({short} short: {len(found.missing)} missing on disk, "
               f"{sum(bool(o.skipped) for o in outcomes)} skipped)" if short else "")
            + (f", from {found.split_file.name}" if found.split_file else "")
            + no_face_remark(outcomes))


def no_face_remark(outcomes: list[Outcome]) -> str:
    """``"; 1 of them without a face in any frame (...)"``, or empty."""
    count = sum(o.no_face for o in outcomes)
    return (f"; {count} of them without a face in any frame (scored on the pixel metrics, "
            "their frames counted as uncovered by the face metrics)" if count else "")


def _run(sources: list[Source], out_root: Path, options: PrepareOptions, fit: bool,
         workers: int):
    if workers <= 1:
        for source in sources:
            yield prepare_source(source, out_root, options, fit)
        return
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        futures = [pool.submit(prepare_source, s, out_root, options, fit) for s in sources]
        for future in as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _write_records(out_root: Path, found: Discovery, outcomes: list[Outcome],
                   options: PrepareOptions, description: dict, fit_backend: str | None) -> None:
    skipped = {o.name: o.skipped for o in outcomes if o.skipped}
    record = {
        **description,
        "split_file": asdict(found.split_file) if found.split_file else None,
        "videos": len(outcomes),
        "official_videos": found.official,
        "prepared_videos": sum(not o.skipped for o in outcomes),
        "no_face_videos": sorted(o.name for o in outcomes if o.no_face),
        "clips": sum(len(o.clips) for o in outcomes),
        "skipped": len(skipped),
        "excluded": found.excluded,
        "missing": found.missing,
        "options": asdict(options),
        "fits": fit_backend,
    }
    _write_json(out_root / "skipped.json", skipped)
    _write_json(out_root / "dataset.json", record)


def _write_json(path: Path, value) -> None:
    atomic.write_text(path, json.dumps(value, indent=1, sort_keys=True) + "\n")


def _log_summary(outcomes: list[Outcome]) -> None:
    new = [o for o in outcomes if not o.reused]
    skipped = [o for o in outcomes if o.skipped]
    logger.info(f"prepared {sum(not o.skipped for o in new)} videos now, reused "
                f"{len(outcomes) - len(new)}, {sum(len(o.clips) for o in outcomes)} clips in "
                f"all; {len(skipped)} skipped (skipped.json)")
    for outcome in skipped[:SHOWN_SKIPPED]:
        logger.info(f"  skipped {outcome.name}: {outcome.skipped}")
    if len(skipped) > SHOWN_SKIPPED:
        logger.info(f"  ... and {len(skipped) - SHOWN_SKIPPED} more in skipped.json")
