"""Run configuration, read from a TOML file (see ``configs/default.toml``)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchcore.toml_table import read_table


@dataclass
class DatasetConfig:
    name: str = "sample"
    root: str = ""
    """Prepared dataset folder; empty for the sample set (prepared into the cache)."""
    size: int = 256
    frame_step: int = 4
    clip_length: int = 16
    cross_per_source: int = 1


@dataclass
class MethodConfig:
    name: str
    label: str = ""
    """Name in tables and output folders; defaults to ``name``."""
    options: dict = field(default_factory=dict)
    """Keyword arguments for the method's constructor (checkpoint, config, ...)."""
    train: str = ""
    """A training config (``configs/train/*.toml``): the benchmark trains the method first into
    ``<output_dir>/train/<name>`` (or reuses the finished run) and evaluates the checkpoint that
    run exports."""

    @property
    def display(self) -> str:
        return self.label or self.name


@dataclass
class RunConfig:
    name: str
    seed: int = 0
    device: str = "cpu"
    batch_size: int = 8
    output_dir: str = "runs"
    protocols: list[str] = field(default_factory=lambda: ["same-identity", "cross-identity"])
    metrics: list[str] = field(default_factory=lambda: ["psnr", "ssim", "l1"])
    metric_options: dict = field(default_factory=dict)
    offline: bool = False
    """Forbid downloads (as ``THB_OFFLINE=1``): missing assets are reported, never fetched."""
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    methods: list[MethodConfig] = field(default_factory=list)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def digest(self) -> str:
        """Short hash of the resolved config, recorded beside the numbers."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_config(path: str | os.PathLike, **overrides) -> RunConfig:
    table = read_table(path, "config file", **overrides)
    return config_from_dict(table, str(path))


def config_from_dict(table: dict, origin: str) -> RunConfig:
    """A :class:`RunConfig` from a TOML table or a saved ``asdict`` (errors name ``origin``)."""
    table = dict(table)
    try:
        dataset = DatasetConfig(**table.pop("dataset", {}))
        methods = [MethodConfig(**m) for m in table.pop("methods", [])]
        return RunConfig(dataset=dataset, methods=methods, **table)
    except TypeError as error:
        raise ValueError(f"{origin}: {error}") from None
