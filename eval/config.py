"""Run configuration, read from a TOML file (see ``configs/default.toml``)."""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from thbench.core.toml_table import read_table
from thbench.datasets.config import DatasetConfig
from thbench.datasets.protocols import PROTOCOLS
from thbench.eval.aggregate import AVERAGES


@dataclass
class MethodConfig:
    name: str
    label: str = ""
    """Name in tables and output folders; defaults to ``name``."""
    options: dict = field(default_factory=dict)
    """Keyword arguments for the method's constructor (checkpoint, config, ...)."""
    protocol_options: dict = field(default_factory=dict)
    """Options per protocol (``{"same-identity": {"mode": "absolute"}}``), over ``options`` and
    over the method's own paper defaults (``Method.protocol_options``)."""
    train: str = ""
    """A training config (``configs/train/*.toml``): the benchmark trains the method first into
    ``<output_dir>/train/<name>`` (or reuses the finished run) and evaluates the checkpoint that
    run exports."""

    @property
    def display(self) -> str:
        """The label; without one, the name (for ``package.module:Class``, the class's name)."""
        return self.label or self.name.rpartition(":")[2]


@dataclass
class RunConfig:
    name: str
    seed: int = 0
    device: str = "cpu"
    batch_size: int = 8
    output_dir: str = "runs"
    protocols: list[str] = field(default_factory=lambda: list(PROTOCOLS))
    metrics: list[str] = field(default_factory=lambda: ["psnr", "ssim", "l1"])
    metric_options: dict = field(default_factory=dict)
    offline: bool = False
    """Forbid downloads (as ``THB_OFFLINE=1``): missing assets are reported, never fetched."""
    average: str = "per-pair"
    """The headline average of the tables and the wide leaderboard: ``per-pair`` (the mean of
    pair means) or ``per-frame`` (one mean over all frames, as the papers). The long
    leaderboard always carries both, each named in its ``average`` column."""
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    methods: list[MethodConfig] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)
    """The command line's ``--set KEY=VALUE`` assignments applied on top of the file."""

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def digest(self) -> str:
        """Short hash of the resolved config, recorded beside the numbers."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_config(path: str | os.PathLike, settings: list[str] | tuple[str, ...] = (),
                **overrides) -> RunConfig:
    """The run config in file ``path``, with ``settings`` (``--set``) applied on top and
    ``overrides`` replacing top-level keys."""
    table = read_table(path, "config file", **overrides)
    for setting in settings:
        apply_setting(table, setting)
    if settings:
        table["settings"] = list(settings)
    return config_from_dict(table, str(path))


def _value(text: str):
    """A TOML value (number, boolean, array, quoted string), else the text as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_setting(table: dict, setting: str) -> None:
    """Apply ``KEY=VALUE`` to a config table. ``KEY`` is a dotted path: ``seed``,
    ``dataset.root``, ``metric_options.csim.backend``, or ``methods.LABEL.KEY`` for the method
    with that label (or name), where a key that is not a method field (``name``, ``label``,
    ``train``, ``options``) is one of its options (``methods.fomm.checkpoint=...``)."""
    key, sep, text = setting.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ValueError(f"--set {setting!r}: expected KEY=VALUE, e.g. dataset.root=/data/vox")
    value = _value(text.strip())
    if parts[0] == "methods":
        if len(parts) != 3:
            raise ValueError(f"--set {setting!r}: expected methods.LABEL.KEY=VALUE")
        methods = table.get("methods", [])
        matches = [m for m in methods if (m.get("label") or m.get("name")) == parts[1]]
        if not matches:
            labels = ", ".join(m.get("label") or m.get("name") for m in methods)
            raise ValueError(f"--set {setting!r}: no method labelled {parts[1]!r} "
                             f"(labels: {labels})")
        target = matches[0]
        if parts[2] not in {f.name for f in fields(MethodConfig)}:
            target = target.setdefault("options", {})
        target[parts[2]] = value
        return
    for part in parts[:-1]:
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise ValueError(f"--set {setting!r}: {part!r} is not a table")
    table[parts[-1]] = value


def config_from_dict(table: dict, origin: str) -> RunConfig:
    """A :class:`RunConfig` from a TOML table or a saved ``asdict`` (errors name ``origin``)."""
    table = dict(table)
    try:
        dataset = DatasetConfig(**table.pop("dataset", {}))
        methods = [MethodConfig(**m) for m in table.pop("methods", [])]
        config = RunConfig(dataset=dataset, methods=methods, **table)
    except TypeError as error:
        raise ValueError(f"{origin}: {error}") from None
    if config.average not in AVERAGES:
        raise ValueError(f"{origin}: average = {config.average!r}; expected one of {AVERAGES}")
    return config
