"""What a prepared dataset folder was prepared with, checked against a run config's settings.

Preparation records its options: ``dataset.json`` (``options``: the :class:`PrepareOptions`)
and ``pairs/protocols.json`` (the :class:`PairOptions`). A run config that states a dataset
setting (``size``, ``frame_step``, ``clip_length``, ``crop``, ``fps``, ``cross_per_source``,
``driving_step``, ``max_driving_frames``) for a prepared folder must agree with the record,
because clips and pair lists are not prepared again: a difference is a one-line error naming
the file and both values, never a setting silently ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PREPARE_FILE = "dataset.json"
PAIRS_FILE = Path("pairs") / "protocols.json"
PREPARE_KEYS = ("size", "frame_step", "clip_length", "crop", "fps")
PAIR_KEYS = ("cross_per_source", "driving_step", "max_driving_frames")
DEFAULT_RECORD = {"fps": 0.0, "driving_step": 1, "max_driving_frames": 0}
"""Values of options added after a folder may have been prepared (absent: their default)."""


class SettingsMismatch(ValueError):
    """A run config's dataset setting differs from what the folder was prepared with."""


def recorded(root: Path, key: str) -> tuple[Path, Any]:
    """(the record file, the value it holds for ``key``); the value is None when the file
    does not exist."""
    path = root / (PREPARE_FILE if key in PREPARE_KEYS else PAIRS_FILE)
    if not path.is_file():
        return path, None
    record = json.loads(path.read_text())
    if key in PREPARE_KEYS:
        record = record.get("options", {})
    return path, record.get(key, DEFAULT_RECORD.get(key))


def check_settings(root: str | Path, wanted: dict[str, Any]) -> None:
    """Raise :class:`SettingsMismatch` for the first setting of ``wanted`` (key -> value) that
    the folder's record contradicts or cannot confirm (no record)."""
    root = Path(root)
    for key, value in wanted.items():
        path, have = recorded(root, key)
        if have is None:
            raise SettingsMismatch(
                f"{path}: not found, so dataset.{key} = {value!r} cannot be checked; prepare "
                f"{root} with `python -m thbench datasets prepare` or remove dataset.{key} "
                "from the run config")
        if have != value:
            raise SettingsMismatch(
                f"{path}: dataset.{key} = {value!r} in the run config, but {root} was prepared "
                f"with {key} = {have!r}; prepare it again with that setting or remove "
                f"dataset.{key} from the run config")
