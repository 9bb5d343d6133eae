"""Shipped checkpoints: a finished training run's export, committed with its record.

The default benchmark evaluates the tiny models from checkpoints that ship with the repository
(``checkpoints/<run>/``), trained longer than a first run could afford, instead of training them
inside ``nox -s eval``. Each folder holds the family's export (``checkpoint.pth.tar`` or
``model.pt``) and ``shipped.json``: its sha256, the training config it came from (every
setting), the commit, the steps, the training time and threads, and the logged curve. Before a
run uses the file, :func:`verified_export` checks both the sha256 and that the training config
named in the run config still has the recorded settings: a checkpoint never stands for a recipe
that has changed since. ``--retrain`` (``RunConfig.retrain``) trains from the config instead,
which reproduces the file on the CPU it was trained on.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from thbench.core import atomic
from thbench.core.assets import sha256_of
from thbench.core.provenance import git_commit
from thbench.training.config import TrainConfig

RECORD = "shipped.json"
_NOT_RECIPE = ("output_dir", "device")
"""Settings that say where and on what a run trains, not what it learns."""


class ShippedMismatch(ValueError):
    """A shipped checkpoint that is missing, altered, or from another recipe."""


def recipe(config: TrainConfig) -> dict:
    """The settings that decide the weights a training config produces."""
    settings = asdict(config)
    for key in _NOT_RECIPE:
        settings.pop(key)
    earlier = config.earlier_stage()
    if earlier is not None:  # the earlier stage's own recipe, not where its file lies
        settings["init_from"] = recipe(earlier)
    return json.loads(json.dumps(settings))  # tuples as lists, as they read back from JSON


def ship(config: TrainConfig, folder: Path, threads: int) -> Path:
    """Copy the finished run's export into ``folder`` with its ``shipped.json``; returns the
    copied file. ``seconds`` is the last logged step over the run's logged rate (the training
    time of a run that was not resumed); ``threads`` is the trainer's torch thread count."""
    export = config.exported
    if not export.is_file():
        raise FileNotFoundError(f"{export}: no export: the run of {config.name} has not finished")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / export.name
    shutil.copyfile(export, target)
    scalars = config.run_dir / "scalars.jsonl"
    curve = [json.loads(line) for line in scalars.read_text().splitlines() if line.strip()]
    heldout = config.run_dir / "heldout.json"
    atomic.write_json(folder / RECORD, {
        "file": target.name, "sha256": sha256_of(target), "family": config.family,
        "commit": git_commit(), "threads": threads,
        "steps": max((row["step"] for row in curve), default=0),
        "seconds": round(curve[-1]["step"] / curve[-1]["steps_per_s"]) if curve else 0,
        "heldout": json.loads(heldout.read_text()) if heldout.is_file() else None,
        "recipe": recipe(config), "curve": curve,
    })
    return target


def verified_export(folder: Path, config: TrainConfig) -> Path:
    """The export in ``folder``, after checking its sha256 and that ``config`` is the recipe it
    was trained with; :class:`ShippedMismatch` (one line, with the fix) otherwise."""
    record_path = folder / RECORD
    if not record_path.is_file():
        raise ShippedMismatch(f"{record_path}: not found (a shipped checkpoint folder holds the "
                              "export and its shipped.json); fix: run with --retrain")
    record = json.loads(record_path.read_text())
    export = folder / record["file"]
    if not export.is_file() or sha256_of(export) != record["sha256"]:
        raise ShippedMismatch(f"{export}: missing or its sha256 differs from {RECORD}'s; fix: "
                              f"git checkout {folder}, or run with --retrain")
    changed = _differences(record["recipe"], recipe(config))
    if changed:
        raise ShippedMismatch(f"{export}: trained with other settings than {config.name}'s "
                              f"config now has ({', '.join(changed)}); fix: run with --retrain")
    return export


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested settings tables."""
    keys = sorted(set(old) | set(new))
    found = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return found
