"""The ``[dataset]`` table of run and training configs, and the prepared dataset it names."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from thbench.core import assets
from thbench.datasets.prepared_dataset import PreparedDataset
from thbench.datasets.settings import PAIR_KEYS, PREPARE_KEYS, check_settings
from thbench.datasets.source_clips import PrepareOptions

logger = logging.getLogger(__name__)


@dataclass
class DatasetConfig:
    """The dataset of a run. The preparation settings (``size`` ... ``max_driving_frames``, as
    :class:`~thbench.datasets.source_clips.PrepareOptions` and
    :class:`~thbench.datasets.pair_lists.PairOptions` name them) are left unset (None) to take
    what the folder was prepared with; a setting stated for a prepared folder must match its
    record (:mod:`thbench.datasets.settings`), or the run stops with a one-line error. The sample
    set is prepared with them (unset: its own
    ``SAMPLE_OPTIONS``, one cross-identity driver per source)."""

    name: str = "sample"
    root: str = field(default="", metadata={"path": True})
    """Prepared dataset folder; empty for the sample set (prepared into the cache)."""
    size: int | None = None
    frame_step: int | None = None
    clip_length: int | None = None
    crop: str | None = None
    fps: float | None = None
    cross_per_source: int | None = None
    driving_step: int | None = None
    max_driving_frames: int | None = None
    max_pairs: int = 0
    """Score only the first N pairs of each protocol's pair list (0: all): a first try of a new
    method in seconds. Not a preparation setting: the prepared folder keeps every pair."""

    def stated(self) -> dict:
        """The preparation settings the config states (not None)."""
        return {n: getattr(self, n) for n in PREPARE_KEYS + PAIR_KEYS
                if getattr(self, n) is not None}


def load_dataset(spec: DatasetConfig, seed: int) -> PreparedDataset:
    """The run's prepared dataset (cut to ``max_pairs`` pairs per protocol when set)."""
    if spec.max_pairs < 0:
        raise ValueError(f"dataset.max_pairs = {spec.max_pairs}: expected 0 (all) or more")
    dataset = _prepared(spec, seed)
    dataset.max_pairs = spec.max_pairs
    if spec.max_pairs:
        logger.info(f"dataset: the first {spec.max_pairs} pairs of each protocol "
                    "(dataset.max_pairs)")
    return dataset


def _prepared(spec: DatasetConfig, seed: int) -> PreparedDataset:
    """The sample set is prepared (or reused) first. Settings the config states must agree with
    what the folder was prepared with (SettingsMismatch)."""
    stated = spec.stated()
    if spec.name == "sample":
        from thbench.datasets.sample import SAMPLE_OPTIONS, prepare_sample_set

        options = replace(SAMPLE_OPTIONS, **{k: v for k, v in stated.items()
                                             if k not in PAIR_KEYS})
        cross = spec.cross_per_source or 1
        if {"driving_step", "max_driving_frames"} & set(stated):
            raise ValueError("the sample set scores every driving frame: remove "
                             "dataset.driving_step / dataset.max_driving_frames")
        root = Path(spec.root) if spec.root else sample_set_root(options, cross, seed)
        if (root / "dataset.json").is_file():  # prepared clips are reused, never redone
            check_settings(root, {k: getattr(options, k) for k in PREPARE_KEYS}
                           | {"cross_per_source": cross})
        logger.info(f"dataset: sample set in {root}")
        return prepare_sample_set(root, options, cross, seed)
    if not spec.root:
        raise ValueError(f"dataset {spec.name!r} needs `root` (a prepared dataset folder)")
    check_settings(spec.root, stated)
    return PreparedDataset(spec.root, spec.name)


def sample_set_root(options: PrepareOptions, cross_per_source: int, seed: int) -> Path:
    """Where the sample set prepared with these settings is cached (one folder per setting and
    per :data:`~thbench.datasets.sample.SAMPLE_LAYOUT`, so that a changed composition is never
    read from an older folder)."""
    from thbench.datasets.sample import SAMPLE_LAYOUT

    fps = f"-fps{options.fps:g}" if options.fps else ""
    return assets.cache_dir() / "datasets" / (
        f"sample{SAMPLE_LAYOUT}-{options.size}-s{options.frame_step}-l{options.clip_length}"
        f"-c{cross_per_source}-seed{seed}{fps}")
