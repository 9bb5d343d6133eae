"""Score outputs that already exist on disk (a user's own method) on the benchmark's pairs.

The folder holds, per pair of the protocol's pair list, either a folder ``<pair_id>/`` of
frames ``000000.png ...`` (one per driving frame, in order) or a video ``<pair_id>.mp4``.
Frames must have the driving frames' size; they are scored exactly like generated frames.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from thbench.core import assets
from thbench.core.media import MediaError, iter_video, read_image
from thbench.core.method import Method
from thbench.core.processes import local_device
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


def score_outputs(
    outputs: str | os.PathLike,
    config_path: str | os.PathLike,
    method: str,
    protocol: str,
    output_dir: str | None = None,
) -> Path:
    """Score the outputs in ``outputs`` as method ``method`` on ``protocol``'s pairs of the
    config's dataset; returns the run folder (its ``results.csv`` holds the rows)."""
    root = Path(outputs)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: outputs folder not found")
    config = load_config(config_path, output_dir=output_dir)
    dataset = load_dataset(config.dataset, config.seed, print)
    config.run_dir.mkdir(parents=True, exist_ok=True)
    write_run_record(config.run_dir, config, dataset)
    metrics = build_metrics(config.metrics, config.metric_options, local_device(config.device))
    runner = Runner(dataset, ResultStore(config.run_dir / "results.csv"),
                    config.run_dir / "outputs", metrics, config.batch_size,
                    analysis_cache=assets.cache_dir() / "analyses")
    summary = runner.run(method, lambda: MissingOutputs(root), [protocol],
                         caches={protocol: ExistingOutputs(root)})
    print(f"{method}: {summary.computed} pairs scored, {summary.reused} already scored, "
          f"{len(summary.problems)} errors")
    for problem in summary.problems:
        print(f"error in {problem.pair_id}: {problem.message}")
    return config.run_dir
