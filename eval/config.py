"""Run configuration, read from a TOML file (see ``configs/default.toml``)."""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from thbench.core.cli import checkout_config
from thbench.core.toml_table import Key, Source, did_you_mean, from_table, read_table
from thbench.datasets.config import DatasetConfig
from thbench.datasets.protocols import ALL_PROTOCOLS, PROTOCOLS
from thbench.eval.aggregate import AVERAGES
from thbench.eval.metrics import REGISTRY


@dataclass
class MethodConfig:
    name: str
    label: str = ""
    """Name in tables and output folders; defaults to ``name``."""
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for the method's constructor (checkpoint, config, ...)."""
    protocol_options: dict[str, dict[str, Any]] = field(default_factory=dict,
                                                        metadata={"choices": ALL_PROTOCOLS})
    """Options per protocol (``{"same-identity": {"mode": "absolute"}}``), over ``options`` and
    over the method's own paper defaults (``Method.protocol_options``)."""
    train: str = field(default="", metadata={"path": True})
    """A training config (``configs/train/*.toml``): the benchmark trains the method first into
    ``<output_dir>/train/<name>`` (or reuses the finished run) and evaluates the checkpoint that
    run exports."""
    shipped: str = field(default="", metadata={"path": True})
    """With ``train``: a folder of a checkpoint that config produced, shipped with the repository
    (:mod:`thbench.training.shipped`). It is evaluated instead of training, unless the run
    config says ``retrain``."""

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
    output_dir: str = field(default="runs", metadata={"path": True})
    protocols: list[str] = field(default_factory=lambda: list(PROTOCOLS),
                                 metadata={"choices": ALL_PROTOCOLS})
    metrics: list[str] = field(default_factory=lambda: ["psnr", "ssim", "l1"],
                               metadata={"choices": tuple(REGISTRY)})
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict,
                                                      metadata={"choices": tuple(REGISTRY)})
    offline: bool = False
    """Forbid downloads (as ``THB_OFFLINE=1``): missing assets are reported, never fetched."""
    retrain: bool = False
    """Train every method that has a ``train`` config, even where a shipped checkpoint of that
    config exists (``--retrain``): reproduces the shipped checkpoints from scratch."""
    average: str = field(default="per-pair", metadata={"choices": AVERAGES})
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


def default_config() -> Path:
    """``configs/default.toml`` of the checkout, from any directory (:func:`checkout_config`)."""
    return checkout_config("default.toml")


def load_config(path: str | os.PathLike, settings: list[str] | tuple[str, ...] = (),
                **overrides) -> RunConfig:
    """The run config in file ``path``, with ``settings`` (``--set``) applied on top and
    ``overrides`` replacing top-level keys. Every key and value is checked (unknown keys and
    bad types are errors naming the file and line, or the ``--set`` flag); relative paths in
    the file resolve against its folder."""
    table = read_table(path, "config file", **overrides)
    source = Source(Path(path), {(k,): f"--{k.replace('_', '-')} {v}"
                                 for k, v in overrides.items() if v is not None})
    for setting in settings:
        source.flags[apply_setting(table, setting)] = f"--set {setting}"
    if settings:
        table["settings"] = list(settings)
    config = config_from_dict(table, source)
    for index, spec in enumerate(config.methods):
        checkpoint = spec.options.get("checkpoint")
        if isinstance(checkpoint, str):  # the one option that is a path by convention
            spec.options["checkpoint"] = source.resolve(
                checkpoint, ("methods", index, "options", "checkpoint"))
    return config


def _value(text: str):
    """A TOML value (number, boolean, array, quoted string), else the text as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_setting(table: dict, setting: str) -> Key:
    """Apply ``KEY=VALUE`` to a config table and return the key it set. ``KEY`` is a dotted
    path: ``seed``, ``dataset.root``, ``metric_options.csim.backend``, or
    ``methods.LABEL.KEY`` for the method with that label (or name), where a key that is not a
    method field (``name``, ``label``, ``train``, ``options``) is one of its options
    (``methods.fomm.checkpoint=...``)."""
    key, sep, text = setting.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ValueError(f"--set {setting}: expected KEY=VALUE, e.g. dataset.root=/data/vox")
    value = _value(text.strip())
    if parts[0] == "methods":
        if len(parts) != 3:
            raise ValueError(f"--set {setting}: expected methods.LABEL.KEY=VALUE")
        methods = table.get("methods", [])
        labels = [m.get("label") or str(m.get("name", "")).rpartition(":")[2] for m in methods]
        if parts[1] not in labels:
            raise ValueError(f"--set {setting}: no method labelled {parts[1]!r}"
                             f"{did_you_mean(parts[1], labels)}; labels: {', '.join(labels)}")
        index = labels.index(parts[1])
        target = methods[index]
        if parts[2] in {f.name for f in fields(MethodConfig)}:
            target[parts[2]] = value
            return ("methods", index, parts[2])
        target.setdefault("options", {})[parts[2]] = value
        return ("methods", index, "options", parts[2])
    for part in parts[:-1]:
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise ValueError(f"--set {setting}: {part!r} is not a table")
    table[parts[-1]] = value
    return tuple(parts)


def config_from_dict(table: dict, origin: str | Source) -> RunConfig:
    """A :class:`RunConfig` from a TOML table or a saved ``asdict``: every key and value checked
    against the schema (errors name ``origin``, a file name or a :class:`Source`)."""
    source = origin if isinstance(origin, Source) else Source(Path(origin), resolve_paths=False)
    return from_table(RunConfig, table, source)
