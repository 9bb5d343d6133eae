"""Score outputs that already exist on disk (a user's own method) on the benchmark's pairs.

The folder holds, per pair of the protocol's pair list, either a folder ``<pair_id>/`` of
frames ``000000.png ...`` (one per driving frame, in order) or a video ``<pair_id>.mp4``.
Frames must have the driving frames' size; they are scored exactly like generated frames.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thbench.core import assets
from thbench.core.media import MediaError, iter_video, read_image
from thbench.core.method import Method
from thbench.core.processes import local_device
from thbench.core.run_lock import run_folder_lock
from thbench.datasets.config import load_dataset
from thbench.eval.benchmark import write_run_record
from thbench.eval.config import load_config
from thbench.eval.metrics import build_metrics
from thbench.eval.results import ResultStore
from thbench.eval.runner import OutputCache, Runner


class ExistingOutputs(OutputCache):
    """Frames of pairs in a user's folder: ``<pair_id>/NNNNNN.png`` or ``<pair_id>.mp4``."""

    def complete(self, pair_id: str, count: int) -> bool:
        """Present; the frame count is checked while reading (:meth:`frames`)."""
        return (self.root / pair_id).is_dir() or (self.root / f"{pair_id}.mp4").is_file()

    def frames(self, pair_id: str, count: int) -> Iterator[np.ndarray]:
        video = self.root / f"{pair_id}.mp4"
        if video.is_file():
            frames = iter_video(video)
        else:
            frames = (read_image(p) for p in sorted((self.root / pair_id).glob("*.png")))
        produced = 0
        for frame in frames:
            produced += 1
            if produced > count:
                break
            yield frame
        if produced != count:
            raise MediaError(f"{self.root / pair_id}: {produced} frames, the pair has {count}")


class MissingOutputs(Method):
    """Stands in for the user's method where a pair has no outputs: that pair is an error row
    (the runner asks a method to generate only the pairs the folder lacks)."""

    name = "missing-outputs"

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def animate(self, source, driving):
        raise FileNotFoundError(f"{self.root}: no outputs for this pair (<pair_id>/ or "
                                "<pair_id>.mp4)")


@dataclass
class Scored:
    """What ``score_outputs`` did: its run folder and counts of the protocol's pairs."""

    run_dir: Path
    pairs: int
    """Pairs of the protocol's pair list that are scored (those the list skips are not)."""
    missing: list[str]
    """Pair ids with no outputs in the folder (each an error row)."""


def score_outputs(
    outputs: str | os.PathLike,
    config_path: str | os.PathLike,
    method: str,
    protocol: str,
    output_dir: str | None = None,
    append: bool = False,
) -> Scored:
    """Score the outputs in ``outputs`` as method ``method`` on ``protocol``'s pairs of the
    config's dataset, into the config's run folder (``results.csv`` holds the rows). A run
    folder that already holds results is written only with ``append``."""
    root = Path(outputs)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: outputs folder not found")
    config = load_config(config_path, output_dir=output_dir)
    if protocol not in config.protocols:
        raise ValueError(f"{config_path}: protocol {protocol!r} is not among the config's "
                         f"protocols ({', '.join(config.protocols)})")
    run_dir = config.run_dir
    if (run_dir / "results.csv").is_file() and not append:
        raise FileExistsError(f"{run_dir}: run folder already holds results; pass --append to "
                              f"add {method}'s rows to it, or --output-dir NEW_FOLDER")
    with run_folder_lock(run_dir):
        dataset = load_dataset(config.dataset, config.seed)
        if not (run_dir / "run.json").is_file():  # appending keeps the run's own record
            write_run_record(run_dir, config, dataset)
        metrics = build_metrics(config.metrics, config.metric_options,
                                local_device(config.device))
        runner = Runner(dataset, ResultStore(run_dir / "results.csv"), run_dir / "outputs",
                        metrics, config.batch_size,
                        analysis_cache=assets.cache_dir() / "analyses")
        existing = ExistingOutputs(root)
        pairs = [p for p in dataset.pairs(protocol) if not p.skip]
        missing = [p.pair_id for p in pairs
                   if not existing.complete(p.pair_id, len(p.driving_frames))]
        summary = runner.run(method, lambda: MissingOutputs(root), [protocol],
                             caches={protocol: existing})
    others = [p for p in summary.problems if p.pair_id not in missing]
    print(f"{method}: {summary.computed} pairs scored, {summary.reused} already scored, "
          f"{len(missing)} of {len(pairs)} pairs missing, {len(others)} other errors")
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5
                                          else "")
        print(f"missing in {root} (no <pair_id>/ or <pair_id>.mp4): {shown}")
    for problem in others:
        print(f"error in {problem.pair_id}: {problem.message}")
    return Scored(run_dir, len(pairs), missing)
