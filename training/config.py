"""Training configs (TOML), read by ``python -m thbench train`` for every method family. See
``configs/train/*.toml``::

    name = "hidenerf-tiny-sample"      # run folder: <output_dir>/<name>
    family = "hidenerf"                # hidenerf | fomm | tpsmm | fv2v
    model = "tiny"                     # the family's config name
    seed = 0
    device = "cpu"                     # or "cuda" (one GPU per torchrun process)
    output_dir = "runs/train"

    [data]                             # a prepared dataset, as in the evaluation configs
    name = "sample"                    # or any name with root = "<prepared dataset folder>"
    size = 256
    frame_step = 4
    clip_length = 16
    holdout = 4                        # last frames of every clip never trained on
    pairs_per_clip = 64                # (source, driving) pairs per clip and epoch

    faces_only = false                 # true: draw only frames with a face
    identity_sampling = false          # official loaders: true (id_sampling)
    fresh_pairs = false                # official loaders: true (a new pair on every draw)
    horizontal_flip = false            # augmentation (datasets.augmentation)
    time_flip = false
    jitter = [0.0, 0.0, 0.0, 0.0]      # brightness, contrast, saturation, hue

    [optim]                            # thbench.training.loop.TrainSettings
    steps = 300                        # or epochs = 100 (see TrainSettings.epochs)
    batch_size = 4
    lr = 1e-3

    [loss]                             # the family's loss weights
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

from thbench.core import atomic
from thbench.core.families import available, family, trainable
from thbench.core.processes import Process, join
from thbench.core.toml_table import Source, did_you_mean, from_table, read_table
from thbench.datasets.config import DatasetConfig, load_dataset
from thbench.training.loop import Trainer, TrainSettings

T = TypeVar("T")


@dataclass
class TrainData(DatasetConfig):
    """The evaluation configs' dataset keys, plus which frames training may draw."""

    holdout: int = 4
    """The last ``holdout`` frames of every clip are never trained on."""
    pairs_per_clip: int = 64
    """(source, driving) pairs per clip (per identity with ``identity_sampling``) and epoch:
    the official loaders' ``num_repeats``."""
    identity_sampling: bool = False
    """Draw by identity (then one of its clips), as the official ``id_sampling``."""
    fresh_pairs: bool = False
    """New random pairs in every epoch (official), instead of the same pairs each epoch."""
    faces_only: bool = False
    """Draw only frames in which the preparation found a face (their per-frame records): the
    steps of a short run go to the frames the benchmark's face metrics score."""
    expression_pairs: float = 0.0
    """HiDe-NeRF: share of pairs drawn among changes of mouth opening (hidenerf.pairs)."""
    horizontal_flip: bool = False
    time_flip: bool = False
    jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    """Colour jitter: brightness, contrast, saturation, hue (see datasets.augmentation)."""

    def augmentation(self):
        from thbench.datasets.augmentation import Augmentation

        return Augmentation(self.horizontal_flip, self.time_flip,
                            tuple(float(v) for v in self.jitter))


@dataclass
class TrainConfig:
    name: str
    family: str
    model: str = "tiny"
    seed: int = 0
    device: str = "cpu"
    output_dir: str = field(default="runs/train", metadata={"path": True})
    data: TrainData = field(default_factory=TrainData)
    optim: TrainSettings = field(default_factory=TrainSettings)
    loss: dict[str, Any] = field(default_factory=dict)
    init_from: str = field(default="", metadata={"path": True})
    """An official-layout checkpoint the baseline starts from (e.g. the export of an earlier
    stage, as TPSMM's AVD stage starts from the main stage), or the training config (``.toml``)
    of that earlier stage, which is then trained first into the same output folder (or its
    finished run reused) and its export taken; empty: a seeded initialisation."""

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    @property
    def exported(self) -> Path:
        """The weights a finished run exports for the benchmark and the ``animate`` commands:
        the file the family's registry entry names (HiDe-NeRF's ``model.pt``, the warping
        baselines' official layout ``checkpoint.pth.tar``)."""
        return self.run_dir / family(self.family).exported

    def earlier_stage(self) -> TrainConfig | None:
        """The config ``init_from`` names when it is a training config, with this run's
        output folder; None when it names a checkpoint or nothing."""
        if not self.init_from.endswith(".toml"):
            return None
        return load_train_config(self.init_from, output_dir=self.output_dir)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)


def load_train_config(path: str | os.PathLike, **overrides) -> TrainConfig:
    """Read a training config; ``overrides`` replace top-level keys (None: keep). Every key and
    value is checked; relative paths in the file resolve against its folder."""
    table = read_table(path, "training config", **overrides)
    flags: dict[tuple[str | int, ...], str] = {
        (k,): f"--{k.replace('_', '-')} {v}" for k, v in overrides.items() if v is not None}
    return train_config_from_dict(table, Source(Path(path), flags))


def train_config_from_dict(table: dict, origin: str | Source) -> TrainConfig:
    """A :class:`TrainConfig` from a table, checked against the schema (errors name
    ``origin``: a file name, or a :class:`Source` with the file's lines and flags)."""
    source = origin if isinstance(origin, Source) else Source(Path(origin), resolve_paths=False)
    config = from_table(TrainConfig, table, source)
    if config.family not in available():
        raise source.error(("family",), f"family = {config.family!r}: unknown"
                                        f"{did_you_mean(config.family, trainable())}; "
                                        f"trainable: {', '.join(trainable())}")
    if not family(config.family).trainer:
        raise source.error(("family",), f"family = {config.family!r} has no trainer; "
                                        f"trainable: {', '.join(trainable())}")
    if config.data.holdout < 0 or config.data.pairs_per_clip < 1:
        raise source.error(("data",), "holdout must be >= 0 and pairs_per_clip >= 1")
    return config


def read_loss_table(cls: type[T], table: dict, origin: str) -> T:
    """A ``[loss]`` table as the family's weights dataclass ``cls``: an unknown key or a bad
    value is one error naming ``origin``."""
    try:
        return from_table(cls, table, key=("loss",))
    except ValueError as error:
        raise ValueError(f"{origin}: {error}") from None


def open_training_data(config: TrainConfig, distributed: bool) -> tuple[Process, list]:
    """Join the process group (when ``distributed`` and under torchrun), let rank 0 prepare
    the dataset while the others wait, and return this process and the dataset's video clips
    long enough to train on (``holdout`` + 2 frames or more)."""
    import torch.distributed as dist

    from thbench.datasets.frame_pairs import video_clips

    process = join(config.device) if distributed else Process(device=torch.device(config.device))
    d = config.data
    if not process.main:
        dist.barrier()
    dataset = load_dataset(d, config.seed)
    if process.main and process.world > 1:
        dist.barrier()
    clips = video_clips(dataset, d.holdout + 2)
    if not clips:
        raise ValueError(f"{config.name}: dataset {dataset.root} has no clip with "
                         f"{d.holdout + 2} frames or more")
    return process, clips


def start_trainer(config: TrainConfig, objective, dataset, process: Process, *, resume: bool,
                  distributed: bool) -> Trainer:
    """The config's :class:`Trainer`, continued from its checkpoint when ``resume``."""
    trainer = Trainer(objective, dataset, config.optim, config.run_dir, seed=config.seed,
                      device=str(process.device), distributed=distributed)
    trainer.start(resume)
    return trainer


def write_resolved_config(config: TrainConfig, resolved: dict, process: Process) -> None:
    """``<run>/config.json``: the config as run, plus what was resolved at run time (e.g. the
    perceptual loss backend), so a run folder says how its weights were made."""
    if not process.main:
        return
    record = json.loads(config.to_json()) | {"resolved": resolved}
    atomic.write_json(config.run_dir / "config.json", record)
